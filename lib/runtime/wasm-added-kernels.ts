/**
 * The kernels that training this model needs and tfjs-backend-wasm 4.22 lacks: without them
 * tf.grads throws on wasm (found by running it over the model's ops).
 *
 * - UnsortedSegmentSum: the gradient of tf.gather, i.e. of the word embedding.
 * - Conv2DBackpropFilter: the filter gradient of every conv2d.
 * - DepthwiseConv2dNativeBackpropFilter / ...BackpropInput: depthwise convolutions
 *   (MobileNet fine-tuning), as forward depthwise convolutions.
 *
 * The convolution gradients are built from forward convolutions, which wasm runs fast through
 * XNNPACK (docs/performance.md#the-wasm-kernels).
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { dispose, reshape, run, type WasmKernelArgs, type WasmKernelFunc } from "./wasm-kernel-calls";

const FILE = "lib/runtime/wasm-added-kernels.ts";

function assertFloat32(kernel: string, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) {
    if (info.dtype !== "float32") throw new Error(`${FILE}: ${kernel} supports float32 only, got ${info.dtype}`);
  }
}

// ---------------------------------------------------------------------------------------
// UnsortedSegmentSum: out[segmentIds[i], ...] += x[i, ...]

/**
 * Scatter-add of the rows of x into numSegments rows, O(N*D). Ids outside
 * [0, numSegments) are dropped, as on the cpu backend.
 */
