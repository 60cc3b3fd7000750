/**
 * Data-parallel training steps (lib/train/data-parallel.ts): W = 2 computes what W = 1 computes
 * (trainStep) to float tolerance, dropout and the word-presence loss included; two W = 2 steps
 * from the same start are bit-identical; a worker that dies fails the step with a message that
 * names it, leaving the weights as they were. The self-critical step on W threads: the same draws
 * for every W > 1 (one generator per image), so W = 2 and W = 3 agree to float tolerance.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { Captioner } from "../lib/inference/captioner";
import { Vocabulary } from "../lib/data/vocabulary";
import { trainStep } from "../lib/model/train-step";
import { DataParallel, resolveWorkers, shardRanges } from "../lib/train/data-parallel";
import { CiderReward } from "../lib/train/cider-reward";
import type { SelfCriticalConfig } from "../lib/train/config";
import { selfCriticalStep, type SelfCriticalStats } from "../lib/train/self-critical";
import { selfCriticalShardGradients } from "../lib/train/self-critical-shard";
import { Random } from "../lib/data/random";
import { tinyTrainConfig } from "./helpers/tiny-config";

const CAPTIONS = ["a red circle above a blue square", "two green triangles", "a small blue circle left of a red square", "one yellow square"];

async function setup(seed = 5) {
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 1 });
  const config = tinyTrainConfig("/nonexistent", "/nonexistent", { dropout: 0.3, wordLoss: 0.5, numLayers: 2 });
  const model = await Captioner.create(config, vocab, 11);
  const batch = 7; // odd: shards of 4 and 3
  const length = 6;
  const data = tf.tidy(() => {
    const images = tf.randomNormal([batch, 32, 32, 3], 0, 1, "float32", seed) as tf.Tensor4D;
    const words = tf.randomUniform([batch, length - 2], 3, vocab.size, "int32", seed + 1);
    const tokens = tf.concat([tf.zeros([batch, 1], "int32"), words, tf.ones([batch, 1], "int32")], 1) as tf.Tensor2D;
    // Ragged captions: the last two columns are padding in some rows.
    const maskRows = Array.from({ length: batch }, (_, r) => Array.from({ length }, (_, c) => (c < length - (r % 3) ? 1 : 0)));
    const mask = tf.tensor2d(maskRows, [batch, length], "float32");
    const wordTargets = tf.cast(tf.greater(tf.randomUniform([batch, vocab.size], 0, 1, "float32", seed + 2), 0.7), "float32") as tf.Tensor2D;
    return { images, tokens, mask, wordTargets };
  });
  return { model, ...data };
}

type Setup = Awaited<ReturnType<typeof setup>>;

function params(s: Setup, optimizer: tf.Optimizer) {
  const { model } = s;
  return {
    decoder: model.decoder,
    embedImages: () => model.embed(s.images, true),
    encoderVariables: model.encoder.trainableVariables,
    encoderState: model.encoder.stateVariables,
    tokens: s.tokens,
    mask: s.mask,
    optimizer,
    clipNorm: 1e6, // computed, never reached: the comparison is of raw gradients
    dropoutSeed: 1234,
    auxiliaryLoss: { weight: 0.5, variables: model.wordHead!.variables, loss: (e: tf.Tensor2D) => model.wordHead!.loss(e, s.wordTargets) },
  };
}

const values = (m: Captioner) => m.variables.map((v) => v.dataSync().slice() as Float32Array);

test("shards: contiguous, sizes within one of each other; auto workers", () => {
  assert.deepEqual(shardRanges(7, 2), [[0, 4], [4, 7]]);
  assert.deepEqual(shardRanges(2, 3), [[0, 1], [1, 2]]);
  assert.equal(resolveWorkers("auto", "wasm", 8), 8);
  assert.equal(resolveWorkers("auto", "node", 8), 1);
  assert.equal(resolveWorkers(3, "node", 8), 3);
});

test("W = 2 gives W = 1's loss and gradients; two W = 2 steps are bit-identical; a dead worker fails the step", async () => {
  const backend = await initBackend({ log: () => {} });
  // SGD with rate 1: each weight's change is exactly minus its gradient.
  const one = await setup();
  const before = values(one.model);
  const loss1 = trainStep({ ...params(one, tf.train.sgd(1)) });
  const after1 = values(one.model);

  const runs: { loss: number; after: Float32Array[] }[] = [];
  for (let run = 0; run < 2; run++) {
    const two = await setup();
    assert.deepEqual(values(two.model), before, "the same initial weights");
    const dp = await DataParallel.start(2, two.model.decoder, backend.kind);
    try {
      const loss = await dp.step(params(two, tf.train.sgd(1)));
      runs.push({ loss, after: values(two.model) });
      if (run === 1) {
        // A second step, then a dead worker: the step fails naming it, the weights stay put.
        await dp.killWorker(1);
        const kept = values(two.model);
        await assert.rejects(dp.step(params(two, tf.train.sgd(1))), /training worker 1 of 1 (exited|died)/);
        assert.deepEqual(values(two.model), kept);
      }
    } finally {
      await dp.close();
      two.model.dispose();
    }
  }
  assert.ok(Math.abs(runs[0].loss - loss1) < 1e-5 * Math.abs(loss1), `loss ${runs[0].loss} vs ${loss1}`);
  const names = one.model.variables.map((v) => one.model.savedName(v));
  let largest = 0;
  runs[0].after.forEach((w2, i) => {
    const w1 = after1[i];
    const scale = Math.max(...before[i].map((b, j) => Math.abs(b - w1[j])), 1e-3);
    for (let j = 0; j < w1.length; j++) {
      const diff = Math.abs(w2[j] - w1[j]) / scale;
      largest = Math.max(largest, diff);
      assert.ok(diff < 1e-4, `${names[i]}[${j}]: W=2 ${w2[j]} vs W=1 ${w1[j]} (gradient scale ${scale})`);
    }
  });
  console.log(`largest difference W=2 vs W=1, relative to the gradient scale: ${largest.toExponential(2)}`);
  // Bit for bit: the second W = 2 run is the first.
  assert.equal(runs[1].loss, runs[0].loss);
  runs[1].after.forEach((w, i) => assert.ok(Buffer.from(w.buffer).equals(Buffer.from(runs[0].after[i].buffer)), `${names[i]} differs between two W = 2 runs`));
  one.model.dispose();
});

/** Each image's references: two of CAPTIONS, so that words are rarer in some images than others (CIDEr-D's idf). */
function references(ids: number[]): Map<number, string[]> {
  return new Map(ids.map((id, i) => [id, [CAPTIONS[i % 4], CAPTIONS[(i + 1) % 4]]]));
}

