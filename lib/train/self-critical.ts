/**
 * Self-critical sequence training (SCST: Rennie et al., CVPR 2017), a phase after cross-entropy.
 *
 * Why. Cross-entropy trains the decoder on the reference words (teacher forcing): at every step it
 * sees a correct prefix. When it captions, it reads its own words instead, and a wrong word leads it
 * where training never went (exposure bias). And it is judged on whole captions, by CIDEr, which the
 * per-word loss is not. SCST trains on the captions the model itself writes, rewarded by the metric.
 *
 * One step, for a batch of images:
 *   1. sample:    K captions per image from the model's softmax, w^(i) ~ p(· | image)
 *   2. reward:    r_i = CIDEr-D(w^(i), the image's references)                 (cider-reward.ts)
 *   3. baseline:  b_i = CIDEr-D of the image's greedy caption (Rennie), or the mean reward of the
 *                 image's K − 1 other samples ("new self-critical", Luo 2020)
 *   4. advantage: A_i = r_i − b_i: better than usual > 0, worse < 0
 *   5. loss:      L = −(1/N) Σ_i A_i · Σ_t log p(w^(i)_t | image, w^(i)_<t)    (N = B·K captions,
 *                 t up to and including <end>), whose gradient is the REINFORCE estimate of
 *                 −∇ E[r]: it raises the log-probability of the captions that beat the baseline
 *                 and lowers that of the others
 *   6. update:    gradients, clipped to a global norm, one Adam step
 *
 * On W > 1 threads (the `workers` setting) data-parallel.ts splits the step by image, each shard
 * running steps 1 to 5 for its images (self-critical-shard.ts) and step 6 once for all.
 *
 * The baseline makes the estimate's variance small without biasing it (b_i does not depend on the
 * caption w^(i) it is subtracted from). The decoder runs without dropout here, in sampling and in
 * the loss alike: the captions are scored under the same distribution that drew them.
 */
import * as tf from "@tensorflow/tfjs";
import type { Captioner } from "../inference/captioner";
import type { SelfCriticalConfig } from "./config";
import { START } from "../data/vocabulary";
import type { Random } from "../data/random";
import { danglingWordIds, greedyCaptions, type Caption } from "../inference/greedy";
import { sampleCaptions, type Draws } from "../inference/sampling";
import type { DecoderRNN } from "../model/decoder";
import type { Vocabulary } from "../data/vocabulary";
import { weightedCrossEntropy } from "../model/loss";
import { clipByGlobalNorm } from "../model/train-step";
import type { CiderReward } from "./cider-reward";

/** What one step did, for the log and the notebook. */
export interface SelfCriticalStats {
  loss: number;
  /** Mean CIDEr-D of the sampled captions. */
  meanReward: number;
  meanBaseline: number;
  /** Share of the samples whose advantage is above 0. */
  positiveShare: number;
}

/** A batch of images as the model takes it: pixels or cached features, with their ids. */
export interface ImageBatch {
  imageIds: number[]; // [B]
  images: tf.Tensor; // [B, S, S, 3] or [B, featureDim]
}

/** One step's sampled captions and their scores: row i·K + j is sample j of image i. */
export interface ScoredSamples {
  imageIds: number[]; // [B·K]
  captions: Caption[]; // [B·K]
  rewards: number[]; // [B·K]
  baselines: number[]; // [B·K]
  advantages: number[]; // [B·K]
}

export interface StepParams {
  model: Captioner;
  batch: ImageBatch;
  reward: CiderReward;
  config: SelfCriticalConfig;
  /** Draws the samples: seed it from the step, so that a resumed run draws the same ones. */
  rng: Random;
  optimizer: tf.Optimizer;
  clipNorm: number;
  maxLength: number;
}

/** Steps 1 to 4: sample K captions per image, reward them, subtract the baseline. */
export function scoreSamples(model: Captioner, batch: ImageBatch, reward: CiderReward, config: SelfCriticalConfig, rng: Random, maxLength: number): ScoredSamples {
  const embedding = model.embed(batch.images); // [B, embed], no dropout, batch norm's running statistics
  try {
    return scoreEmbedded(model.decoder, model.vocab, embedding, batch.imageIds, reward, config, rng, maxLength);
  } finally {
    embedding.dispose();
  }
}

