/**
 * Captioning a batch of images with a trained decoder: greedy decoding (beam search, which keeps
 * k hypotheses instead of one, is in beam-search.ts and reuses the step helpers below; sampling,
 * sampling.ts, runs the same loop, `decodeRows`, with a random draw for the arg-max).
 *
 * It starts as training does: the image embedding is fed from the zero LSTM state (the PyTorch
 * original started from random noise, a bug), then <start>, then each chosen word, until <end>
 * or `maxLength` words. It is batched: every step runs one `decoder.step` for all the rows
 * (an image here, a live hypothesis in beam search) at once.
 *
 * The choice of the next word is made in plain JS on the step's log-probabilities: the values
 * are needed anyway to add up each caption's log-probability, and [rows, vocab] is small.
 *
 * `<unk>` is never chosen unless `allowUnk` says so: it stands for the rare words the vocabulary
 * left out, a training device, not a word a reader should see. Masking it means choosing the
 * best of the other words; the log-probabilities reported are still the model's own.
 */
import * as tf from "@tensorflow/tfjs";
import { DecoderRNN } from "../model/decoder";
import { LSTMState } from "../model/lstm";
import { END, START, UNK } from "../data/vocabulary";

/** What turns ids back into a sentence (a Vocabulary): drops <start>, stops at <end>. */
export interface CaptionText {
  clean(ids: number[]): string;
}

/** One generated caption. */
export interface Caption {
  /** The generated ids, without <start>; they end with <end> unless `maxLength` cut the caption. */
  tokens: number[];
  /** The sentence, from `CaptionText.clean`. */
  caption: string;
  /** Natural log of the caption's probability under the model: the sum over `tokens`. */
  logProb: number;
}

export interface GreedyOptions {
  /** Most tokens generated per caption, <end> included (the original's max_seq_length: 20). */
  maxLength?: number;
  /** Let the caption contain `<unk>` (false: the word is masked out, see above). */
  allowUnk?: boolean;
}

/** A caption being built. */
export interface Hypothesis {
  tokens: number[];
  logProb: number;
}

/** Captions each image with the most likely word at every step. */
export function greedyCaptions(decoder: DecoderRNN, imageEmbedding: tf.Tensor2D, text: CaptionText, options: GreedyOptions = {}): Caption[] {
  return decodeRows(decoder, imageEmbedding, text, options, argMax);
}

/**
 * Chooses the next word of one row from its log-probabilities, `logProbs[offset .. offset + vocab)`
 * (greedy decoding: the arg-max; sampling.ts: a random draw).
 */
export type WordChoice = (logProbs: Float32Array, offset: number, vocab: number) => number;

/**
 * One caption per row of `imageEmbedding` ([rows, embed]), a word at a time, each chosen by
 * `choose`, until every row has written <end> or `maxLength` tokens.
 */
export function decodeRows(decoder: DecoderRNN, imageEmbedding: tf.Tensor2D, text: CaptionText, options: GreedyOptions, choose: WordChoice): Caption[] {
  const maxLength = options.maxLength ?? 20;
  const rows = imageEmbedding.shape[0];
  const vocab = decoder.config.vocabSize;
  const captions: Hypothesis[] = Array.from({ length: rows }, () => ({ tokens: [], logProb: 0 }));
  const done = new Array<boolean>(rows).fill(false);
  let ids = new Array<number>(rows).fill(START);
  let state = decoder.start(imageEmbedding);
  for (let t = 0; t < maxLength && !done.every(Boolean); t++) {
    const step = advance(decoder, ids, state, options.allowUnk);
    const logProbs = step.logProbs; // [rows, vocab], row-major, <unk> masked
    state = step.state;
    ids = captions.map((caption, row) => {
      if (done[row]) return END; // a finished row is still computed (batched), its output ignored
      const word = choose(logProbs, row * vocab, vocab);
      caption.tokens.push(word);
      caption.logProb += logProbs[row * vocab + word];
      done[row] = word === END;
      return word;
    });
  }
  tf.dispose(stateTensors(state));
  return captions.map((h) => toCaption(h, text));
}

/**
 * Runs one decoder step for the rows' previous words, disposes the old state, and returns the
 * log-probabilities as a plain array ([rows, vocab], row-major) with the new state. Unless
 * `allowUnk`, `<unk>`'s entry of every row is −∞, so that nothing chooses it.
 */
export function advance(decoder: DecoderRNN, ids: number[], state: LSTMState, allowUnk = false): { logProbs: Float32Array; state: LSTMState } {
  const next = tf.tidy(() => decoder.step(decoder.embed(tf.tensor1d(ids, "int32")), state));
  tf.dispose(stateTensors(state));
  // Read outside tidy (tidy would walk a returned data array element by element).
  const logProbs = next.logProbs.dataSync() as Float32Array;
  next.logProbs.dispose();
  if (!allowUnk) for (let at = UNK, vocab = decoder.config.vocabSize; at < logProbs.length; at += vocab) logProbs[at] = -Infinity;
  return { logProbs, state: next.state };
}

/** The tensors of a state, for disposal. */
export function stateTensors(state: LSTMState): tf.Tensor[] {
  return [...state.h, ...state.c];
}

/** A hypothesis with its sentence. */
export function toCaption(h: Hypothesis, text: CaptionText): Caption {
  return { tokens: h.tokens, caption: text.clean(h.tokens), logProb: h.logProb };
}

/** Index of the largest of `values[offset .. offset + length)`, the first one on a tie. */
function argMax(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let j = 1; j < length; j++) if (values[offset + j] > values[offset + best]) best = j;
  return best;
}
