/**
 * The decoder, its LSTM, the loss and the training step: shapes, the fused LSTM (hand-written
 * backpropagation) against the textbook one under autodiff, the loss against the textbook formula, padding, learning,
 * tensor leaks, clipping, and wasm against cpu.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { DecoderConfig, DecoderRNN } from "../lib/model/decoder";
import { lstmRun, type LSTMState } from "../lib/model/lstm";
import { FusedLSTM } from "../lib/model/lstm-fused";
import { captionLoss, logSoftmax, maskedCrossEntropy, perplexity, textbookCrossEntropy } from "../lib/model/loss";
import { clipByGlobalNorm, trainStep } from "../lib/model/train-step";

const SMALL: DecoderConfig = { vocabSize: 23, embedSize: 8, hiddenSize: 12, numLayers: 1, dropout: 0 };

/**
 * Four padded captions [<start>, words..., <end>, padding] of length 7 (ids ≥ 3 are words),
 * with their masks. Padding is <end> (id 1), as the loader pads.
 */
const CAPTIONS = [
  [0, 5, 6, 7, 8, 9, 1],
  [0, 10, 11, 1, 1, 1, 1],
  [0, 12, 13, 14, 1, 1, 1],
  [0, 15, 1, 1, 1, 1, 1],
];
const REAL_TOKENS = [7, 4, 5, 3];

function batch(captions = CAPTIONS) {
  const length = captions[0].length;
  return {
    tokens: tf.tensor2d(captions, [captions.length, length], "int32"),
    mask: tf.tensor2d(REAL_TOKENS.map((n) => Array.from({ length }, (_, j) => (j < n ? 1 : 0)))),
  };
}

/** Largest |a − b| relative to the largest |b| (1 when b is all zeros). */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / (scale || 1);
}

/** The loss of a teacher-forced pass, as trainStep computes it. */
function forwardLoss(decoder: DecoderRNN, images: tf.Tensor2D, tokens: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return captionLoss(decoder.forward(images, tokens), tokens, mask);
}

before(async () => {
  await initBackend();
});

