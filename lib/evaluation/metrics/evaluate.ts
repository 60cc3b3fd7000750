/**
 * The COCO caption evaluation end to end: a results file against reference captions.
 *
 * Mirrors pycocoevalcap's COCOEvalCap.evaluate(): only the images that have a result are
 * scored; references and results are tokenised with the official PTB tokenizer
 * (ptb-tokenize.ts), each side in one run and in the official order (the reference file's
 * images); then BLEU-1..4, ROUGE-L and CIDEr-D are computed and reported under the official
 * key names. METEOR and SPICE (Java tools) are not computed.
 *
 * Results format (what training and `npm run caption -- --results` write):
 *   [{ "image_id": 42, "caption": "a dog on a couch" }, ...]   one entry per image.
 */
import { readJson } from "../../io/json-file";
import { type CocoCaptionIndex } from "../../data/coco";
import { bleu } from "./bleu";
import { type Candidates, type References } from "./captions";
import { ciderD } from "./cider";
import { ptbTokenizeCaptions } from "./ptb-tokenize";
import { readReferenceCaptions } from "./references";
import { rouge } from "./rouge";

/** The official metric names, in the order the COCO evaluation prints them. */
export const METRIC_NAMES = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
export type CocoScores = Record<MetricName, number>;

export interface Evaluation {
  /** Corpus scores. */
  scores: CocoScores;
  /**
   * Per image id (as a string): ROUGE_L and CIDEr as pycocoevalcap gives them per image
   * (CIDEr with the document frequencies of the whole evaluated set); Bleu_n is the
   * corpus formula applied to that image alone.
   */
  perImage: Map<string, CocoScores>;
}

/** One entry of a COCO results file. */
export interface CocoResult {
  image_id: number;
  caption: string;
}

/** Scores candidates against references, both already tokenised (the fixture's case). */
export function scoreTokenized(refs: References, candidates: Candidates): Evaluation {
  const b = bleu(refs, candidates);
  const r = rouge(refs, candidates);
  const c = ciderD(refs, candidates);
  const scoresOf = (bleus: number[], rougeL: number, cider: number): CocoScores => ({
    Bleu_1: bleus[0],
    Bleu_2: bleus[1],
    Bleu_3: bleus[2],
    Bleu_4: bleus[3],
    ROUGE_L: rougeL,
    CIDEr: cider,
  });
  const perImage = new Map<string, CocoScores>();
  for (const id of candidates.keys()) {
    perImage.set(id, scoresOf(b.perImage.get(id)!, r.perImage.get(id)!, c.perImage.get(id)!));
  }
  return { scores: scoresOf(b.scores, r.score, c.score), perImage };
}

/** Describes a JSON value briefly for an error message. */
function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Checks that `value` is a COCO results list; errors name the file, the entry and the field. */
export function parseResults(value: unknown, file: string): CocoResult[] {
  if (!Array.isArray(value)) {
    throw new Error(`${file}: a results file must be a JSON array of {"image_id", "caption"}, got ${describe(value)}`);
  }
  if (value.length === 0) throw new Error(`${file}: the results list is empty`);
  const firstEntry = new Map<number, number>();
  return value.map((entry: unknown, i) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw new Error(`${file}: entry ${i}: expected an object {"image_id", "caption"}, got ${describe(entry)}`);
    }
    const { image_id: imageId, caption } = entry as Record<string, unknown>;
    if (typeof imageId !== "number" || !Number.isInteger(imageId)) {
      throw new Error(`${file}: entry ${i}: "image_id" must be an integer, got ${describe(imageId)}`);
    }
    if (typeof caption !== "string") {
      throw new Error(`${file}: entry ${i}: "caption" must be a string, got ${describe(caption)}`);
    }
    const first = firstEntry.get(imageId);
    if (first !== undefined) {
      throw new Error(`${file}: entry ${i}: image_id ${imageId} already has a caption (entry ${first}); one caption per image`);
    }
    firstEntry.set(imageId, i);
    return { image_id: imageId, caption };
  });
}

/** The reference captions of a parsed COCO captions file: image id → captions (raw text); images without captions left out. */
export function referenceCaptions(index: CocoCaptionIndex): Map<string, string[]> {
  const refs = new Map<string, string[]>();
  for (const [imageId, captions] of index.captionsByImageId) {
    if (captions.length > 0) refs.set(String(imageId), captions.map((c) => c.caption));
  }
  return refs;
}

/**
 * Scores results against raw reference captions (image id → captions, in the reference
 * file's image order): only the images with a result are scored, and a result for an image
 * without references is an error. Both sides are tokenised first, as pycocoevalcap does it:
 * all references in one run, all results in another, image by image in the references'
 * order (the tokenizer looks across a line break, so the order can matter).
 */
export function evaluateResults(
  references: ReadonlyMap<string, readonly string[]>,
  results: readonly CocoResult[],
  names: { results: string; refs: string } = { results: "results", refs: "references" },
): Evaluation {
  const captionOf = new Map<string, string>();
  results.forEach((result, i) => {
    const key = String(result.image_id);
    if (!references.has(key)) {
      throw new Error(`${names.results}: entry ${i}: image_id ${key} has no reference captions in ${names.refs}`);
    }
    captionOf.set(key, result.caption);
  });
  const ids = [...references.keys()].filter((id) => captionOf.has(id));
  const refTokens = ptbTokenizeCaptions(ids.flatMap((id) => references.get(id)!));
  const candidateTokens = ptbTokenizeCaptions(ids.map((id) => captionOf.get(id)!));
  const refs = new Map<string, string[]>();
  let next = 0;
  for (const id of ids) {
    const count = references.get(id)!.length;
    refs.set(id, refTokens.slice(next, next + count));
    next += count;
  }
  const candidates = new Map(ids.map((id, i) => [id, candidateTokens[i]]));
  return scoreTokenized(refs, candidates);
}

/** `npm run eval` in one call: a COCO captions file and a results file → scores. */
export function evaluateFiles(refsFile: string, resultsFile: string): Evaluation {
  const references = readReferenceCaptions(refsFile);
  const results = parseResults(readJson(resultsFile), resultsFile);
  return evaluateResults(references, results, { results: resultsFile, refs: refsFile });
}
