/**
 * What a set of captions looks like, beside what it scores: how long they are, how many differ,
 * and the failures that training on a metric is known to produce (self-critical training, see
 * lib/train/self-critical.ts): captions cut off mid-phrase ("a man in a"), the same word twice in a
 * row ("a dog dog"), and words the vocabulary lacks (`<unk>`).
 */

/** Words a finished English caption does not end on: an ending on one means the caption was cut. */
const DANGLING = new Set(["a", "an", "the", "and", "in", "on", "of", "with", "at", "to", "his", "her", "their", "its", "is", "are", "while", "through", "into", "for", "by", "from"]);

export interface CaptionStats {
  captions: number;
  /** Mean number of words (punctuation left out). */
  meanWords: number;
  /** Distinct captions over captions: 1 when no two are the same. */
  distinctShare: number;
  /** Share ending on a word a finished phrase does not end on ("a man in a"). */
  unfinishedShare: number;
  /** Share with the same word twice in a row. */
  repeatedWordShare: number;
  /** Share containing `<unk>`. */
  unkShare: number;
}

export function captionStats(captions: readonly string[]): CaptionStats {
  const words = captions.map((c) => c.toLowerCase().replace(/<unk>/g, "UNK").match(/[a-z0-9'-]+|UNK/gi) ?? []);
  const counts = new Set(captions);
  const share = (test: (i: number) => boolean) => captions.filter((_, i) => test(i)).length / Math.max(1, captions.length);
  return {
    captions: captions.length,
    meanWords: words.reduce((n, w) => n + w.length, 0) / Math.max(1, captions.length),
    distinctShare: counts.size / Math.max(1, captions.length),
    unfinishedShare: share((i) => words[i].length === 0 || DANGLING.has(words[i].at(-1)!)),
    repeatedWordShare: share((i) => words[i].some((w, j) => j > 0 && w === words[i][j - 1])),
    unkShare: share((i) => captions[i].includes("<unk>")),
  };
}
