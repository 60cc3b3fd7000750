/**
 * Checkpoints: everything needed to caption with a model, or to resume its training exactly.
 *
 * One checkpoint is one folder:
 *   checkpoint.json          format, config, vocabulary fingerprint, training state (step, epoch, RNG), metrics
 *   vocabulary.json          the vocabulary the model was trained with
 *   weights.json/.bin        the model's variables, in the tfjs weights format
 *   optimizer.json/.bin      Adam's moments and step count (absent in an inference-only export)
 *
 * Checkpoints live side by side in a `checkpoints/` folder, each under its own label (`epoch-003`,
 * `step-000420`), and `latest.json` names the newest. Every folder is written under a temporary
 * name and renamed into place, and `latest.json` is replaced by a rename too, so an interrupted
 * save never leaves a torn checkpoint behind and never loses the previous one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { nanoid } from "nanoid";
import { readJson, writeJsonAtomically } from "./json-file";
import { loadTensors, NamedTensor, saveTensors } from "./weights-io";

export const CHECKPOINT_FORMAT = "captioner-checkpoint";
export const CHECKPOINT_VERSION = 1;

/** What the checkpoint needs from a vocabulary (lib/data/vocabulary.ts). */
export interface SavableVocabulary {
  toJSON(): unknown;
  fingerprint(): string;
}

/** The JSON half of a checkpoint. `state` is the trainer's to define (step, epoch, RNG states...). */
export interface CheckpointMeta<Config = unknown, State = unknown> {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  label: string;
  savedAt: string;
  config: Config;
  vocabularyFingerprint: string;
  state: State;
}

export interface SaveCheckpointOptions<Config, State> {
  label: string;
  config: Config;
  state: State;
  vocabulary: SavableVocabulary;
  variables: tf.Variable[];
  /** The name a variable is saved under (default: its own name). */
  nameOf?: (v: tf.Variable) => string;
  optimizer?: tf.Optimizer;
  /** How many checkpoints to keep in the folder (oldest removed first); 0 keeps all. */
  keep?: number;
}

/** Saves a checkpoint as `<checkpointsDir>/<label>` and points `latest.json` at it. Returns its path. */
export async function saveCheckpoint<Config, State>(
  checkpointsDir: string,
  opts: SaveCheckpointOptions<Config, State>,
): Promise<string> {
  fs.mkdirSync(checkpointsDir, { recursive: true });
  const finalDir = path.join(checkpointsDir, opts.label);
  const tmpDir = path.join(checkpointsDir, `.tmp-${opts.label}-${nanoid(6)}`);
  fs.mkdirSync(tmpDir);

  const nameOf = opts.nameOf ?? ((v: tf.Variable) => v.name);
  await saveTensors(tmpDir, "weights", opts.variables.map((v) => ({ name: nameOf(v), tensor: v })));
  if (opts.optimizer) {
    const weights = await optimizerWeights(opts.optimizer);
    await saveTensors(tmpDir, "optimizer", weights);
    // getWeights() makes a new scalar for the step count ("iter"); the others are the optimizer's own variables.
    tf.dispose(weights.filter((w) => !(w.tensor instanceof tf.Variable)).map((w) => w.tensor));
  }
  writeJsonAtomically(path.join(tmpDir, "vocabulary.json"), opts.vocabulary.toJSON());
  const meta: CheckpointMeta<Config, State> = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    label: opts.label,
    savedAt: new Date().toISOString(),
    config: opts.config,
    vocabularyFingerprint: opts.vocabulary.fingerprint(),
    state: opts.state,
  };
  writeJsonAtomically(path.join(tmpDir, "checkpoint.json"), meta); // written last: its presence marks a complete folder

  fs.rmSync(finalDir, { recursive: true, force: true }); // a same-label checkpoint is superseded
  fs.renameSync(tmpDir, finalDir);
  writeJsonAtomically(path.join(checkpointsDir, LATEST_FILE), { label: opts.label });
  if (opts.keep) pruneCheckpoints(checkpointsDir, opts.keep);
  return finalDir;
}

/**
 * Finds the checkpoint folder that `where` means: a checkpoint folder itself, or in a
 * `checkpoints/` folder or a run folder holding one, its latest (`latest.json`) or the best one
 * by validation CIDEr (`best.json`, written by the training loop; the latest when there is none).
 */
export function resolveCheckpoint(where: string, which: "latest" | "best" = "latest"): string {
  if (fs.existsSync(path.join(where, "checkpoint.json"))) return where;
  for (const dir of [where, path.join(where, "checkpoints")]) {
    const pointer = [which === "best" ? BEST_FILE : LATEST_FILE, LATEST_FILE].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
    if (pointer) return path.join(dir, labelIn(pointer));
  }
  throw new Error(`${where}: no checkpoint here (expected checkpoint.json, latest.json or checkpoints/latest.json)`);
}

const LATEST_FILE = "latest.json";
const BEST_FILE = "best.json";

function labelIn(pointer: string): string {
  const { label } = readJson(pointer) as { label?: string };
  if (typeof label !== "string") throw new Error(`${pointer}: "label" must be a string`);
  return label;
}

/** What `best.json` records: the checkpoint with the highest validation score so far. */
export interface BestCheckpoint {
  label: string;
  metric: string;
  value: number;
}

/** The best checkpoint recorded in `checkpointsDir`, if any. */
export function readBest(checkpointsDir: string): BestCheckpoint | undefined {
  const file = path.join(checkpointsDir, BEST_FILE);
  return fs.existsSync(file) ? (readJson(file) as BestCheckpoint) : undefined;
}

