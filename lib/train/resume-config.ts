/**
 * Resuming a run: which settings it keeps, and which a caller may change.
 *
 * `npm run train -- --resume RUN_DIR` alone, or `train(config, { resume })` with the run's own
 * settings, continues the run exactly as it was configured: every setting comes from the
 * checkpoint (`checkpoint.json` → `config`), and the run ends as if it had never stopped. A setting
 * given with the resume that differs from the checkpoint's is an explicit override. Some may change
 * mid-run: the schedule, the learning rate, what validation and the console show. The others would
 * make the checkpoint mean something else (its weights' shapes, its vocabulary, the data loader's
 * saved place in the data) and are refused, saying why. RESUME_RULES is the one table of which is which.
 */
import * as path from "node:path";
import { readCheckpointMeta, resolveCheckpoint } from "../io/checkpoint";
import { parseTrainConfig, type TrainConfig } from "./config";
import type { LoaderState } from "../data/loader";

/** What a checkpoint records of the loop, to resume it. */
export interface TrainState {
  /** Steps done in total. */
  step: number;
  /** Epochs completed. */
  epoch: number;
  /** Steps done in the current epoch. */
  stepInEpoch: number;
  /** Where the data loader stands (its sampler and RNG). */
  loader: LoaderState;
  /** Training seconds so far, over all runs. */
  seconds: number;
}

export interface ResumeRule<V> {
  /** Whether a resumed run may take another value than the checkpoint's. */
  override: boolean;
  /** What the setting means for a resumed run: why it may change, or why not. */
  why: string;
  /** For an allowed override: why this value cannot be used at this point of the run, if it cannot. */
  refuse?(value: V, state: TrainState): string | undefined;
  /** Whether two values are the same setting (default: the same JSON). */
  same?(a: V, b: V): boolean;
}

const samePath = (a: string, b: string) => path.resolve(a) === path.resolve(b);
const allowed = <V>(why: string, refuse?: ResumeRule<V>["refuse"]): ResumeRule<V> => ({ override: true, why, refuse });
const refused = <V>(why: string, same?: ResumeRule<V>["same"]): ResumeRule<V> => ({ override: false, why, same });

const MODEL_REBUILT = "the model is rebuilt from the checkpoint's own model settings";
const WEIGHT_SHAPES = "the checkpoint's weights have the shapes it gives";
const DATA_STREAM = "the data loader's saved position and random state are a place in this exact stream of batches";

/** Every setting of TrainConfig, and whether a resumed run may change it. */
export const RESUME_RULES: { [K in keyof TrainConfig]: ResumeRule<TrainConfig[K]> } = {
  // The schedule: it may be extended or cut, or its step size changed, from the next step on.
  epochs: allowed("the run goes on (or stops) at this many epochs", (epochs, state) =>
    epochs < state.epoch ? `the run has already done ${state.epoch} epochs` : undefined,
  ),
  stepsPerEpoch: allowed("the epochs from the current one on have this many steps"),
  learningRate: allowed("Adam takes steps of this size from the next step on, with its moments kept"),
  lrDecay: allowed("the step size follows this schedule from the next step on"),
  clipNorm: allowed("gradients are clipped to this norm from the next step on"),
  selfCritical: allowed("the self-critical phase after the cross-entropy epochs: added, extended or retuned from the next step on"),

  // Validation, checkpoints and the console: they do not touch the weights.
  valImages: allowed("validation scores this many images from the next epoch end on"),
  maxCaptionLength: allowed("validation captions stop at this length from the next epoch end on"),
  printEvery: allowed("only what the console shows"),
  keepCheckpoints: allowed("only how many old checkpoints are kept"),

  // The model: a checkpoint loads only into the model it was saved from.
  encoder: refused(WEIGHT_SHAPES),
  embedSize: refused(WEIGHT_SHAPES),
  hiddenSize: refused(WEIGHT_SHAPES),
  numLayers: refused(WEIGHT_SHAPES),
  vocabThreshold: refused("the checkpoint's vocabulary was built with it"),
  dropout: refused(MODEL_REBUILT),
  wordLoss: refused(`${MODEL_REBUILT} (the word-presence head exists only when it is above 0)`),

  // The data and its order.
  dataset: refused("the model and its vocabulary were trained on this dataset"),
  dataRoot: refused("the model and its vocabulary were trained on the data there", samePath),
  featureDir: allowed("only where the frozen backbone's features are cached (their fingerprint is checked)"),
  syntheticImages: refused("the synthetic dataset is generated with this many images"),
  seed: refused("the synthetic dataset and each step's dropout masks follow from it"),
  batchSize: refused(`${DATA_STREAM} (and an epoch's length follows from it)`),
  batching: refused(DATA_STREAM),
  augment: refused(DATA_STREAM),
  featureCache: refused(DATA_STREAM),

  // Where the run lives.
  runDir: refused(
    "a run goes on in the folder that holds its checkpoints and log (to branch a run, copy its folder and resume the copy)",
    samePath,
  ),
};

