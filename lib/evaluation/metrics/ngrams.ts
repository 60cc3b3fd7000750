/**
 * N-gram counting shared by BLEU and CIDEr-D.
 *
 * pycocoevalcap's `precook` splits a tokenised caption on whitespace and counts every
 * n-gram of length 1..n. An n-gram is keyed here by its words joined with a single space
 * (tokens never contain spaces, so the key is unambiguous); its order, which BLEU and
 * CIDEr-D need to file it, is the number of words in the key.
 */

/** Counts of the n-grams of one caption: key "w1 w2 ..." → count. */
export type NgramCounts = Map<string, number>;

/** The tokens of a tokenised caption, split on runs of whitespace like Python's `str.split()`. */
export function splitTokens(caption: string): string[] {
  const trimmed = caption.trim();
  return trimmed === "" ? [] : trimmed.split(/\s+/);
}

/** Counts every n-gram of order 1..maxN in `words`. */
export function countNgrams(words: readonly string[], maxN: number): NgramCounts {
  const counts: NgramCounts = new Map();
  for (let k = 1; k <= maxN; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const key = words.slice(i, i + k).join(" ");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** The order (number of words) of an n-gram key made by `countNgrams`. */
export function ngramOrder(key: string): number {
  let order = 1;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 32) order++;
  return order;
}
