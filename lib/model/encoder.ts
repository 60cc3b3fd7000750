/**
 * EncoderCNN: image → one embedding vector, the decoder's first input (Show and Tell, §3.1).
 *
 *   images [batch, size, size, 3] --backbone--> features [batch, featureDim]
 *                                  --linear---> --batch norm--> embedding [batch, embedSize]
 *
 * With a frozen pretrained backbone only the linear layer learns, and the features can be
 * computed once and read from a feature cache (lib/features/feature-cache.ts): then training calls
 * `embed(features)` directly and never runs the CNN. With the small from-scratch CNN the
 * backbone's variables train too.
 */
import * as tf from "@tensorflow/tfjs";
import { Backbone } from "./backbone";
import { BatchNorm } from "./batch-norm";

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
  private readonly norm: BatchNorm; // over [batch, embedSize]; its beta is the layer's bias

  constructor(
    readonly backbone: Backbone,
    { embedSize, seed = 2, name = "encoder" }: EncoderConfig,
  ) {
    this.embedSize = embedSize;
    // Glorot uniform, U(±√(6 / (fan_in + fan_out))), Keras's default for Dense. PyTorch's nn.Linear
    // starts otherwise: kaiming_uniform_ with a = √5, i.e. U(±1/√fan_in), and its bias from the same
    // range. The choice matters little here: in training, the batch norm right after standardises
    // each output over the batch, so the kernel's scale does not reach the embedding; and the layer
    // has no bias of its own (batch norm's beta, starting at 0, is its bias).
    const limit = Math.sqrt(6 / (backbone.featureDim + embedSize));
    this.kernel = tf.tidy(() =>
      tf.variable(tf.randomUniform([backbone.featureDim, embedSize], -limit, limit, "float32", seed), true, `${name}/embed/kernel`),
    );
    this.norm = new BatchNorm(embedSize, `${name}/embed/norm`);
  }

  get featureDim(): number {
    return this.backbone.featureDim;
  }

  /**
   * Everything training updates: the linear layer, plus the backbone's variables when it is not
   * frozen. Each has a stable name (`encoder/embed/kernel`, ...) for checkpoints.
   */
  get trainableVariables(): tf.Variable[] {
    return [...this.backbone.trainableVariables, this.kernel, ...this.norm.trainableVariables];
  }

  /** State that is saved with the weights but not trained: batch norm's running statistics. */
  get stateVariables(): tf.Variable[] {
    return [...(this.backbone.stateVariables ?? []), ...this.norm.statistics];
  }

  /** Normalised images [batch, size, size, 3] → embeddings [batch, embedSize]. `training` as in `embed`. */
  apply(images: tf.Tensor4D, training = false): tf.Tensor2D {
    return tf.tidy(() => this.embed(this.backbone.features(images, training), training));
  }

  /**
   * Precomputed backbone features [batch, featureDim] → embeddings [batch, embedSize].
   *
   * The linear layer is followed by batch normalisation, as in the PyTorch tutorial's encoder.
   * It matters more than it looks: early in training the image is noise to the decoder, and the
   * quickest way to lower the loss is to make the embedding the same for every image (ReLU
   * features share a large common part). The decoder then learns to ignore the image and never
   * recovers. Batch norm removes what all images of a batch share and keeps each feature's spread
   * across images at unit scale, so the image's own content always reaches the decoder.
   */
  embed(features: tf.Tensor2D, training = false): tf.Tensor2D {
    if (features.shape[1] !== this.featureDim) {
      throw new Error(`EncoderCNN: features have ${features.shape[1]} values per image, backbone ${this.backbone.name} gives ${this.featureDim}`);
    }
    return tf.tidy(() => this.norm.apply(tf.matMul(features, this.kernel), training));
  }

  /** Frees the linear layer and the backbone. */
  dispose(): void {
    this.kernel.dispose();
    this.norm.dispose();
    this.backbone.dispose();
  }
}
