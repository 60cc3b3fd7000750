/**
 * Speed of the decoder (a training step and captioning) and of the synthetic default's whole step.
 *
 *   npm run bench -- [--json] [--backend wasm|cpu|node|node-gpu] [--repeats N] [--no-torch] [--no-synthetic] [--no-caption]
 *                    [--no-self-critical] [--no-features] [--backbone-dir DIR]
 *
 * Prints one line per figure (one JSON object per line with --json):
 *
 * - `train_step`: one training step of the original's configuration (embed 512, hidden 512,
 *   batch 32, captions of 13 tokens counting <start> and <end>, so 13 LSTM steps and 12 scored
 *   outputs, vocabulary 8,900). The image embedding is a given tensor, so this is the decoder's
 *   step alone: forward, masked cross-entropy, backward, clipping, Adam. `ms` is the median wall
 *   time of `--repeats` steps after warm-up. `matmul_ms` is what the step's matrix products
 *   alone take on this backend: the same 31 products (forward and backward, shapes in
 *   stepMatMuls), run as plain matMuls on fresh operands in the same process, interleaved with
 *   the steps so that both see the same machine load. `ratio_to_matmul` = ms / matmul_ms: the
 *   cost of everything else (gates, softmax, transposes, gather, Adam...). When Debian's
 *   python3-torch is installed, `torch_ms` is the same step in PyTorch on one thread
 *   (scripts/bench_torch.py).
 *   The `cpu_` figures are process CPU time, steadier than wall time on a shared machine;
 *   `phases_cpu_ms` splits a step into forward, backward and update (clipping + Adam).
 *   `matmul_reused_operands_ms` times the same products on operands that never change, which
 *   wasm's packed-weights cache makes cheaper than anything a training step can get.
 * - `synthetic_step`: one training step of the embedded synthetic default (SYNTHETIC_CONFIG: the
 *   small CNN trained jointly with the decoder and the word-presence head, batch 32, captions of
 *   14 tokens, the synthetic vocabulary's size): `ms`, and `encoder_ms`, the CNN and its linear
 *   layer alone (forward and backward). On wasm, `native_kernels_ms` is the same step with
 *   tfjs's own kernels in place of those lib/runtime/wasm-kernels.ts replaces, timed in the same run,
 *   and `speedup_from_kernels` their ratio.
 * - `caption`: greedy and beam-3 captioning of a batch of images, ms per image. The weights are
 *   untrained, so captions rarely end early: close to the worst case of `maxLength` steps.
 * - `self_critical_step`: a self-critical step (32 images x 5 sampled captions, Flickr8k's sizes)
 *   against a cross-entropy step of the same model, interleaved: `ms`, `cross_entropy_step_ms`,
 *   their ratio, and ms per sampled caption (benchSelfCritical says what the case is).
 * - `features`: a frozen backbone's forward pass (MobileNet V1 0.75 from --backbone-dir, default
 *   ../shared/models/mobilenet_v1_0.75_224), batches of 32 224x224 images, images per second:
 *   `images_per_second` with batch norm folded into fused convolutions (what the project runs,
 *   lib/runtime/folded-cnn.ts), `layers_model_images_per_second` as the tfjs layers model runs it,
 *   interleaved in the same process, and their ratio `speedup_from_folding`; with PyTorch, the
 *   same architecture on one thread (scripts/bench_torch_mobilenet.py). The CNN alone: decoding
 *   JPEGs runs on sharp's own threads beside it.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import * as fs from "node:fs";
import { BACKEND_KINDS, BackendKind, initBackend } from "../lib/runtime/backend";
import { foldLayersModel } from "../lib/runtime/folded-cnn";
import { fileSystemHandler } from "../lib/io/model-cache";
import { FLICKR8K_CONFIG, SELF_CRITICAL_DEFAULTS, SYNTHETIC_CONFIG } from "../lib/train/config";
import { Captioner } from "../lib/inference/captioner";
import { Vocabulary } from "../lib/data/vocabulary";
import { Random } from "../lib/data/random";
import { CiderReward } from "../lib/train/cider-reward";
import { selfCriticalStep } from "../lib/train/self-critical";
import { DecoderRNN } from "../lib/model/decoder";
import { EncoderCNN } from "../lib/model/encoder";
import { SmallCNN } from "../lib/model/small-cnn";
import { WordPresenceHead } from "../lib/model/word-presence";
import { registerWasmKernels, restoreOriginalWasmKernels } from "../lib/runtime/wasm-kernels";
import { maskedCrossEntropy } from "../lib/model/loss";
import { clipByGlobalNorm, trainStep } from "../lib/model/train-step";
import { greedyCaptions } from "../lib/inference/greedy";
import { beamSearchCaptions } from "../lib/inference/beam-search";

const USAGE =
  "usage: npm run bench -- [--json] [--backend KIND] [--repeats N] [--no-torch] [--no-synthetic] [--no-caption] [--no-self-critical] [--no-features] [--backbone-dir DIR]";

/** The original's configuration (Show and Tell as trained in the PyTorch tutorial it follows). */
const CONFIG = { batch: 32, length: 13, vocab: 8900, embed: 512, hidden: 512 };
const WARMUP = 2;
const CLIP_NORM = 5;
const CAPTION_BATCH = 16;
const MAX_CAPTION_LENGTH = 20;
const PYTHON = "/usr/bin/python3"; // Debian's, with python3-torch (not the python3 on PATH)

