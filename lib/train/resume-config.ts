/**
 * Resuming a run: which settings it keeps, and which a caller may change.
 *
 * `npm run train -- --resume RUN_DIR` alone, or `train(config, { resume })` with the run's own
 * settings, continues the run exactly as it was configured: every setting comes from the
 * checkpoint (`checkpoint.json` → `config`), and the run ends as if it had never stopped. A setting
 * given with the resume that differs from the checkpoint's is an explicit override. Some may change
 * mid-run: the schedule, the learning rate, what validation and the console show. The others would
 * make the checkpoint mean something else (its weights' shapes, its vocabulary, the data loader's
 * saved place in the data) and are refused, saying why. The settings table (settings.ts, each row's
 * `resume`) says which is which: RESUME_RULES.
 */
import * as path from "node:path";
import { readCheckpointMeta, resolveCheckpoint } from "../io/checkpoint";
import type { LoaderState } from "../data/loader";
import { parseTrainConfig, RESUME_RULES, type ResumeRule, type TrainConfig } from "./settings";

export { RESUME_RULES } from "./settings";

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
  /** W, the threads the last steps ran on (lib/train/data-parallel.ts); absent: 1. */
  workers?: number;
}

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
