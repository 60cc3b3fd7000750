/**
 * Beam search: greedy decoding (greedy.ts) that keeps the k most likely partial captions per
 * image instead of one. Same start (image embedding, then <start>), same batched step: every
 * step runs one `decoder.step` for all the live hypotheses of all the images at once.
 */
import * as tf from "@tensorflow/tfjs";
import { DecoderRNN } from "../model/decoder";
import { LSTMState } from "../model/lstm";
import { END, START } from "../data/vocabulary";
import { advance, stateTensors, toCaption, type Caption, type CaptionText, type GreedyOptions, type Hypothesis } from "./greedy";

export interface BeamOptions extends GreedyOptions {
  /** Hypotheses kept per image (k). k = 1 is greedy decoding. */
  beamSize?: number;
  /**
   * Length normalisation: finished captions are compared by logProb / length^alpha. A log-prob
   * only falls as words are added, so plain log-prob favours short captions; alpha = 0 keeps
   * that bias, alpha = 1 compares the mean log-prob per word. 0.7 is a common middle (Wu et al.
   * 2016 use 0.6-0.7 in their similar penalty).
   */
  alpha?: number;
}

/** A live hypothesis: which image it belongs to, and its row in the step's batch. */
interface Beam {
  image: number;
  hypothesis: Hypothesis;
}

/**
 * Beam search: keeps the k most likely partial captions per image, and returns per image the
 * finished caption with the best length-normalised log-prob (see `BeamOptions.alpha`).
 * An image is done when k of its hypotheses have ended (or at `maxLength`).
 */
export function beamSearchCaptions(decoder: DecoderRNN, imageEmbedding: tf.Tensor2D, text: CaptionText, options: BeamOptions = {}): Caption[] {
  const maxLength = options.maxLength ?? 20;
  const k = options.beamSize ?? 3;
  const alpha = options.alpha ?? 0.7;
  if (!Number.isInteger(k) || k < 1) throw new Error(`beam-search.ts: beamSize must be a positive integer, got ${k}`);
  const batch = imageEmbedding.shape[0];
  const vocab = decoder.config.vocabSize;
  const finished: Hypothesis[][] = Array.from({ length: batch }, () => []);
  // One row per image to begin with: the empty caption.
  let beams: Beam[] = Array.from({ length: batch }, (_, image) => ({ image, hypothesis: { tokens: [], logProb: 0 } }));
  let state = decoder.start(imageEmbedding);
  for (let t = 0; t < maxLength && beams.length > 0; t++) {
    const ids = beams.map((b) => b.hypothesis.tokens.at(-1) ?? START);
    const step = advance(decoder, ids, state, options);
    const logProbs = step.logProbs; // [rows, vocab], row-major
    const next: Beam[] = [];
    const parents: number[] = []; // for each beam in `next`, the row it continues
    for (let image = 0; image < batch; image++) {
      const rows = beams.flatMap((b, row) => (b.image === image ? [row] : []));
      if (rows.length === 0) continue; // this image is done
      // At most one candidate per row is <end>, so the best k + rows.length hold k that go on.
      let kept = 0;
      for (const { row, token, logProb } of bestCandidates(logProbs, rows, beams, vocab, k + rows.length)) {
        const hypothesis = { tokens: [...beams[row].hypothesis.tokens, token], logProb };
        if (token === END) {
          finished[image].push(hypothesis);
        } else {
          next.push({ image, hypothesis });
          parents.push(row);
          kept++;
        }
        if (finished[image].length >= k || kept >= k) break;
      }
      if (finished[image].length >= k) {
        // k captions have ended: the image is done, its live beams are dropped.
        next.splice(next.length - kept);
        parents.splice(parents.length - kept);
      }
    }
    state = selectRows(step.state, parents);
    beams = next;
  }
  tf.dispose(stateTensors(state));
  // Captions cut by maxLength compete with the finished ones.
  for (const b of beams) finished[b.image].push(b.hypothesis);
  const score = (h: Hypothesis) => h.logProb / Math.pow(h.tokens.length, alpha);
  return finished.map((hs) => toCaption(hs.reduce((best, h) => (score(h) > score(best) ? h : best)), text));
}

/** Keeps the given rows of the state, in the given order (a row may repeat), and disposes the old state. */
function selectRows(state: LSTMState, rows: number[]): LSTMState {
  const old = stateTensors(state);
  if (rows.length === old[0].shape[0] && rows.every((r, i) => r === i)) return state;
  const next = tf.tidy(() => {
    const index = tf.tensor1d(rows, "int32");
    const pick = (t: tf.Tensor2D) => tf.gather(t, index) as tf.Tensor2D; // [rows, hidden]
    return { h: state.h.map(pick), c: state.c.map(pick) };
  });
  tf.dispose(old);
  return next;
}

/**
 * The `n` best continuations (row, token) of the given rows by total log-prob, best first;
 * on a tie the earlier row and the smaller token come first (as in greedy.ts's argMax, so k = 1 is greedy).
 */
function bestCandidates(logProbs: Float32Array, rows: number[], beams: Beam[], vocab: number, n: number) {
  const best: { row: number; token: number; logProb: number }[] = [];
  for (const row of rows) {
    const base = beams[row].hypothesis.logProb;
    for (let token = 0; token < vocab; token++) {
      const logProb = base + logProbs[row * vocab + token];
      if (logProb === -Infinity) continue; // a masked word (<unk>): never a candidate
      if (best.length === n && logProb <= best[n - 1].logProb) continue;
      let at = best.length;
      while (at > 0 && logProb > best[at - 1].logProb) at--;
      best.splice(at, 0, { row, token, logProb });
      if (best.length > n) best.pop();
    }
  }
  return best;
}