test("self-critical on W threads: W = 2 and W = 3 draw the same captions and agree to float tolerance; two W = 2 steps are bit-identical; W = 1 keeps its own draws", async () => {
  const backend = await initBackend({ log: () => {} });
  const imageIds = [11, 12, 13, 14, 15];
  const reward = new CiderReward(references(imageIds));
  const config: SelfCriticalConfig = { epochs: 1, samplesPerImage: 3, baseline: "mean", learningRate: 1, imagesPerBatch: 5 };
  const common = { reward, config, clipNorm: 1e6, maxLength: 6, seed: 77 };
  const runs: { workers: number; stats: SelfCriticalStats; after: Float32Array[]; before: Float32Array[] }[] = [];
  for (const workers of [2, 2, 3]) {
    const s = await setup();
    const batch = { imageIds, images: tf.slice(s.images, 0, imageIds.length) };
    const dp = await DataParallel.start(workers, s.model.decoder, backend.kind);
    try {
      await dp.prepareSelfCritical(s.model.vocab, references(imageIds));
      const before = values(s.model);
      const stats = await dp.selfCriticalStep({ ...common, model: s.model, batch, optimizer: tf.train.sgd(1) });
      runs.push({ workers, stats, after: values(s.model), before });
    } finally {
      await dp.close();
      tf.dispose([batch.images, s.images, s.tokens, s.mask, s.wordTargets]);
      s.model.dispose();
    }
  }
  const [first, second, three] = runs;
  assert.ok(first.stats.meanReward > 0 && first.stats.loss !== 0, `a step that learns something: ${JSON.stringify(first.stats)}`);
  assert.deepEqual(second.stats, first.stats, "two W = 2 steps: the same statistics");
  second.after.forEach((w, i) => assert.ok(Buffer.from(w.buffer).equals(Buffer.from(first.after[i].buffer)), `weight ${i} differs between two W = 2 steps`));
  // W = 3 shards the images otherwise ([0, 2), [2, 4), [4, 5)): the same draws, sums in another order.
  assert.equal(three.stats.meanReward, first.stats.meanReward);
  assert.equal(three.stats.positiveShare, first.stats.positiveShare);
  assert.ok(Math.abs(three.stats.loss - first.stats.loss) <= 1e-5 * Math.abs(first.stats.loss), `loss ${three.stats.loss} vs ${first.stats.loss}`);
  let moved = 0;
  three.after.forEach((w3, i) => {
    const w2 = first.after[i];
    const scale = Math.max(...first.before[i].map((b, j) => Math.abs(b - w2[j])), 1e-3);
    moved = Math.max(moved, ...first.before[i].map((b, j) => Math.abs(b - w2[j])));
    for (let j = 0; j < w2.length; j++) assert.ok(Math.abs(w3[j] - w2[j]) / scale < 1e-4, `weight ${i}[${j}]: W=3 ${w3[j]} vs W=2 ${w2[j]}`);
  });
  assert.ok(moved > 0, "the step changed the weights");

  // The same shard arithmetic on one thread, all images in one shard: W = 2's loss and rewards.
  const s = await setup();
  const embedding = s.model.embed(tf.slice(s.images, 0, imageIds.length) as tf.Tensor4D);
  const whole = selfCriticalShardGradients(s.model.decoder, s.model.vocab, reward, { ...common, embedding, imageIds, firstImage: 0, totalCaptions: 15 });
  assert.ok(Math.abs(whole.loss - first.stats.loss) <= 1e-5 * Math.abs(first.stats.loss), `one shard ${whole.loss} vs W = 2 ${first.stats.loss}`);
  assert.equal(whole.rewards.reduce((a, b) => a + b, 0) / whole.rewards.length, first.stats.meanReward);
  tf.dispose([embedding, ...whole.grads, whole.embeddingGrad]);

  // W = 1: today's single-thread step with its single generator (other draws), a sane step too.
  const batch = { imageIds, images: tf.slice(s.images, 0, imageIds.length) };
  const single = selfCriticalStep({ ...common, model: s.model, batch, optimizer: tf.train.sgd(1), rng: new Random(common.seed) });
  assert.ok(Number.isFinite(single.loss) && single.meanReward >= 0 && single.positiveShare >= 0 && single.positiveShare <= 1, JSON.stringify(single));
  tf.dispose([batch.images, s.images, s.tokens, s.mask, s.wordTargets]);
  s.model.dispose();
});
