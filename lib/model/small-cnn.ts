/**
 * A small CNN trained from scratch: the backbone for the embedded synthetic scenes, which
 * need no ImageNet knowledge (flat shapes on flat backgrounds) and must train offline in minutes.
 *
 *   [batch, 64, 64, 3]
 *   conv 3x3 stride 2, 16 filters, batch norm, relu   → [batch, 32, 32, 16]
 *   conv 3x3 stride 2, 32 filters, batch norm, relu   → [batch, 16, 16, 32]
 *   conv 3x3 stride 2, 64 filters, batch norm, relu   → [batch,  8,  8, 64]
 *   conv 3x3 stride 2, 64 filters, batch norm, relu   → [batch,  4,  4, 64]
 *   flatten ⊕ global max pool             → [batch, 1024 + 64]
 *
 * Why flatten and not only global pooling (as ResNet does)? Pooling over the map throws
 * away *where* things are, and the captions say "to the left of" and "above": a red circle
 * left of a blue square and one right of it would pool to the same vector. Flattening a
 * small 4x4 map keeps a coarse position grid (each cell sees ~1/4 of the image in each
 * direction). Why add the max pool, then? It says *what* is in the picture wherever it is
 * ("some red circle"), which the flattened map spreads over 16 positions, each to be learned
 * separately: with it, colours and shapes are learned several times faster.
 *
 * Why stride-2 convolutions and not max pooling? They downsample and learn in one step; their
 * gradients, a transposed conv (Conv2DBackpropInput) and a filter gradient, have fast
 * versions on wasm (one matrix product, lib/runtime/wasm-replaced-kernels.ts; one forward conv,
 * lib/runtime/wasm-added-kernels.ts).
 *
 * Why batch norm? Trained from scratch through an LSTM, the CNN gets a weak, noisy signal at
 * first; without normalisation its activations drift in scale, many relus die, and it took
 * several times more epochs to tell colours and shapes apart. The price is a train/inference
 * switch (`training`) and running statistics saved with the weights.
 */
import * as tf from "@tensorflow/tfjs";
import { IMAGENET_NORMALIZATION, type MapBackbone } from "./backbone";
import { BatchNorm } from "./batch-norm";
import { geometryOf, samePadBefore, type MapGeometry } from "./map-geometry";

export interface SmallCnnConfig {
  /** Side of the square input, in pixels; must be divisible by 2^(number of layers). */
  inputSize: number;
  /** Filters per conv layer; each layer halves the map. */
  filters: number[];
  /** Seed for the initial weights. */
  seed: number;
  /** Prefix of the variable names (names must be unique among live variables). */
  name: string;
}

export const SMALL_CNN_DEFAULTS: SmallCnnConfig = { inputSize: 64, filters: [16, 32, 64, 64], seed: 1, name: "encoder/cnn" };

interface ConvLayer {
  filter: tf.Variable; // [3, 3, inChannels, outChannels]
  norm: BatchNorm; // over outChannels; its beta is the layer's bias
}

/** The small from-scratch CNN. All its variables are trainable. */
export class SmallCNN implements MapBackbone {
  readonly frozen = false;
  readonly inputSize: number;
  /**
   * The whole image, resized to the input size: no centre crop. The synthetic scenes fill the
   * frame, objects sit against the borders and the captions name every one of them; the ImageNet
   * convention (resize to 256/224 of the input, crop the centre) cut off up to a fifth of the
   * objects in the eight outer cells.
   */
  readonly resize: number;
  readonly featureDim: number;
  readonly name: string;
  /** The layer whose output `featureMap` is: the last conv layer's relu. */
  readonly mapLayer: string;
  /** Where its cells are centred: 15.5 + 16j of 64 pixels with four layers (map-geometry.ts). */
  readonly mapGeometry: MapGeometry;
  /** Same statistics as the default image transform, so images need no special treatment. */
  readonly normalization = IMAGENET_NORMALIZATION;
  private readonly layers: ConvLayer[];

