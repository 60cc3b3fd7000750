/**
 * One training step: forward pass, the caption loss (loss.ts), gradients, global-norm clipping and an
 * optimiser update (Adam in this project).
 *
 * The image embedding is passed as a function, not a tensor, so that an encoder with trainable
 * weights (the small CNN trained from scratch on the synthetic set) is differentiated together
 * with the decoder: whatever variables `embedImages` reads are in the same gradient tape. For a
 * frozen encoder or cached features it simply returns a tensor: `() => features`.
 */
import * as tf from "@tensorflow/tfjs";
import { DecoderRNN } from "./decoder";
import { captionLoss } from "./loss";

export interface TrainStepParams {
  decoder: DecoderRNN;
  /** Computes the image embeddings [batch, embed]; may read trainable encoder variables. */
  embedImages: () => tf.Tensor2D;
  /** The trainable variables that `embedImages` reads (a jointly trained encoder); none by default. */
  encoderVariables?: tf.Variable[];
  /** [batch, length] int32: [<start>, w1, ..., wn, <end>], padded after <end>. */
  tokens: tf.Tensor2D;
  /** [batch, length] float32: 1 for a real token (including <start> and <end>), 0 for padding. */
  mask: tf.Tensor2D;
  optimizer: tf.Optimizer;
  /** Largest global norm of the gradient; a larger gradient is scaled down to it. Omit for no clipping. */
  clipNorm?: number;
  /** Seed of this step's dropout masks: give each step its own (e.g. derived from the step number). */
  dropoutSeed?: number;
  /** An extra loss on the image embedding (e.g. word presence, model/word-presence.ts), added to the caption loss. */
  auxiliaryLoss?: { weight: number; variables: tf.Variable[]; loss: (embedding: tf.Tensor2D) => tf.Scalar };
}

/**
 * Runs one step, updates the weights in place and returns the batch's caption loss (mean
 * cross-entropy per token; an auxiliary loss is optimised too but not included).
 */
export function trainStep(params: TrainStepParams): number {
  const { decoder, tokens, mask, auxiliaryLoss: aux } = params;
  const variables = [...decoder.variables, ...(params.encoderVariables ?? []), ...(aux?.variables ?? [])].filter((v) => v.trainable);
  let caption: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const embedding = params.embedImages();
    const logits = decoder.forward(embedding, tokens, { training: true, seed: params.dropoutSeed });
    caption = tf.keep(captionLoss(logits, tokens, mask)); // scored against the next token
    return aux && aux.weight > 0 ? tf.add(caption, tf.mul(aux.loss(embedding), aux.weight)) : caption;
  }, variables);
  try {
    const clipped = params.clipNorm === undefined ? grads : clipByGlobalNorm(grads, params.clipNorm);
    params.optimizer.applyGradients(clipped);
    tf.dispose(clipped);
    // Read the scalar outside any tidy: tidy would walk a returned data array element by element.
    return caption!.dataSync()[0];
  } finally {
    tf.dispose([value, grads, caption!]);
  }
}

/**
 * Scales all gradients by min(1, clipNorm / ‖g‖), where ‖g‖ is the norm of all of them together
 * (so the direction of the update is kept, only its length is capped).
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, clipNorm: number): tf.NamedTensorMap {
  const names = Object.keys(grads);
  const norm = globalNorm(grads);
  if (!Number.isFinite(norm)) throw new Error(`train-step.ts: the gradient norm is ${norm}: training diverged`);
  if (norm <= clipNorm) return { ...grads };
  const scale = clipNorm / norm;
  return tf.tidy(() => Object.fromEntries(names.map((n) => [n, tf.mul(grads[n], scale)])));
}

/** ‖g‖: the length of all the gradients together, as one vector. */
export function globalNorm(grads: tf.NamedTensorMap): number {
  const normTensor = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))));
  const norm = normTensor.dataSync()[0];
  normTensor.dispose();
  return norm;
}
