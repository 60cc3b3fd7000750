/**
 * ROUGE-L as the COCO caption evaluation computes it (pycocoevalcap rouge/rouge.py).
 *
 * Per image: the longest common subsequence (LCS) of the candidate with each reference
 * gives a precision (LCS / candidate length) and a recall (LCS / reference length); the
 * best precision and the best recall over the references (taken separately, possibly
 * from different references) are combined into an F-measure weighted by beta = 1.2,
 * which favours recall. The corpus score is the mean over images.
 */
import { type Candidates, type References, mean, sameImageIds } from "./captions";

/** Weight of recall against precision in the F-measure. */
const BETA = 1.2;

export interface RougeResult {
  /** Mean ROUGE-L over images. */
  score: number;
  perImage: Map<string, number>;
}

/** Length of the longest common subsequence of two token lists (dynamic programming, one row kept). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Array<number>(b.length + 1).fill(0); // row[j] = LCS(a[0..i), b[0..j))
  for (let i = 1; i <= a.length; i++) {
    let diagonal = 0; // LCS(a[0..i-1), b[0..j-1))
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = a[i - 1] === b[j - 1] ? diagonal + 1 : Math.max(above, row[j - 1]);
      diagonal = above;
    }
  }
  return row[b.length];
}

/**
 * ROUGE-L of one candidate against its references (calc_score). Tokens are split on single
 * spaces as in the original, so an empty candidate is one empty token and scores 0.
 */
export function rougeL(candidate: string, refs: readonly string[]): number {
  const candidateTokens = candidate.split(" ");
  let bestPrecision = 0;
  let bestRecall = 0;
  for (const ref of refs) {
    const refTokens = ref.split(" ");
    const lcs = lcsLength(refTokens, candidateTokens);
    bestPrecision = Math.max(bestPrecision, lcs / candidateTokens.length);
    bestRecall = Math.max(bestRecall, lcs / refTokens.length);
  }
  if (bestPrecision === 0 || bestRecall === 0) return 0;
  return ((1 + BETA ** 2) * bestPrecision * bestRecall) / (bestRecall + BETA ** 2 * bestPrecision);
}

/** Mean ROUGE-L of the candidates against the references (same image ids in both). */
export function rouge(refs: References, candidates: Candidates): RougeResult {
  const ids = sameImageIds(refs, candidates, "ROUGE-L");
  const perImage = new Map<string, number>();
  for (const id of ids) perImage.set(id, rougeL(candidates.get(id)!, refs.get(id)!));
  return { score: mean([...perImage.values()]), perImage };
}