/** Wall and CPU milliseconds of one call. */
interface Timing {
  ms: number;
  cpuMs: number;
}

function timeOnce(f: () => void): Timing {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Something to time: `run` is timed; `prepare`, if given, runs untimed before each call. */
interface Timed {
  run: () => void;
  prepare?: () => void;
}

/** Runs the entries in turn, `warmup + repeats` rounds, and returns each one's median timing. */
function interleaved(entries: Timed[], repeats: number): Timing[] {
  const runs: Timing[][] = entries.map(() => []);
  for (let round = 0; round < WARMUP + repeats; round++) {
    entries.forEach(({ run, prepare }, i) => {
      prepare?.();
      const t = timeOnce(run);
      if (round >= WARMUP) runs[i].push(t);
    });
  }
  return runs.map((ts) => ({ ms: median(ts.map((t) => t.ms)), cpuMs: median(ts.map((t) => t.cpuMs)) }));
}

/** One matrix product of the step, [m, k] x [k, n], repeated `times` with the same right operand. */
interface MatMulShape {
  m: number;
  k: number;
  n: number;
  times: number;
}

/**
 * Every matrix product of one training step. T = length steps, B = batch, N = B·(T − 1) scored
 * outputs, E = embed, H = hidden, V = vocabulary. The per-step products of the recurrence share
 * their right operand (U forward, Uᵀ backward), as in the step.
 */
function stepMatMuls(): MatMulShape[] {
  const { batch: B, length: T, vocab: V, embed: E, hidden: H } = CONFIG;
  const N = B * (T - 1);
  return [
    // forward
    { m: T * B, k: E, n: 4 * H, times: 1 }, // input projections of all steps
    { m: B, k: H, n: 4 * H, times: T - 1 }, // h·U per step (step 0 starts from the zero state)
    { m: N, k: H, n: V, times: 1 }, // output layer for all steps
    // backward
    { m: N, k: V, n: H, times: 1 }, // output layer: d hidden
    { m: H, k: N, n: V, times: 1 }, // output layer: d kernel
    { m: B, k: 4 * H, n: H, times: T - 1 }, // dz·Uᵀ per step
    { m: H, k: (T - 1) * B, n: 4 * H, times: 1 }, // dU over all steps
    { m: T * B, k: 4 * H, n: E, times: 1 }, // input projection: d inputs
    { m: E, k: T * B, n: 4 * H, times: 1 }, // input projection: d kernel
  ];
}

/**
 * The step's products as plain matMuls. Each round gets fresh copies of the operands (untimed),
 * because in training every right operand is new at every step (the weights change, the
 * gradients are new) and wasm's XNNPACK matMul repacks a new right operand on each call: reusing
 * the same tensors would time a packed-weights cache that training never hits.
 */
function matMulBaseline(): { timed: Timed; cached: Timed; count: number; dispose: () => void } {
  const sources = stepMatMuls().map(({ m, k, n, times }) => ({ a: tf.randomNormal([m, k]), b: tf.randomNormal([k, n]), times }));
  let operands: { a: tf.Tensor; b: tf.Tensor; times: number }[] = [];
  const release = () => operands.forEach(({ a, b }) => tf.dispose([a, b]));
  const timed: Timed = {
    prepare: () => {
      release();
      operands = sources.map(({ a, b, times }) => ({ a: tf.clone(a), b: tf.clone(b), times }));
    },
    run: () => products(operands),
  };
  // The same products on operands that never change, for comparison (what the cache saves).
  const cached: Timed = { run: () => products(sources) };
  const count = sources.reduce((sum, s) => sum + s.times, 0);
  return { timed, cached, count, dispose: () => (release(), sources.forEach(({ a, b }) => tf.dispose([a, b]))) };
}

function products(operands: { a: tf.Tensor; b: tf.Tensor; times: number }[]): void {
  for (const { a, b, times } of operands) for (let i = 0; i < times; i++) tf.matMul(a, b).dispose();
}

/** Random tokens [<start>, w..., <end>] of the configured length, all real (mask of ones). */
function batchTensors() {
  const { batch, length, vocab, embed } = CONFIG;
  return tf.tidy(() => {
    const words = tf.randomUniform([batch, length - 2], 3, vocab, "int32", 7);
    const tokens = tf.concat([tf.zeros([batch, 1], "int32"), words, tf.ones([batch, 1], "int32")], 1) as tf.Tensor2D;
    return { images: tf.randomNormal([batch, embed], 0, 1, "float32", 8) as tf.Tensor2D, tokens, mask: tf.onesLike(tokens).toFloat() as tf.Tensor2D };
  });
}

/** The `train_step` figures. */
function benchTrainStep(backend: string, repeats: number, torch: boolean): Record<string, unknown> {
  const { batch, length, vocab, embed, hidden } = CONFIG;
  const decoder = new DecoderRNN({ vocabSize: vocab, embedSize: embed, hiddenSize: hidden, numLayers: 1, dropout: 0 });
  const { images, tokens, mask } = batchTensors();
  const optimizer = tf.train.adam(1e-3);
  const step = () => void trainStep({ decoder, embedImages: () => images, tokens, mask, optimizer, clipNorm: CLIP_NORM });
  const matmuls = matMulBaseline();
  const [stepT, matmulT, cachedT] = interleaved([{ run: step }, matmuls.timed, matmuls.cached], repeats);
  const result: Record<string, unknown> = {
    name: "train_step",
    backend,
    config: { ...CONFIG, layers: 1 },
    image_embedding: "given tensor: the decoder's step alone",
    ms: round(stepT.ms),
    matmul_ms: round(matmulT.ms),
    ratio_to_matmul: round(stepT.ms / matmulT.ms, 2),
    cpu_ms: round(stepT.cpuMs),
    matmul_cpu_ms: round(matmulT.cpuMs),
    cpu_ratio_to_matmul: round(stepT.cpuMs / matmulT.cpuMs, 2),
    matmuls: matmuls.count,
    matmul_reused_operands_ms: round(cachedT.ms),
    phases_cpu_ms: stepPhases(decoder, { images, tokens, mask }, optimizer, repeats),
  };
  if (torch) Object.assign(result, torchFigures(repeats, stepT));
  tf.dispose([images, tokens, mask]);
  matmuls.dispose();
  optimizer.dispose();
  decoder.dispose();
  return result;
}

/**
 * Where a step's CPU time goes, median per phase: the forward pass with the loss, the backward
 * pass (variableGrads minus a forward pass), and the update (clipping + Adam). Each pass starts
 * from fresh weights, as in training (see matMulBaseline on why that matters on wasm).
 */
function stepPhases(decoder: DecoderRNN, batch: ReturnType<typeof batchTensors>, optimizer: tf.Optimizer, repeats: number) {
  const { images, tokens, mask } = batch;
  const [rows, length] = tokens.shape;
  const lossOf = () => maskedCrossEntropy(decoder.forward(images, tokens), tf.slice(tokens, [0, 1], [rows, length - 1]), tf.slice(mask, [0, 1], [rows, length - 1]));
  const samples = { forward: [] as number[], backward: [] as number[], update: [] as number[] };
  for (let round = 0; round < WARMUP + repeats; round++) {
    refreshWeights(decoder);
    const forward = timeOnce(() => tf.tidy(() => void lossOf().dataSync())).cpuMs;
    refreshWeights(decoder);
    let grads: tf.NamedTensorMap = {};
    const gradients = timeOnce(() => {
      const result = tf.variableGrads(lossOf, decoder.variables);
      result.value.dispose();
      grads = result.grads;
    }).cpuMs;
    const update = timeOnce(() => {
      const clipped = clipByGlobalNorm(grads, CLIP_NORM);
      optimizer.applyGradients(clipped);
      tf.dispose([clipped, grads]);
    }).cpuMs;
    if (round < WARMUP) continue;
    samples.forward.push(forward);
    samples.backward.push(gradients - forward);
    samples.update.push(update);
  }
  return { forward: round(median(samples.forward)), backward: round(median(samples.backward)), update: round(median(samples.update)) };
}

/** Gives every weight a new copy of its values: what an optimiser update does to the tensors. */
function refreshWeights(decoder: DecoderRNN): void {
  for (const v of decoder.variables) {
    const copy = tf.clone(v);
    v.assign(copy);
    copy.dispose();
  }
}

/** Whether Debian's python3-torch can be imported. */
function torchAvailable(): boolean {
  return spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
}

/** Runs scripts/bench_torch.py and compares; an error is reported in the figures, not thrown. */
function torchFigures(repeats: number, ours: Timing): Record<string, unknown> {
  const script = path.join(__dirname, "bench_torch.py");
  const args = Object.entries({ ...CONFIG, warmup: WARMUP, repeats }).flatMap(([k, v]) => [`--${k}`, String(v)]);
  // One thread, as wasm has: torch.set_num_threads(1) does not reach OpenBLAS's own thread pool.
  const env = { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1" };
  const run = spawnSync(PYTHON, [script, ...args], { encoding: "utf8", timeout: 120_000, env });
  if (run.status !== 0) return { torch_error: (run.stderr || String(run.error)).trim().split("\n").slice(-1)[0] };
  const torch = JSON.parse(run.stdout.trim().split("\n").slice(-1)[0]) as { torch: string; ms: number; cpu_ms: number };
  return {
    torch_ms: round(torch.ms),
    ratio_to_torch: round(ours.ms / torch.ms, 2),
    torch_cpu_ms: round(torch.cpu_ms),
    cpu_ratio_to_torch: round(ours.cpuMs / torch.cpu_ms, 2),
    torch_version: torch.torch,
  };
}

/** The synthetic default's sizes that the config does not fix: its vocabulary and a typical caption length. */
const SYNTHETIC_VOCAB = 56;
const SYNTHETIC_LENGTH = 14;

/** The `synthetic_step` figures: the default's whole step (CNN + decoder + word loss) and its encoder part. */
function benchSyntheticStep(backend: string, repeats: number): Record<string, unknown> {
  const config = SYNTHETIC_CONFIG;
  if (config.encoder.kind !== "small-cnn") throw new Error("scripts/bench.ts: the synthetic default is expected to use the small CNN");
  const { inputSize, filters } = config.encoder;
  const batch = config.batchSize;
  const encoder = new EncoderCNN(new SmallCNN({ inputSize, filters, name: "bench/cnn" }), { embedSize: config.embedSize, name: "bench/encoder" });
  const decoder = new DecoderRNN(
    { vocabSize: SYNTHETIC_VOCAB, embedSize: config.embedSize, hiddenSize: config.hiddenSize, numLayers: config.numLayers, dropout: config.dropout },
    { name: "bench/decoder" },
  );
  const head = new WordPresenceHead(config.embedSize, SYNTHETIC_VOCAB, "bench/words");
  const [images, tokens, mask, words] = tf.tidy(() => [
    tf.randomNormal([batch, inputSize, inputSize, 3], 0, 1, "float32", 10) as tf.Tensor4D,
    tf.randomUniform([batch, SYNTHETIC_LENGTH], 3, SYNTHETIC_VOCAB, "int32", 11) as tf.Tensor2D,
    tf.ones([batch, SYNTHETIC_LENGTH]) as tf.Tensor2D,
    tf.cast(tf.greater(tf.randomUniform([batch, SYNTHETIC_VOCAB], 0, 1, "float32", 12), 0.8), "float32") as tf.Tensor2D,
  ]);
  const optimizer = tf.train.adam(config.learningRate);
  const step: Timed = {
    run: () =>
      void trainStep({
        decoder,
        embedImages: () => encoder.apply(images, true),
        encoderVariables: encoder.trainableVariables,
        tokens,
        mask,
        optimizer,
        clipNorm: config.clipNorm,
        auxiliaryLoss: { weight: config.wordLoss, variables: head.variables, loss: (e) => head.loss(e, words) },
      }),
  };
  const encoderOnly: Timed = {
    run: () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(encoder.apply(images, true)) as tf.Scalar, encoder.trainableVariables);
      value.dataSync();
      tf.dispose([value, grads]);
    },
  };
  const [stepT, encoderT] = interleaved([step, encoderOnly], repeats);
  const result: Record<string, unknown> = {
    name: "synthetic_step",
    backend,
    config: { batch, inputSize, filters, embed: config.embedSize, hidden: config.hiddenSize, vocab: SYNTHETIC_VOCAB, length: SYNTHETIC_LENGTH },
    ms: round(stepT.ms),
    encoder_ms: round(encoderT.ms),
  };
  if (backend === "wasm") {
    restoreOriginalWasmKernels();
    try {
      const [nativeT] = interleaved([step], repeats);
      Object.assign(result, { native_kernels_ms: round(nativeT.ms), speedup_from_kernels: round(nativeT.ms / stepT.ms, 2) });
    } finally {
      registerWasmKernels();
    }
  }
  tf.dispose([images, tokens, mask, words]);
  optimizer.dispose();
  [encoder, decoder, head].forEach((m) => m.dispose());
  return result;
}

