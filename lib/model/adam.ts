/**
 * One Adam update of a block of weights, written out as `tf.train.adam` computes it
 * (AdamOptimizer.applyGradients, TensorFlow.js 4.22): the same element-wise operations in the same
 * order, with the same float32 constants, so it gives the same bits (test/adam.test.ts). At update
 * k, from m₀ = v₀ = 0, element by element:
 *
 *   m_k = β₁ m_{k−1} + (1 − β₁) g_k        v_k = β₂ v_{k−1} + (1 − β₂) g_k²
 *   θ_k = θ_{k−1} − lr · (m_k / (1 − β₁ᵏ)) / (√(v_k / (1 − β₂ᵏ)) + ε)
 *
 * tfjs applies it per variable; the data-parallel step (lib/train/sharded-adam.ts) applies it to
 * one contiguous part of all the weights on each thread. Being element by element, any split
 * gives the same numbers.
 */
import * as tf from "@tensorflow/tfjs";

/** What an update needs besides the tensors: the optimizer's settings and its place in time. */
export interface AdamConstants {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1 − β₁ᵏ and 1 − β₂ᵏ as float32 values: tfjs keeps βᵏ as running float32 products. */
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
}

export interface AdamBlock {
  weights: tf.Tensor;
  firstMoment: tf.Tensor;
  secondMoment: tf.Tensor;
}

/** The block after one update with `gradient` (new tensors; the caller disposes both blocks). */
export function adamUpdate(block: AdamBlock, gradient: tf.Tensor, c: AdamConstants): AdamBlock {
  return tf.tidy(() => {
    const firstMoment = tf.add(tf.mul(block.firstMoment, c.beta1), tf.mul(gradient, 1 - c.beta1));
    const secondMoment = tf.add(tf.mul(block.secondMoment, c.beta2), tf.mul(tf.square(gradient), 1 - c.beta2));
    const mHat = tf.div(firstMoment, c.oneMinusAccBeta1);
    const vHat = tf.div(secondMoment, c.oneMinusAccBeta2);
    const weights = tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), c.epsilon)), -c.learningRate), block.weights);
    return { weights, firstMoment, secondMoment };
  });
}
