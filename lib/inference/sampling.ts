/**
 * Sampling captions: instead of the most likely word (greedy.ts), each step draws the next word
 * at random from the model's own distribution, p(w_t | image, w_<t). A caption sampled this way
 * is what the model might write; self-critical training (lib/train/self-critical.ts) scores such
 * captions and makes the better ones more likely.
 *
 * The same loop as greedy decoding (greedy.ts, `decodeRows`), with a random draw where greedy takes
 * the arg-max: one `decoder.step` for all the rows at once, `<unk>` masked unless allowed. The
 * draws come from a seeded generator, so a training step that samples can be repeated exactly
 * (on resume).
 */
import * as tf from "@tensorflow/tfjs";
import { DecoderRNN } from "../model/decoder";
import type { Random } from "../data/random";
import { decodeRows, type Caption, type CaptionText, type GreedyOptions } from "./greedy";

/**
 * Where the draws come from: one generator for all the rows (each step draws for the rows still
 * writing, in row order), or one per row (`row → its generator`; rows may share one, e.g. an
 * image's K samples), so that a row's draws do not depend on the other rows.
 */
export type Draws = Random | ((row: number) => Random);

/**
 * Samples one caption per row of `imageEmbedding` ([rows, embed]; repeat an image's row to get
 * several captions of it). Each caption ends with <end> or is cut at `maxLength` tokens.
 */
export function sampleCaptions(decoder: DecoderRNN, imageEmbedding: tf.Tensor2D, text: CaptionText, draws: Draws, options: GreedyOptions = {}): Caption[] {
  const rngOf = typeof draws === "function" ? draws : () => draws;
  return decodeRows(decoder, imageEmbedding, text, options, (logProbs, offset, vocab) => drawWord(logProbs, offset, vocab, rngOf(offset / vocab).next()));
}

/**
 * The word that a uniform draw `u` in [0, 1) picks from one row of log-probabilities: the first
 * word whose cumulative probability exceeds u (inverse-CDF sampling). Masked words (−∞) have
 * probability 0; the cumulative sum is taken over what is left, so the row need not sum to 1.
 */
export function drawWord(logProbs: Float32Array, offset: number, vocab: number, u: number): number {
  const probs = new Float64Array(vocab); // exp once per word: this runs for every row of every step
  let total = 0;
  for (let j = 0; j < vocab; j++) total += probs[j] = Math.exp(logProbs[offset + j]);
  const target = u * total;
  let cumulative = 0;
  let last = 0;
  for (let j = 0; j < vocab; j++) {
    if (probs[j] === 0) continue;
    cumulative += probs[j];
    last = j;
    if (cumulative > target) return j;
  }
  return last; // rounding: u·total at the very top of the range
}