/** The `caption` figures: greedy and beam-3 over one batch of image embeddings. */
function benchCaption(backend: string, repeats: number): Record<string, unknown> {
  const { vocab, embed, hidden } = CONFIG;
  const decoder = new DecoderRNN({ vocabSize: vocab, embedSize: embed, hiddenSize: hidden, numLayers: 1, dropout: 0 });
  const images = tf.randomNormal([CAPTION_BATCH, embed], 0, 1, "float32", 9) as tf.Tensor2D;
  const text = { clean: (ids: number[]) => ids.join(" ") };
  const options = { maxLength: MAX_CAPTION_LENGTH };
  const reps = Math.max(1, Math.ceil(repeats / 2)); // a batch of captions takes seconds: fewer rounds
  const [greedyT, beamT] = interleaved(
    [{ run: () => void greedyCaptions(decoder, images, text, options) }, { run: () => void beamSearchCaptions(decoder, images, text, { ...options, beamSize: 3 }) }],
    reps,
  );
  images.dispose();
  decoder.dispose();
  return {
    name: "caption",
    backend,
    batch: CAPTION_BATCH,
    max_length: MAX_CAPTION_LENGTH,
    greedy_ms_per_image: round(greedyT.ms / CAPTION_BATCH, 1),
    beam3_ms_per_image: round(beamT.ms / CAPTION_BATCH, 1),
  };
}

