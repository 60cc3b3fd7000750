/**
 * A frozen Keras CNN run as a chain of fused convolutions, with batch norm folded into them.
 *
 * In inference, batch norm is a fixed affine map per channel, y = γ (x − μ) / √(σ² + ε) + β,
 * applied right after a convolution. Both are linear, so the pair is one convolution with
 * scaled weights and a bias:
 *
 *     W' = W · s,   b' = (b − μ) · s + β,   s = γ / √(σ² + ε)   (s per output channel)
 *
 * and the ReLU after it runs inside the same kernel (tf.fused.conv2d's `activation`). A MobileNet
 * layer then costs one pass over its activations instead of three, which is what makes feature
 * extraction fast on wasm (docs/performance.md#batch-norm-folded-into-the-cnn). The numbers agree
 * with the layers model to float32 rounding (test/backbone.test.ts).
 *
 * Only plain chains are folded: Conv2D, DepthwiseConv2D, BatchNormalization, ReLU / Activation
 * and ZeroPadding2D up to the feature layer, which may be a GlobalAveragePooling2D. A model with
 * anything else on the way (ResNet's additions, say) gets `null`, and runs as the layers model.
 */
import * as tf from "@tensorflow/tfjs";

type Activation = "linear" | "relu" | "relu6";

/** One fused convolution: conv (or depthwise conv) + bias + activation. */
interface FusedConv {
  depthwise: boolean;
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
  strides: number;
  /** "same" / "valid", or explicit padding taken over from a ZeroPadding2D before it. */
  pad: "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]];
  activation: Activation;
}

export interface FoldedCNN {
  /** [batch, S, S, 3] → [batch, features] (pooled) or the feature layer's own shape. */
  run(images: tf.Tensor4D): tf.Tensor;
  /** [batch, S, S, 3] → the last convolution's output [batch, rows, cols, channels] (Grad-CAM's map). */
  map(images: tf.Tensor4D): tf.Tensor4D;
  /** Whether `run` averages `map` over its rows and columns (the feature layer is a global pool). */
  pooled: boolean;
  dispose(): void;
}

/** Folds `model` up to and including `featureLayer`; null when a layer on the way cannot be folded. */
export function foldLayersModel(model: tf.LayersModel, featureLayer: string): FoldedCNN | null {
  const convs: FusedConv[] = [];
  let pendingPad: [[number, number], [number, number]] | null = null;
  let pool = false;
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    const config = layer.getConfig() as Record<string, unknown>;
    if (kind === "InputLayer") continue;
    else if (kind === "ZeroPadding2D") pendingPad = config.padding as [[number, number], [number, number]];
    else if (kind === "Conv2D" || kind === "DepthwiseConv2D") {
      // Explicit padding replaces "valid"; a zero pad before a "same" conv would pad twice.
      if (!isFoldableConv(config) || (pendingPad && config.padding !== "valid")) return null;
      convs.push(convOf(layer, kind === "DepthwiseConv2D", config, pendingPad));
      pendingPad = null;
    } else if (kind === "BatchNormalization") {
      const last = convs[convs.length - 1];
      if (!last || last.activation !== "linear") return null;
      foldBatchNorm(last, layer, config.epsilon as number);
    } else if (kind === "ReLU" || kind === "Activation") {
      const last = convs[convs.length - 1];
      const activation = activationOf(kind, config);
      if (!last || last.activation !== "linear" || !activation) return null;
      last.activation = activation;
    } else if (kind === "GlobalAveragePooling2D" && layer.name === featureLayer) pool = true;
    else return null;
    if (layer.name === featureLayer) return chain(convs, pool);
  }
  return null;
}

function isFoldableConv(config: Record<string, unknown>): boolean {
  const strides = config.strides as number[];
  const dilation = (config.dilation_rate as number[] | number | undefined) ?? 1;
  const noDilation = Array.isArray(dilation) ? dilation.every((d) => d === 1) : dilation === 1;
  return strides[0] === strides[1] && noDilation && (config.activation ?? "linear") === "linear" && config.data_format !== "channels_first";
}

function convOf(layer: tf.layers.Layer, depthwise: boolean, config: Record<string, unknown>, pad: [[number, number], [number, number]] | null): FusedConv {
  const [kernel, bias] = layer.getWeights();
  const outChannels = depthwise ? kernel.shape[2]! : kernel.shape[3]!;
  return {
    depthwise,
    filter: kernel.clone() as tf.Tensor4D,
    bias: (bias ? bias.clone() : tf.zeros([outChannels])) as tf.Tensor1D,
    strides: (config.strides as number[])[0],
    pad: pad ? [[0, 0], pad[0], pad[1], [0, 0]] : (config.padding as "same" | "valid"),
    activation: "linear",
  };
}

/** W' = W · s, b' = (b − μ) · s + β with s = γ / √(σ² + ε) (see the file comment). */
function foldBatchNorm(conv: FusedConv, layer: tf.layers.Layer, epsilon: number): void {
  const config = layer.getConfig() as { center?: boolean; scale?: boolean };
  const weights = layer.getWeights();
  const channels = conv.bias.shape[0];
  const gamma = config.scale === false ? tf.ones([channels]) : weights.shift()!;
  const beta = config.center === false ? tf.zeros([channels]) : weights.shift()!;
  const [mean, variance] = weights;
  const [filter, bias] = tf.tidy(() => {
    const s = gamma.div(variance.add(epsilon).sqrt()); // [out]
    // A depthwise filter is [kh, kw, in, 1]: its output channels run along axis 2.
    const scaled = conv.depthwise ? conv.filter.mul(s.reshape([1, 1, -1, 1])) : conv.filter.mul(s);
    return [scaled as tf.Tensor4D, conv.bias.sub(mean).mul(s).add(beta) as tf.Tensor1D];
  });
  tf.dispose([conv.filter, conv.bias]);
  conv.filter = filter;
  conv.bias = bias;
}

function activationOf(kind: string, config: Record<string, unknown>): Activation | null {
  if (kind === "ReLU") {
    const max = config.max_value as number | null | undefined;
    const plain = !config.negative_slope && !config.threshold;
    return plain && max == null ? "relu" : plain && max === 6 ? "relu6" : null;
  }
  const name = config.activation as string;
  return name === "relu" || name === "relu6" || name === "linear" ? name : null;
}

function chain(convs: FusedConv[], pool: boolean): FoldedCNN {
  const map = (images: tf.Tensor4D): tf.Tensor4D =>
    tf.tidy(() => {
      let x: tf.Tensor4D = images;
      for (const c of convs) {
        const args = { x, filter: c.filter, strides: c.strides, pad: c.pad, bias: c.bias, activation: c.activation };
        // depthwiseConv2d takes explicit padding like conv2d does, though its type does not say so.
        x = (c.depthwise ? tf.fused.depthwiseConv2d(args as Parameters<typeof tf.fused.depthwiseConv2d>[0]) : tf.fused.conv2d(args as Parameters<typeof tf.fused.conv2d>[0])) as tf.Tensor4D;
      }
      return x;
    });
  return {
    run: (images) => tf.tidy(() => (pool ? map(images).mean([1, 2]) : map(images))),
    map,
    pooled: pool,
    dispose: () => tf.dispose(convs.flatMap((c) => [c.filter, c.bias])),
  };
}
