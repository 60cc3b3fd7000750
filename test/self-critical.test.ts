/**
 * Self-critical training (lib/train/self-critical.ts) and decoding without `<unk>`:
 * - the policy gradient moves probability toward the caption with the higher reward (a hand-made case);
 * - the fast loss equals the textbook one, in value and gradient;
 * - the reward is the project's CIDEr-D, and so the official one, on the COCO fixture;
 * - sampling follows the model's distribution and, like greedy and beam search, never writes `<unk>` by default;
 * - with `noEndAfter`, none of them ends a caption right after a dangling word ("a dog in the.");
 * - a run through the self-critical phase, stopped and resumed, ends bit for bit where one that never stopped does.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { DecoderRNN } from "../lib/model/decoder";
import { Random } from "../lib/data/random";
import { END, START, UNK, Vocabulary } from "../lib/data/vocabulary";
import { DANGLING_WORDS, danglingWordIds, greedyCaptions, type Caption } from "../lib/inference/greedy";
import { beamSearchCaptions } from "../lib/inference/beam-search";
import { drawWord, sampleCaptions } from "../lib/inference/sampling";
import { CiderReward } from "../lib/train/cider-reward";
import { leaveOneOutMeans, policyGradientLoss, sampleTensors, textbookPolicyGradientLoss } from "../lib/train/self-critical";
import { evaluateFiles, evaluateResults } from "../lib/evaluation/metrics/evaluate";
import { readReferenceCaptions } from "../lib/evaluation/metrics/references";
import { readJson } from "../lib/io/json-file";
import { ensureSyntheticDataset } from "../lib/data/synthetic/ensure";
import type { StepProgress } from "../lib/train/progress";
import { stepRecords } from "../lib/train/train-log";
import type { TrainConfig } from "../lib/train/config";
import { sameRunAssertions, trainAndRead } from "./helpers/same-run";
import { tinyTrainConfig } from "./helpers/tiny-config";

const FIXTURE = path.resolve(__dirname, "../../shared/fixtures/coco-eval-raw");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "self-critical-"));
const DATA = path.join(TMP, "data");
const text = { clean: (ids: number[]) => ids.join(" ") };

before(async () => {
  await initBackend();
});
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** A caption as the sampler returns it. */
const caption = (tokens: number[]): Caption => ({ tokens, caption: tokens.join(" "), logProb: 0 });

/** log p(tokens | embedding) under the decoder, summed over the caption's tokens. */
function captionLogProb(decoder: DecoderRNN, embedding: tf.Tensor2D, tokens: number[]): number {
  return tf.tidy(() => {
    const input = tf.tensor2d([[START, ...tokens]], [1, tokens.length + 1], "int32");
    const logProbs = tf.logSoftmax(decoder.forward(embedding, input)).arraySync()[0]; // [T, vocab]
    return tokens.reduce((sum, token, t) => sum + logProbs[t][token], 0);
  });
}

test("the policy gradient makes the caption with the higher reward more likely, and the other less", () => {
  const decoder = new DecoderRNN({ vocabSize: 6, embedSize: 4, hiddenSize: 8, numLayers: 1, dropout: 0 }, { name: "pg", seed: 4 });
  const embedding = tf.tensor2d([[0.5, -0.2, 0.1, 0.3]]);
  const good = [3, 4, END];
  const bad = [5, END];
  // Two samples of one image: rewards 1 and 0, so with the mean baseline the advantages are ±1.
  const advantages = [1 - 0, 0 - 1];
  const samples = { captions: [caption(good), caption(bad)], advantages };
  const before = [captionLogProb(decoder, embedding, good), captionLogProb(decoder, embedding, bad)];
  const optimizer = tf.train.sgd(0.5);
  for (let i = 0; i < 5; i++) {
    const { tokens, weights } = sampleTensors(samples);
    const twice = tf.tile(embedding, [2, 1]) as tf.Tensor2D;
    optimizer.minimize(() => policyGradientLoss(decoder.forward(twice, tokens), tokens, weights), false, decoder.variables);
    tf.dispose([tokens, weights, twice]);
  }
  const afterwards = [captionLogProb(decoder, embedding, good), captionLogProb(decoder, embedding, bad)];
  assert.ok(afterwards[0] > before[0] + 0.1, `log p(good) ${before[0]} → ${afterwards[0]}`);
  assert.ok(afterwards[1] < before[1] - 0.1, `log p(bad) ${before[1]} → ${afterwards[1]}`);
  decoder.dispose();
  embedding.dispose();
  optimizer.dispose();
});