describe("DecoderRNN", () => {
  test("forward gives logits [batch, length − 1, vocab]; weights are named variables", () => {
    const decoder = new DecoderRNN({ ...SMALL, numLayers: 2 }, { name: "shapes" });
    try {
      const { tokens, mask } = batch();
      const logits = tf.tidy(() => decoder.forward(tf.randomNormal([4, 8]) as tf.Tensor2D, tokens));
      assert.deepEqual(logits.shape, [4, 6, 23]);
      assert.deepEqual(
        decoder.variables.map((v) => [v.name, v.shape]),
        [
          ["shapes/embedding", [23, 8]],
          ["shapes/lstm/layer0/kernel", [8, 48]],
          ["shapes/lstm/layer0/recurrent_kernel", [12, 48]],
          ["shapes/lstm/layer0/bias", [48]],
          ["shapes/lstm/layer1/kernel", [12, 48]],
          ["shapes/lstm/layer1/recurrent_kernel", [12, 48]],
          ["shapes/lstm/layer1/bias", [48]],
          ["shapes/output/kernel", [12, 23]],
          ["shapes/output/bias", [23]],
        ],
      );
      // Forget-gate bias 1, the other gates 0 (gate order i, f, g, o).
      const bias = Array.from(decoder.lstm.layers[0].bias.dataSync());
      assert.deepEqual(bias, [...Array(12).fill(0), ...Array(12).fill(1), ...Array(24).fill(0)]);
      tf.dispose([logits, tokens, mask]);
    } finally {
      decoder.dispose();
    }
  });

  test("a bad config is an error naming the field", () => {
    assert.throws(() => new DecoderRNN({ ...SMALL, hiddenSize: 0 }), /decoder\.ts: config\.hiddenSize must be a positive integer/);
    assert.throws(() => new DecoderRNN({ ...SMALL, dropout: 1 }), /decoder\.ts: config\.dropout must be in \[0, 1\)/);
  });

  test("the same seed gives the same weights; training-mode dropout is repeatable with a seed", () => {
    const a = new DecoderRNN({ ...SMALL, dropout: 0.5 }, { name: "seedA", seed: 3 });
    const b = new DecoderRNN({ ...SMALL, dropout: 0.5 }, { name: "seedB", seed: 3 });
    try {
      a.variables.forEach((v, i) => assert.deepEqual(v.dataSync(), b.variables[i].dataSync(), v.name));
      const { tokens, mask } = batch();
      const images = tf.randomNormal([4, 8], 0, 1, "float32", 1) as tf.Tensor2D;
      const run = (options: { training?: boolean; seed?: number }) => tf.tidy(() => a.forward(images, tokens, options).dataSync());
      assert.deepEqual(run({ training: true, seed: 11 }), run({ training: true, seed: 11 }));
      assert.notDeepEqual(run({ training: true, seed: 11 }), run({ training: true, seed: 12 }));
      assert.notDeepEqual(run({ training: true, seed: 11 }), run({}));
      tf.dispose([tokens, mask, images]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  test("forward's textbook LSTM gives the fast one's logits and gradients, with dropout and two layers; fast is the default", () => {
    const decoder = new DecoderRNN({ ...SMALL, numLayers: 2, dropout: 0.3 }, { name: "switch" });
    try {
      const { tokens, mask } = batch();
      const images = tf.randomNormal([4, 8], 0, 1, "float32", 10) as tf.Tensor2D;
      const pass = (lstm?: "fast" | "textbook") => {
        const options = { training: true, seed: 4, lstm }; // the same dropout masks in every pass; lstm undefined: the default
        const logits = tf.tidy(() => decoder.forward(images, tokens, options));
        const { value, grads } = tf.variableGrads(() => captionLoss(decoder.forward(images, tokens, options), tokens, mask), decoder.variables);
        const result = { logits: logits.dataSync(), loss: value.dataSync()[0], grads: decoder.variables.map((v) => grads[v.name].dataSync()) };
        tf.dispose([logits, value, grads]);
        return result;
      };
      const [byDefault, fast, textbook] = [pass(), pass("fast"), pass("textbook")];
      assert.deepEqual(byDefault, fast, "the default is the fast LSTM, to the bit");
      assert.ok(relativeError(textbook.logits, fast.logits) < 1e-5, "logits");
      assert.ok(Math.abs(textbook.loss - fast.loss) < 1e-5, `loss ${textbook.loss} vs ${fast.loss}`);
      fast.grads.forEach((g, i) => {
        const err = relativeError(textbook.grads[i], g);
        assert.ok(err < 1e-5, `${decoder.variables[i].name}: relative error ${err}`);
      });
      tf.dispose([tokens, mask, images]);
    } finally {
      decoder.dispose();
    }
  });
});

describe("LSTM", () => {
  test("the fused LSTM (hand-written backpropagation through time) equals the textbook LSTM under autodiff", () => {
    const fused = new FusedLSTM({ inputSize: 5, hiddenSize: 6, numLayers: 2 }, "bptt", 5);
    try {
      const x = tf.randomNormal([7, 3, 5], 0, 1, "float32", 1) as tf.Tensor3D; // [time, batch, in]
      const weights = tf.randomNormal([7, 3, 6], 0, 1, "float32", 2); // makes every output matter differently
      // Reference: the textbook LSTM (lstm.ts) on the same weights, differentiated by tfjs.
      const textbook = (input: tf.Tensor) => tf.sum(tf.mul(lstmRun(fused.layers, input as tf.Tensor3D), weights)) as tf.Scalar;
      const fast = (input: tf.Tensor) => tf.sum(tf.mul(fused.run(input as tf.Tensor3D), weights)) as tf.Scalar;
      const ours = tf.variableGrads(() => fast(x), fused.variables);
      const reference = tf.variableGrads(() => textbook(x), fused.variables);
      assert.ok(Math.abs(ours.value.dataSync()[0] - reference.value.dataSync()[0]) < 1e-5, "same forward value");
      for (const v of fused.variables) {
        const err = relativeError(ours.grads[v.name].dataSync(), reference.grads[v.name].dataSync());
        assert.ok(err < 1e-5, `${v.name}: relative error ${err}`);
      }
      const dxOurs = tf.grad(fast)(x);
      const dxReference = tf.grad(textbook)(x);
      assert.ok(relativeError(dxOurs.dataSync(), dxReference.dataSync()) < 1e-5, "input gradient");
      assert.ok(tf.max(tf.abs(dxOurs)).dataSync()[0] > 1e-3, "the input gradient is not trivially zero");
      // The fused sampling path (`step`, zero state as null) equals the textbook step too.
      const sampled = tf.tidy(() => {
        let state: LSTMState | null = null;
        const outputs = tf.unstack(x).map((xt) => {
          const out = fused.step(xt as tf.Tensor2D, state);
          state = out.state;
          return out.output;
        });
        return tf.stack(outputs);
      });
      const expected = tf.tidy(() => lstmRun(fused.layers, x));
      assert.ok(relativeError(sampled.dataSync(), expected.dataSync()) < 1e-5, "step equals the textbook run");
      tf.dispose([x, weights, sampled, expected, ours.value, reference.value, dxOurs, dxReference, ...Object.values(ours.grads), ...Object.values(reference.grads)]);
    } finally {
      tf.dispose(fused.variables);
    }
  });
});

describe("loss", () => {
  test("logSoftmax equals tf.logSoftmax and stays finite on extreme logits", () => {
    const logits = tf.tensor2d([
      [1, 2, 3, 4],
      [-1000, 0, 1000, 5],
      [80, -80, 0, 0],
    ]);
    const ours = logSoftmax(logits).arraySync();
    const textbook = tf.logSoftmax(logits).arraySync();
    ours.flat().forEach((v, i) => {
      assert.ok(Number.isFinite(v), `entry ${i} is finite`);
      assert.ok(Math.abs(v - textbook.flat()[i]) < 1e-4 * Math.max(1, Math.abs(v)), `entry ${i}: ${v} vs ${textbook.flat()[i]}`);
    });
    logits.dispose();
  });

  test("the fast masked cross-entropy equals the textbook one, −Σ mask·log p(target) / Σ mask, and so does its gradient", () => {
    const logits = tf.randomNormal([2, 3, 5], 0, 3, "float32", 4) as tf.Tensor3D;
    const targets = tf.tensor2d([[1, 2, 3], [4, 0, 0]], [2, 3], "int32");
    const mask = tf.tensor2d([[1, 1, 1], [1, 0, 0]]);
    const textbook = (z: tf.Tensor) => textbookCrossEntropy(z as tf.Tensor3D, targets, mask);
    const ours = (z: tf.Tensor) => maskedCrossEntropy(z as tf.Tensor3D, targets, mask);
    assert.ok(Math.abs(ours(logits).dataSync()[0] - textbook(logits).dataSync()[0]) < 1e-5);
    assert.ok(relativeError(tf.grad(ours)(logits).dataSync(), tf.grad(textbook)(logits).dataSync()) < 1e-5);
    assert.equal(perplexity(Math.log(7)), 7);
  });

  test("padding counts for nothing: other padded tokens or logits give the same loss and gradients", () => {
    const decoder = new DecoderRNN(SMALL, { name: "padding" });
    try {
      const images = tf.randomNormal([4, 8], 0, 1, "float32", 5) as tf.Tensor2D;
      const lossAndGrads = (captions: number[][]) => {
        const { tokens, mask } = batch(captions);
        const { value, grads } = tf.variableGrads(() => forwardLoss(decoder, images, tokens, mask), decoder.variables);
        const result = { loss: value.dataSync()[0], grads: decoder.variables.map((v) => grads[v.name].dataSync()) };
        tf.dispose([tokens, mask, value, grads]);
        return result;
      };
      // Same real tokens, different garbage after them: ids 16..22, which no real token uses.
      const noisy = CAPTIONS.map((c, i) => c.map((id, j) => (j < REAL_TOKENS[i] ? id : 16 + ((i * 7 + j * 5) % 7))));
      const clean = lossAndGrads(CAPTIONS);
      const other = lossAndGrads(noisy);
      assert.ok(Math.abs(clean.loss - other.loss) < 1e-6, `${clean.loss} vs ${other.loss}`);
      clean.grads.forEach((g, i) => assert.ok(relativeError(other.grads[i], g) < 1e-5, decoder.variables[i].name));
      // The garbage words' embeddings get exactly no gradient; without the mask they would.
      const garbageRows = (embeddingGrad: ArrayLike<number>) => Array.from(embeddingGrad).slice(16 * 8);
      assert.ok(garbageRows(other.grads[0]).every((x) => x === 0));
      const { tokens } = batch(noisy);
      const unmasked = tf.tidy(() => {
        const ones = tf.onesLike(tokens).toFloat() as tf.Tensor2D;
        const { grads } = tf.variableGrads(() => forwardLoss(decoder, images, tokens, ones), [decoder.embedding]);
        return grads[decoder.embedding.name];
      });
      assert.ok(garbageRows(unmasked.dataSync()).some((x) => x !== 0));
      tf.dispose([images, tokens, unmasked]);
    } finally {
      decoder.dispose();
    }
  });
});

describe("trainStep", () => {
  test("overfits a tiny batch: the loss falls below a quarter of its start", () => {
    const decoder = new DecoderRNN(SMALL, { name: "overfit" });
    const { tokens, mask } = batch();
    const images = tf.randomNormal([4, 8], 0, 1, "float32", 6) as tf.Tensor2D;
    const optimizer = tf.train.adam(0.03);
    try {
      const losses = Array.from({ length: 60 }, () => trainStep({ decoder, embedImages: () => images, tokens, mask, optimizer, clipNorm: 5 }));
      assert.ok(Math.abs(losses[0] - Math.log(23)) < 0.5, `an untrained model starts near log(vocab): ${losses[0]}`);
      assert.ok(losses[59] < losses[0] / 4, `loss ${losses[0]} → ${losses[59]}`);
    } finally {
      tf.dispose([tokens, mask, images]);
      optimizer.dispose();
      decoder.dispose();
    }
  });

  test("leaks no tensor (step 2 vs step 50), with dropout, clipping and a jointly trained encoder", () => {
    const decoder = new DecoderRNN({ ...SMALL, numLayers: 2, dropout: 0.3 }, { name: "leak" });
    const { tokens, mask } = batch();
    const pixels = tf.randomNormal([4, 10], 0, 1, "float32", 7);
    const encoder = tf.variable(tf.randomNormal([10, 8], 0, 0.3, "float32", 8), true, "leak/encoder");
    const encoderStart = encoder.dataSync().slice();
    const optimizer = tf.train.adam(0.01);
    try {
      const counts: number[] = [];
      for (let step = 1; step <= 50; step++) {
        const loss = trainStep({
          decoder,
          embedImages: () => tf.matMul(pixels, encoder) as tf.Tensor2D,
          encoderVariables: [encoder],
          tokens,
          mask,
          optimizer,
          clipNorm: 0.5, // small: clipping happens
          dropoutSeed: step,
        });
        assert.ok(Number.isFinite(loss));
        counts[step] = tf.memory().numTensors;
      }
      assert.equal(counts[50], counts[2]);
      assert.ok(relativeError(encoder.dataSync(), encoderStart) > 1e-3, "the encoder's weights were trained too");
    } finally {
      tf.dispose([tokens, mask, pixels, encoder]);
      optimizer.dispose();
      decoder.dispose();
    }
  });

  test("clipByGlobalNorm scales all gradients to the clip norm together, and leaves small ones alone", () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) }; // global norm 5
    const clipped = clipByGlobalNorm(grads, 1);
    assert.deepEqual(Array.from(clipped.a.dataSync()).map((x) => +x.toFixed(6)), [0.6, 0]);
    assert.deepEqual(Array.from(clipped.b.dataSync()).map((x) => +x.toFixed(6)), [0, 0.8]);
    const kept = clipByGlobalNorm(grads, 10);
    assert.equal(kept.a, grads.a);
    tf.dispose([grads.a, grads.b, clipped.a, clipped.b]);
  });
});

describe("backends", () => {
  test("wasm and cpu agree on a forward+backward pass (loss and gradients to 1e-4)", async () => {
    const config: DecoderConfig = { vocabSize: 40, embedSize: 16, hiddenSize: 24, numLayers: 2, dropout: 0 };
    const run = async (backend: "cpu" | "wasm") => {
      await initBackend({ force: backend });
      const decoder = new DecoderRNN(config, { name: `agree-${backend}`, seed: 9 });
      const { tokens, mask } = batch(CAPTIONS.map((c) => c.map((id) => (id < 3 ? id : id + 20))));
      const images = tf.tensor2d(Array.from({ length: 4 * 16 }, (_, i) => Math.sin(i)), [4, 16]);
      const { value, grads } = tf.variableGrads(() => forwardLoss(decoder, images, tokens, mask), decoder.variables);
      const result = { loss: value.dataSync()[0], grads: decoder.variables.map((v) => grads[v.name].dataSync()) };
      tf.dispose([tokens, mask, images, value, grads]);
      decoder.dispose();
      return result;
    };
    try {
      const cpu = await run("cpu");
      const wasm = await run("wasm");
      assert.ok(Math.abs(cpu.loss - wasm.loss) < 1e-4, `loss ${cpu.loss} vs ${wasm.loss}`);
      cpu.grads.forEach((g, i) => {
        const err = relativeError(wasm.grads[i], g);
        assert.ok(err < 1e-4, `gradient ${i}: relative error ${err}`);
      });
    } finally {
      await initBackend();
    }
  });
});
