/**
 * The LSTM as the textbook writes it: one step of one layer is four gates and two state updates,
 * in plain tf ops, and training differentiates it with tfjs's autodiff. Read this one first.
 *
 *   z = x·W + h·U + b                        // [batch, 4*hidden]: the four gates' pre-activations
 *   i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)      (gate order i, f, g, o, as in PyTorch)
 *   c' = f ⊙ c + i ⊙ g                         // [batch, hidden]: forget some memory, write some
 *   h' = o ⊙ tanh(c')                          // [batch, hidden]: what the layer outputs
 *
 * A stack of layers feeds each layer's h' to the next layer as its x. The state starts at zero.
 *
 * The decoder runs lstm-fused.ts by default: the same weights and the same numbers, computed faster
 * (all steps' x·W in one product, backpropagation through time written out by hand).
 * `decoder.forward(..., { lstm: "textbook" })` runs `lstmRun` here instead, as the by-hand steps of
 * notebook 2 do. test/decoder.test.ts checks that outputs and gradients agree.
 *
 * This file also holds what both share: the weights' layout and their initialisation.
 */
import * as tf from "@tensorflow/tfjs";

export interface LSTMConfig {
  inputSize: number;
  hiddenSize: number;
  numLayers: number;
}

/** The recurrent state of every layer: `h[l]` and `c[l]` are [batch, hidden]. */
export type LSTMState = {
  h: tf.Tensor2D[];
  c: tf.Tensor2D[];
};

/** The weights of one layer, the four gates side by side (i, f, g, o) in the last axis. */
export interface LSTMLayerWeights {
  kernel: tf.Variable; // W: [in, 4*hidden]
  recurrentKernel: tf.Variable; // U: [hidden, 4*hidden]
  bias: tf.Variable; // b: [4*hidden]
}

/** One step of one layer: the four gate equations. x: [batch, in]; h, c: [batch, hidden]. */
export function lstmCell(x: tf.Tensor2D, h: tf.Tensor2D, c: tf.Tensor2D, w: LSTMLayerWeights): { h: tf.Tensor2D; c: tf.Tensor2D } {
  const z = tf.add(tf.add(tf.matMul(x, w.kernel), tf.matMul(h, w.recurrentKernel)), w.bias);
  const [zi, zf, zg, zo] = tf.split(z, 4, 1);
  const i = tf.sigmoid(zi); // input gate: how much of g to write
  const f = tf.sigmoid(zf); // forget gate: how much of c to keep
  const g = tf.tanh(zg); // the candidate to write
  const o = tf.sigmoid(zo); // output gate: how much of the memory to show
  const cNext = tf.add(tf.mul(f, c), tf.mul(i, g)) as tf.Tensor2D;
  const hNext = tf.mul(o, tf.tanh(cNext)) as tf.Tensor2D;
  return { h: hNext, c: cNext };
}

/**
 * A whole sequence from the zero state, through `lstmCell`: each layer runs over all the steps,
 * and its h's are the inputs of the layer above. `dropout` (a rate, 0 for none) applies to the
 * inputs of every layer after the first, as in FusedLSTM.run (`layerInputDropout`: the same masks
 * for the same `seed`).
 *
 *   inputs: [time, batch, in] → the top layer's h: [time, batch, hidden]
 */
export function lstmRun(layers: LSTMLayerWeights[], inputs: tf.Tensor3D, dropout = 0, seed?: number, rows?: BatchRows): tf.Tensor3D {
  let xs = inputs; // [time, batch, in], then [time, batch, hidden]
  layers.forEach((w, l) => {
    const zero = tf.zeros([inputs.shape[1], w.recurrentKernel.shape[0]]) as tf.Tensor2D; // [batch, hidden]
    let state = { h: zero, c: zero };
    const hs = tf.unstack(layerInputDropout(xs, l, dropout, seed, rows)).map((x) => {
      state = lstmCell(x as tf.Tensor2D, state.h, state.c, w);
      return state.h;
    });
    xs = tf.stack(hs) as tf.Tensor3D;
  });
  return xs;
}

