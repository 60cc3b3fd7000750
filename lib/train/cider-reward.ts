/**
 * The reward of self-critical training: a caption's CIDEr-D against its image's reference
 * captions, the metric the model is judged by (lib/evaluation/metrics/cider.ts, equal to the
 * official COCO evaluation's).
 *
 * Two choices make it the evaluation's own number, not an approximation of it:
 * - the tokenizer: candidates and references go through the PTB tokenizer that the scorer uses
 *   (lower-cased, punctuation removed), so "a dog runs." and the reference "A dog runs ." agree;
 * - the document frequencies: those of the training split's references (all its images), fixed
 *   once, as in Rennie et al. 2017. A sampled caption's reward then does not depend on which
 *   other images share its batch.
 */
import { CiderDScorer } from "../evaluation/metrics/cider";
import { ptbTokenizeCaptions } from "../evaluation/metrics/ptb-tokenize";

export class CiderReward {
  private readonly scorer: CiderDScorer;

  /** @param references image id → its raw reference captions (a split's `captionsByImageId`). */
  constructor(references: ReadonlyMap<number, readonly string[]>) {
    const ids = [...references.keys()].filter((id) => references.get(id)!.length > 0);
    if (ids.length === 0) throw new Error("cider-reward.ts: no reference captions to reward against");
    // One tokenizer run over all the references, as the evaluation does (ptb-tokenize.ts).
    const tokens = ptbTokenizeCaptions(ids.flatMap((id) => references.get(id)!));
    const refs = new Map<string, string[]>();
    let next = 0;
    for (const id of ids) {
      const count = references.get(id)!.length;
      refs.set(String(id), tokens.slice(next, next + count));
      next += count;
    }
    this.scorer = new CiderDScorer(refs);
  }

  /** CIDEr-D of each caption (raw text, e.g. "a dog runs.") against the references of the image in the same row. */
  score(imageIds: readonly number[], captions: readonly string[]): number[] {
    if (imageIds.length !== captions.length) {
      throw new Error(`cider-reward.ts: ${imageIds.length} image ids for ${captions.length} captions`);
    }
    const tokenized = ptbTokenizeCaptions(captions);
    return tokenized.map((caption, row) => this.scorer.score(String(imageIds[row]), caption));
  }
}
