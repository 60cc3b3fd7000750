/**
 * Adam on W threads: the end of a data-parallel step (data-parallel.ts) when its optimizer is
 * tf.train.adam. The trainable weights (the decoder's, then the encoder's and the word head's),
 * laid end to end in shared buffers (runtime/shared-tensors.ts), are cut into W contiguous parts,
 * and thread k (the main one is 0) updates part k, at the same time as the others:
 *
 *   1. sum     g = the shards' gradients added in shard order (as one thread would add them);
 *              the part's sum of squares goes back to the main thread
 *   2. clip    main thread: ‖g‖ from the parts' sums, the scale min(1, clipNorm / ‖g‖)
 *   3. apply   g · scale, then Adam (model/adam.ts: tfjs's own arithmetic) on the part, its new
 *              weights and moments written back
 *
 * With one thread Adam costs ~55 ms a step for the 11.2 M weights of the benchmark's decoder,
 * while the workers wait: the largest part of a step that did not shrink with W.
 *
 * During a run the moments live here only, in two pairs of buffers: a step reads the current
 * pair and writes the other, which becomes current once every part is done, so a step that fails
 * half way (a worker died) leaves the state as it was. `syncOptimizer` (data-parallel.ts) copies
 * them into the tfjs optimizer before each checkpoint, so checkpoints hold what one thread saves.
 */
import * as tf from "@tensorflow/tfjs";
import { adamUpdate, type AdamConstants } from "../model/adam";
import { readRange, sharedBuffer, writeRange, type SharedLayout } from "../runtime/shared-tensors";

export interface AdamBuffers {
  /** The weights: written by the main thread before a step, updated in place part by part. */
  weights: SharedArrayBuffer;
  /** One gradient buffer per thread, in shard order; step 1 leaves each part's sum in the first. */
  grads: SharedArrayBuffer[];
  /** [first moments, second moments], twice: the current pair and the next. */
  moments: [SharedArrayBuffer, SharedArrayBuffer][];
}

export function adamBuffers(layout: SharedLayout, threads: number): AdamBuffers {
  return {
    weights: sharedBuffer(layout),
    grads: Array.from({ length: threads }, () => sharedBuffer(layout)),
    moments: [0, 1].map(() => [sharedBuffer(layout), sharedBuffer(layout)] as [SharedArrayBuffer, SharedArrayBuffer]),
  };
}

/** Elements [start, end) of the weights. */
export type Part = [number, number];

/** Step 1 on one part: sums the shards' gradients into grads[0] there; returns their sum of squares. */
export function sumPart(buffers: AdamBuffers, part: Part): number {
  const sum = tf.tidy(() => {
    const g = buffers.grads.slice(1).reduce<tf.Tensor>((acc, grads) => tf.add(acc, readRange(grads, part)), readRange(buffers.grads[0], part));
    writeRange(buffers.grads[0], part[0], g);
    return tf.sum(tf.square(g));
  });
  const value = sum.dataSync()[0];
  sum.dispose();
  return value;
}

/** What step 3 needs besides the buffers: the scale of the clipping (1: none) and Adam's constants. */
export interface ApplyPart {
  part: Part;
  scale: number;
  constants: AdamConstants;
  /** Which pair of moment buffers is current (0 or 1); the other is written. */
  current: number;
}

/** Step 3 on one part: the clipped sum of step 1, one Adam update of the part. */
export function applyPart(buffers: AdamBuffers, { part, scale, constants, current }: ApplyPart): void {
  const [first, second] = buffers.moments[current];
  const [nextFirst, nextSecond] = buffers.moments[1 - current];
  tf.tidy(() => {
    const sum = readRange(buffers.grads[0], part);
    const gradient = scale === 1 ? sum : tf.mul(sum, scale);
    const block = { weights: readRange(buffers.weights, part), firstMoment: readRange(first, part), secondMoment: readRange(second, part) };
    const updated = adamUpdate(block, gradient, constants);
    writeRange(buffers.weights, part[0], updated.weights);
    writeRange(nextFirst, part[0], updated.firstMoment);
    writeRange(nextSecond, part[0], updated.secondMoment);
  });
}

/**
 * The clipping's scale from the parts' sums of squares, as clipByGlobalNorm (model/train-step.ts)
 * decides it; its norm adds the parts' float32 sums in float64, where clipByGlobalNorm adds the
 * variables' in float32, so the scale may differ in its last bit.
 */
export function clipScale(sumsOfSquares: number[], clipNorm: number | undefined): number {
  if (clipNorm === undefined) return 1;
  const norm = Math.fround(Math.sqrt(sumsOfSquares.reduce((a, b) => a + b, 0)));
  if (!Number.isFinite(norm)) throw new Error(`sharded-adam.ts: the gradient norm is ${norm}: training diverged`);
  return norm <= clipNorm ? 1 : clipNorm / norm;
}
