/**
 * EncoderCNN: image → one embedding vector, the decoder's first input (Show and Tell, §3.1).
 *
 *   images [batch, size, size, 3] --backbone--> features [batch, featureDim]
 *                                  --linear---> embedding [batch, embedSize]
 *
 * With a frozen pretrained backbone only the linear layer learns, and the features can be
 * computed once and read from a feature cache (lib/features.ts): then training calls
 * `embed(features)` directly and never runs the CNN. With the small from-scratch CNN the
 * backbone's variables train too.
 */
import * as tf from "@tensorflow/tfjs";
import { Backbone } from "./backbone";

export interface EncoderConfig {
  embedSize: number;
  /** Seed for the initial weights of the linear layer. */
  seed?: number;
  /** Prefix of the variable names (names must be unique among live variables). */
  name?: string;
}

export class EncoderCNN {
  readonly embedSize: number;
  private readonly kernel: tf.Variable; // [featureDim, embedSize]
  private readonly bias: tf.Variable; // [embedSize]

  constructor(
    readonly backbone: Backbone,
    { embedSize, seed = 2, name = "encoder" }: EncoderConfig,
  ) {
    this.embedSize = embedSize;
    // Glorot uniform, as Keras and PyTorch's nn.Linear-like layers start.
    const limit = Math.sqrt(6 / (backbone.featureDim + embedSize));
    [this.kernel, this.bias] = tf.tidy(() => [
      tf.variable(tf.randomUniform([backbone.featureDim, embedSize], -limit, limit, "float32", seed), true, `${name}/embed/kernel`),
      tf.variable(tf.zeros([embedSize]), true, `${name}/embed/bias`),
    ]);
  }

  get featureDim(): number {
    return this.backbone.featureDim;
  }

  /**
   * Everything training updates: the linear layer, plus the backbone's variables when it is not
   * frozen. Each has a stable name (`encoder/embed/kernel`, ...) for checkpoints.
   */
  get trainableVariables(): tf.Variable[] {
    return [...this.backbone.trainableVariables, this.kernel, this.bias];
  }

  /** Normalised images [batch, size, size, 3] → embeddings [batch, embedSize]. */
  apply(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.embed(this.backbone.features(images)));
  }

  /** Precomputed backbone features [batch, featureDim] → embeddings [batch, embedSize]. */
  embed(features: tf.Tensor2D): tf.Tensor2D {
    if (features.shape[1] !== this.featureDim) {
      throw new Error(`EncoderCNN: features have ${features.shape[1]} values per image, backbone ${this.backbone.name} gives ${this.featureDim}`);
    }
    return tf.tidy(() => tf.add(tf.matMul(features, this.kernel), this.bias));
  }

  /** Frees the linear layer and the backbone. */
  dispose(): void {
    tf.dispose([this.kernel, this.bias]);
    this.backbone.dispose();
  }
}
