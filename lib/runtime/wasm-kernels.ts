/**
 * Kernels that training this model needs on the wasm backend, which tfjs-backend-wasm 4.22
 * either lacks or runs pathologically slowly.
 *
 * Added (missing on wasm, found by running tf.grads over the model's ops):
 * - UnsortedSegmentSum: the gradient of tf.gather, i.e. of the word embedding.
 * - Conv2DBackpropFilter: the filter gradient of every conv2d.
 * - DepthwiseConv2dNativeBackpropFilter / ...BackpropInput: depthwise convolutions
 *   (MobileNet fine-tuning), as forward depthwise convolutions.
 *
 * Replaced (present, but naive loops many times slower than the forward op; found by
 * profiling a training step with tf.profile):
 * - BatchMatMul and _FusedMatMul with transposeA/transposeB set: a naive loop 10-20x slower
 *   than the XNNPACK path, and autodiff's matMul gradient sets exactly those flags. The
 *   replacement transposes the operand explicitly and runs the fast path.
 * - Conv2DBackpropInput: a naive loop ~10x slower than the forward conv; replaced by one
 *   matrix product (XNNPACK) and a scatter-add.
 * - MaxPoolGrad (~50x slower than MaxPool) and Tile (the batch-norm gradient tiles a
 *   [1,1,1,C] tensor to the activation's size): replaced by direct loops / block copies.
 * - Slice, Unpack (tf.unstack), SplitV (tf.split): the native ones copy the whole input for
 *   every slice; replaced by copies of just the slice.
 * - OneHot: the native one ignores a float32 dtype (wrong values, not just slow).
 * Each replacement keeps the original kernel, calls it for cases it does not handle, and
 * can be undone (restoreOriginalWasmKernels) to measure before/after in one run.
 *
 * Every kernel here works on the wasm heap directly (inputs are wasm tensors; outputs are
 * allocated with backend.makeOutput) and frees its intermediates with backend.disposeData.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

const WASM = "wasm";

/**
 * A replacement made here keeps the kernel it replaces under this key, so that registering
 * twice never wraps a wrapper and the replacement can be undone. Symbol.for: shared by every
 * copy of this module (lib/ via tsx and lib/dist can both be loaded in one process).
 */
const ORIGINAL = Symbol.for("captioner.wasm-kernels.original");

/** A kernel's named inputs (tfjs types them as possibly undefined; ours are all given). */
type Inputs = Record<string, tf.TensorInfo>;

/** The arguments tfjs passes to a kernel function, with the wasm backend's type. */
interface WasmKernelArgs {
  inputs: Inputs;
  backend: BackendWasm;
  attrs: tf.NamedAttrMap;
}
type WasmKernelFunc = (args: WasmKernelArgs) => tf.TensorInfo;

/** The kernel function that is registered now for `name` on wasm. */
function registeredWasmKernel(name: string): WasmKernelFunc {
  const config = tf.getKernel(name, WASM);
  if (config == null) {
    throw new Error(
      `lib/runtime/wasm-kernels.ts: kernel '${name}' is not registered for wasm; ` +
        `load @tensorflow/tfjs-backend-wasm before registerWasmKernels()`,
    );
  }
  return config.kernelFunc as unknown as WasmKernelFunc;
}

/** Runs the wasm kernel `name` from inside another kernel (no tape, no engine scope). */
function run(
  name: string,
  backend: BackendWasm,
  inputs: Inputs,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  return registeredWasmKernel(name)({ inputs, backend, attrs });
}

