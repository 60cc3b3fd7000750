/**
 * The `features` figures: a frozen backbone's forward pass (MobileNet V1 0.75 from --backbone-dir,
 * default ../shared/models/mobilenet_v1_0.75_224), batches of 32 224x224 images, in images per
 * second: `images_per_second` with batch norm folded into fused convolutions (what the project
 * runs, lib/runtime/folded-cnn.ts), `layers_model_images_per_second` as the tfjs layers model runs
 * it, interleaved in the same process, and their ratio `speedup_from_folding`; with PyTorch, the
 * same architecture on one thread (scripts/bench_torch_mobilenet.py). The CNN alone: decoding
 * JPEGs runs on sharp's own threads beside it. That line says `workers: 1`; then one line per
 * worker count W (--workers): the CNN on W extraction workers (lib/features/feature-workers.ts),
 * one batch each at once, against W = 1 (the same folded backbone in the main thread), timed
 * interleaved in the same run: `images_per_second`, `single_images_per_second`, `speedup`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { fileSystemHandler } from "../../lib/io/model-cache";
import type { BackendKind } from "../../lib/runtime/backend";
import { foldLayersModel } from "../../lib/runtime/folded-cnn";
import { coreCount } from "../../lib/runtime/worker-pool";
import { FeatureWorkers } from "../../lib/features/feature-workers";
import { computeRows } from "../../lib/features/feature-rows";
import { MOBILENET_V1_075, PretrainedBackbone } from "../../lib/model/backbone";
import { runTorchScript } from "./pytorch";
import { interleaved, interleavedAsync, round, type Timed, type Timing } from "./timing";

const FEATURE_BATCH = 32;
/** --backbone-dir's default: ../shared/models/mobilenet_v1_0.75_224, beside the project folder. */
export const DEFAULT_BACKBONE_DIR = path.resolve(__dirname, "../../../shared/models/mobilenet_v1_0.75_224");

/** The `features` figures: the backbone folded and as a layers model, interleaved; PyTorch's when it is there. */
export async function benchFeatures(backend: string, repeats: number, dir: string, torch: boolean): Promise<Record<string, unknown>> {
  if (!fs.existsSync(path.join(dir, "model.json"))) return { name: "features", skipped: `${dir}/model.json not found (--backbone-dir)` };
  const model = await tf.loadLayersModel(fileSystemHandler(dir));
  const layer = "global_average_pooling2d_1";
  const cut = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tf.SymbolicTensor });
  const folded = foldLayersModel(model, layer);
  if (!folded) throw new Error(`${dir}: the backbone cannot be folded`);
  const images = tf.randomUniform([FEATURE_BATCH, 224, 224, 3], -1, 1, "float32", 3) as tf.Tensor4D;
  const forward = (run: () => tf.Tensor): Timed => ({ run: () => tf.tidy(() => void run().dataSync()) });
  const reps = Math.max(1, Math.ceil(repeats / 2)); // a batch takes seconds
  const [foldedT, layersT] = interleaved([forward(() => folded.run(images)), forward(() => cut.predict(images) as tf.Tensor)], reps);
  tf.dispose(images);
  folded.dispose();
  model.dispose();
  const rate = (t: Timing) => round((FEATURE_BATCH * 1000) / t.ms);
  const result: Record<string, unknown> = {
    name: "features",
    backend,
    backbone: path.basename(dir),
    batch: FEATURE_BATCH,
    workers: 1,
    images_per_second: rate(foldedT),
    layers_model_images_per_second: rate(layersT),
    speedup_from_folding: round(layersT.ms / foldedT.ms, 2),
    // Per second of this process's CPU time: steadier than wall time on a busy machine.
    cpu_images_per_second: round((FEATURE_BATCH * 1000) / foldedT.cpuMs),
    layers_model_cpu_images_per_second: round((FEATURE_BATCH * 1000) / layersT.cpuMs),
  };
  if (torch) Object.assign(result, torchFeatureFigures(reps, rate(foldedT)));
  return result;
}

/**
 * One `features` line per worker count: a round runs W batches at once on W workers (batch b on
 * worker b), against one batch in the main thread, the rounds interleaved.
 */
export async function benchFeatureWorkers(backend: string, kind: BackendKind, repeats: number, dir: string, counts: number[]): Promise<Record<string, unknown>[]> {
  if (!fs.existsSync(path.join(dir, "model.json"))) return [{ name: "features", skipped: `${dir}/model.json not found (--backbone-dir)` }];
  const backbone = await PretrainedBackbone.load({ ...MOBILENET_V1_075, source: dir });
  const size = backbone.inputSize;
  const input = Float32Array.from({ length: FEATURE_BATCH * size * size * 3 }, (_, i) => Math.sin(i) * 0.9); // values in [-1, 1]
  const pools: FeatureWorkers[] = [];
  try {
    for (const w of counts) pools.push(await FeatureWorkers.start(w, backbone, kind));
    const single = () => computeRows(backbone, input, FEATURE_BATCH, size);
    const onWorkers = (pool: FeatureWorkers) => () => Promise.all(Array.from({ length: pool.size }, (_, b) => pool.rows(b, input.slice(), FEATURE_BATCH, size)));
    const times = await interleavedAsync([single, ...pools.map(onWorkers)], Math.max(1, Math.ceil(repeats / 2))); // a batch takes seconds
    const rate = (images: number, t: Timing, key: keyof Timing) => round((images * 1000) / t[key]);
    const singleRate = rate(FEATURE_BATCH, times[0], "ms");
    return counts.map((workers, i) => {
      const perSecond = rate(workers * FEATURE_BATCH, times[i + 1], "ms");
      return {
        name: "features",
        backend,
        backbone: path.basename(dir),
        batch: FEATURE_BATCH,
        workers,
        cores: coreCount(),
        images_per_second: perSecond,
        single_images_per_second: singleRate,
        speedup: round(perSecond / singleRate, 2),
        cpu_images_per_second: rate(workers * FEATURE_BATCH, times[i + 1], "cpuMs"),
        single_cpu_images_per_second: rate(FEATURE_BATCH, times[0], "cpuMs"),
      };
    });
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    backbone.dispose();
  }
}

/** Runs scripts/bench_torch_mobilenet.py and compares; an error is reported in the figures, not thrown. */
function torchFeatureFigures(repeats: number, ours: number): Record<string, unknown> {
  const args = ["--width", "0.75", "--batch", String(FEATURE_BATCH), "--warmup", "1", "--repeats", String(repeats)];
  const run = runTorchScript<{ images_per_second: number }>("bench_torch_mobilenet.py", args, 300_000);
  if ("error" in run) return { torch_error: run.error };
  const torch = run.figures;
  return { torch_images_per_second: round(torch.images_per_second), ratio_to_torch: round(ours / torch.images_per_second, 2) };
}
