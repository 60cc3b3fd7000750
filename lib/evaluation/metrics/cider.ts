/**
 * CIDEr-D as the COCO caption evaluation computes it (pycocoevalcap cider/cider_scorer.py).
 *
 * Each caption becomes four TF-IDF vectors, one per n-gram order 1..4: an n-gram's weight
 * is its count times log(N) - log(max(1, df)), where N is the number of images scored and
 * df the number of those images whose references contain the n-gram. So the document
 * frequencies, and hence every score, depend on the set evaluated: scoring 5 images
 * gives other numbers than scoring the same 5 inside 5,000.
 *
 * Per image and per order, the candidate is compared with each reference by a cosine
 * similarity in which the candidate's weights are clipped by the reference's (the "-D":
 * repeating a good word does not help), multiplied by a gaussian penalty
 * exp(-delta^2 / (2 sigma^2)) on the length difference delta. The image's score is
 * 10 x the mean over orders of the mean over references; the corpus score is the mean
 * over images.
 */
import { type Candidates, type References, mean, sameImageIds } from "./captions";
import { type NgramCounts, countNgrams, ngramOrder, splitTokens } from "./ngrams";

export interface CiderOptions {
  /** Highest n-gram order (4). */
  n?: number;
  /** Standard deviation of the gaussian length penalty, in tokens (6). */
  sigma?: number;
}

export interface CiderResult {
  /** Mean CIDEr-D over images. */
  score: number;
  perImage: Map<string, number>;
}

/** The TF-IDF vectors of one caption: per order, n-gram → weight; their norms; its "length". */
interface TfIdf {
  vectors: Map<string, number>[]; // [order]
  norms: number[]; // [order]
  length: number;
}

/** Number of images whose references contain each n-gram (compute_doc_freq). */
function documentFrequencies(refCounts: readonly NgramCounts[][]): Map<string, number> {
  const df = new Map<string, number>();
  for (const imageRefs of refCounts) {
    const seen = new Set<string>();
    for (const counts of imageRefs) for (const gram of counts.keys()) seen.add(gram);
    for (const gram of seen) df.set(gram, (df.get(gram) ?? 0) + 1);
  }
  return df;
}

/** counts2vec: TF-IDF weights per order, the L2 norm per order, and the caption's length. */
function toTfIdf(counts: NgramCounts, df: Map<string, number>, logImages: number, n: number): TfIdf {
  const vectors = Array.from({ length: n }, () => new Map<string, number>());
  const squares = new Array<number>(n).fill(0);
  let length = 0;
  for (const [gram, termFrequency] of counts) {
    const order = ngramOrder(gram);
    const weight = termFrequency * (logImages - Math.log(Math.max(1, df.get(gram) ?? 0)));
    vectors[order - 1].set(gram, weight);
    squares[order - 1] += weight * weight;
    // The original counts the length in *bigrams* (its test is `n == 1` on a 0-based
    // order), i.e. max(0, words - 1). Kept, since it changes the length penalty for
    // empty and one-word captions.
    if (order === 2) length += termFrequency;
  }
  return { vectors, norms: squares.map(Math.sqrt), length };
}

/** Per-order clipped cosine similarity times the length penalty (sim). */
function similarity(candidate: TfIdf, ref: TfIdf, sigma: number): number[] {
  const delta = candidate.length - ref.length;
  const penalty = Math.exp(-(delta * delta) / (2 * sigma * sigma));
  return candidate.vectors.map((vector, k) => {
    let dot = 0;
    for (const [gram, weight] of vector) {
      const refWeight = ref.vectors[k].get(gram) ?? 0;
      dot += Math.min(weight, refWeight) * refWeight;
    }
    // An all-zero vector (e.g. no bigrams in a one-word caption) has similarity 0.
    if (candidate.norms[k] !== 0 && ref.norms[k] !== 0) dot /= candidate.norms[k] * ref.norms[k];
    return dot * penalty;
  });
}

/**
 * CIDEr-D with the document frequencies of a fixed set of references, built once: what the
 * self-critical training's reward needs (df of the training split, then any number of
 * candidates scored, one image at a time). `ciderD` below is this scorer with the df of the set
 * being evaluated, as the COCO evaluation does it.
 *
 *   new CiderDScorer(refs).score(imageId, "a dog runs on the grass")   // tokenised, as refs are
 */
export class CiderDScorer {
  private readonly n: number;
  private readonly sigma: number;
  private readonly df: Map<string, number>;
  private readonly logImages: number;
  /** Per image id, its references' TF-IDF vectors. */
  private readonly refVectors = new Map<string, TfIdf[]>();

  /** @param refs image id → tokenised references (each a string of space-separated tokens). */
  constructor(refs: References, options: CiderOptions = {}) {
    this.n = options.n ?? 4;
    this.sigma = options.sigma ?? 6;
    const ids = [...refs.keys()];
    const refCounts = ids.map((id) => refs.get(id)!.map((ref) => countNgrams(splitTokens(ref), this.n)));
    this.df = documentFrequencies(refCounts);
    this.logImages = Math.log(ids.length);
    ids.forEach((id, i) => this.refVectors.set(id, refCounts[i].map((counts) => toTfIdf(counts, this.df, this.logImages, this.n))));
  }

  /** CIDEr-D of one tokenised candidate against the references of `imageId`. */
  score(imageId: string, candidate: string): number {
    const refs = this.refVectors.get(imageId);
    if (!refs) throw new Error(`CIDEr-D: no references for image ${imageId}`);
    const vector = toTfIdf(countNgrams(splitTokens(candidate), this.n), this.df, this.logImages, this.n);
    const sums = new Array<number>(this.n).fill(0); // [order], summed over references
    for (const ref of refs) similarity(vector, ref, this.sigma).forEach((s, k) => (sums[k] += s));
    return (mean(sums) / refs.length) * 10;
  }
}

/** CIDEr-D of the candidates against the references (same image ids in both). */
export function ciderD(refs: References, candidates: Candidates, options: CiderOptions = {}): CiderResult {
  const ids = sameImageIds(refs, candidates, "CIDEr-D");
  const scorer = new CiderDScorer(new Map(ids.map((id) => [id, refs.get(id)!])), options);
  const perImage = new Map(ids.map((id) => [id, scorer.score(id, candidates.get(id)!)]));
  return { score: mean([...perImage.values()]), perImage };
}
