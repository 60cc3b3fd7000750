/**
 * The training loss: cross-entropy of the next word, averaged over the real tokens of a batch of
 * padded captions (padding positions have mask 0 and count for nothing). Perplexity = exp(loss).
 *
 * In reading order:
 * 1. `textbookCrossEntropy`: the definition, −log softmax(logits)[target], masked mean, left to
 *    autodiff. Notebook 2's steps by hand run it; the tests check the fast path against it.
 * 2. `captionLoss`: the loss of a batch of captions. The decoder's outputs are scored against the
 *    NEXT token, so targets and mask are the tokens shifted by one. Training and evaluation call it.
 * 3. The fast, stable path that `captionLoss` uses: `logSoftmax` and `maskedCrossEntropy`, built
 *    on the softmax kernel with a hand-written gradient (`weightedCrossEntropy`, which
 *    self-critical training also uses).
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Masked cross-entropy as the textbook writes it, mean over the real tokens:
 *
 *   loss = −Σ_{b,t} mask[b,t] · log softmax(logits[b,t])[targets[b,t]]  /  Σ mask
 *
 *   logits:  [batch, steps, vocab]  (float32)
 *   targets: [batch, steps]         (int32, the word each step should predict)
 *   mask:    [batch, steps]         (float32, 1 for a real token, 0 for padding)
 */
export function textbookCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits); // [batch, steps, vocab]
    const onTarget = tf.cast(tf.oneHot(targets, logits.shape[2]), "float32"); // [batch, steps, vocab]
    const logProbOfTarget = tf.sum(tf.mul(logProbs, onTarget), 2); // [batch, steps]
    return tf.neg(tf.div(tf.sum(tf.mul(logProbOfTarget, mask)), tf.maximum(tf.sum(mask), 1))) as tf.Scalar;
  });
}

/**
 * The loss of a batch of captions: the decoder's logits scored against the next token.
 *
 *   logits: [batch, length − 1, vocab]  (DecoderRNN.forward: output t predicts token t + 1)
 *   tokens: [batch, length] int32, [<start>, w1, ..., wn, <end>, padding...]
 *   mask:   [batch, length] float32, 1 for a real token
 *
 * Targets are tokens[:, 1:] and the mask is shifted likewise (<start> is never predicted).
 * Computed the fast way, `maskedCrossEntropy` below.
 */
export function captionLoss(logits: tf.Tensor3D, tokens: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  const [batch, length] = tokens.shape;
  return tf.tidy(() => {
    const targets = tf.slice(tokens, [0, 1], [batch, length - 1]); // [batch, length − 1]
    const targetMask = tf.slice(mask, [0, 1], [batch, length - 1]); // [batch, length − 1]
    return maskedCrossEntropy(logits, targets, targetMask);
  });
}

/**
 * One shard's share of a batch's caption loss, for data-parallel training
 * (lib/train/data-parallel.ts): the shard's tokens scored as `captionLoss` scores them, but
 * divided by `tokenCount`, the number of real (scored) tokens in the WHOLE batch. The shards'
 * losses, and so their gradients, then sum to the whole batch's.
 */
export function shardCaptionLoss(logits: tf.Tensor3D, tokens: tf.Tensor2D, mask: tf.Tensor2D, tokenCount: number): tf.Scalar {
  const [batch, length] = tokens.shape;
  return tf.tidy(() => {
    const targets = tf.slice(tokens, [0, 1], [batch, length - 1]);
    const targetMask = tf.slice(mask, [0, 1], [batch, length - 1]);
    return weightedCrossEntropy(logits, targets, tf.div(targetMask, Math.max(tokenCount, 1)));
  });
}

/** Σ mask[:, 1:]: the scored tokens of a batch (what `captionLoss` divides by, before max(·, 1)). */
export function scoredTokenCount(mask: tf.Tensor2D): number {
  const [batch, length] = mask.shape;
  const count = tf.tidy(() => tf.sum(tf.slice(mask, [0, 1], [batch, length - 1])));
  const n = count.dataSync()[0];
  count.dispose();
  return n;
}

// ── The fast, stable path (what training runs) ───────────────────────────────────────────────────
//
// Both functions below rest on the softmax kernel rather than on exp, because on wasm softmax is a
// vectorised kernel and elementwise exp is not, which makes the usual stable log-softmax,
// z − max − log Σ exp(z − max), many times slower than the softmax itself
// (docs/performance.md#the-loss).

