/**
 * Validation at each epoch's end: the loss on the val images' reference captions, and their greedy
 * captions, decoded as the model will be, with their BLEU/ROUGE-L/CIDEr (and, on synthetic scenes,
 * precision/recall of the objects named); then the epoch's record for the log.
 */
import type { SplitData } from "../data/dataset";
import type { DataSource } from "../features/image-source";
import { captionImages, flatScores, referenceLoss, scoreCaptions, type SplitEvaluation } from "../evaluation/evaluate-split";
import { perplexity } from "../model/loss";
import type { TrainState } from "./resume-config";
import { writePredictions, type RunFiles } from "./run-folder";
import { secondsSince, type Run } from "./steps";
import type { EpochRecord } from "./train-log";

export interface Validation {
  /** NaN when the run validates on no images (`valImages` 0). */
  valLoss: number;
  evaluation?: SplitEvaluation;
  /** How long validation took, writing the captions included. */
  seconds: number;
}

/**
 * Validates the epoch just trained on the first `valImages` val images, and writes their captions
 * to the run's predictions/. Returns "aborted", having done neither, when the abort signal stops
 * it: it can take minutes (5,000 COCO images), too long to make Ctrl-C wait.
 */
export async function validateEpoch(run: Run, valSplit: SplitData, valData: DataSource, files: RunFiles, signal?: AbortSignal): Promise<Validation | "aborted"> {
  const { config, model, state } = run;
  const started = performance.now();
  if (config.valImages <= 0) return { valLoss: NaN, seconds: secondsSince(started) };
  const ids = valSplit.index.images.slice(0, config.valImages).map((i) => i.id);
  const noDanglingEnd = config.selfCritical?.noDanglingEnd ?? false; // validate as the model will be decoded
  let valLoss: number;
  let evaluation: SplitEvaluation;
  try {
    valLoss = await referenceLoss(model, valSplit, valData, ids, { signal });
    const captions = await captionImages(model, valData, ids, { maxLength: config.maxCaptionLength, noDanglingEnd, signal });
    evaluation = scoreCaptions(valSplit, captions);
  } catch (error) {
    if (signal?.aborted) return "aborted";
    throw error;
  }
  writePredictions(files, state.epoch + 1, evaluation.results);
  return { valLoss, evaluation, seconds: secondsSince(started) };
}

/** The record of epoch `state.epoch` (trained in `phase`, `state` having counted it done) for the log. */
export function epochRecord(phase: EpochRecord["phase"], state: TrainState, validation: Validation): EpochRecord {
  const { valLoss, evaluation, seconds } = validation;
  return {
    kind: "epoch",
    phase,
    epoch: state.epoch,
    step: state.step,
    valLoss,
    valPerplexity: perplexity(valLoss),
    metrics: evaluation ? flatScores(evaluation) : {},
    seconds,
  };
}