function dispose(backend: BackendWasm, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

function assertFloat32(kernel: string, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) {
    if (info.dtype !== "float32") {
      throw new Error(`lib/runtime/wasm-kernels.ts: ${kernel} supports float32 only, got ${info.dtype}`);
    }
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
    throw new Error(`lib/runtime/wasm-kernels.ts: UnsortedSegmentSum of ${x.dtype} is not supported`);
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
    throw new Error(`lib/runtime/wasm-kernels.ts: Conv2DBackpropFilter supports NHWC only, got ${attrs.dataFormat}`);
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
// Conv2DBackpropInput as one matrix product and a scatter-add (col2im)

/**
 * dx[n, y, x, c] = sum over output positions (i, j) and taps (a, b) with y = i*s + a - top,
 * x = j*s + b - left, of sum over o of dy[n, i, j, o] * W[a, b, c, o].
 *
 * The inner sum over o, for every position and every tap at once, is one matrix product:
 *   cols = dy [batch*outH*outW, outC] x Wᵀ [outC, fh*fw*inC]
 * (XNNPACK, exactly the forward convolution's multiply-adds). Each row of cols then holds
 * the fh*fw slices that one dy pixel sends back to the input; `col2im` adds them into place.
 * The earlier version convolved dy spread out with zeros by the stride: for stride 2 three
 * quarters of its multiply-adds were with zeros.
 */
function conv2DBackpropInput(original: WasmKernelFunc): WasmKernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, filter } = inputs; // dy: [batch, outH, outW, outC], filter: [fh, fw, inC, outC]
    if ((attrs.dataFormat != null && attrs.dataFormat !== "NHWC") || dy.dtype !== "float32") {
      return original({ inputs, backend, attrs });
    }
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as "same" | "valid" | number,
      attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    );
    const { batchSize, outHeight, outWidth, outChannels, filterHeight, filterWidth, inChannels } = info;
    const taps = filterHeight * filterWidth * inChannels;
    const dy3 = reshape(backend, dy, [1, batchSize * outHeight * outWidth, outChannels]);
    const w2 = reshape(backend, filter, [taps, outChannels]);
    const wT = run("Transpose", backend, { x: w2 }, { perm: [1, 0] }); // [outC, fh*fw*inC]
    const wT3 = reshape(backend, wT, [1, outChannels, taps]);
    const cols = run("BatchMatMul", backend, { a: dy3, b: wT3 }, { transposeA: false, transposeB: false });
    const dx = col2im(backend, cols, info);
    dispose(backend, dy3, w2, wT, wT3, cols);
    return dx;
  };
}

