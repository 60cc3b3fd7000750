/**
 * What the data-parallel step's Adam (sharded-adam.ts) reads from and writes to tf.train.adam's
 * optimizer, which stays the one object that checkpoints save and restore
 * (lib/io/checkpoint.ts): its settings, its step count and bias-correction products, its moments.
 *
 * tfjs keeps the moments by POSITION: the i-th moment pair belongs to the i-th variable of the
 * gradients it was given, in their order. Moments are therefore read and written here as lists
 * in that order (the decoder's variables, then the encoder's, then the word head's).
 */
import * as tf from "@tensorflow/tfjs";
import type { AdamConstants } from "../model/adam";

/** The parts of tfjs 4.22's AdamOptimizer used here that its typings keep protected. */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  incrementIterations(): void;
}

/**
 * Whether the optimizer is tf.train.adam's. (Not `instanceof`: tfjs gives Optimizer a
 * Symbol.hasInstance that answers true for any optimizer, and its subclasses inherit it.)
 */
export function isAdam(optimizer: tf.Optimizer): optimizer is tf.AdamOptimizer {
  return optimizer.getClassName() === tf.AdamOptimizer.className;
}

function internals(optimizer: tf.AdamOptimizer): AdamInternals {
  return optimizer as unknown as AdamInternals;
}

/** The constants of the optimizer's next update (model/adam.ts). */
export function adamConstants(optimizer: tf.AdamOptimizer): AdamConstants {
  const a = internals(optimizer);
  const [oneMinusAccBeta1, oneMinusAccBeta2] = tf.tidy(() => [tf.sub(1, a.accBeta1), tf.sub(1, a.accBeta2)]).map((t) => {
    const value = t.dataSync()[0];
    t.dispose();
    return value;
  });
  return { learningRate: a.learningRate, beta1: a.beta1, beta2: a.beta2, epsilon: a.epsilon, oneMinusAccBeta1, oneMinusAccBeta2 };
}

/** Counts one update, as applyGradients does at its end: βᵏ → βᵏ⁺¹ (float32 products), the step count + 1. */
export function countUpdate(optimizer: tf.AdamOptimizer): void {
  const a = internals(optimizer);
  tf.tidy(() => {
    a.accBeta1.assign(tf.mul(a.accBeta1, a.beta1));
    a.accBeta2.assign(tf.mul(a.accBeta2, a.beta2));
  });
  a.incrementIterations();
}

/** The first and second moments, in the optimizer's order (empty before its first update). Not copies. */
export async function adamMoments(optimizer: tf.AdamOptimizer): Promise<{ first: tf.Tensor[]; second: tf.Tensor[] }> {
  const [iterations, ...moments] = await optimizer.getWeights();
  iterations.tensor.dispose(); // a new scalar; the moments are the optimizer's own variables
  const half = moments.length / 2;
  return { first: moments.slice(0, half).map((m) => m.tensor), second: moments.slice(half).map((m) => m.tensor) };
}

/**
 * Replaces the optimizer's moments with these (named `<variable>/m` and `/v`, as tfjs names
 * them), keeping its step count and its bias-correction products (setWeights would recompute
 * those with pow(), which differs in the last bits). Takes ownership of the tensors.
 */
export async function setAdamMoments(optimizer: tf.AdamOptimizer, names: string[], first: tf.Tensor[], second: tf.Tensor[]): Promise<void> {
  const a = internals(optimizer);
  const old = await adamMoments(optimizer);
  const saved = [tf.clone(a.accBeta1), tf.clone(a.accBeta2)];
  const iterations = tf.scalar(optimizer.iterations, "int32");
  await optimizer.setWeights([
    { name: "iter", tensor: iterations },
    ...first.map((tensor, i) => ({ name: `${names[i]}/m`, tensor })),
    ...second.map((tensor, i) => ({ name: `${names[i]}/v`, tensor })),
  ]);
  a.accBeta1.assign(saved[0]);
  a.accBeta2.assign(saved[1]);
  // setWeights made variables of the new tensors and dropped the old variables without freeing them.
  tf.dispose([...old.first, ...old.second, ...saved, iterations, ...first, ...second]);
}