test("the fast policy-gradient loss equals the textbook one, in value and in gradient", () => {
  const samples = { captions: [caption([3, 4, END]), caption([5, END]), caption([4, 4, 4, 3])], advantages: [0.7, -0.2, -0.5] };
  const { tokens, weights } = sampleTensors(samples);
  const [n, length] = tokens.shape;
  const logits = tf.randomNormal([n, length - 1, 6], 0, 2, "float32", 9) as tf.Tensor3D;
  const targets = tf.slice(tokens, [0, 1], [n, length - 1]) as tf.Tensor2D;
  const mask = tf.tensor2d([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]);
  const advantages = tf.tensor1d(samples.advantages);
  const fast = (z: tf.Tensor) => policyGradientLoss(z as tf.Tensor3D, tokens, weights);
  const textbook = (z: tf.Tensor) => textbookPolicyGradientLoss(z as tf.Tensor3D, targets, mask, advantages);
  const [a, b] = [fast(logits).dataSync()[0], textbook(logits).dataSync()[0]];
  assert.ok(Math.abs(a - b) < 1e-5, `fast ${a}, textbook ${b}`);
  const [ga, gb] = [tf.grad(fast)(logits).dataSync(), tf.grad(textbook)(logits).dataSync()];
  ga.forEach((g, i) => assert.ok(Math.abs(g - gb[i]) < 1e-6, `gradient[${i}]: fast ${g}, textbook ${gb[i]}`));
  tf.dispose([tokens, weights, logits, targets, mask, advantages]);
});

test("the mean baseline of a sample is the mean reward of the image's other samples", () => {
  assert.deepEqual(leaveOneOutMeans([1, 2, 6, 0, 0, 3], 3), [4, 3.5, 1.5, 1.5, 1.5, 0]);
  assert.throws(() => leaveOneOutMeans([1, 2], 1), /at least 2 samples/);
});

test("the reward is the project's CIDEr-D per image, and its mean is the official evaluation's CIDEr", { skip: skipWithout(FIXTURE) }, () => {
  const refsFile = path.join(FIXTURE, "refs.json");
  const resultsFile = path.join(FIXTURE, "results.json");
  const references = readReferenceCaptions(refsFile);
  const results = readJson(resultsFile) as { image_id: number; caption: string }[];
  const reward = new CiderReward(new Map([...references].map(([id, refs]) => [Number(id), refs])));
  const rewards = reward.score(results.map((r) => r.image_id), results.map((r) => r.caption));
  const evaluation = evaluateResults(references, results);
  results.forEach((r, i) => {
    const expected = evaluation.perImage.get(String(r.image_id))!.CIDEr;
    assert.ok(Math.abs(rewards[i] - expected) < 1e-9, `image ${r.image_id}: reward ${rewards[i]}, CIDEr-D ${expected}`);
  });
  const mean = rewards.reduce((a, b) => a + b, 0) / rewards.length;
  const official = (readJson(path.join(FIXTURE, "expected.json")) as { official: { CIDEr: number } }).official.CIDEr;
  assert.ok(Math.abs(mean - official) < 1e-4, `mean reward ${mean}, official CIDEr ${official}`);
  assert.ok(Math.abs(evaluateFiles(refsFile, resultsFile).scores.CIDEr - mean) < 1e-9);
});

test("drawWord samples a row of log-probabilities in proportion, never a masked word", () => {
  const probs = [0.1, 0.6, 0, 0.3];
  const row = Float32Array.from(probs.map((p, j) => (j === 2 ? -Infinity : Math.log(p))));
  const rng = new Random(1);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 20_000; i++) counts[drawWord(row, 0, 4, rng.next())]++;
  assert.equal(counts[2], 0);
  probs.forEach((p, j) => assert.ok(Math.abs(counts[j] / 20_000 - p) < 0.015, `word ${j}: ${counts[j] / 20_000} for p = ${p}`));
});

test("greedy, beam search and sampling never write <unk> by default, even where it is the likeliest word", () => {
  const decoder = new DecoderRNN({ vocabSize: 5, embedSize: 4, hiddenSize: 8, numLayers: 1, dropout: 0 }, { name: "unk", seed: 2 });
  // Make <unk> by far the likeliest word at every step.
  decoder.outputBias.assign(tf.tensor1d([0, 0, 20, 0, 0]));
  const embedding = tf.randomNormal([3, 4], 0, 1, "float32", 5) as tf.Tensor2D;
  const decoders = {
    greedy: (allowUnk?: boolean) => greedyCaptions(decoder, embedding, text, { maxLength: 6, allowUnk }),
    beam: (allowUnk?: boolean) => beamSearchCaptions(decoder, embedding, text, { maxLength: 6, beamSize: 3, allowUnk }),
    sampling: (allowUnk?: boolean) => sampleCaptions(decoder, embedding, text, new Random(7), { maxLength: 6, allowUnk }),
  };
  for (const [name, decode] of Object.entries(decoders)) {
    const masked = decode();
    assert.ok(masked.every((c) => c.tokens.length > 0 && !c.tokens.includes(UNK)), `${name}: ${JSON.stringify(masked.map((c) => c.tokens))}`);
    assert.ok(decode(true).every((c) => c.tokens[0] === UNK), `${name} with allowUnk: <unk> first`);
  }
  decoder.dispose();
  embedding.dispose();
});

