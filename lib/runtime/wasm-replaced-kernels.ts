/**
 * The wasm kernels of tfjs-backend-wasm 4.22 that this project replaces: most because they are
 * many times slower than they need to be (found by profiling a training step with tf.profile),
 * one because it computes wrong values.
 *
 * Replaced for speed (how much slower each native one is: docs/performance.md#the-wasm-kernels):
 * - BatchMatMul and _FusedMatMul with transposeA/transposeB set: a naive loop instead of the
 *   XNNPACK path, and autodiff's matMul gradient sets exactly those flags. The replacement
 *   transposes the operand explicitly and runs the fast path.
 * - Conv2DBackpropInput: a naive loop, many times slower than the forward conv; replaced by one
 *   matrix product (XNNPACK) and a scatter-add.
 * - MaxPoolGrad (many times slower than MaxPool) and Tile (the batch-norm gradient tiles a
 *   [1,1,1,C] tensor to the activation's size): replaced by direct loops / block copies.
 * - Transpose of a matrix whose row count is a multiple of 256 (the output layer's [512, vocab]
 *   kernel, the LSTM's [512, 4 * hidden]): the native loop is 2-4x slower there; replaced by a
 *   blocked copy.
 * - Slice, Unpack (tf.unstack), SplitV (tf.split): the native ones copy the whole input for
 *   every slice; replaced by copies of just the slice.
 *
 * Replaced for correctness:
 * - OneHot: the native one ignores a float32 dtype (wrong values, not just slow).
 *
 * Each replacement is made from the original kernel and calls it for the cases it does not
 * handle (other dtypes, layouts).
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { dispose, reshape, run, type WasmKernelArgs, type WasmKernelFunc } from "./wasm-kernel-calls";

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
// Transpose of the last two axes, in blocks

/** Rows of a block: a block's reads and writes stay in the caches (16 was fastest of 8, 16, 32). */
const BLOCK = 16;

/**
 * out[..., c, r] = x[..., r, c] for x of shape [..., rows, cols], `rows` a multiple of 256.
 *
 * The native kernel writes each output row's elements `rows` floats apart; when `rows` is a
 * multiple of 256 (1 KiB) those writes fall into a few cache sets and evict each other: on the
 * development machine [512, 8900] took 30 ms where [8900, 512] (as many values) takes 2.7 ms, and
 * [1024, 2048] 19.6 ms. Copying in BLOCK x BLOCK blocks, reading a block's rows and writing its
 * columns, takes 12.4 and 5.4 ms for those two; for other row counts the native kernel is the
 * faster one (docs/performance.md#the-wasm-kernels), so it keeps them.
 */
function transpose(original: WasmKernelFunc): WasmKernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const perm = attrs.perm as number[];
    const rank = x.shape.length;
    const swapsLastTwo = rank >= 2 && perm.every((axis, d) => axis === (d < rank - 2 ? d : d === rank - 2 ? rank - 1 : rank - 2));
    const [rows, cols] = x.shape.slice(-2);
    if (!swapsLastTwo || rows % 256 !== 0 || (x.dtype !== "float32" && x.dtype !== "int32")) {
      return original({ inputs, backend, attrs });
    }
    const out = backend.makeOutput(perm.map((axis) => x.shape[axis]), x.dtype);
    const dst = backend.typedArrayFromHeap(out);
    const src = backend.typedArrayFromHeap(x);
    const matrix = rows * cols;
    for (let at = 0; at < src.length; at += matrix) transposeBlocked(src, dst, at, rows, cols);
    return out;
  };
}

/** dst[at + c * rows + r] = src[at + r * cols + c], block by block. */
function transposeBlocked(src: tf.TypedArray, dst: tf.TypedArray, at: number, rows: number, cols: number): void {
  for (let r0 = 0; r0 < rows; r0 += BLOCK) {
    const r1 = Math.min(r0 + BLOCK, rows);
    for (let c0 = 0; c0 < cols; c0 += BLOCK) {
      const c1 = Math.min(c0 + BLOCK, cols);
      for (let r = r0; r < r1; r++) {
        let from = at + r * cols + c0;
        let to = at + c0 * rows + r;
        for (let c = c0; c < c1; c++, to += rows) dst[to] = src[from++];
      }
    }
  }
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

/** Makes a replacement from the original kernel, which it keeps as its fallback. */
export type MakeReplacement = (original: WasmKernelFunc) => WasmKernelFunc;

/** The replaced kernels, by kernel name. */
export const REPLACEMENTS: Record<string, MakeReplacement> = {
  BatchMatMul: matMulWithExplicitTransposes,
  _FusedMatMul: matMulWithExplicitTransposes,
  Conv2DBackpropInput: conv2DBackpropInput,
  MaxPoolGrad: maxPoolGrad,
  Tile: tile,
  Transpose: transpose,
  Slice: slice,
  Unpack: unpack,
  SplitV: splitV,
  OneHot: oneHot,
};
