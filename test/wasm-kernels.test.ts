/**
 * The wasm kernels of lib/runtime/wasm-kernels.ts against the cpu backend, forward and backward,
 * on seeded random inputs. Each case builds its tensors on one backend from plain arrays,
 * runs there, and returns plain arrays, so the two backends never share a tensor.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import {
  ADDED_WASM_KERNELS,
  REPLACED_WASM_KERNELS,
  registerWasmKernels,
  replacedWasmKernels,
  restoreOriginalWasmKernels,
} from "../lib/runtime/wasm-kernels";

const TOLERANCE = 1e-4;

/** Seeded uniform [-1, 1) values (mulberry32), so a failure reproduces. */
function randomValues(size: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** A seeded random float32 tensor on the current backend. */
function rand(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randomValues(tf.util.sizeFromShape(shape), seed), shape);
}

/** Like rand, but only the values -1, -0.5, 0, 0.5: many exact ties. */
function randWithTies(shape: number[], seed: number): tf.Tensor {
  const values = randomValues(tf.util.sizeFromShape(shape), seed).map((v) => Math.floor(v * 2) / 2);
  return tf.tensor(values, shape);
}

/**
 * Runs `f` on `backend` and returns its outputs as arrays; asserts that it leaves no tensor
 * behind. Data is read outside tf.tidy (returning typed arrays from tidy is slow).
 */
async function runOn(backend: "cpu" | "wasm", f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const tensorsBefore = tf.memory().numTensors;
  const outputs = tf.tidy(f);
  const values = await Promise.all(outputs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outputs);
  assert.equal(tf.memory().numTensors, tensorsBefore, `${backend}: tensors leaked`);
  return values;
}

