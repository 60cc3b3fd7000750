/**
 * An auxiliary task for the encoder: from the image embedding alone, predict which words the
 * image's reference captions use ("red", "circle", "background", ...), one yes/no per word.
 *
 * Why? Trained from scratch, the CNN learns only from the caption loss, which reaches it through
 * the whole LSTM: a weak, late signal, and colours and shapes took many epochs to appear. This
 * head gives the encoder a direct one, in the spirit of the attribute predictors of captioning
 * papers (Wu et al. 2016; Yao et al. 2017). The decoder is unchanged: it still sees the image
 * only as its first input. The head is used in training only; a weight of 0 turns it off.
 */
import * as tf from "@tensorflow/tfjs";

export class WordPresenceHead {
  readonly kernel: tf.Variable; // [embed, vocab]
  readonly bias: tf.Variable; // [vocab]

  constructor(embedSize: number, vocabSize: number, name: string, seed = 5) {
    const limit = Math.sqrt(6 / (embedSize + vocabSize));
    [this.kernel, this.bias] = tf.tidy(() => [
      tf.variable(tf.randomUniform([embedSize, vocabSize], -limit, limit, "float32", seed), true, `${name}/kernel`),
      tf.variable(tf.zeros([vocabSize]), true, `${name}/bias`),
    ]);
  }

  get variables(): tf.Variable[] {
    return [this.kernel, this.bias];
  }

  /**
   * Mean binary cross-entropy between the predicted word presence and `targets`
   * ([batch, vocab], 1 where a word occurs in the image's captions). Written in the stable
   * form max(z, 0) − z·y + log(1 + exp(−|z|)) of the logits z.
   */
  loss(embedding: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => {
      const z = tf.add(tf.matMul(embedding, this.kernel), this.bias); // [batch, vocab]
      const softplus = tf.log(tf.add(1, tf.exp(tf.neg(tf.abs(z)))));
      return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, targets)), softplus)) as tf.Scalar;
    });
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}

/** For each image, the multi-hot [vocab] of the word ids its captions use (special tokens left out). */
export function wordPresenceTargets(
  captionsByImage: ReadonlyMap<number, readonly string[]>,
  encode: (caption: string) => number[],
  vocabSize: number,
  firstWordId: number,
): Map<number, Float32Array> {
  const targets = new Map<number, Float32Array>();
  for (const [imageId, captions] of captionsByImage) {
    const row = new Float32Array(vocabSize);
    for (const caption of captions) for (const id of encode(caption)) if (id >= firstWordId) row[id] = 1;
    targets.set(imageId, row);
  }
  return targets;
}