/** A checkpoint to resume from, and the run it belongs to. */
export interface ResumePoint {
  /** The checkpoint folder: `<run folder>/checkpoints/<label>`. */
  checkpoint: string;
  /**
   * The settings the run was trained with (`checkpoint.json` → `config`), but for `runDir`: the
   * run folder that holds the checkpoint now, where the resumed run goes on.
   */
  config: TrainConfig;
  /** Where the loop stood. */
  state: TrainState;
}

/** Finds and reads the checkpoint that `where` means (a run folder, or one of its checkpoints). */
export function readResumePoint(where: string): ResumePoint {
  const checkpoint = resolveCheckpoint(where);
  const file = path.join(checkpoint, "checkpoint.json");
  const meta = readCheckpointMeta<unknown, Partial<TrainState> | undefined>(checkpoint);
  const checkpoints = path.dirname(checkpoint);
  if (path.basename(checkpoints) !== "checkpoints") {
    throw new Error(`${checkpoint}: not in a run folder's checkpoints/ folder, so there is no run to resume`);
  }
  const { state } = meta;
  const counters = [state?.step, state?.epoch, state?.stepInEpoch, state?.seconds];
  if (!counters.every((n) => typeof n === "number" && n >= 0) || typeof state?.loader !== "object") {
    throw new Error(`${file}: "state" holds no training position (step, epoch, stepInEpoch, seconds, loader), so it cannot be resumed`);
  }
  const config = parseTrainConfig(meta.config, `${file} → config`);
  return { checkpoint, config: { ...config, runDir: path.dirname(checkpoints) }, state: state as TrainState };
}

export interface ResumedConfig {
  /** The settings the resumed run uses. */
  config: TrainConfig;
  /** The overrides applied, as `setting old → new`. */
  changes: string[];
}

/**
 * The settings of a resumed run: the checkpoint's, with `overrides` applied where RESUME_RULES
 * allows. A value equal to the checkpoint's is no change, so a caller may pass a whole config.
 * Any refused change fails, naming each setting, both values and why.
 */
export function resumedConfig(point: ResumePoint, overrides: Partial<TrainConfig> = {}): ResumedConfig {
  const stored = point.config;
  const config: TrainConfig = { ...stored };
  const changes: string[] = [];
  const refusals: string[] = [];
  for (const key of Object.keys(overrides) as (keyof TrainConfig)[]) {
    const value = overrides[key];
    const rule = RESUME_RULES[key] as ResumeRule<unknown> | undefined;
    if (!rule) throw new Error(`resume: unknown setting "${key}"`);
    if (value === undefined || (rule.same ?? sameJson)(value, stored[key])) continue;
    const change = `${key} ${JSON.stringify(stored[key])} → ${JSON.stringify(value)}`;
    const refusal = rule.override ? rule.refuse?.(value, point.state) : rule.why;
    if (refusal) refusals.push(`${change} (${refusal})`);
    else {
      changes.push(change);
      Object.assign(config, { [key]: value });
    }
  }
  if (refusals.length) {
    throw new Error(
      `${point.checkpoint}: cannot resume with ${refusals.join("; ")}. Resume without ` +
        `${refusals.length > 1 ? "these changes" : "this change"}, or start a new run in another folder.`,
    );
  }
  return { config, changes };
}

/** RESUME_RULES as lines of text, for a command's usage. */
export function describeResumeRules(): string[] {
  const entries = Object.entries(RESUME_RULES) as [string, ResumeRule<unknown>][];
  const width = Math.max(...entries.map(([key]) => key.length));
  return entries.map(([key, rule]) => `${key.padEnd(width)}  ${(rule.override ? "may change" : "fixed").padEnd(10)}  ${rule.why}`);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