/** Adds each row of cols [batch*outH*outW, fh*fw*inC] into the input positions its taps came from. */
function col2im(backend: BackendWasm, cols: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  // Allocate first: makeOutput may grow the wasm heap, which detaches older heap views.
  const out = backend.makeOutput([batchSize, inHeight, inWidth, inChannels], "float32");
  const dx = backend.typedArrayFromHeap(out);
  const src = backend.typedArrayFromHeap(cols);
  dx.fill(0); // the heap is not zeroed
  let row = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let i = 0; i < outHeight; i++) {
      for (let j = 0; j < outWidth; j++, row++) {
        for (let a = 0; a < filterHeight; a++) {
          const y = i * strideHeight + a - top;
          if (y < 0 || y >= inHeight) continue;
          for (let b = 0; b < filterWidth; b++) {
            const x = j * strideWidth + b - left;
            if (x < 0 || x >= inWidth) continue;
            const from = (row * filterHeight * filterWidth + a * filterWidth + b) * inChannels;
            const to = ((n * inHeight + y) * inWidth + x) * inChannels;
            for (let c = 0; c < inChannels; c++) dx[to + c] += src[from + c];
          }
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Depthwise convolution gradients, as forward depthwise convolutions

/** Geometry of a depthwise convolution, from a kernel's attributes (dilations of 1 only). */
function depthwiseInfo(inShape: number[], filterShape: number[], attrs: tf.NamedAttrMap, kernel: string): tf.backend_util.Conv2DInfo {
  const dilations = (attrs.dilations ?? 1) as number | number[];
  if ((Array.isArray(dilations) ? dilations : [dilations]).some((d) => d !== 1)) {
    throw new Error(`lib/runtime/wasm-kernels.ts: ${kernel} supports dilations of 1 only`);
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

function reshape(backend: BackendWasm, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return run("Reshape", backend, { x }, { shape });
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

// ---------------------------------------------------------------------------------------
// MaxPoolGrad: route each dy to the first maximum of its window

/**
 * dx[window's argmax] += dy[window]. The argmax is the first strict maximum in row-major
 * window order, as on the cpu backend (ties are common after a relu).
 */
function maxPoolGrad(original: WasmKernelFunc): WasmKernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs; // dy: [batch, outH, outW, C], input: [batch, H, W, C]
    if (input.dtype !== "float32") return original({ inputs, backend, attrs });
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize as number | [number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as "same" | "valid" | number,
      attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    );
    const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const out = backend.makeOutput(input.shape, "float32");
    const dx = backend.typedArrayFromHeap(out);
    const x = backend.typedArrayFromHeap(input);
    const dyVals = backend.typedArrayFromHeap(dy);
    dx.fill(0);
    // Per window, all channels at once: the inner loop walks contiguous memory.
    const best = new Float32Array(channels);
    const bestAt = new Int32Array(channels);
    for (let n = 0; n < batchSize; n++) {
      for (let i = 0; i < outHeight; i++) {
        const rowStart = Math.max(0, i * strideHeight - info.padInfo.top);
        const rowEnd = Math.min(inHeight, i * strideHeight - info.padInfo.top + filterHeight);
        for (let j = 0; j < outWidth; j++) {
          const colStart = Math.max(0, j * strideWidth - info.padInfo.left);
          const colEnd = Math.min(inWidth, j * strideWidth - info.padInfo.left + filterWidth);
          best.fill(-Infinity);
          bestAt.fill(-1);
          for (let row = rowStart; row < rowEnd; row++) {
            for (let col = colStart; col < colEnd; col++) {
              const pixel = ((n * inHeight + row) * inWidth + col) * channels;
              for (let c = 0; c < channels; c++) {
                if (x[pixel + c] > best[c]) {
                  best[c] = x[pixel + c];
                  bestAt[c] = pixel + c;
                }
              }
            }
          }
          const dyAt = ((n * outHeight + i) * outWidth + j) * channels;
          for (let c = 0; c < channels; c++) {
            if (bestAt[c] >= 0) dx[bestAt[c]] += dyVals[dyAt + c];
          }
        }
      }
    }
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Tile by block copies

/**
 * out = x repeated reps[d] times along each axis d, built by copying blocks: the innermost
 * rows are copied from x, then each axis copies the block it has built reps[d] - 1 times.
 * The native kernel computes a source index per element.
 */
function tile(original: WasmKernelFunc): WasmKernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const reps = attrs.reps as number[];
    if (x.dtype === "string" || x.shape.length === 0) return original({ inputs, backend, attrs });
    const outShape = x.shape.map((size, d) => size * reps[d]);
    const out = backend.makeOutput(outShape, x.dtype);
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    const dst = backend.typedArrayFromHeap(out);
    const src = backend.typedArrayFromHeap(x);
    const inStrides = [...tf.util.computeStrides(x.shape), 1];
    const outStrides = [...tf.util.computeStrides(outShape), 1];
    const last = x.shape.length - 1;
    /** Writes x's block below axis d (at inAt) into out at outAt, repeated along axes >= d. */
    const build = (d: number, inAt: number, outAt: number): void => {
      if (d === last) {
        dst.set(src.subarray(inAt, inAt + x.shape[d]), outAt);
      } else {
        for (let k = 0; k < x.shape[d]; k++) build(d + 1, inAt + k * inStrides[d], outAt + k * outStrides[d]);
      }
      const block = x.shape[d] * outStrides[d];
      for (let r = 1; r < reps[d]; r++) dst.copyWithin(outAt + r * block, outAt, outAt + block);
    };
    build(0, 0, 0);
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Slice, Unpack (tf.unstack) and SplitV (tf.split) without copying the whole input

/**
 * Copies the box [begin, begin + size) of x into a new tensor, reading x through a view of
 * the wasm heap. (The native Slice reads x with backend.readSync, which copies all of x
 * first: slicing one time step out of a [time, batch, 4*hidden] tensor cost the whole tensor,
 * and Unpack/SplitV slice once per output.)
 */
function sliceFromHeap(backend: BackendWasm, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  const dst = backend.typedArrayFromHeap(out);
  const src = backend.typedArrayFromHeap(x);
  const strides = [...tf.util.computeStrides(x.shape), 1];
  const last = x.shape.length - 1;
  let written = 0;
  /** Copies the rows of the box below axis d, starting at flat offset `at` of x. */
  const copy = (d: number, at: number): void => {
    if (d === last) {
      dst.set(src.subarray(at + begin[d], at + begin[d] + size[d]), written);
      written += size[d];
      return;
    }
    for (let k = begin[d]; k < begin[d] + size[d]; k++) copy(d + 1, at + k * strides[d]);
  };
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const from = tf.slice_util.computeFlatOffset(begin, strides.slice(0, -1));
    dst.set(src.subarray(from, from + tf.util.sizeFromShape(size)));
  } else {
    copy(0, 0);
  }
  return out;
}

function slice(original: WasmKernelFunc): WasmKernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    if (x.dtype === "string" || x.shape.length === 0) return original({ inputs, backend, attrs });
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin as number[], attrs.size as number[]);
    return sliceFromHeap(backend, x, begin, size);
  };
}

/** The pieces of x along `axis`, with the given sizes, each copied from a heap view. */
function slicesAlong(backend: BackendWasm, x: tf.TensorInfo, axis: number, sizes: number[]): tf.TensorInfo[] {
  const begin = x.shape.map(() => 0);
  return sizes.map((pieceSize) => {
    const size = x.shape.slice();
    size[axis] = pieceSize;
    const piece = sliceFromHeap(backend, x, begin.slice(), size);
    begin[axis] += pieceSize;
    return piece;
  });
}

/** tf.unstack: the slices of `value` along `axis`, with that axis dropped. */
function unpack(original: WasmKernelFunc): WasmKernelFunc {
  const unpackHeap = ({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo[] => {
    const { value } = inputs;
    if (value.dtype === "string") return original({ inputs, backend, attrs }) as unknown as tf.TensorInfo[];
    const axis = tf.util.parseAxisParam(attrs.axis as number, value.shape)[0];
    const outShape = value.shape.filter((_, d) => d !== axis);
    const pieces = slicesAlong(backend, value, axis, Array(value.shape[axis]).fill(1));
    return pieces.map(({ dataId, dtype }) => ({ dataId, dtype, shape: outShape }));
  };
  return unpackHeap as unknown as WasmKernelFunc; // a multi-output kernel
}

/** tf.split: pieces of x along `axis`. */
function splitV(original: WasmKernelFunc): WasmKernelFunc {
  const splitHeap = ({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo[] => {
    const { x } = inputs;
    if (x.dtype === "string") return original({ inputs, backend, attrs }) as unknown as tf.TensorInfo[];
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number | number[], axis);
    return slicesAlong(backend, x, axis, sizes);
  };
  return splitHeap as unknown as WasmKernelFunc; // a multi-output kernel
}

// ---------------------------------------------------------------------------------------
// OneHot honouring its dtype

/**
 * out[..., indices[...]] = onValue, offValue elsewhere, in the requested dtype. (The native
 * OneHot writes int32 bit patterns whatever the dtype: a float32 one-hot holds 1.4e-45.)
 */
function oneHot(original: WasmKernelFunc): WasmKernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { indices } = inputs;
    const { depth, onValue, offValue, dtype } = attrs as { depth: number; onValue: number; offValue: number; dtype: tf.DataType };
    if (dtype === "string" || indices.dtype !== "int32") return original({ inputs, backend, attrs });
    const out = backend.makeOutput([...indices.shape, depth], dtype);
    const values = backend.typedArrayFromHeap(out); // [numIndices, depth]
    const ids = backend.typedArrayFromHeap(indices);
    values.fill(offValue);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= 0 && ids[i] < depth) values[i * depth + ids[i]] = onValue;
    }
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Transposed matMul: explicit transpose, then the fast (untransposed) path

/** Transposes the last two axes: [..., m, k] -> [..., k, m]. */
function transposeLastTwo(backend: BackendWasm, t: tf.TensorInfo): tf.TensorInfo {
  const rank = t.shape.length;
  const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
  return run("Transpose", backend, { x: t }, { perm });
}

/**
 * A matMul kernel (inputs a and b, attrs transposeA/transposeB) that materialises transposed
 * operands first, so that the original kernel always sees both flags false. A transpose is
 * O(size) against the O(m*k*n) product it unlocks.
 */
function matMulWithExplicitTransposes(original: WasmKernelFunc): WasmKernelFunc {
  return ({ inputs, backend, attrs }) => {
    if (!attrs.transposeA && !attrs.transposeB) return original({ inputs, backend, attrs });
    const a = attrs.transposeA ? transposeLastTwo(backend, inputs.a) : inputs.a;
    const b = attrs.transposeB ? transposeLastTwo(backend, inputs.b) : inputs.b;
    const out = original({
      inputs: { ...inputs, a, b },
      backend,
      attrs: { ...attrs, transposeA: false, transposeB: false },
    });
    if (a !== inputs.a) dispose(backend, a);
    if (b !== inputs.b) dispose(backend, b);
    return out;
  };
}

// ---------------------------------------------------------------------------------------
// Registration

/** Kernels that wasm lacks and that this module adds. */
const ADDED: Record<string, WasmKernelFunc> = {
  UnsortedSegmentSum: unsortedSegmentSum,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
};

/** Kernels that wasm runs slowly; each maker gets the original kernel as its fallback. */
const REPLACED: Record<string, (original: WasmKernelFunc) => WasmKernelFunc> = {
  BatchMatMul: matMulWithExplicitTransposes,
  _FusedMatMul: matMulWithExplicitTransposes,
  Conv2DBackpropInput: conv2DBackpropInput,
  MaxPoolGrad: maxPoolGrad,
  Tile: tile,
  Slice: slice,
  Unpack: unpack,
  SplitV: splitV,
  OneHot: oneHot,
};

/** Names of the kernels that registerWasmKernels adds to wasm. */
export const ADDED_WASM_KERNELS: readonly string[] = Object.keys(ADDED);
/** Names of the wasm kernels that registerWasmKernels replaces by faster ones. */
export const REPLACED_WASM_KERNELS: readonly string[] = Object.keys(REPLACED);

/** The original of a replaced kernel function, or undefined for one not replaced here. */
function originalOf(kernelFunc: unknown): tf.KernelFunc | undefined {
  return (kernelFunc as { [ORIGINAL]?: tf.KernelFunc })[ORIGINAL];
}

/** Re-registers the wasm kernel `name` with another kernel function, keeping its hooks. */
function reregister(name: string, kernelFunc: tf.KernelFunc): void {
  const config = tf.getKernel(name, WASM);
  if (config == null) throw new Error(`lib/runtime/wasm-kernels.ts: kernel '${name}' is not registered for wasm`);
  tf.unregisterKernel(name, WASM);
  // setupFunc stays: the original's setup (a cwrap of the C++ function) serves its fallback.
  tf.registerKernel({ ...config, kernelFunc });
}

/**
 * Adds the missing kernels and replaces the slow ones on the wasm backend. Idempotent.
 * Needs @tensorflow/tfjs-backend-wasm loaded (its kernels registered); initBackend() calls
 * this when it picks wasm.
 */
export function registerWasmKernels(): void {
  for (const [name, kernelFunc] of Object.entries(ADDED)) {
    if (tf.getKernel(name, WASM) != null) continue;
    tf.registerKernel({ kernelName: name, backendName: WASM, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  for (const [name, makeReplacement] of Object.entries(REPLACED)) {
    const current = registeredWasmKernel(name);
    if (originalOf(current) != null) continue;
    const replacement = Object.assign(makeReplacement(current), { [ORIGINAL]: current });
    reregister(name, replacement as unknown as tf.KernelFunc);
  }
}

/** The replaced kernels whose replacement is registered now. */
export function replacedWasmKernels(): string[] {
  return REPLACED_WASM_KERNELS.filter((name) => originalOf(tf.getKernel(name, WASM)?.kernelFunc) != null);
}

/**
 * Puts the original wasm kernels back for `names` (default: all replaced ones); the added
 * kernels stay, since without them training fails. For benchmarks that measure a slow
 * kernel before and after in one run; registerWasmKernels() replaces them again.
 */
export function restoreOriginalWasmKernels(names: readonly string[] = REPLACED_WASM_KERNELS): void {
  for (const name of names) {
    const original = originalOf(tf.getKernel(name, WASM)?.kernelFunc);
    if (original != null) reregister(name, original);
  }
}
