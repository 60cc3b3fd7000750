/**
 * Sampling captions: instead of the most likely word (greedy.ts), each step draws the next word
 * at random from the model's own distribution, p(w_t | image, w_<t). A caption sampled this way
 * is what the model might write; self-critical training (lib/train/self-critical.ts) scores such
 * captions and makes the better ones more likely.
 *
 * Same start and same batched step as greedy decoding: one `decoder.step` for all the rows at
 * once, `<unk>` masked unless allowed. The draws come from a seeded generator, so a training
 * step that samples can be repeated exactly (on resume).
 */
import * as tf from "@tensorflow/tfjs";
import { DecoderRNN } from "../model/decoder";
import { END, START } from "../data/vocabulary";
import type { Random } from "../data/random";
import { advance, stateTensors, toCaption, type Caption, type CaptionText, type GreedyOptions, type Hypothesis } from "./greedy";

/**
 * Samples one caption per row of `imageEmbedding` ([rows, embed]; repeat an image's row to get
 * several captions of it). Each caption ends with <end> or is cut at `maxLength` tokens.
 */
export function sampleCaptions(decoder: DecoderRNN, imageEmbedding: tf.Tensor2D, text: CaptionText, rng: Random, options: GreedyOptions = {}): Caption[] {
  const maxLength = options.maxLength ?? 20;
  const rows = imageEmbedding.shape[0];
  const vocab = decoder.config.vocabSize;
  const captions: Hypothesis[] = Array.from({ length: rows }, () => ({ tokens: [], logProb: 0 }));
  const done = new Array<boolean>(rows).fill(false);
  let ids = new Array<number>(rows).fill(START);
  let state = decoder.start(imageEmbedding);
  for (let t = 0; t < maxLength && !done.every(Boolean); t++) {
    const step = advance(decoder, ids, state, options.allowUnk);
    state = step.state;
    ids = captions.map((caption, row) => {
      if (done[row]) return END; // a finished row is still computed (batched), its output ignored
      const word = drawWord(step.logProbs, row * vocab, vocab, rng.next());
      caption.tokens.push(word);
      caption.logProb += step.logProbs[row * vocab + word];
      done[row] = word === END;
      return word;
    });
  }
  tf.dispose(stateTensors(state));
  return captions.map((h) => toCaption(h, text));
}

/**
 * The word that a uniform draw `u` in [0, 1) picks from one row of log-probabilities: the first
 * word whose cumulative probability exceeds u (inverse-CDF sampling). Masked words (−∞) have
 * probability 0; the cumulative sum is taken over what is left, so the row need not sum to 1.
 */
export function drawWord(logProbs: Float32Array, offset: number, vocab: number, u: number): number {
  let total = 0;
  for (let j = 0; j < vocab; j++) total += Math.exp(logProbs[offset + j]);
  const target = u * total;
  let cumulative = 0;
  let last = 0;
  for (let j = 0; j < vocab; j++) {
    const p = Math.exp(logProbs[offset + j]);
    if (p === 0) continue;
    cumulative += p;
    last = j;
    if (cumulative > target) return j;
  }
  return last; // rounding: u·total at the very top of the range
}