/**
 * Numerically stable log-softmax over the last axis, built on the softmax kernel.
 *
 * With m = max z and p = softmax(z):  log p_j = z_j − m − log Σ_k exp(z_k − m).
 * The arg-max entry has exp(z_k − m) = 1, so its probability is 1 / Σ_k exp(z_k − m), hence
 *
 *   log p_j = (z_j − m) + log(max_k p_k)
 *
 * max_k p_k lies in [1/vocab, 1], so the log never sees an underflowed 0, and z_j − m ≤ 0 is exact:
 * the same stability as the usual form, without an exp per entry.
 *
 *   logits: [rows, vocab] → log-probabilities [rows, vocab]
 */
export function logSoftmax(logits: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const shifted = tf.sub(logits, tf.max(logits, 1, true)); // [rows, vocab], ≤ 0
    const logMaxProb = tf.log(tf.max(tf.softmax(logits), 1, true)); // [rows, 1]
    return tf.add(shifted, logMaxProb);
  });
}

/**
 * Masked cross-entropy, mean over the real tokens:  −Σ mask·log p(target) / Σ mask.
 *
 *   logits:  [batch, steps, vocab]  (float32)
 *   targets: [batch, steps]         (int32, the word each step should predict)
 *   mask:    [batch, steps]         (float32, 1 for a real token, 0 for padding)
 *
 * It is `weightedCrossEntropy` below with each real token weighing 1 / (number of real tokens).
 */
export function maskedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => weightedCrossEntropy(logits, targets, tf.div(mask, tf.maximum(tf.sum(mask), 1))));
}

/**
 * Weighted cross-entropy:  −Σ_{b,t} weights[b,t] · log p(targets[b,t]).
 *
 *   logits:  [batch, steps, vocab]  (float32)
 *   targets: [batch, steps]         (int32)
 *   weights: [batch, steps]         (float32, any sign; constants, not differentiated)
 *
 * With weights = mask / Σ mask it is the mean cross-entropy of training; with weights = each
 * sampled caption's advantage it is self-critical training's policy-gradient loss
 * (lib/train/self-critical.ts). Its gradient is written out, (softmax − onehot(target)) · weight,
 * instead of left to autodiff through softmax, max and log.
 */
export function weightedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, weights: tf.Tensor2D): tf.Scalar {
  const [batch, steps, vocab] = logits.shape;
  if (targets.shape[0] !== batch || targets.shape[1] !== steps || weights.shape[0] !== batch || weights.shape[1] !== steps) {
    throw new Error(
      `loss.ts: logits [${logits.shape}] need targets and weights of shape [${batch}, ${steps}], ` +
        `got targets [${targets.shape}] and weights [${weights.shape}]`,
    );
  }
  const rows = batch * steps;
  const crossEntropy = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, save] = args as [tf.Tensor2D, tf.GradSaveFunc]; // z: logits [rows, vocab]
    const ids = tf.reshape(targets, [rows]); // [rows] int32
    const probs = tf.softmax(z); // [rows, vocab]
    // The target's log-probability, (z_t − max z) + log(max p): see logSoftmax above.
    const flatIndex = tf.add(tf.mul(tf.range(0, rows, 1, "int32"), tf.scalar(vocab, "int32")), ids); // [rows]: row * vocab + target
    const targetLogit = tf.gather(tf.reshape(z, [rows * vocab]), flatIndex); // [rows]
    const logProb = tf.add(tf.sub(targetLogit, tf.max(z, 1)), tf.log(tf.max(probs, 1))); // [rows]
    const flatWeights = tf.reshape(weights, [rows]); // [rows]
    save([probs, flatWeights, ids]); // what the backward pass reads (the tape keeps copies alive)
    return {
      value: tf.neg(tf.sum(tf.mul(logProb, flatWeights))),
      gradFunc: (dy: tf.Tensor, [p, w, savedIds]: tf.Tensor[]) => {
        // int32 oneHot, then cast: tfjs-backend-wasm's own OneHot ignores a float32 dtype (it writes
        // int bit patterns; lib/runtime/wasm-replaced-kernels.ts replaces it, but this stays right without that).
        const oneHot = tf.cast(tf.oneHot(savedIds as tf.Tensor1D, vocab), "float32"); // [rows, vocab]
        return tf.mul(tf.sub(p, oneHot), tf.mul(tf.reshape(w, [rows, 1]), dy)); // [rows, vocab]
      },
    };
  });
  return tf.tidy(() => crossEntropy(tf.reshape(logits, [rows, vocab])) as tf.Scalar);
}

/** Perplexity of a mean cross-entropy (in nats): how many words the model is choosing between, on average. */
export function perplexity(loss: number): number {
  return Math.exp(loss);
}
