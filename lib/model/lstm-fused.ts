/**
 * The fast LSTM: the one the decoder runs. It computes what the textbook LSTM in lstm.ts computes
 * (same weights, same gate order i, f, g, o, zero initial state; test/decoder.test.ts checks that
 * outputs and gradients agree), rearranged for speed on the wasm and cpu backends. Read lstm.ts
 * first.
 *
 * One layer's step, with the four gates fused into one product:
 *
 *   z = x·W + h·U + b                        // [batch, 4*hidden]
 *   i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
 *   c' = f ⊙ c + i ⊙ g                         // [batch, hidden]
 *   h' = o ⊙ tanh(c')
 *
 * What makes it fast (what was measured: docs/performance.md#the-fused-lstm):
 * - x·W does not depend on the previous step, so `run` computes it for ALL time steps in one
 *   matrix product before the loop; the loop only does the [batch, hidden] x [hidden, 4*hidden]
 *   product and the gate nonlinearities.
 * - Backpropagation through time is written out (`recurrence` below) instead of left to autodiff,
 *   which would record ~15 small ops per step and, for every step, transpose U and add that
 *   step's share of dU into an accumulator. The hand-written backward transposes U once and
 *   gets dU from ONE product over all steps.
 * - The initial state is zero (as in Show and Tell), so step 0 skips the h·U product and f ⊙ c.
 *
 * Layers are run one after the other over the whole sequence, so every layer gets the
 * all-steps input projection. Sequences are time-major, [time, batch, features], because the
 * loop takes one [batch, features] slice per step.
 */
import * as tf from "@tensorflow/tfjs";
import { initLSTMWeights, layerInputDropout, type BatchRows, type LSTMConfig, type LSTMLayerWeights, type LSTMState } from "./lstm";

/** One step of one layer: the new state and the four activated gates (the backward pass needs them). */
interface CellOutput {
  h: tf.Tensor2D; // [batch, hidden]
  c: tf.Tensor2D; // [batch, hidden]
  gates: tf.Tensor[]; // 4 × [batch, hidden]: σ(z_i), σ(z_f), tanh(z_g), σ(z_o)
}

/**
 * The gate arithmetic of one step, given the pre-activations z = x·W + h·U + b.
 * `cPrev` is null for the zero initial state.
 */
function cell(z: tf.Tensor, cPrev: tf.Tensor | null): CellOutput {
  const [zi, zf, zg, zo] = tf.split(z, 4, 1); // each [batch, hidden]
  const i = tf.sigmoid(zi);
  const f = tf.sigmoid(zf);
  const g = tf.tanh(zg);
  const o = tf.sigmoid(zo);
  const ig = tf.mul(i, g);
  const c = cPrev ? tf.add(tf.mul(f, cPrev), ig) : ig;
  const h = tf.mul(o, tf.tanh(c));
  return { h: h as tf.Tensor2D, c: c as tf.Tensor2D, gates: [i, f, g, o] };
}

/**
 * The recurrence of one layer as a single differentiable op: from the input projections of all
 * steps to the hidden states of all steps, with backpropagation through time written out.
 *
 *   zx: [time, batch, 4*hidden]  (x·W + b for every step)
 *   u:  [hidden, 4*hidden]
 *   returns hs: [time, batch, hidden]
 *
 * The backward pass needs, per step, h, c and the four gates. They are saved as separate
 * [batch, hidden] tensors rather than stacked: taking a stacked tensor apart again costs a copy
 * per step (with tfjs's own wasm Unpack, a copy of the whole stack per step).
 */
const recurrence = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [zx, u, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.GradSaveFunc];
  const steps: CellOutput[] = [];
  for (const zxt of tf.unstack(zx)) {
    const prev = steps.at(-1);
    const z = prev ? tf.add(zxt, tf.matMul(prev.h, u)) : zxt; // [batch, 4*hidden]
    steps.push(cell(z, prev ? prev.c : null));
  }
  save([u, ...steps.flatMap((s) => [s.h, s.c, ...s.gates])]);
  return { value: tf.stack(steps.map((s) => s.h)), gradFunc: recurrenceGrad };
});

/** How many tensors `recurrence` saves per step: h, c, i, f, g, o. */
const SAVED_PER_STEP = 6;

/**
 * Backpropagation through time for `recurrence`. Walking back from the last step, with dh and dc
 * the gradients arriving at h_t and c_t:
 *
 *   do = dh ⊙ tanh(c_t)          dc += dh ⊙ o ⊙ (1 − tanh²(c_t))
 *   di = dc ⊙ g   df = dc ⊙ c_{t-1}   dg = dc ⊙ i      (dc passed back: dc ⊙ f)
 *   dz = [di ⊙ i(1−i), df ⊙ f(1−f), dg ⊙ (1−g²), do ⊙ o(1−o)]
 *   dh passed back: dz·Uᵀ
 *
 * and dU = Σ_t h_{t-1}ᵀ·dz_t, computed as one product over all steps at the end.
 */
