/**
 * One shard of a data-parallel self-critical step (data-parallel.ts): a contiguous run of the
 * batch's images, with all K samples of each, on one thread. The shard samples its captions,
 * rewards them (CIDEr-D against the references, cider-reward.ts), subtracts the baseline (which
 * needs only the image's own samples or its greedy caption, so it stays inside the shard), and
 * returns its share of the policy-gradient loss with its gradients: for the decoder's weights
 * and for its images' embedding rows, which the main thread carries back through the encoder.
 *
 * The draws: one generator per image, seeded by the step's seed and the image's place in the
 * batch (`imageStreams`), so an image's samples do not depend on which shard, or how many
 * shards, it is in: every W > 1 draws the same captions. W = 1 runs self-critical.ts's step on
 * one thread with its single generator, as before the shards existed: its draws differ.
 *
 * Each shard's loss weights are A_i / N with N the WHOLE batch's caption count (sampleTensors'
 * `total`), so the shards' losses and gradients sum to those of the batch.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../data/random";
import type { Vocabulary } from "../data/vocabulary";
import type { DecoderRNN } from "../model/decoder";
import { gradientsAndEmbeddingGradient } from "../model/shard-step";
import type { CiderReward } from "./cider-reward";
import type { SelfCriticalConfig } from "./config";
import { policyGradientLoss, repeatRows, sampleTensors, scoreEmbedded } from "./self-critical";

export interface SelfCriticalShard {
  /** [images, embed]: the shard's image embeddings (values: the encoder ran in the main thread). */
  embedding: tf.Tensor2D;
  /** [images]: their ids, for the rewards. */
  imageIds: number[];
  /** The place in the batch of the shard's first image. */
  firstImage: number;
  /** N = B·K: the whole batch's sampled captions, the loss's divisor. */
  totalCaptions: number;
  /** The step's seed: each image's generator follows from it (imageStreams). */
  seed: number;
  config: SelfCriticalConfig;
  maxLength: number;
}

export interface SelfCriticalShardResult {
  /** This shard's share of the batch's loss (the shares sum to it). */
  loss: number;
  /** d loss / d w for each of decoder.variables, in that order. */
  grads: tf.Tensor[];
  /** d loss / d embedding: [images, embed]. */
  embeddingGrad: tf.Tensor2D;
  /** [images·K] each: the scores of the shard's samples, row i·K + j sample j of image i. */
  rewards: number[];
  baselines: number[];
  advantages: number[];
}

/** One generator per image of a shard: image i of the batch draws from Random(seed · 4099 + i). */
export function imageStreams(seed: number, firstImage: number, count: number): Random[] {
  return Array.from({ length: count }, (_, i) => new Random(seed * 4_099 + firstImage + i));
}

/** Runs the shard; the caller disposes the returned tensors. */
export function selfCriticalShardGradients(decoder: DecoderRNN, vocab: Vocabulary, reward: CiderReward, shard: SelfCriticalShard): SelfCriticalShardResult {
  const k = shard.config.samplesPerImage;
  const streams = imageStreams(shard.seed, shard.firstImage, shard.imageIds.length);
  const draws = (row: number) => streams[Math.floor(row / k)]; // row i·K + j is a sample of image i
  const samples = scoreEmbedded(decoder, vocab, shard.embedding, shard.imageIds, reward, shard.config, draws, shard.maxLength);
  const { tokens, weights } = sampleTensors(samples, shard.totalCaptions);
  try {
    const out = gradientsAndEmbeddingGradient(decoder, shard.embedding, (embedding) => {
      const logits = decoder.forward(repeatRows(embedding, k), tokens); // [images·K, T, vocab], no dropout
      return policyGradientLoss(logits, tokens, weights);
    });
    const { rewards, baselines, advantages } = samples;
    return { ...out, rewards, baselines, advantages };
  } finally {
    tf.dispose([tokens, weights]);
  }
}
