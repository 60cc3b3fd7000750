/**
 * BLEU-1..4 as the COCO caption evaluation computes it (pycocoevalcap bleu/bleu_scorer.py).
 *
 * It is a corpus BLEU: clipped n-gram matches and candidate n-gram counts are summed
 * over all images first, and only then turned into precisions. Details that change the
 * numbers, all kept here:
 * - clipping: a candidate n-gram counts at most as often as it occurs in the one reference
 *   where it occurs most;
 * - the brevity penalty uses, per image, the "closest" reference length (ties go to the
 *   shorter reference), summed over the corpus: exp(1 - r/c) when c < r;
 * - each precision is (correct + 1e-15) / (guess + 1e-9): the tiny constants keep a
 *   corpus with no matches at a (very small) number rather than dividing by zero, so
 *   BLEU-4 of a bad corpus comes out as 1e-14, not 0.
 */
import { type Candidates, type References, sameImageIds } from "./captions";
import { countNgrams, ngramOrder, splitTokens } from "./ngrams";

/** Added to the numerator of each precision ("so that if guess is 0 still return 0"). */
const TINY = 1e-15;
/** Added to the denominator of each precision and of the length ratio. */
const SMALL = 1e-9;

/** What BLEU needs to know about one image: lengths and per-order match counts. */
export interface BleuStats {
  /** Number of candidate tokens. */
  testLength: number;
  /** Length of the reference closest in length to the candidate. */
  refLength: number;
  /** guess[k]: candidate n-grams of order k+1. */
  guess: number[];
  /** correct[k]: candidate n-grams of order k+1 that the references clip-match. */
  correct: number[];
}

export interface BleuResult {
  /** Corpus scores [BLEU-1, ..., BLEU-n]. */
  scores: number[];
  /** Per image, the same formula applied to that image alone. */
  perImage: Map<string, number[]>;
}

/** The reference length closest to `testLength`; on a tie the shorter one (Python's min over (|l-c|, l)). */
export function closestRefLength(refLengths: readonly number[], testLength: number): number {
  let best = refLengths[0];
  for (const l of refLengths) {
    const d = Math.abs(l - testLength);
    const bestD = Math.abs(best - testLength);
    if (d < bestD || (d === bestD && l < best)) best = l;
  }
  return best;
}

/** Lengths and clipped match counts of one candidate against its references (cook_refs + cook_test). */
export function bleuStats(candidate: string, refs: readonly string[], n = 4): BleuStats {
  const maxRefCounts = new Map<string, number>();
  const refLengths: number[] = [];
  for (const ref of refs) {
    const words = splitTokens(ref);
    refLengths.push(words.length);
    for (const [gram, count] of countNgrams(words, n)) {
      maxRefCounts.set(gram, Math.max(maxRefCounts.get(gram) ?? 0, count));
    }
  }
  const words = splitTokens(candidate);
  const guess = Array.from({ length: n }, (_, k) => Math.max(0, words.length - k));
  const correct = new Array<number>(n).fill(0);
  for (const [gram, count] of countNgrams(words, n)) {
    correct[ngramOrder(gram) - 1] += Math.min(maxRefCounts.get(gram) ?? 0, count);
  }
  return { testLength: words.length, refLength: closestRefLength(refLengths, words.length), guess, correct };
}

/** BLEU-1..n from summed statistics (compute_score): geometric means of precisions times the brevity penalty. */
export function bleuFromStats(stats: readonly BleuStats[], n = 4): number[] {
  let testLength = 0;
  let refLength = 0;
  const guess = new Array<number>(n).fill(0);
  const correct = new Array<number>(n).fill(0);
  for (const s of stats) {
    testLength += s.testLength;
    refLength += s.refLength;
    for (let k = 0; k < n; k++) {
      guess[k] += s.guess[k];
      correct[k] += s.correct[k];
    }
  }
  const ratio = (testLength + TINY) / (refLength + SMALL);
  const brevityPenalty = ratio < 1 ? Math.exp(1 - 1 / ratio) : 1;
  const scores: number[] = [];
  let product = 1;
  for (let k = 0; k < n; k++) {
    product *= (correct[k] + TINY) / (guess[k] + SMALL);
    scores.push(product ** (1 / (k + 1)) * brevityPenalty);
  }
  return scores;
}

/**
 * Corpus BLEU-1..n of the candidates against the references (same image ids in both).
 * Per-image scores are the same formula on one image; pycocoevalcap's own per-image list
 * holds single-order precisions (and each twice), so it is not reproduced.
 */
export function bleu(refs: References, candidates: Candidates, n = 4): BleuResult {
  const ids = sameImageIds(refs, candidates, "BLEU");
  const perImage = new Map<string, number[]>();
  const stats = ids.map((id) => {
    const s = bleuStats(candidates.get(id)!, refs.get(id)!, n);
    perImage.set(id, bleuFromStats([s], n));
    return s;
  });
  return { scores: bleuFromStats(stats, n), perImage };
}