  constructor(config: Partial<SmallCnnConfig> = {}) {
    const { inputSize, filters, seed, name } = { ...SMALL_CNN_DEFAULTS, ...config };
    const finalSize = inputSize / 2 ** filters.length;
    if (!Number.isInteger(finalSize)) {
      throw new Error(`SmallCNN: inputSize ${inputSize} is not divisible by 2^${filters.length} (one halving per layer)`);
    }
    this.name = name;
    this.mapLayer = `${name}/conv${filters.length}/relu`;
    // Each layer: 3x3, stride 2, "same" padding, on a side halved by the layers before.
    this.mapGeometry = geometryOf(filters.map((_, i) => ({ kernel: 3, stride: 2, padBefore: samePadBefore(inputSize / 2 ** i, 3, 2) })));
    this.inputSize = inputSize;
    this.resize = inputSize;
    const channels = filters[filters.length - 1];
    this.featureDim = finalSize * finalSize * channels + channels;
    let inChannels = 3;
    this.layers = filters.map((outChannels, i) => {
      const layer = convLayer(`${name}/conv${i + 1}`, inChannels, outChannels, seed + i);
      inChannels = outChannels;
      return layer;
    });
  }

  get trainableVariables(): tf.Variable[] {
    return this.layers.flatMap((l) => [l.filter, ...l.norm.trainableVariables]);
  }

  get stateVariables(): tf.Variable[] {
    return this.layers.flatMap((l) => l.norm.statistics);
  }

  /** [batch, inputSize, inputSize, 3] → [batch, featureDim]. `training` normalises with the batch's statistics. */
  features(images: tf.Tensor4D, training = false): tf.Tensor2D {
    return tf.tidy(() => this.featuresOfMap(this.convolutions(images, training)));
  }

  /** The last conv layer's relu output, [batch, inputSize/16, inputSize/16, channels] with 4 layers: Grad-CAM's map. */
  featureMap(images: tf.Tensor4D): tf.Tensor4D {
    return this.convolutions(images, false);
  }

  /** Feature map [batch, h, w, c] → [batch, h*w*c + c]: the flattened map, then its max over positions. */
  featuresOfMap(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const where = x.reshape([x.shape[0], -1]); // [batch, h*w*c]: keeps where things are (see above)
      // [batch, c]: what is there, wherever it is. A max pool over the whole map rather than
      // tf.max: the same values, but its gradient (MaxPoolGrad) is a fast loop on wasm, where
      // tf.max's gradient compares against a broadcast max (a slow Equal)
      // (docs/performance.md#the-wasm-kernels).
      const [, h, w] = x.shape;
      const what = tf.maxPool(x, [h, w], [h, w], "valid").reshape([x.shape[0], -1]);
      return tf.concat([where, what], 1) as tf.Tensor2D;
    });
  }

  /** The conv layers: [batch, S, S, 3] → [batch, S/2^layers, S/2^layers, channels]. */
  private convolutions(images: tf.Tensor4D, training: boolean): tf.Tensor4D {
    return tf.tidy(() => {
      let x: tf.Tensor4D = images;
      for (const { filter, norm } of this.layers) {
        x = tf.relu(norm.apply(tf.conv2d(x, filter as tf.Tensor4D, 2, "same"), training));
      }
      return x;
    });
  }

  dispose(): void {
    tf.dispose([...this.trainableVariables, ...this.stateVariables]);
  }
}

/** He initialisation (std sqrt(2 / fan-in)), the usual choice in front of a relu; batch norm after. */
function convLayer(name: string, inChannels: number, outChannels: number, seed: number): ConvLayer {
  const fanIn = 3 * 3 * inChannels;
  // tidy frees the initial tensors; the variables it returns are kept.
  const filter = tf.tidy(() =>
    tf.variable(tf.randomNormal([3, 3, inChannels, outChannels], 0, Math.sqrt(2 / fanIn), "float32", seed), true, `${name}/filter`),
  );
  return { filter, norm: new BatchNorm(outChannels, `${name}/norm`) };
}