/**
 * The dropout on the inputs of layer `l`: none on the first layer's (the decoder's inputs), `rate`
 * on the others', the mask drawn from `seed + l`. Both LSTMs call it, so that a seeded training
 * pass drops the same numbers in each.
 *
 *   x: [time, batch, in]
 */
export function layerInputDropout(x: tf.Tensor3D, l: number, rate: number, seed?: number, rows?: BatchRows): tf.Tensor3D {
  if (l === 0 || rate === 0) return x;
  return rowDropout(x, rate, seed === undefined ? undefined : seed + l, rows);
}

/**
 * Where a pass's batch sits in a larger one: rows `offset ..` of a batch of `total` rows. A
 * data-parallel training step (lib/train/data-parallel.ts) runs the decoder on shards of a batch;
 * given `rows`, dropout draws the mask of the WHOLE batch and applies this shard's rows of it, so
 * that every row is dropped exactly as in the unsharded step.
 */
export interface BatchRows {
  offset: number;
  total: number;
}

/**
 * tf.dropout on a time-major tensor [time, batch, features]. Without `rows` it is tf.dropout
 * itself; with `rows` the mask is tf.dropout's for [time, rows.total, features] (the same
 * arithmetic: floor(u + keep) / keep) and x is multiplied by its rows `offset .. offset + batch`.
 */
export function rowDropout(x: tf.Tensor3D, rate: number, seed?: number, rows?: BatchRows): tf.Tensor3D {
  if (!rows) return tf.dropout(x, rate, undefined, seed) as tf.Tensor3D;
  const [time, batch, features] = x.shape;
  if (rows.offset < 0 || rows.offset + batch > rows.total) {
    throw new Error(`lstm.ts: rows ${rows.offset}..${rows.offset + batch} lie outside a batch of ${rows.total}`);
  }
  return tf.tidy(() => {
    const keep = 1 - rate;
    const full = tf.div(tf.floor(tf.add(tf.randomUniform([time, rows.total, features], 0, 1, "float32", seed), keep)), keep);
    return tf.mul(x, tf.slice(full, [0, rows.offset, 0], [time, batch, features])) as tf.Tensor3D;
  });
}

/**
 * The weights of a stack of layers, as tf.Variables named `<name>/layer<l>/kernel`, ...: PyTorch's
 * LSTM initialisation, U(-1/√hidden, 1/√hidden), with the forget-gate bias set to 1.
 * `seed` makes it repeatable.
 */
export function initLSTMWeights(config: LSTMConfig, name: string, seed: number): LSTMLayerWeights[] {
  if (config.numLayers < 1) throw new Error(`lstm.ts: numLayers must be at least 1, got ${config.numLayers}`);
  return Array.from({ length: config.numLayers }, (_, l) =>
    initLayer(`${name}/layer${l}`, l === 0 ? config.inputSize : config.hiddenSize, config.hiddenSize, seed + 10 * l),
  );
}

function initLayer(name: string, inputSize: number, hidden: number, seed: number): LSTMLayerWeights {
  const k = 1 / Math.sqrt(hidden);
  return tf.tidy(() => {
    // A forget-gate bias of 1 keeps the cell state flowing early in training (Jozefowicz et al. 2015).
    const bias = tf.concat([tf.zeros([hidden]), tf.ones([hidden]), tf.zeros([2 * hidden])]);
    return {
      kernel: tf.variable(tf.randomUniform([inputSize, 4 * hidden], -k, k, "float32", seed), true, `${name}/kernel`),
      recurrentKernel: tf.variable(tf.randomUniform([hidden, 4 * hidden], -k, k, "float32", seed + 1), true, `${name}/recurrent_kernel`),
      bias: tf.variable(bias, true, `${name}/bias`),
    };
  });
}
