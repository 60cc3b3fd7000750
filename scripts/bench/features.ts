/**
 * The `features` figures: a frozen backbone's forward pass (MobileNet V1 0.75 from --backbone-dir,
 * default ../shared/models/mobilenet_v1_0.75_224), batches of 32 224x224 images, in images per
 * second: `images_per_second` with batch norm folded into fused convolutions (what the project
 * runs, lib/runtime/folded-cnn.ts), `layers_model_images_per_second` as the tfjs layers model runs
 * it, interleaved in the same process, and their ratio `speedup_from_folding`; with PyTorch, the
 * same architecture on one thread (scripts/bench_torch_mobilenet.py). The CNN alone: decoding
 * JPEGs runs on sharp's own threads beside it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { fileSystemHandler } from "../../lib/io/model-cache";
import { foldLayersModel } from "../../lib/runtime/folded-cnn";
import { runTorchScript } from "./pytorch";
import { interleaved, round, type Timed, type Timing } from "./timing";

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

/** Runs scripts/bench_torch_mobilenet.py and compares; an error is reported in the figures, not thrown. */
function torchFeatureFigures(repeats: number, ours: number): Record<string, unknown> {
  const args = ["--width", "0.75", "--batch", String(FEATURE_BATCH), "--warmup", "1", "--repeats", String(repeats)];
  const run = runTorchScript<{ images_per_second: number }>("bench_torch_mobilenet.py", args, 300_000);
  if ("error" in run) return { torch_error: run.error };
  const torch = run.figures;
  return { torch_images_per_second: round(torch.images_per_second), ratio_to_torch: round(ours / torch.images_per_second, 2) };
}