/**
 * Steps 1 to 4 from the images' embeddings ([B, embed]): what scoreSamples does after the encoder,
 * and what each shard of a data-parallel step does for its images (self-critical-shard.ts).
 */
export function scoreEmbedded(
  decoder: DecoderRNN,
  vocab: Vocabulary,
  embedding: tf.Tensor2D,
  ids: number[],
  reward: CiderReward,
  config: SelfCriticalConfig,
  draws: Draws,
  maxLength: number,
): ScoredSamples {
  const k = config.samplesPerImage;
  const imageIds = ids.flatMap((id) => new Array<number>(k).fill(id));
  const repeated = repeatRows(embedding, k); // [B·K, embed]
  let captions: Caption[];
  let greedy: Caption[] = [];
  try {
    const noEndAfter = config.noDanglingEnd ? danglingWordIds(vocab) : undefined;
    captions = sampleCaptions(decoder, repeated, vocab, draws, { maxLength, noEndAfter });
    if (config.baseline === "greedy") greedy = greedyCaptions(decoder, embedding, vocab, { maxLength, noEndAfter });
  } finally {
    if (repeated !== embedding) repeated.dispose();
  }
  const rewards = reward.score(imageIds, captions.map((c) => c.caption));
  const baselines =
    config.baseline === "greedy"
      ? reward.score(ids, greedy.map((c) => c.caption)).flatMap((b) => new Array<number>(k).fill(b))
      : leaveOneOutMeans(rewards, k);
  const advantages = rewards.map((r, i) => r - baselines[i]);
  return { imageIds, captions, rewards, baselines, advantages };
}

/** Steps 5 and 6: the policy-gradient loss of the scored samples, its gradients, one update. Returns the loss. */
export function policyGradientUpdate(model: Captioner, batch: ImageBatch, samples: ScoredSamples, params: Pick<StepParams, "config" | "optimizer" | "clipNorm">): number {
  const k = params.config.samplesPerImage;
  const { tokens, weights } = sampleTensors(samples);
  const variables = [...model.decoder.variables, ...model.encoder.trainableVariables].filter((v) => v.trainable);
  const { value, grads } = tf.variableGrads(() => {
    // Embedded again, inside the tape this time: sampling ran outside it, as it needs no gradient.
    const embedding = repeatRows(model.embed(batch.images), k); // [B·K, embed]
    const logits = model.decoder.forward(embedding, tokens); // [B·K, T, vocab], no dropout
    return policyGradientLoss(logits, tokens, weights);
  }, variables);
  try {
    const clipped = clipByGlobalNorm(grads, params.clipNorm);
    params.optimizer.applyGradients(clipped);
    tf.dispose(clipped);
    return value.dataSync()[0];
  } finally {
    tf.dispose([value, grads, tokens, weights]);
  }
}

/**
 * One whole step (1 to 6) on a batch of images. It decodes K captions per image and runs the
 * decoder over them again for the gradient: several cross-entropy steps' worth of work
 * (docs/performance.md#the-self-critical-step).
 */
export function selfCriticalStep(params: StepParams): SelfCriticalStats {
  const { model, batch, reward, config, rng, maxLength } = params;
  const samples = scoreSamples(model, batch, reward, config, rng, maxLength);
  const loss = policyGradientUpdate(model, batch, samples, params);
  return { loss, ...summarize(samples) };
}

/** Mean reward, mean baseline and the share of positive advantages of a step's samples. */
export function summarize(samples: Pick<ScoredSamples, "rewards" | "baselines" | "advantages">): Omit<SelfCriticalStats, "loss"> {
  const n = samples.rewards.length;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    meanReward: sum(samples.rewards) / n,
    meanBaseline: sum(samples.baselines) / n,
    positiveShare: samples.advantages.filter((a) => a > 0).length / n,
  };
}