function unsortedSegmentSum({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const numSegments = attrs.numSegments as number;
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new Error(`${FILE}: UnsortedSegmentSum of ${x.dtype} is not supported`);
  }
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const rowSize = tf.util.sizeFromShape(rowShape);
  const numRows = tf.util.sizeFromShape(segmentIds.shape);
  // Allocate first: makeOutput may grow the wasm heap, which detaches older heap views.
  const out = backend.makeOutput([numSegments, ...rowShape], x.dtype);
  const outVals = backend.typedArrayFromHeap(out); // [numSegments, rowSize]
  const xVals = backend.typedArrayFromHeap(x); // [numRows, rowSize]
  const ids = backend.typedArrayFromHeap(segmentIds); // [numRows]
  outVals.fill(0); // the heap is not zeroed
  for (let row = 0; row < numRows; row++) {
    const segment = ids[row];
    if (segment < 0 || segment >= numSegments) continue;
    const from = row * rowSize;
    const to = segment * rowSize;
    for (let k = 0; k < rowSize; k++) outVals[to + k] += xVals[from + k];
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Conv2DBackpropFilter as one forward convolution

/**
 * dW[a, b, c, o] = sum over n, i, j of xPad[n, i*s + a, j*s + b, c] * dy[n, i, j, o].
 *
 * Read the input channel c as a batch item, the batch n as an input channel, and dy as a
 * filter of size [outH, outW] dilated by the stride s: that is a forward convolution
 * conv2d(x^T [inC, H, W, batch], dy^T [outH, outW, batch, outC], dilation = s), which wasm
 * runs through XNNPACK. Its output, [inC, >= fh, >= fw, outC], is cropped to the filter
 * size (padding can leave extra rows/columns that no output position used) and transposed
 * back to [fh, fw, inC, outC].
 */
function conv2DBackpropFilter({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo {
  const { x, dy } = inputs; // x: [batch, H, W, inC], dy: [batch, outH, outW, outC]
  assertFloat32("Conv2DBackpropFilter", x, dy);
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (attrs.dataFormat != null && attrs.dataFormat !== "NHWC") {
    throw new Error(`${FILE}: Conv2DBackpropFilter supports NHWC only, got ${attrs.dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "same" | "valid" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
  );
  const { top, bottom, left, right } = info.padInfo;
  const xT = run("Transpose", backend, { x }, { perm: [3, 1, 2, 0] }); // [inC, H, W, batch]
  const dyT = run("Transpose", backend, { x: dy }, { perm: [1, 2, 0, 3] }); // [outH, outW, batch, outC]
  const grad = run(
    "Conv2D",
    backend,
    { x: xT, filter: dyT },
    {
      strides: [1, 1],
      pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
      dataFormat: "NHWC",
      dilations: [info.strideHeight, info.strideWidth],
    },
  ); // [inC, >= fh, >= fw, outC]
  const [fh, fw, inC, outC] = filterShape;
  const cropped = run("Slice", backend, { x: grad }, { begin: [0, 0, 0, 0], size: [inC, fh, fw, outC] });
  const dw = run("Transpose", backend, { x: cropped }, { perm: [1, 2, 0, 3] }); // [fh, fw, inC, outC]
  dispose(backend, xT, dyT, grad, cropped);
  return dw;
}

// ---------------------------------------------------------------------------------------
// Depthwise convolution gradients, as forward depthwise convolutions

/** Geometry of a depthwise convolution, from a kernel's attributes (dilations of 1 only). */
function depthwiseInfo(inShape: number[], filterShape: number[], attrs: tf.NamedAttrMap, kernel: string): tf.backend_util.Conv2DInfo {
  const dilations = (attrs.dilations ?? 1) as number | number[];
  if ((Array.isArray(dilations) ? dilations : [dilations]).some((d) => d !== 1)) {
    throw new Error(`${FILE}: ${kernel} supports dilations of 1 only`);
  }
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "same" | "valid" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    true,
  );
}


/**
 * dW[a, b, c, m] = sum over n, i, j of xPad[n, i*s + a, j*s + b, c] * dy[n, i, j, c*M + m].
 *
 * The trick of Conv2DBackpropFilter, with the batch folded into the channels: x^T
 * [1, H, W, batch*C] convolved depthwise with dy^T [outH, outW, batch*C, M] (dilation = s)
 * gives [1, >= fh, >= fw, batch*C*M]; crop it and sum over the batch.
 */
function depthwiseBackpropFilter({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo {
  const { x, dy } = inputs; // x: [batch, H, W, C], dy: [batch, outH, outW, C*M]
  assertFloat32("DepthwiseConv2dNativeBackpropFilter", x, dy);
  const filterShape = attrs.filterShape as number[]; // [fh, fw, C, M]
  const info = depthwiseInfo(x.shape, filterShape, attrs, "DepthwiseConv2dNativeBackpropFilter");
  const [fh, fw, channels, multiplier] = filterShape;
  const { batchSize, inHeight, inWidth, outHeight, outWidth } = info;
  const { top, bottom, left, right } = info.padInfo;
  const xT = run("Transpose", backend, { x }, { perm: [1, 2, 0, 3] }); // [H, W, batch, C]
  const dyT = run("Transpose", backend, { x: dy }, { perm: [1, 2, 0, 3] }); // [outH, outW, batch, C*M]
  const xFolded = reshape(backend, xT, [1, inHeight, inWidth, batchSize * channels]);
  const dyFolded = reshape(backend, dyT, [outHeight, outWidth, batchSize * channels, multiplier]);
  const grad = run(
    "DepthwiseConv2dNative",
    backend,
    { x: xFolded, filter: dyFolded },
    { strides: [1, 1], pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dilations: [info.strideHeight, info.strideWidth] },
  ); // [1, >= fh, >= fw, batch*C*M]
  const cropped = run("Slice", backend, { x: grad }, { begin: [0, 0, 0, 0], size: [1, fh, fw, batchSize * channels * multiplier] });
  const perImage = reshape(backend, cropped, [fh, fw, batchSize, channels * multiplier]);
  const summed = run("Sum", backend, { x: perImage }, { axis: [2], keepDims: false }); // [fh, fw, C*M]
  const dw = reshape(backend, summed, filterShape);
  dispose(backend, xT, dyT, xFolded, dyFolded, grad, cropped, perImage, summed);
  return dw;
}

/**
 * Spreads dy out by the stride and pads it, so that a 'valid' stride-1 (depthwise) convolution
 * of the result gives dx: dy[n, i, j] goes to row (fh - 1 - top) + i*sh, column (fw - 1 - left) + j*sw
 * of a zero [batch, H + fh - 1, W + fw - 1, outC] tensor. A dy pixel that falls outside
 * only reached padding, so it is dropped.
 */
function spreadAndPad(backend: BackendWasm, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const height = inHeight + filterHeight - 1;
  const width = inWidth + filterWidth - 1;
  const out = backend.makeOutput([batchSize, height, width, outChannels], "float32");
  const spread = backend.typedArrayFromHeap(out);
  const dyVals = backend.typedArrayFromHeap(dy);
  spread.fill(0);
  const rowTop = filterHeight - 1 - info.padInfo.top;
  const colLeft = filterWidth - 1 - info.padInfo.left;
  for (let n = 0; n < batchSize; n++) {
    for (let i = 0; i < outHeight; i++) {
      const row = rowTop + i * strideHeight;
      if (row < 0 || row >= height) continue;
      for (let j = 0; j < outWidth; j++) {
        const col = colLeft + j * strideWidth;
        if (col < 0 || col >= width) continue;
        const from = ((n * outHeight + i) * outWidth + j) * outChannels;
        spread.set(dyVals.subarray(from, from + outChannels), ((n * height + row) * width + col) * outChannels);
      }
    }
  }
  return out;
}

/**
 * dx[n, y, x, c] = sum over taps and m of dy[n, i, j, c*M + m] * W[a, b, c, m], y = i*s + a - top:
 * a 'valid' depthwise convolution of dy spread out by the stride (spreadAndPad),
 * with the filter flipped in space, [fh, fw, C*M, 1]; with a multiplier M > 1 its output,
 * [batch, H, W, C*M], is summed over m.
 */
function depthwiseBackpropInput({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs; // dy: [batch, outH, outW, C*M], filter: [fh, fw, C, M]
  assertFloat32("DepthwiseConv2dNativeBackpropInput", dy, filter);
  const inputShape = attrs.inputShape as number[]; // [batch, H, W, C]
  const info = depthwiseInfo(inputShape, filter.shape, attrs, "DepthwiseConv2dNativeBackpropInput");
  const [fh, fw, channels, multiplier] = filter.shape;
  const spread = spreadAndPad(backend, dy, info); // [batch, H + fh - 1, W + fw - 1, C*M]
  const flipped = run("Reverse", backend, { x: filter }, { dims: [0, 1] });
  const flat = reshape(backend, flipped, [fh, fw, channels * multiplier, 1]);
  const perM = run("DepthwiseConv2dNative", backend, { x: spread, filter: flat }, { strides: [1, 1], pad: "valid", dilations: [1, 1] });
  dispose(backend, spread, flipped, flat);
  if (multiplier === 1) return perM; // [batch, H, W, C]
  const split = reshape(backend, perM, [...inputShape, multiplier]); // [batch, H, W, C, M]
  const dx = run("Sum", backend, { x: split }, { axis: [4], keepDims: false });
  dispose(backend, perM, split);
  return dx;
}

/** The kernels that wasm lacks, by kernel name. */
export const ADDED_KERNELS: Record<string, WasmKernelFunc> = {
  UnsortedSegmentSum: unsortedSegmentSum,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
};
