/**
 * The `train_step` figures: one training step of the original's configuration (embed 512,
 * hidden 512, batch 32, captions of 13 tokens counting <start> and <end>, so 13 LSTM steps and
 * 12 scored outputs, vocabulary 8,900). The image embedding is a given tensor, so this is the
 * decoder's step alone: forward, masked cross-entropy, backward, clipping, Adam.
 *
 * - `ms`: the median wall time of `--repeats` steps after warm-up.
 * - `matmul_ms`: what the step's matrix products alone take on this backend: the same 31
 *   products (forward and backward, shapes in stepMatMuls), run as plain matMuls on fresh
 *   operands in the same process, interleaved with the steps so that both see the same machine
 *   load. `ratio_to_matmul` = ms / matmul_ms: the cost of everything else (gates, softmax,
 *   transposes, gather, Adam...).
 * - `matmul_reused_operands_ms`: the same products on operands that never change, which wasm's
 *   packed-weights cache makes cheaper than anything a training step can get.
 * - The `cpu_` figures: process CPU time, steadier than wall time on a shared machine;
 *   `phases_cpu_ms` splits a step into forward, backward and update (clipping + Adam).
 * - When Debian's python3-torch is installed, `torch_ms`: the same step in PyTorch on one thread
 *   (scripts/bench_torch.py).
 */
import * as tf from "@tensorflow/tfjs";
import { DecoderRNN } from "../../lib/model/decoder";
import { maskedCrossEntropy } from "../../lib/model/loss";
import { clipByGlobalNorm, trainStep } from "../../lib/model/train-step";
import { runTorchScript } from "./pytorch";
import { interleaved, median, round, timeOnce, WARMUP, type Timed, type Timing } from "./timing";

/** The original's configuration (Show and Tell as trained in the PyTorch tutorial it follows). */
export const ORIGINAL_CONFIG = { batch: 32, length: 13, vocab: 8900, embed: 512, hidden: 512 };
/** The global gradient norm that training clips to. */
export const CLIP_NORM = 5;

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
  const { batch: B, length: T, vocab: V, embed: E, hidden: H } = ORIGINAL_CONFIG;
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
  const { batch, length, vocab, embed } = ORIGINAL_CONFIG;
  return tf.tidy(() => {
    const words = tf.randomUniform([batch, length - 2], 3, vocab, "int32", 7);
    const tokens = tf.concat([tf.zeros([batch, 1], "int32"), words, tf.ones([batch, 1], "int32")], 1) as tf.Tensor2D;
    return { images: tf.randomNormal([batch, embed], 0, 1, "float32", 8) as tf.Tensor2D, tokens, mask: tf.onesLike(tokens).toFloat() as tf.Tensor2D };
  });
}

/** The `train_step` figures. */
export function benchTrainStep(backend: string, repeats: number, torch: boolean): Record<string, unknown> {
  const { vocab, embed, hidden } = ORIGINAL_CONFIG;
  const decoder = new DecoderRNN({ vocabSize: vocab, embedSize: embed, hiddenSize: hidden, numLayers: 1, dropout: 0 });
  const { images, tokens, mask } = batchTensors();
  const optimizer = tf.train.adam(1e-3);
  const step = () => void trainStep({ decoder, embedImages: () => images, tokens, mask, optimizer, clipNorm: CLIP_NORM });
  const matmuls = matMulBaseline();
  const [stepT, matmulT, cachedT] = interleaved([{ run: step }, matmuls.timed, matmuls.cached], repeats);
  const result: Record<string, unknown> = {
    name: "train_step",
    backend,
    config: { ...ORIGINAL_CONFIG, layers: 1 },
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

/** Runs scripts/bench_torch.py and compares; an error is reported in the figures, not thrown. */
function torchFigures(repeats: number, ours: Timing): Record<string, unknown> {
  const args = Object.entries({ ...ORIGINAL_CONFIG, warmup: WARMUP, repeats }).flatMap(([k, v]) => [`--${k}`, String(v)]);
  const run = runTorchScript<{ torch: string; ms: number; cpu_ms: number }>("bench_torch.py", args, 120_000);
  if ("error" in run) return { torch_error: run.error };
  const torch = run.figures;
  return {
    torch_ms: round(torch.ms),
    ratio_to_torch: round(ours.ms / torch.ms, 2),
    torch_cpu_ms: round(torch.cpu_ms),
    cpu_ratio_to_torch: round(ours.cpuMs / torch.cpu_ms, 2),
    torch_version: torch.torch,
  };
}
