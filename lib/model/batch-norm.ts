/**
 * Batch normalisation of a [batch, features] tensor (Ioffe & Szegedy 2015), as PyTorch's
 * BatchNorm1d: in training each feature is standardised with the batch's own mean and variance,
 * and running averages of those are kept for inference, where they replace the batch's.
 *
 *   y = gamma ⊙ (x − mean) / sqrt(variance + eps) + beta
 */
import * as tf from "@tensorflow/tfjs";

export class BatchNorm1d {
  readonly gamma: tf.Variable; // [features], trainable
  readonly beta: tf.Variable; // [features], trainable
  readonly runningMean: tf.Variable; // [features], updated by training, not by gradients
  readonly runningVariance: tf.Variable; // [features]

  constructor(
    features: number,
    name: string,
    private readonly momentum = 0.1,
    private readonly epsilon = 1e-5,
  ) {
    [this.gamma, this.beta, this.runningMean, this.runningVariance] = tf.tidy(() => [
      tf.variable(tf.ones([features]), true, `${name}/gamma`),
      tf.variable(tf.zeros([features]), true, `${name}/beta`),
      tf.variable(tf.zeros([features]), false, `${name}/running_mean`),
      tf.variable(tf.ones([features]), false, `${name}/running_variance`),
    ]);
  }

  get trainableVariables(): tf.Variable[] {
    return [this.gamma, this.beta];
  }

  /** The running statistics: saved in checkpoints with the weights, never trained. */
  get statistics(): tf.Variable[] {
    return [this.runningMean, this.runningVariance];
  }

  /** x: [batch, features]. `training` uses (and records) the batch's statistics. */
  apply(x: tf.Tensor2D, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      const { mean, variance } = training ? this.batchStatistics(x) : { mean: this.runningMean, variance: this.runningVariance };
      const normalised = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.epsilon)));
      return tf.add(tf.mul(normalised, this.gamma), this.beta) as tf.Tensor2D;
    });
  }

  private batchStatistics(x: tf.Tensor2D): { mean: tf.Tensor; variance: tf.Tensor } {
    const { mean, variance } = tf.moments(x, 0);
    const m = this.momentum;
    // The running averages are plain state: assign() is not an op, so no gradient flows through them.
    tf.tidy(() => {
      const unbiased = tf.mul(variance, x.shape[0] / Math.max(1, x.shape[0] - 1));
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVariance.assign(tf.add(tf.mul(this.runningVariance, 1 - m), tf.mul(unbiased, m)));
    });
    return { mean, variance };
  }
}
