/**
 * Where the cells of a CNN's feature map sit on its input image.
 *
 * It is tempting to spread a [rows, cols] map evenly over the image, cell j centred at
 * (j + 0.5)·S/cols. A stride-2 convolution with TensorFlow's padding is not centred that way:
 * "same" on an even input pads one pixel at the end and none at the start (Keras MobileNet pads
 * (0, 1) explicitly), so output j reads inputs 2j .. 2j+2, centred on 2j + 1.5 (pixel x spans
 * [x, x+1)), not 2j + 1. Each such layer shifts the grid further: after MobileNet's five, cell j
 * of the 7x7 map is centred at 31.5 + 32j of 224 pixels, half a cell right of and below the even
 * spread; the small CNN's 4x4 map, at 15.5 + 16j of 64. A map drawn evenly would point half a
 * cell off. Through a chain of layers, each of kernel k, stride s and padding p before, a centre
 * a + b·j becomes a + b·((k − 1)/2 − p) + (b·s)·j.
 */
import type * as tf from "@tensorflow/tfjs";

/** Cell j's centre lies `offset + stride·j` input pixels from the top (rows) or left (columns) edge. */
export interface MapGeometry {
  offset: number;
  stride: number;
}

/** A layer as it moves the grid: its kernel, stride and the padding before the first input. */
export interface GridLayer {
  kernel: number;
  stride: number;
  padBefore: number;
}

/** The geometry after `layers`, starting from the input's pixels (pixel x centred at x + 0.5). */
export function geometryOf(layers: GridLayer[]): MapGeometry {
  let offset = 0.5;
  let stride = 1;
  for (const { kernel, stride: s, padBefore } of layers) {
    offset += stride * ((kernel - 1) / 2 - padBefore);
    stride *= s;
  }
  return { offset, stride };
}

/** TensorFlow's "same" padding before the input: half the total, rounded down (the extra pixel goes at the end). */
export function samePadBefore(inputSize: number, kernel: number, stride: number): number {
  const out = Math.ceil(inputSize / stride);
  return Math.floor(Math.max((out - 1) * stride + kernel - inputSize, 0) / 2);
}

/** The even spread, for a model whose layers are not read (a graph model): cell j at (j + 0.5)·S/cells. */
export function evenGeometry(inputSize: number, cells: number): MapGeometry {
  return { offset: inputSize / cells / 2, stride: inputSize / cells };
}

/**
 * The grid layers of a Keras model up to and including `untilLayer`, read from the layers'
 * configs (convolutions, depthwise and separable ones, poolings, zero padding); null when the
 * model is not a plain chain of such layers and ones that keep the grid (batch norm, activations).
 */
export function kerasGridLayers(model: tf.LayersModel, untilLayer: string, inputSize: number): GridLayer[] | null {
  const layers: GridLayer[] = [];
  let size = inputSize;
  let pendingPad = 0;
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    const config = layer.getConfig() as Record<string, unknown>;
    if (kind === "ZeroPadding2D") {
      const [[top, bottom]] = config.padding as [[number, number], [number, number]];
      pendingPad += top;
      size += top + bottom;
    } else if (/^(Conv2D|DepthwiseConv2D|SeparableConv2D|MaxPooling2D|AveragePooling2D)$/.test(kind)) {
      const kernel = ((config.kernelSize ?? config.poolSize) as number[])[0];
      const stride = ((config.strides as number[] | undefined) ?? [1])[0];
      const same = config.padding === "same";
      layers.push({ kernel, stride, padBefore: pendingPad + (same ? samePadBefore(size, kernel, stride) : 0) });
      size = same ? Math.ceil(size / stride) : Math.floor((size - kernel) / stride) + 1;
      pendingPad = 0;
    } else if (!/^(InputLayer|BatchNormalization|ReLU|Activation|Dropout|GlobalAveragePooling2D)$/.test(kind)) {
      return null;
    }
    if (layer.name === untilLayer) return layers;
  }
  return null;
}
