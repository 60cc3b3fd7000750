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
 * The decoder runs lstm-fused.ts instead: the same weights and the same numbers, computed faster
 * (all steps' x·W in one product, backpropagation through time written out by hand).
 * test/decoder.test.ts checks that its outputs and gradients equal those of the functions here.
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

/** The zero state of `layers` for a batch of `batch` rows. */
export function zeroState(layers: LSTMLayerWeights[], batch: number): LSTMState {
  const hidden = layers[0].recurrentKernel.shape[0];
  return { h: layers.map(() => tf.zeros([batch, hidden])), c: layers.map(() => tf.zeros([batch, hidden])) };
}

/** One step of every layer, bottom to top. input: [batch, in] → the top layer's h and the new state. */
export function lstmStep(layers: LSTMLayerWeights[], input: tf.Tensor2D, state: LSTMState): { output: tf.Tensor2D; state: LSTMState } {
  const next: LSTMState = { h: [], c: [] };
  let x = input;
  layers.forEach((w, l) => {
    const { h, c } = lstmCell(x, state.h[l], state.c[l], w);
    next.h.push(h);
    next.c.push(c);
    x = h;
  });
  return { output: x, state: next };
}

/** A whole sequence from the zero state, step by step. inputs: [time, batch, in] → the top layer's h: [time, batch, hidden]. */
export function lstmRun(layers: LSTMLayerWeights[], inputs: tf.Tensor3D): tf.Tensor3D {
  let state = zeroState(layers, inputs.shape[1]);
  const outputs: tf.Tensor2D[] = [];
  for (const x of tf.unstack(inputs) as tf.Tensor2D[]) {
    const out = lstmStep(layers, x, state);
    outputs.push(out.output);
    state = out.state;
  }
  return tf.stack(outputs) as tf.Tensor3D;
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