/**
 * The loss of step 5 as the textbook writes it, left to autodiff:
 *
 *   L = −(1/N) Σ_i A_i · Σ_t mask[i,t] · log softmax(logits[i,t])[targets[i,t]]
 *
 *   logits: [N, T, vocab]; targets: [N, T] int32; mask: [N, T]; advantages: [N]
 *
 * Nothing runs it but the tests, which check `policyGradientLoss` against it.
 */
export function textbookPolicyGradientLoss(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D, advantages: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits); // [N, T, vocab]
    const onTarget = tf.cast(tf.oneHot(targets, logits.shape[2]), "float32"); // [N, T, vocab]
    const captionLogProb = tf.sum(tf.mul(tf.sum(tf.mul(logProbs, onTarget), 2), mask), 1); // [N]
    return tf.neg(tf.mean(tf.mul(advantages, captionLogProb))) as tf.Scalar;
  });
}

/**
 * The same loss, the fast way: weighted cross-entropy (lib/model/loss.ts) with each scored token
 * weighing A_i / N, and its hand-written gradient.
 *
 *   logits:  [N, T, vocab]  (DecoderRNN.forward over `tokens`)
 *   tokens:  [N, T + 1] int32, [<start>, w1, ..., <end>, padding]
 *   weights: [N, T] float32, A_i / N on caption i's tokens, 0 on padding (`sampleTensors`)
 */
export function policyGradientLoss(logits: tf.Tensor3D, tokens: tf.Tensor2D, weights: tf.Tensor2D): tf.Scalar {
  const [rows, length] = tokens.shape;
  return tf.tidy(() => weightedCrossEntropy(logits, tf.slice(tokens, [0, 1], [rows, length - 1]) as tf.Tensor2D, weights));
}

/**
 * The sampled captions as the decoder's input and the loss's weights:
 *   tokens  [N, T + 1]: <start>, then each caption's tokens (<end> included when it ended), padded
 *   weights [N, T]:     A_i / N where caption i has a token, 0 after it
 * A shard of a batch's captions (self-critical-shard.ts) divides by the whole batch's N, `total`,
 * so that the shards' losses sum to the batch's.
 */
export function sampleTensors(samples: Pick<ScoredSamples, "captions" | "advantages">, total = samples.captions.length): { tokens: tf.Tensor2D; weights: tf.Tensor2D } {
  const n = samples.captions.length;
  const steps = Math.max(1, ...samples.captions.map((c) => c.tokens.length));
  const tokens = new Int32Array(n * (steps + 1));
  const weights = new Float32Array(n * steps);
  samples.captions.forEach((caption, i) => {
    tokens[i * (steps + 1)] = START;
    caption.tokens.forEach((token, t) => {
      tokens[i * (steps + 1) + 1 + t] = token;
      weights[i * steps + t] = samples.advantages[i] / total;
    });
  });
  return { tokens: tf.tensor2d(tokens, [n, steps + 1], "int32"), weights: tf.tensor2d(weights, [n, steps]) };
}

/** Each image's baseline in "mean" mode: for sample j of an image, the mean reward of the image's other K − 1 samples. */
export function leaveOneOutMeans(rewards: number[], k: number): number[] {
  if (k < 2) throw new Error(`self-critical.ts: the "mean" baseline needs at least 2 samples per image, got ${k}`);
  return rewards.map((_, i) => {
    const first = i - (i % k);
    let sum = 0;
    for (let j = first; j < first + k; j++) if (j !== i) sum += rewards[j];
    return sum / (k - 1);
  });
}

/** [B, d] → [B·K, d]: each row repeated K times in place (row i·K + j is a copy of row i). */
export function repeatRows(x: tf.Tensor2D, k: number): tf.Tensor2D {
  if (k === 1) return x;
  const [rows, dim] = x.shape;
  return tf.reshape(tf.tile(tf.expandDims(x, 1), [1, k, 1]), [rows * k, dim]) as tf.Tensor2D;
}
