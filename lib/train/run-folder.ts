/**
 * A run folder, and starting, resuming and checkpointing the run it holds:
 *
 *   RUN_DIR/
 *     config.json          the settings the run really uses, a resume's overrides included
 *     training-log.jsonl   a record per step and per epoch (train-log.ts)
 *     checkpoints/         epoch-NNN/ at each epoch's end, step-NNNNNN/ where the run stopped
 *                          mid-epoch; best.json names the one with the best val CIDEr (io/checkpoint.ts)
 *     predictions/         val-epoch-NNN.json: each epoch's greedy captions of the val images
 *
 * A run folder holds one run. Resuming continues it with the settings it was started with
 * (resume-config.ts says which of them a resume may change); training from scratch into a folder
 * that already holds checkpoints is refused rather than overwriting them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type * as tf from "@tensorflow/tfjs";
import type { Captioner } from "../inference/captioner";
import type { CaptionLoader } from "../data/loader";
import type { CocoResult } from "../evaluation/metrics/evaluate";
import { listCheckpoints, recordIfBest, restoreOptimizer } from "../io/checkpoint";
import { writeJsonAtomically } from "../io/json-file";
import type { TrainConfig } from "./config";
import { readResumePoint, resumedConfig, type ResumePoint, type TrainState } from "./resume-config";
import type { EpochRecord } from "./train-log";

export type RunFiles = ReturnType<typeof runFiles>;

/** Files of a run folder. */
export function runFiles(runDir: string) {
  return {
    config: path.join(runDir, "config.json"),
    log: path.join(runDir, "training-log.jsonl"),
    checkpoints: path.join(runDir, "checkpoints"),
    predictions: path.join(runDir, "predictions"),
  };
}

/**
 * The run to train: a new one (refused where a run already has checkpoints), or the one that
 * `resumeFrom` belongs to, with its own settings and the overrides that `requested` makes.
 */
export function openRun(requested: TrainConfig, resumeFrom: string | undefined, say: (line: string) => void): { config: TrainConfig; resume?: ResumePoint } {
  if (!resumeFrom) {
    assertNoRunIn(requested.runDir);
    return { config: requested };
  }
  const resume = readResumePoint(resumeFrom);
  const { config, changes } = resumedConfig(resume, requested);
  if (changes.length) say(`resuming with ${changes.join(", ")}`);
  return { config, resume };
}

/** Refuses to train from scratch where a run has checkpoints: it would overwrite them and its log. */
function assertNoRunIn(runDir: string): void {
  const checkpoints = listCheckpoints(runFiles(runDir).checkpoints);
  if (checkpoints.length === 0) return;
  throw new Error(
    `${runDir} already holds a run (checkpoints ${checkpoints.join(", ")}): continue it with ` +
      `train(config, { resume: ${JSON.stringify(runDir)} }) or npm run train -- --resume ${runDir}, or train into a new run folder`,
  );
}

/** Makes the run folder (and its predictions/ folder); returns its files. */
export function makeRunFolder(runDir: string): RunFiles {
  const files = runFiles(runDir);
  fs.mkdirSync(files.predictions, { recursive: true });
  return files;
}

/**
 * Where the loop starts: at step 0, or where the checkpoint resumed from stopped, with the data
 * loader's place and Adam's moments restored (the model loads its weights itself).
 */
export async function startingState(resume: ResumePoint | undefined, loader: CaptionLoader, optimizer: tf.Optimizer, say: (line: string) => void): Promise<TrainState> {
  const state: TrainState = { step: 0, epoch: 0, stepInEpoch: 0, seconds: 0, loader: loader.state() };
  if (!resume) return state;
  Object.assign(state, resume.state);
  loader.setState(state.loader);
  await restoreOptimizer(resume.checkpoint, optimizer);
  say(`resumed from ${resume.checkpoint} at step ${state.step} (epoch ${state.epoch + 1}, step ${state.stepInEpoch} of it)`);
  return state;
}

/** What a checkpoint holds: the weights, Adam's state, and the loop's place (the loader's included). */
export interface RunParts {
  config: TrainConfig;
  model: Captioner;
  optimizer: tf.Optimizer;
  loader: CaptionLoader;
  state: TrainState;
}

/** Writes `checkpoints/<label>` (keeping the newest `keepCheckpoints`); returns its folder. */
export async function writeCheckpoint(files: RunFiles, label: string, { config, model, optimizer, loader, state }: RunParts): Promise<string> {
  state.loader = loader.state();
  return model.save(files.checkpoints, label, { config, state, optimizer, keep: config.keepCheckpoints });
}

/** The checkpoint labels: `epoch-003` after epoch 3, `step-000420` where a run stopped mid-epoch. */
export const epochLabel = (epoch: number) => `epoch-${pad(epoch, 3)}`;
export const stepLabel = (step: number) => `step-${pad(step, 6)}`;

/** Names `checkpoint` the best so far if its val CIDEr is: the model to keep is the one that captions best, not the last. */
export function recordBest(files: RunFiles, checkpoint: string, record: EpochRecord): void {
  if (record.metrics.CIDEr === undefined) return;
  recordIfBest(files.checkpoints, { label: path.basename(checkpoint), metric: "CIDEr", value: record.metrics.CIDEr });
}

/** Writes epoch `epoch`'s val captions to `predictions/val-epoch-NNN.json`. */
export function writePredictions(files: RunFiles, epoch: number, results: CocoResult[]): void {
  writeJsonAtomically(path.join(files.predictions, `val-epoch-${pad(epoch, 3)}.json`), results, 1);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}
