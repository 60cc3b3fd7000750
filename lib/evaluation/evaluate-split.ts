/**
 * Evaluating a model on a split: caption every image, score the captions against the references
 * (BLEU, ROUGE-L, CIDEr-D, as the COCO evaluation does), measure the loss on the references and,
 * on the synthetic scenes, check each caption against what is really in the picture.
 */
import * as tf from "@tensorflow/tfjs";
import type { Captioner, CaptionOptions } from "../inference/captioner";
import { batchTensors, CaptionLoader, scoredTokens, type Batch, type CaptionPair } from "../data/loader";
import { captionLoss } from "../model/loss";
import type { DataSource } from "../features/image-source";
import { captionPairs, type SplitData } from "../data/dataset";
import type { Caption } from "../inference/greedy";
import { evaluateResults, referenceCaptions, type CocoResult, type CocoScores } from "./metrics/evaluate";
import { sceneScores, type SceneScores } from "./metrics/scene-score";

export interface SplitEvaluation {
  /** The captions in COCO results format, as `npm run eval` reads them. */
  results: CocoResult[];
  captions: Map<number, Caption>;
  /** Corpus scores (absent when the split has no reference captions, as COCO's test split). */
  scores?: CocoScores;
  /** Per-image scores, keyed by image id as a string. */
  perImage?: Map<string, CocoScores>;
  /** Truth to the scene (synthetic data only). */
  scene?: SceneScores;
}

/** How evaluation goes through its images: batch size, and a signal that stops it between batches. */
export interface PassOptions {
  batchSize?: number;
  /** When aborted, the pass throws the signal's reason before its next batch. */
  signal?: AbortSignal;
}

/** Captions the given images (all of the split by default), batch by batch. */
export async function captionImages(
  model: Captioner,
  data: DataSource,
  imageIds: number[],
  options: CaptionOptions & PassOptions = {},
): Promise<Map<number, Caption>> {
  const loader = imageLoader(model, data, [], imageIds, 0, options.batchSize ?? 32);
  const captions = new Map<number, Caption>();
  for await (const batch of loader.epoch()) {
    options.signal?.throwIfAborted();
    const images = tf.tensor(batch.images, batch.imageShape);
    const out = model.captionBatch(images, options);
    images.dispose();
    batch.imageIds.forEach((id, row) => captions.set(id, out[row]));
  }
  return captions;
}

/** Mean cross-entropy per token of the reference captions of `imageIds` (no dropout). */
export async function referenceLoss(
  model: Captioner,
  split: SplitData,
  data: DataSource,
  imageIds: number[],
  { batchSize = 64, signal }: PassOptions = {},
): Promise<number> {
  const loader = imageLoader(model, data, captionPairs(split), imageIds, Infinity, batchSize);
  let total = 0;
  let tokens = 0;
  for await (const batch of loader.epoch()) {
    signal?.throwIfAborted();
    if (batch.time < 2) continue;
    const { loss, count } = batchLoss(model, batch);
    total += loss * count;
    tokens += count;
  }
  return tokens > 0 ? total / tokens : NaN;
}

/** Scores captions against the split's references and, if it has them, its scenes. */
export function scoreCaptions(split: SplitData, captions: Map<number, Caption>): SplitEvaluation {
  const results = [...captions].map(([image_id, c]) => ({ image_id, caption: c.caption }));
  const evaluation: SplitEvaluation = { results, captions };
  if (split.index.captions.length > 0) {
    const { scores, perImage } = evaluateResults(referenceCaptions(split.index), results, {
      results: `${split.split} predictions`,
      refs: split.index.file,
    });
    Object.assign(evaluation, { scores, perImage });
  }
  if (split.scenes) {
    const wanted = new Set(captions.keys());
    const scenes = split.scenes.filter((s) => wanted.has(s.imageId));
    evaluation.scene = sceneScores(new Map(results.map((r) => [r.image_id, r.caption])), scenes);
  }
  return evaluation;
}

/** Captions and scores: the whole evaluation of a split in one call. */
export async function evaluateSplit(
  model: Captioner,
  split: SplitData,
  data: DataSource,
  options: CaptionOptions & PassOptions & { imageIds?: number[] } = {},
): Promise<SplitEvaluation> {
  const imageIds = options.imageIds ?? split.index.images.map((i) => i.id);
  return scoreCaptions(split, await captionImages(model, data, imageIds, options));
}

/** The headline numbers of an evaluation as one flat record (for logs and tables). */
export function flatScores(e: SplitEvaluation): Record<string, number> {
  return {
    ...(e.scores ?? {}),
    ...(e.scene ? { scenePrecision: e.scene.precision, sceneRecall: e.scene.recall } : {}),
  };
}

function imageLoader(
  model: Captioner,
  data: DataSource,
  captions: CaptionPair[],
  imageIds: number[],
  captionsPerImage: number,
  batchSize: number,
) {
  return new CaptionLoader({
    captions,
    imageIds,
    captionsPerImage,
    vocab: model.vocab,
    source: data.source,
    imageShape: data.shape,
    batchSize,
    seed: 0,
    mode: "images",
  });
}

/** The mean loss of a batch's captions and how many tokens it scored. */
function batchLoss(model: Captioner, batch: Batch): { loss: number; count: number } {
  const scalar = tf.tidy(() => {
    const { images, tokens, mask } = batchTensors(batch);
    return captionLoss(model.decoder.forward(model.embed(images), tokens), tokens, mask);
  });
  const loss = scalar.dataSync()[0];
  scalar.dispose();
  return { loss, count: scoredTokens(batch) };
}