/** max |wasm - cpu| relative to max |cpu|, per output. */
function assertClose(actual: Float32Array[], expected: Float32Array[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: number of outputs`);
  expected.forEach((exp, k) => {
    const act = actual[k];
    assert.equal(act.length, exp.length, `${what}: output ${k} size`);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < exp.length; i++) {
      scale = Math.max(scale, Math.abs(exp[i]));
      diff = Math.max(diff, Math.abs(act[i] - exp[i]));
    }
    assert.ok(scale > 0, `${what}: output ${k} is all zeros, a vacuous comparison`);
    assert.ok(diff <= TOLERANCE * scale, `${what}: output ${k} differs by ${diff} (max |cpu| ${scale})`);
  });
}

/** Runs `f` on wasm and on cpu and compares all outputs. */
async function compareWithCpu(what: string, f: () => tf.Tensor[]): Promise<void> {
  const onCpu = await runOn("cpu", f);
  const onWasm = await runOn("wasm", f);
  assertClose(onWasm, onCpu, what);
}

/**
 * The value and the gradients of sum(fn(...xs) * w) for a random w: a random weighting
 * checks every element of the gradient, which a plain sum would not.
 */
function valueAndGrads(fn: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]): tf.Tensor[] {
  const y = fn(...xs);
  const w = rand(y.shape, 999);
  const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(fn(...args), w)))(xs);
  return [y, ...grads];
}

before(async () => {
  await initBackend({ force: "cpu", log: () => {} });
  await initBackend({ force: "wasm", log: () => {} });
});

describe("registration", () => {
  const kernelFuncs = () => REPLACED_WASM_KERNELS.map((name) => tf.getKernel(name, "wasm")?.kernelFunc);

  test("all added kernels exist on wasm, and all slow ones are replaced", () => {
    for (const name of ADDED_WASM_KERNELS) assert.ok(tf.getKernel(name, "wasm"), `${name} missing`);
    assert.deepEqual(replacedWasmKernels(), REPLACED_WASM_KERNELS);
  });

  test("registering twice replaces once; restoring puts the originals back, selectively", () => {
    const replaced = kernelFuncs();
    registerWasmKernels();
    assert.deepEqual(kernelFuncs(), replaced, "a second registration changes nothing");
    restoreOriginalWasmKernels(["Tile"]);
    assert.deepEqual(replacedWasmKernels(), REPLACED_WASM_KERNELS.filter((name) => name !== "Tile"));
    restoreOriginalWasmKernels();
    assert.deepEqual(replacedWasmKernels(), []);
    for (const name of ADDED_WASM_KERNELS) assert.ok(tf.getKernel(name, "wasm"), `${name} stays`);
    registerWasmKernels();
    assert.deepEqual(replacedWasmKernels(), REPLACED_WASM_KERNELS);
  });
});

describe("UnsortedSegmentSum (gradient of gather)", () => {
  test("embedding gather: forward and gradient, with repeated ids", () =>
    compareWithCpu("gather", () => {
      const ids = tf.tensor2d([[3, 1, 3, 0, 9], [9, 9, 2, 3, 1]], [2, 5], "int32"); // [batch, time]
      return valueAndGrads((emb) => tf.gather(emb, ids), [rand([10, 7], 1)]);
    }));

  test("gather along axis 1", () =>
    compareWithCpu("gather axis 1", () => {
      const ids = tf.tensor1d([4, 0, 4, 2], "int32");
      return valueAndGrads((x) => tf.gather(x, ids, 1), [rand([3, 5, 2], 2)]);
    }));

  test("the op itself: int32 data, and an id outside [0, numSegments) dropped", () =>
    compareWithCpu("unsortedSegmentSum", () => {
      const ids = tf.tensor1d([0, 2, 5, 2], "int32");
      const ints = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2, 1], "int32");
      return [
        tf.unsortedSegmentSum(rand([4, 2, 3], 3), ids, 4),
        tf.unsortedSegmentSum(ints, ids, 4).cast("float32"),
      ];
    }));
});

describe("Conv2DBackpropFilter (added) and Conv2DBackpropInput (replaced): gradients of conv2d", () => {
  const cases: Array<{ x: number[]; f: number[]; strides: number | [number, number]; pad: "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]] }> = [
    { x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, pad: "same" },
    { x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 2, pad: "same" },
    { x: [2, 10, 10, 3], f: [3, 3, 3, 4], strides: 2, pad: "same" },
    { x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 2, pad: "valid" },
    { x: [3, 8, 11, 2], f: [2, 4, 2, 5], strides: [2, 3], pad: "valid" },
    { x: [1, 7, 6, 4], f: [5, 3, 4, 3], strides: 1, pad: "valid" },
    { x: [2, 7, 8, 3], f: [3, 3, 3, 2], strides: 2, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
  ];
  for (const { x, f, strides, pad } of cases) {
    test(`x ${x} filter ${f} strides ${strides} pad ${JSON.stringify(pad)}`, () =>
      compareWithCpu("conv2d", () =>
        valueAndGrads((xs, fs) => tf.conv2d(xs as tf.Tensor4D, fs as tf.Tensor4D, strides, pad), [rand(x, 4), rand(f, 5)]),
      ));
  }

  test("fused conv2d with bias and relu", () =>
    compareWithCpu("fused conv2d", () =>
      valueAndGrads(
        (x, f, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: 2, pad: "same", bias: b, activation: "relu" }),
        [rand([2, 8, 8, 3], 6), rand([3, 3, 3, 4], 7), rand([4], 8)],
      ),
    ));
});

describe("DepthwiseConv2dNative gradients", () => {
  const cases: Array<{ x: number[]; f: number[]; strides: number; pad: "same" | "valid" }> = [
    { x: [2, 7, 8, 3], f: [3, 3, 3, 1], strides: 1, pad: "same" },
    { x: [2, 7, 8, 3], f: [3, 3, 3, 2], strides: 2, pad: "same" },
    { x: [2, 9, 7, 4], f: [3, 2, 4, 3], strides: 2, pad: "valid" },
    { x: [1, 10, 9, 5], f: [5, 5, 5, 1], strides: 2, pad: "same" },
  ];
  for (const { x, f, strides, pad } of cases) {
    test(`x ${x} filter ${f} strides ${strides} pad ${pad}`, () =>
      compareWithCpu("depthwise", () =>
        valueAndGrads((xs, fs) => tf.depthwiseConv2d(xs as tf.Tensor4D, fs as tf.Tensor4D, strides, pad), [rand(x, 9), rand(f, 10)]),
      ));
  }
});

describe("matMul with transpose flags (replaced)", () => {
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      test(`transposeA=${transposeA} transposeB=${transposeB}: forward and gradients`, () =>
        compareWithCpu("matMul", () => {
          const a = rand(transposeA ? [7, 5] : [5, 7], 11); // op(a): [5, 7]
          const b = rand(transposeB ? [3, 7] : [7, 3], 12); // op(b): [7, 3]
          return valueAndGrads((x, y) => tf.matMul(x, y, transposeA, transposeB), [a, b]);
        }));
    }
  }

  test("batched: [2, 7, 5]^T x [2, 3, 7]^T", () =>
    compareWithCpu("batched matMul", () =>
      valueAndGrads((x, y) => tf.matMul(x, y, true, true), [rand([2, 7, 5], 13), rand([2, 3, 7], 14)]),
    ));

  test("fused matMul with bias, relu and transposeB", () =>
    compareWithCpu("fused matMul", () =>
      valueAndGrads(
        (a, b, bias) => tf.fused.matMul({ a, b, transposeB: true, bias, activation: "relu" }),
        [rand([6, 4], 15), rand([5, 4], 16), rand([5], 17)],
      ),
    ));
});

describe("MaxPoolGrad (replaced)", () => {
  const cases: Array<{ x: number[]; size: number | [number, number]; strides: number | [number, number]; pad: "same" | "valid" }> = [
    { x: [2, 8, 8, 3], size: 2, strides: 2, pad: "valid" },
    { x: [2, 9, 7, 3], size: 3, strides: 2, pad: "same" },
    { x: [1, 7, 9, 4], size: [3, 2], strides: 1, pad: "same" },
    { x: [2, 11, 10, 2], size: 3, strides: [2, 3], pad: "valid" },
  ];
  for (const { x, size, strides, pad } of cases) {
    test(`x ${x} window ${size} strides ${strides} pad ${pad}, with ties (the first maximum wins)`, () =>
      compareWithCpu("maxPool", () =>
        valueAndGrads((xs) => tf.maxPool(xs as tf.Tensor4D, size, strides, pad), [randWithTies(x, 50)]),
      ));
  }
});

describe("Tile (replaced)", () => {
  test("ranks 1 to 5, reps of 1 and more, float32 and int32", () =>
    compareWithCpu("tile", () => [
      tf.tile(rand([3], 60), [4]),
      tf.tile(rand([2, 3], 61), [3, 2]),
      tf.tile(rand([1, 1, 1, 5], 62), [2, 3, 4, 1]),
      tf.tile(rand([2, 1, 3, 2], 63), [1, 4, 1, 3]),
      tf.tile(rand([2, 2, 1, 2, 1], 64), [2, 1, 3, 1, 2]),
      tf.tile(tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32"), [2, 3]).cast("float32"),
    ]));

  test("gradient of batch norm (tiles [1, 1, 1, C])", () =>
    compareWithCpu("batchNorm", () =>
      valueAndGrads(
        (x, gamma, beta) => {
          const { mean, variance } = tf.moments(x, [0, 1, 2]);
          return tf.batchNorm(x, mean, variance, beta, gamma, 1e-3);
        },
        [rand([4, 5, 3, 6], 65), rand([6], 66), rand([6], 67)],
      ),
    ));
});

describe("Transpose (replaced for row counts that are multiples of 256)", () => {
  test("matrices and batches of matrices, float32 and int32, exactly; other perms and row counts fall back", async () => {
    const cases = () => [
      tf.transpose(rand([256, 37], 90)), // blocked, cols not a multiple of the block
      tf.transpose(rand([512, 300], 91)),
      tf.transpose(rand([3, 256, 20], 92), [0, 2, 1]), // a batch of matrices
      tf.transpose(tf.range(0, 256 * 24, 1, "int32").reshape([256, 24])).cast("float32"),
      tf.transpose(rand([100, 37], 93)), // native: rows not a multiple of 256
      tf.transpose(rand([256, 4, 5], 94), [1, 0, 2]), // native: another perm
    ];
    const onCpu = await runOn("cpu", cases);
    const onWasm = await runOn("wasm", cases);
    onWasm.forEach((values, i) => assert.deepEqual(Array.from(values), Array.from(onCpu[i]), `case ${i}`));
  });
});

describe("Slice, Unpack, SplitV (replaced: no whole-input copy)", () => {
  test("contiguous and strided slices of ranks 1 to 5, float32, int32 and bool", () =>
    compareWithCpu("slice", () => {
      const x4 = rand([3, 4, 5, 6], 70);
      return [
        tf.slice(rand([9], 71), [2], [5]),
        tf.slice(x4, [1, 0, 0, 0], [2, 4, 5, 6]), // contiguous
        tf.slice(x4, [0, 1, 2, 3], [3, 2, 3, 2]),
        tf.slice(x4, [2, 3, 4, 5], [-1, -1, -1, -1]),
        tf.slice(rand([2, 3, 2, 3, 4], 72), [1, 0, 1, 1, 1], [1, 3, 1, 2, 2]),
        tf.slice(tf.range(0, 24, 1, "int32").reshape([4, 6]), [1, 2], [2, 3]).cast("float32"),
        tf.slice(tf.greater(x4, 0), [1, 1, 1, 1], [2, 2, 2, 2]).cast("float32").add(1),
      ];
    }));

  test("unstack and split, forward and gradient", () =>
    compareWithCpu("unstack/split", () =>
      valueAndGrads(
        (x) => {
          const steps = tf.unstack(x, 1); // 4 x [3, 8]
          const [i, f, g] = tf.split(steps[2], [2, 4, 2], 1);
          const halves = tf.split(x, 2, 2); // 2 x [3, 4, 4]
          return tf.concat([...steps, i, f, g, ...halves.map((h) => h.reshape([3, 16]))], 1);
        },
        [rand([3, 4, 8], 73)],
      ),
    ));
});

describe("OneHot (replaced: the native one ignores float32)", () => {
  test("float32 and int32, custom on/off values, out-of-range ids give an all-off row", () =>
    compareWithCpu("oneHot", () => {
      const ids = tf.tensor2d([[0, 3], [4, 1], [-1, 5]], [3, 2], "int32");
      return [tf.oneHot(ids, 5, 1, 0, "float32"), tf.oneHot(ids, 5, 0.9, 0.025, "float32"), tf.oneHot(ids, 5).cast("float32")];
    }));
});

describe("a model-like forward + backward pass (all the ops training uses)", () => {
  /** An LSTM-ish decoder step over gathered embeddings, with a masked cross-entropy loss. */
  function decoderLoss(emb: tf.Tensor, wx: tf.Tensor, wh: tf.Tensor, bias: tf.Tensor, wOut: tf.Tensor): tf.Tensor {
    const ids = tf.tensor2d([[0, 4, 2], [1, 3, 3]], [2, 3], "int32"); // [batch, time]
    const targets = tf.oneHot(tf.tensor2d([[4, 2, 1], [3, 3, 1]], [2, 3], "int32"), 6); // [batch, time, vocab]
    const mask = tf.tensor2d([[1, 1, 1], [1, 1, 0]]);
    const x = tf.gather(emb, ids); // [batch, time, embed]
    let h = tf.zeros([2, 4]);
    let c = tf.zeros([2, 4]);
    const outputs: tf.Tensor[] = [];
    for (const xt of tf.unstack(x, 1)) {
      const gates = tf.add(tf.add(tf.matMul(xt, wx), tf.matMul(h, wh)), bias); // [batch, 4 * hidden]
      const [i, f, g, o] = tf.split(gates, 4, 1);
      c = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(g)));
      h = tf.mul(tf.sigmoid(o), tf.tanh(c));
      outputs.push(h);
    }
    const hs = tf.stack(outputs, 1).reshape([6, 4]); // [batch * time, hidden]
    const logits = tf.matMul(hs, wOut).reshape([2, 3, 6]);
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), targets), -1)); // [batch, time]
    const softmaxCe = tf.losses.softmaxCrossEntropy(targets, logits);
    return tf.add(tf.div(tf.sum(tf.mul(nll, mask)), tf.sum(mask)), softmaxCe);
  }

  test("decoder: gather, matMul, sigmoid/tanh, split, stack, logSoftmax, cross-entropy", () =>
    compareWithCpu("decoder", () => {
      const params = [rand([6, 3], 20), rand([3, 16], 21), rand([4, 16], 22), rand([16], 23), rand([4, 6], 24)];
      return valueAndGrads(decoderLoss, params);
    }));

  /** A small CNN encoder: conv + batch norm + relu, pooling, concat/slice, clipping. */
  function encoderLoss(x: tf.Tensor, f1: tf.Tensor, f2: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, w: tf.Tensor): tf.Tensor {
    let y: tf.Tensor4D = tf.conv2d(x as tf.Tensor4D, f1 as tf.Tensor4D, 2, "same"); // [2, 6, 6, 4]
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    y = tf.relu(tf.batchNorm(y, mean, variance, beta, gamma, 1e-3)) as tf.Tensor4D;
    y = tf.maxPool(y, 2, 2, "valid"); // [2, 3, 3, 4]
    y = tf.relu6(tf.conv2d(y, f2 as tf.Tensor4D, 1, "same")); // [2, 3, 3, 5]
    const pooled = tf.avgPool(y, 3, 1, "valid").reshape([2, 5]);
    const global = tf.mean(y, [1, 2]); // [2, 5]
    const joined = tf.concat([pooled, tf.slice(global, [0, 1], [2, 3])], 1); // [2, 8]
    const out = tf.clipByValue(tf.matMul(joined, w), -0.5, 0.5);
    return tf.add(tf.sum(tf.square(out)), tf.mul(0.1, tf.norm(w)));
  }

  test("encoder: conv2d, batch norm, relu/relu6, max/avg pool, mean, concat, slice, clip, norm", () =>
    compareWithCpu("encoder", () => {
      const params = [rand([2, 12, 12, 3], 30), rand([3, 3, 3, 4], 31), rand([3, 3, 4, 5], 32), rand([4], 33), rand([4], 34), rand([8, 3], 35)];
      return valueAndGrads(encoderLoss, params);
    }));

  test("dropout (seeded, so that both backends and both passes draw the same mask)", () =>
    compareWithCpu("dropout", () => valueAndGrads((x) => tf.dropout(x, 0.5, undefined, 7), [rand([40, 50], 40)])));
});