function recurrenceGrad(dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] {
  const [u, ...perStep] = saved;
  const time = perStep.length / SAVED_PER_STEP;
  const at = (t: number) => {
    const [h, c, i, f, g, o] = perStep.slice(SAVED_PER_STEP * t, SAVED_PER_STEP * (t + 1));
    return { h, c, i, f, g, o };
  };
  const dhs = tf.unstack(dy); // time × [batch, hidden]: the gradient from the layers above
  // Transposed once, explicitly: wasm's matMul is a slow loop with a transpose flag (docs/performance.md#the-wasm-kernels).
  const uT = tf.transpose(u); // [4*hidden, hidden]
  const dzs: tf.Tensor[] = new Array(time);
  let dhNext: tf.Tensor | null = null;
  let dcNext: tf.Tensor | null = null;
  for (let t = time - 1; t >= 0; t--) {
    const { c, i, f, g, o } = at(t);
    const dh = dhNext ? tf.add(dhs[t], dhNext) : dhs[t];
    const tanhC = tf.tanh(c);
    const dcFromH = tf.mul(tf.mul(dh, o), tf.sub(1, tf.square(tanhC)));
    const dc: tf.Tensor = dcNext ? tf.add(dcNext, dcFromH) : dcFromH;
    const dzi = tf.mul(tf.mul(dc, g), tf.mul(i, tf.sub(1, i)));
    const dzg = tf.mul(tf.mul(dc, i), tf.sub(1, tf.square(g)));
    const dzo = tf.mul(tf.mul(dh, tanhC), tf.mul(o, tf.sub(1, o)));
    // At t = 0 the previous cell state is zero, so f had no effect: its gradient is zero.
    const dzf = t > 0 ? tf.mul(tf.mul(dc, at(t - 1).c), tf.mul(f, tf.sub(1, f))) : tf.zerosLike(f);
    dzs[t] = tf.concat([dzi, dzf, dzg, dzo], 1); // [batch, 4*hidden]
    if (t > 0) {
      dhNext = tf.matMul(dzs[t], uT); // [batch, hidden]
      dcNext = tf.mul(dc, f);
    }
  }
  const dzx = tf.reshape(tf.concat(dzs), [time, ...dzs[0].shape]); // [time, batch, 4*hidden]
  if (time === 1) return [dzx, tf.zerosLike(u)]; // one step from the zero state never touches U
  // dU = Σ_{t≥1} h_{t-1}ᵀ · dz_t, as one [hidden, (time-1)*batch] x [(time-1)*batch, 4*hidden] product.
  const hPrev = tf.concat(Array.from({ length: time - 1 }, (_, t) => at(t).h)); // [(time-1)*batch, hidden]
  const du = tf.matMul(tf.transpose(hPrev), tf.concat(dzs.slice(1))); // [hidden, 4*hidden]
  return [dzx, du];
}

/** A stack of LSTM layers with their weights as tf.Variables, run the fast way. */
export class FusedLSTM {
  readonly config: LSTMConfig;
  readonly layers: LSTMLayerWeights[];

  /** `name` prefixes the variable names (`<name>/layer0/kernel`, ...); `seed` makes the initialisation repeatable. */
  constructor(config: LSTMConfig, name: string, seed: number) {
    this.config = config;
    this.layers = initLSTMWeights(config, name, seed);
  }

  /** All weights, layer by layer. */
  get variables(): tf.Variable[] {
    return this.layers.flatMap((w) => [w.kernel, w.recurrentKernel, w.bias]);
  }

  /**
   * Runs the whole sequence from the zero state (differentiable; used for training).
   * `dropout` (a rate, 0 for none) is applied to the inputs of every layer after the first;
   * `seed` makes its masks repeatable; `rows` places a shard in its whole batch (lstm.ts, BatchRows).
   *
   *   inputs: [time, batch, in] → hidden states of the top layer: [time, batch, hidden]
   */
  run(inputs: tf.Tensor3D, dropout = 0, seed?: number, rows?: BatchRows): tf.Tensor3D {
    const [time, batch] = inputs.shape;
    const hidden = this.config.hiddenSize;
    let x = inputs; // [time, batch, in], then [time, batch, hidden]
    this.layers.forEach((w, l) => {
      x = layerInputDropout(x, l, dropout, seed, rows);
      // Input projections of all steps in one product: [time*batch, in] x [in, 4*hidden].
      const zx = tf.add(tf.matMul(tf.reshape(x, [time * batch, -1]), w.kernel), w.bias);
      x = recurrence(tf.reshape(zx, [time, batch, 4 * hidden]), w.recurrentKernel) as tf.Tensor3D;
    });
    return x;
  }

  /**
   * One step of every layer (no dropout: used for sampling). `state` null is the zero state.
   *
   *   input: [batch, in] → { output: top layer's h [batch, hidden], state }
   */
  step(input: tf.Tensor2D, state: LSTMState | null): { output: tf.Tensor2D; state: LSTMState } {
    const next: LSTMState = { h: [], c: [] };
    let x = input;
    this.layers.forEach((w, l) => {
      const zx = tf.add(tf.matMul(x, w.kernel), w.bias); // [batch, 4*hidden]
      const z = state ? tf.add(zx, tf.matMul(state.h[l], w.recurrentKernel)) : zx;
      const out = cell(z, state ? state.c[l] : null);
      next.h.push(out.h);
      next.c.push(out.c);
      x = out.h;
    });
    return { output: x, state: next };
  }
}