test("with noEndAfter, no decoder ends a caption right after a dangling word, even where <end> is the likeliest", () => {
  const decoder = new DecoderRNN({ vocabSize: 6, embedSize: 4, hiddenSize: 8, numLayers: 1, dropout: 0 }, { name: "ends", seed: 3 });
  // <end> is the likeliest word, then word 3: unmasked, every caption ends at once, after <start>.
  // With <start> and word 3 as dangling words, <end> can follow neither.
  decoder.outputBias.assign(tf.tensor1d([0, 8, 0, 6, 0, 0]));
  const embedding = tf.randomNormal([4, 4], 0, 1, "float32", 6) as tf.Tensor2D;
  const noEndAfter = new Set([START, 3]);
  const decoders = {
    greedy: (ends?: Set<number>) => greedyCaptions(decoder, embedding, text, { maxLength: 6, noEndAfter: ends }),
    beam: (ends?: Set<number>) => beamSearchCaptions(decoder, embedding, text, { maxLength: 6, beamSize: 3, noEndAfter: ends }),
    sampling: (ends?: Set<number>) => sampleCaptions(decoder, embedding, text, new Random(8), { maxLength: 6, noEndAfter: ends }),
  };
  for (const [name, decode] of Object.entries(decoders)) {
    const endsAfter = (c: { tokens: number[] }) => c.tokens.some((t, i) => t === END && noEndAfter.has(i === 0 ? START : c.tokens[i - 1]));
    assert.ok(decode().some(endsAfter), `${name} without the mask: some caption ends right after a dangling word`);
    const masked = decode(noEndAfter);
    assert.ok(!masked.some(endsAfter), `${name}: ${JSON.stringify(masked.map((c) => c.tokens))}`);
  }
  decoder.dispose();
  embedding.dispose();
});

test("danglingWordIds: the ids of the dangling words a vocabulary has, none for the words it lacks", () => {
  const vocab = Vocabulary.build(["a dog runs in the park"], { threshold: 1 });
  assert.deepEqual([...danglingWordIds(vocab)].sort(), ["a", "the", "in"].map((w) => vocab.idOf(w)).sort());
  assert.ok(DANGLING_WORDS.includes("a") && DANGLING_WORDS.includes("and") && !DANGLING_WORDS.includes("dog"));
});

/** The tiny run, with a self-critical phase of 2 epochs after 1 of cross-entropy. */
function scstConfig(runName: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return tinyTrainConfig(DATA, path.join(TMP, runName), {
    epochs: 1,
    stepsPerEpoch: 4,
    valImages: 4,
    maxCaptionLength: 10,
    seed: 3,
    selfCritical: { epochs: 2, samplesPerImage: 3, baseline: "mean", learningRate: 1e-3, imagesPerBatch: 16 }, // 4 steps of 16 > 48 images: goes round
    ...overrides,
  });
}

test("a run through the self-critical phase logs its rewards, and stopped and resumed in it ends bit for bit as one that never stopped", async () => {
  const same = sameRunAssertions((await initBackend()).kind);
  await ensureSyntheticDataset(DATA, { images: 60, seed: 3 });
  const progress: StepProgress[] = [];
  const whole = await trainAndRead(scstConfig("whole"), { onStep: (p) => progress.push(p) });
  // Progress counts both phases' steps, and its ETA runs down to 0.
  assert.deepEqual([...new Set(progress.map((p) => p.totalSteps))], [12]);
  assert.ok(progress.every((p) => p.etaSeconds >= 0) && progress.at(-1)!.etaSeconds === 0);
  assert.deepEqual(progress.map((p) => p.stepsPerEpoch), [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
  const steps = stepRecords(whole.log);
  assert.equal(steps.length, 4 + 2 * 4);
  const scst = steps.filter((s) => s.phase === "self-critical");
  assert.equal(scst.length, 8);
  for (const s of scst) {
    assert.ok(s.reward! >= 0 && Number.isFinite(s.loss), JSON.stringify(s));
    assert.ok(s.positiveShare! >= 0 && s.positiveShare! <= 1);
  }
  const epochs = whole.log.filter((r) => r.kind === "epoch");
  assert.deepEqual(epochs.map((e) => e.kind === "epoch" && e.phase), ["cross-entropy", "self-critical", "self-critical"]);

  // Stopped in the middle of the first self-critical epoch, then resumed.
  await trainAndRead(scstConfig("resumed"), { maxSteps: 6 });
  const resumed = await trainAndRead(scstConfig("resumed"), { resume: path.join(TMP, "resumed") });
  same.assertSameWeights(resumed.weights, whole.weights);
  same.assertSameLog(resumed.log, whole.log);

  // A finished cross-entropy run, resumed with a self-critical phase added, does the phase.
  await trainAndRead(scstConfig("added", { selfCritical: null }));
  const added = await trainAndRead(scstConfig("added"), { resume: path.join(TMP, "added") });
  same.assertSameWeights(added.weights, whole.weights);
});

function skipWithout(folder: string): string | false {
  return fs.existsSync(folder) ? false : `${folder} is not here (the COCO evaluation fixture, in ../shared/fixtures)`;
}