/** The shipped Flickr8k recipe's sizes: what the self-critical figure is measured on. */
const FLICKR8K_SIZES = { vocab: 2549, embed: 512, hidden: 512, ceBatch: 64, ceLength: 13, images: 32, samples: 5 };

/**
 * The `self_critical_step` figures: one self-critical step (lib/train/self-critical.ts: 32 images,
 * 5 samples each, the mean baseline, CIDEr-D rewards) against one cross-entropy step (64 captions
 * of 13 tokens) of the same model, the Flickr8k recipe's sizes, interleaved. The weights are
 * untrained, so samples rarely end before maxLength (20 tokens): the worst case; a trained model's
 * samples are about half as long.
 */
async function benchSelfCritical(backend: string, repeats: number): Promise<Record<string, unknown>> {
  const sizes = FLICKR8K_SIZES;
  const words = Array.from({ length: sizes.vocab - 3 }, (_, i) => `w${i}`);
  const vocab = Vocabulary.build([words.join(" ")], { threshold: 1 });
  // A stand-in encoder whose features are the input: the cached backbone features of the recipe.
  const config = { ...FLICKR8K_CONFIG, encoder: { kind: "small-cnn" as const, inputSize: 4, filters: [4] }, dropout: 0 };
  const model = await Captioner.create(config, vocab, 1);
  const featureDim = model.backbone.featureDim;
  const rng = new Random(5);
  const caption = () => Array.from({ length: sizes.ceLength - 2 }, () => words[rng.int(words.length)]).join(" ");
  const ids = Array.from({ length: sizes.images }, (_, i) => i);
  const reward = new CiderReward(new Map(ids.map((id) => [id, Array.from({ length: 5 }, caption)])));
  const features = tf.randomNormal([sizes.images, featureDim], 0, 1, "float32", 3);
  const ceFeatures = tf.randomNormal([sizes.ceBatch, featureDim], 0, 1, "float32", 4);
  const tokens = tf.tidy(() => {
    const w = tf.randomUniform([sizes.ceBatch, sizes.ceLength - 2], 3, sizes.vocab, "int32", 7);
    return tf.concat([tf.zeros([sizes.ceBatch, 1], "int32"), w, tf.ones([sizes.ceBatch, 1], "int32")], 1) as tf.Tensor2D;
  });
  const mask = tf.onesLike(tokens).toFloat() as tf.Tensor2D;
  const optimizer = tf.train.adam(1e-5);
  const settings = { ...SELF_CRITICAL_DEFAULTS, samplesPerImage: sizes.samples, imagesPerBatch: sizes.images, baseline: "mean" as const };
  let step = 0;
  const selfCritical = () =>
    void selfCriticalStep({ model, batch: { imageIds: ids, images: features }, reward, config: settings, rng: new Random(step++), optimizer, clipNorm: CLIP_NORM, maxLength: MAX_CAPTION_LENGTH });
  const crossEntropy = () =>
    void trainStep({ decoder: model.decoder, embedImages: () => model.embed(ceFeatures, true), encoderVariables: model.encoder.trainableVariables, tokens, mask, optimizer, clipNorm: CLIP_NORM });
  const reps = Math.max(1, Math.ceil(repeats / 2)); // a self-critical step takes seconds: fewer rounds
  const [scT, ceT] = interleaved([{ run: selfCritical }, { run: crossEntropy }], reps);
  tf.dispose([features, ceFeatures, tokens, mask]);
  optimizer.dispose();
  model.dispose();
  return {
    name: "self_critical_step",
    backend,
    config: { ...sizes, baseline: "mean", max_length: MAX_CAPTION_LENGTH },
    ms: round(scT.ms),
    cross_entropy_step_ms: round(ceT.ms),
    ratio_to_cross_entropy_step: round(scT.ms / ceT.ms, 2),
    ms_per_sampled_caption: round(scT.ms / (sizes.images * sizes.samples), 2),
  };
}

