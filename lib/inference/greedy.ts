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
 *
 * `noEndAfter` can forbid <end> right after some words ("a dog is in the."): self-critical
 * training drifts into such cut captions (they keep the matching n-grams and stop before a wrong
 * word), so its sampling, and the decoding of a model trained that way, mask <end> there.
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
  /** Ids of the words a caption may not end on: <end> is masked right after them (see `danglingWordIds`). */
  noEndAfter?: ReadonlySet<number>;
}

/**
 * Words a caption should not end on: the "bad endings" of ruotianluo/self-critical.pytorch,
 * with "and". Articles, prepositions and auxiliaries always want a word after them.
 */
export const DANGLING_WORDS = ["a", "an", "the", "in", "for", "at", "of", "with", "before", "after", "on", "upon", "near", "to", "is", "are", "am", "and"];

/** The ids of DANGLING_WORDS in `vocab` (those it has: a word left out of it is `<unk>`, not one of them). */
export function danglingWordIds(vocab: { idOf(word: string): number }): Set<number> {
  return new Set(DANGLING_WORDS.map((word) => vocab.idOf(word)).filter((id) => id !== UNK));
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
    const step = advance(decoder, ids, state, options);
    const logProbs = step.logProbs; // [rows, vocab], row-major, <unk> (and dangling ends) masked
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
 * log-probabilities as a plain array ([rows, vocab], row-major) with the new state. Words a
 * caption may not take are −∞, so that nothing chooses them: `<unk>` unless `allowUnk`, and
 * `<end>` in a row whose previous word is in `noEndAfter`.
 */
export function advance(decoder: DecoderRNN, ids: number[], state: LSTMState, options: GreedyOptions = {}): { logProbs: Float32Array; state: LSTMState } {
  const next = tf.tidy(() => decoder.step(decoder.embed(tf.tensor1d(ids, "int32")), state));
  tf.dispose(stateTensors(state));
  // Read outside tidy (tidy would walk a returned data array element by element).
  const logProbs = next.logProbs.dataSync() as Float32Array;
  next.logProbs.dispose();
  const vocab = decoder.config.vocabSize;
  ids.forEach((previous, row) => {
    if (!options.allowUnk) logProbs[row * vocab + UNK] = -Infinity;
    if (options.noEndAfter?.has(previous)) logProbs[row * vocab + END] = -Infinity;
  });
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
