/**
 * Batch normalisation (Ioffe & Szegedy 2015) of the last axis, as PyTorch's BatchNorm1d on
 * [batch, features] and BatchNorm2d on [batch, height, width, channels]: in training each
 * feature (channel) is standardised with the mean and variance over the batch (and the image's
 * positions), and running averages of those are kept for inference, where they replace them.
 *
 *   y = gamma ⊙ (x − mean) / sqrt(variance + eps) + beta
 */
import * as tf from "@tensorflow/tfjs";

export class BatchNorm {
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

  dispose(): void {
    tf.dispose([...this.trainableVariables, ...this.statistics]);
  }

  /** x: [batch, ..., features]. `training` uses (and records) the batch's statistics. */
  apply<T extends tf.Tensor>(x: T, training: boolean): T {
    return tf.tidy(() => {
      const { mean, variance } = training ? this.batchStatistics(x) : { mean: this.runningMean, variance: this.runningVariance };
      const normalised = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.epsilon)));
      return tf.add(tf.mul(normalised, this.gamma), this.beta) as T;
    });
  }

  private batchStatistics(x: tf.Tensor): { mean: tf.Tensor; variance: tf.Tensor } {
    const axes = x.shape.slice(0, -1).map((_, i) => i); // all but the last
    const count = x.size / x.shape[x.rank - 1];
    const { mean, variance } = tf.moments(x, axes);
    const m = this.momentum;
    // The running averages are plain state: assign() is not an op, so no gradient flows through them.
    tf.tidy(() => {
      const unbiased = tf.mul(variance, count / Math.max(1, count - 1));
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVariance.assign(tf.add(tf.mul(this.runningVariance, 1 - m), tf.mul(unbiased, m)));
    });
    return { mean, variance };
  }
}
