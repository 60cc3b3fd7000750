/**
 * The inputs every caption metric takes: tokenised references and one tokenised candidate
 * per image, keyed by image id (as a string, so ids from JSON keys and from COCO's numeric
 * `image_id` meet in one form). "Tokenised" means what pycocoevalcap's PTB tokenizer
 * gives: lower-case tokens joined by single spaces (see ptb-tokenize.ts).
 */

/** Image id → the reference captions of that image. */
export type References = ReadonlyMap<string, readonly string[]>;

/** Image id → the one candidate caption generated for that image. */
export type Candidates = ReadonlyMap<string, string>;

/**
 * The image ids to score, in the candidates' order, after checking that references and
 * candidates cover exactly the same images (pycocoevalcap asserts `gts.keys() == res.keys()`).
 */
export function sameImageIds(refs: References, candidates: Candidates, metric: string): string[] {
  const ids = [...candidates.keys()];
  for (const id of ids) {
    const imageRefs = refs.get(id);
    if (imageRefs === undefined) throw new Error(`${metric}: image ${id} has a candidate but no references`);
    if (imageRefs.length === 0) throw new Error(`${metric}: image ${id} has an empty list of references`);
  }
  if (refs.size !== ids.length) {
    const extra = [...refs.keys()].find((id) => !candidates.has(id));
    throw new Error(`${metric}: image ${extra} has references but no candidate`);
  }
  return ids;
}

/** The arithmetic mean of `values` (0 for none), as `np.mean` gives it. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}
