/**
 * The decoder's part of one shard of a data-parallel training step (lib/train/data-parallel.ts):
 * forward, the shard's share of the loss, and its gradients, for the decoder's weights AND for
 * the image embedding rows it was given (so that the main thread can carry them back through the
 * encoder, which sees the whole batch: its batch norm needs the whole batch's statistics).
 *
 * Each shard's loss is divided by the whole batch's token count (loss.ts, shardCaptionLoss), and
 * its dropout masks are the whole batch's rows (decoder.ts, ForwardOptions.rows), so the shards'
 * losses and gradients SUM to those of the unsharded step, up to float rounding.
 *
 * The main thread runs it for the first shard, each worker thread (lib/train/step-worker.ts)
 * for one of the others.
 */
import * as tf from "@tensorflow/tfjs";
import type { DecoderRNN } from "./decoder";
import { shardCaptionLoss } from "./loss";
import type { BatchRows } from "./lstm";

export interface DecoderShard {
  /** [rows, embed]: this shard's image embeddings (values: the encoder ran in the main thread). */
  embedding: tf.Tensor2D;
  /** [rows, length] int32 and [rows, length] float32: this shard's captions, as trainStep takes them. */
  tokens: tf.Tensor2D;
  mask: tf.Tensor2D;
  /** Where the shard's rows lie in the whole batch (its dropout masks are the whole batch's). */
  rows: BatchRows;
  /** Scored tokens in the WHOLE batch: the loss's divisor. */
  tokenCount: number;
  /** The step's dropout seed (the same for every shard). */
  dropoutSeed?: number;
}

export interface DecoderShardGradients {
  /** This shard's share of the batch's mean loss (the shares sum to it). */
  loss: number;
  /** d loss / d w for each of decoder.variables, in that order. */
  grads: tf.Tensor[];
  /** d loss / d embedding: [rows, embed]. */
  embeddingGrad: tf.Tensor2D;
}

/** Runs the shard; the caller disposes the returned tensors. */
export function decoderShardGradients(decoder: DecoderRNN, shard: DecoderShard): DecoderShardGradients {
  return gradientsAndEmbeddingGradient(decoder, shard.embedding, (embedding) => {
    const logits = decoder.forward(embedding, shard.tokens, { training: true, seed: shard.dropoutSeed, rows: shard.rows });
    return shardCaptionLoss(logits, shard.tokens, shard.mask, shard.tokenCount);
  });
}

/**
 * A shard's loss of its image embedding rows, `loss(embedding)`, with its gradients for the
 * decoder's weights and for those rows (what both phases' shards return; self-critical-shard.ts
 * is the other). The caller disposes the returned tensors.
 */
export function gradientsAndEmbeddingGradient(decoder: DecoderRNN, embedding: tf.Tensor2D, loss: (embedding: tf.Tensor2D) => tf.Scalar): DecoderShardGradients {
  const input = tf.variable(embedding, true); // a variable only to be differentiated against
  const variables = decoder.variables;
  try {
    const { value, grads } = tf.variableGrads(() => loss(input as tf.Tensor2D), [...variables, input]);
    const lossValue = value.dataSync()[0];
    value.dispose();
    return { loss: lossValue, grads: variables.map((v) => grads[v.name]), embeddingGrad: grads[input.name] as tf.Tensor2D };
  } finally {
    input.dispose();
  }
}