const FEATURE_BATCH = 32;
const DEFAULT_BACKBONE_DIR = path.resolve(__dirname, "../../shared/models/mobilenet_v1_0.75_224");

/** The `features` figures: the backbone folded and as a layers model, interleaved; PyTorch's when it is there. */
async function benchFeatures(backend: string, repeats: number, dir: string, torch: boolean): Promise<Record<string, unknown>> {
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

function torchFeatureFigures(repeats: number, ours: number): Record<string, unknown> {
  const script = path.join(__dirname, "bench_torch_mobilenet.py");
  const args = ["--width", "0.75", "--batch", String(FEATURE_BATCH), "--warmup", "1", "--repeats", String(repeats)];
  const env = { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1" };
  const run = spawnSync(PYTHON, [script, ...args], { encoding: "utf8", timeout: 300_000, env });
  if (run.status !== 0) return { torch_error: (run.stderr || String(run.error)).trim().split("\n").slice(-1)[0] };
  const torch = JSON.parse(run.stdout.trim().split("\n").slice(-1)[0]) as { images_per_second: number };
  return { torch_images_per_second: round(torch.images_per_second), ratio_to_torch: round(ours / torch.images_per_second, 2) };
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function printFigures(figures: Record<string, unknown>, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(figures));
    return;
  }
  const { name, ...rest } = figures;
  console.log(`${name}: ${Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ")}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      backend: { type: "string" },
      repeats: { type: "string", default: "5" },
      "no-torch": { type: "boolean", default: false },
      "no-caption": { type: "boolean", default: false },
      "no-self-critical": { type: "boolean", default: false },
      "no-synthetic": { type: "boolean", default: false },
      "no-features": { type: "boolean", default: false },
      "backbone-dir": { type: "string", default: DEFAULT_BACKBONE_DIR },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(USAGE);
  const repeats = Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`scripts/bench.ts: --repeats must be a positive integer, got "${values.repeats}"\n${USAGE}`);
  if (values.backend !== undefined && !(BACKEND_KINDS as readonly string[]).includes(values.backend)) {
    throw new Error(`scripts/bench.ts: --backend must be one of ${BACKEND_KINDS.join(", ")}, got "${values.backend}"\n${USAGE}`);
  }
  const info = await initBackend({ force: values.backend as BackendKind | undefined });
  const torch = !values["no-torch"] && torchAvailable();
  printFigures(benchTrainStep(info.name, repeats, torch), values.json);
  if (!values["no-synthetic"]) printFigures(benchSyntheticStep(info.name, repeats), values.json);
  if (!values["no-caption"]) printFigures(benchCaption(info.name, repeats), values.json);
  if (!values["no-self-critical"]) printFigures(await benchSelfCritical(info.name, repeats), values.json);
  if (!values["no-features"]) printFigures(await benchFeatures(info.name, repeats, values["backbone-dir"], torch), values.json);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