/** Records `best` when it beats the best so far (or there is none); returns whether it did. */
export function recordIfBest(checkpointsDir: string, best: BestCheckpoint): boolean {
  const current = readBest(checkpointsDir);
  if (!Number.isFinite(best.value) || (current && current.metric === best.metric && current.value >= best.value)) return false;
  writeJsonAtomically(path.join(checkpointsDir, BEST_FILE), best);
  return true;
}

/** Reads and validates `checkpoint.json` of a checkpoint folder. */
export function readCheckpointMeta<Config = unknown, State = unknown>(dir: string): CheckpointMeta<Config, State> {
  const file = path.join(dir, "checkpoint.json");
  const meta = readJson(file) as Partial<CheckpointMeta<Config, State>>;
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${file}: not a captioner checkpoint (format is ${JSON.stringify(meta.format)})`);
  }
  if (meta.version !== CHECKPOINT_VERSION) {
    throw new Error(`${file}: checkpoint version ${meta.version} is not supported (this code reads ${CHECKPOINT_VERSION})`);
  }
  return meta as CheckpointMeta<Config, State>;
}

/** Reads the saved vocabulary JSON of a checkpoint folder (parse it with Vocabulary.fromJSON). */
export function readCheckpointVocabulary(dir: string): unknown {
  return readJson(path.join(dir, "vocabulary.json"));
}

/**
 * Copies the saved weights into `variables`, matched by name. A missing weight or a shape that
 * differs means the checkpoint was made with another model configuration: that is an error.
 */
export async function restoreVariables(
  dir: string,
  variables: tf.Variable[],
  nameOf: (v: tf.Variable) => string = (v) => v.name,
): Promise<void> {
  const saved = await loadTensors(dir, "weights");
  try {
    for (const v of variables) {
      const name = nameOf(v);
      const t = saved[name];
      if (!t) throw new Error(`${dir}: checkpoint has no weight "${name}" (was it made with another model configuration?)`);
      if (!tf.util.arraysEqual(t.shape, v.shape)) {
        throw new Error(`${dir}: weight "${name}" has shape [${t.shape}] in the checkpoint but [${v.shape}] in this model`);
      }
      v.assign(t);
    }
  } finally {
    tf.dispose(Object.values(saved));
  }
}

/**
 * Adam's bias-correction terms beta^t, kept by tfjs as running products. setWeights() recomputes
 * them with pow(), which differs in the last bits, so they are saved too: resuming is then
 * bit-identical to never having stopped.
 */
interface AdamInternals {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
}
const BIAS_CORRECTION = ["accBeta1", "accBeta2"] as const;

async function optimizerWeights(optimizer: tf.Optimizer): Promise<NamedTensor[]> {
  const internals = optimizer as unknown as AdamInternals;
  const extra = BIAS_CORRECTION.filter((k) => internals[k]).map((k) => ({ name: `.${k}`, tensor: internals[k]! }));
  return [...(await optimizer.getWeights()), ...extra];
}

/** Restores the optimizer's state (Adam's moments and step count), if the checkpoint has it. Returns whether it did. */
export async function restoreOptimizer(dir: string, optimizer: tf.Optimizer): Promise<boolean> {
  if (!fs.existsSync(path.join(dir, "optimizer.json"))) return false;
  const saved = await loadTensors(dir, "optimizer");
  // getWeights() order is [iter, ...first moments, ...second moments]; JSON object order keeps it.
  const weights = Object.entries(saved).filter(([name]) => !name.startsWith("."));
  await optimizer.setWeights(weights.map(([name, tensor]) => ({ name, tensor })));
  const internals = optimizer as unknown as AdamInternals;
  for (const k of BIAS_CORRECTION) if (saved[`.${k}`] && internals[k]) internals[k]!.assign(saved[`.${k}`]);
  tf.dispose(Object.values(saved));
  return true;
}

/**
 * Fails with a clear message when `wanted` differs from the checkpoint's config in any of `keys`
 * (the settings that change the model's shape or meaning).
 */
export function assertSameConfig<C extends object>(dir: string, saved: C, wanted: C, keys: (keyof C)[]): void {
  const diffs = keys
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(wanted[k]))
    .map((k) => `${String(k)}: checkpoint ${JSON.stringify(saved[k])}, requested ${JSON.stringify(wanted[k])}`);
  if (diffs.length) throw new Error(`${dir}: checkpoint does not match this configuration (${diffs.join("; ")})`);
}

/** The labels of the complete checkpoints in a `checkpoints/` folder, oldest first ([] when there is no such folder). */
export function listCheckpoints(checkpointsDir: string): string[] {
  if (!fs.existsSync(checkpointsDir)) return [];
  return fs
    .readdirSync(checkpointsDir)
    .filter((name) => !name.startsWith(".") && fs.existsSync(path.join(checkpointsDir, name, "checkpoint.json")))
    .map((name) => ({ name, time: fs.statSync(path.join(checkpointsDir, name, "checkpoint.json")).mtimeMs }))
    .sort((a, b) => a.time - b.time)
    .map(({ name }) => name);
}

/** Removes the oldest checkpoints beyond `keep`, never the best one (best.json). */
function pruneCheckpoints(checkpointsDir: string, keep: number): void {
  const best = readBest(checkpointsDir)?.label;
  const complete = listCheckpoints(checkpointsDir).filter((name) => name !== best);
  for (const name of complete.slice(0, Math.max(0, complete.length - keep))) {
    fs.rmSync(path.join(checkpointsDir, name), { recursive: true, force: true });
  }
}
