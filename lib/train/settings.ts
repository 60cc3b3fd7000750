/**
 * Every setting of a training run, declared once: its default (the embedded synthetic run), the
 * values it may take, what it means, whether a learner may tune it in the notebooks, and what a
 * resumed run may do with it. TrainConfig, the checks of a `--config` file or a checkpoint's
 * config.json, the resume rules (RESUME_RULES), the presets (config.ts, as differences from these
 * defaults) and the notebooks' settings table all come from this one table.
 */
import * as path from "node:path";
import type { ModelConfig } from "../model/model-config";

export const DATASET_NAMES = ["synthetic", "coco", "flickr8k"] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** The settings of the self-critical phase: policy-gradient training on sampled captions, rewarded by CIDEr-D. */
export interface SelfCriticalConfig {
  /** Epochs of self-critical training after the cross-entropy ones; an epoch = every training image once. */
  epochs: number;
  /** K: captions sampled per image. */
  samplesPerImage: number;
  /** "greedy": the greedy caption's reward (Rennie et al. 2017); "mean": the mean reward of the image's other samples. */
  baseline: "greedy" | "mean";
  /** Adam's step size during the phase (constant). */
  learningRate: number;
  /** Images per step, each with K samples (so B·K captions a step). */
  imagesPerBatch: number;
  /**
   * Sample (and validate) with <end> forbidden after "a", "the", "in"... (lib/inference/greedy.ts,
   * DANGLING_WORDS): without it the phase drifts into captions cut mid-phrase. Absent = false.
   */
  noDanglingEnd?: boolean;
}

/** Where a run stands, as the resume rules need it. */
export interface RunPosition {
  /** Epochs completed. */
  epoch: number;
}

export interface ResumeRule<V> {
  /** Whether a resumed run may take another value than the checkpoint's. */
  override: boolean;
  /** What the setting means for a resumed run: why it may change, or why not. */
  why: string;
  /** For an allowed override: why this value cannot be used at this point of the run, if it cannot. */
  refuse?(value: V, position: RunPosition): string | undefined;
  /** Whether two values are the same setting (default: the same JSON). */
  same?(a: V, b: V): boolean;
}

/** A check of a value read from a file: whether it is valid, and what was expected. */
export type FieldCheck = [valid: (value: unknown) => boolean, expected: string];

/** One row of the table. */
export interface Setting<V> {
  default: V;
  check: FieldCheck;
  /** One line: what the setting does (the notebooks' table shows it). */
  meaning: string;
  /** Whether a learner may change it in notebook 2 and expect the run to work (the others are the data's and the plumbing's). */
  tune: boolean;
  resume: ResumeRule<V>;
}

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const positiveInteger: FieldCheck = [(v) => Number.isInteger(v) && (v as number) > 0, "a positive integer"];
const countOrZero: FieldCheck = [(v) => Number.isInteger(v) && (v as number) >= 0, "an integer ≥ 0"];
const positiveNumber: FieldCheck = [(v) => isNumber(v) && v > 0, "a number > 0"];
const text: FieldCheck = [(v) => typeof v === "string" && v !== "", "a non-empty string"];
const flag: FieldCheck = [(v) => typeof v === "boolean", "true or false"];

const samePath = (a: string, b: string) => path.resolve(a) === path.resolve(b);
const allowed = <V>(why: string, refuse?: ResumeRule<V>["refuse"]): ResumeRule<V> => ({ override: true, why, refuse });
const refused = <V>(why: string, same?: ResumeRule<V>["same"]): ResumeRule<V> => ({ override: false, why, same });

const MODEL_REBUILT = "the model is rebuilt from the checkpoint's own model settings";
const WEIGHT_SHAPES = "the checkpoint's weights have the shapes it gives";
const DATA_STREAM = "the data loader's saved position and random state are a place in this exact stream of batches";

/** Typed rows: `setting<V>({...})` checks the default against V. */
const setting = <V>(row: Setting<V>): Setting<V> => row;

/** The table. Its order is TrainConfig's: the data, the model, the optimisation, validation, the run. */
export const SETTINGS = {
  // The data.
  dataset: setting<DatasetName>({
    default: "synthetic",
    check: [(v) => DATASET_NAMES.includes(v as DatasetName), `one of ${DATASET_NAMES.map((name) => JSON.stringify(name)).join(", ")}`],
    meaning: '"synthetic" generates its data when missing; "coco" and "flickr8k" expect npm run data:coco / data:flickr8k (or a dataRoot where the dataset is)',
    tune: false,
    resume: refused("the model and its vocabulary were trained on this dataset"),
  }),
  dataRoot: setting<string>({
    default: "data/synthetic",
    check: text,
    meaning: "the dataset's folder: the COCO layout (annotations/, images/<split>2014/) or Flickr8k's (lib/data/flickr8k.ts)",
    tune: false,
    resume: refused("the model and its vocabulary were trained on the data there", samePath),
  }),
  featureDir: setting<string>({
    default: "data/synthetic/features",
    check: text,
    meaning: "where frozen backbones' features are cached: <featureDir>/<backbone name>/<split>/ (lib/features/feature-cache.ts)",
    tune: false,
    resume: allowed("only where the frozen backbone's features are cached (their fingerprint is checked)"),
  }),
  syntheticImages: setting<number>({
    default: 3000,
    check: countOrZero,
    meaning: "synthetic only: how many images to generate (80/10/10 train/val/test)",
    tune: false,
    resume: refused("the synthetic dataset is generated with this many images"),
  }),

  // The model (lib/model/model-config.ts): a checkpoint loads only into the model it was saved from.
  encoder: setting<ModelConfig["encoder"]>({
    default: { kind: "small-cnn", inputSize: 64, filters: [16, 32, 64, 64] },
    check: [isEncoderChoice, `{"kind": "small-cnn", "inputSize", "filters"} or {"kind": "pretrained", "backbone"}`],
    meaning: "the image encoder: a small CNN trained with the decoder, or a frozen pretrained backbone",
    tune: false,
    resume: refused(WEIGHT_SHAPES),
  }),
  embedSize: setting<number>({
    default: 128,
    check: positiveInteger,
    meaning: "size of the image vector and of each word embedding",
    tune: true,
    resume: refused(WEIGHT_SHAPES),
  }),
  hiddenSize: setting<number>({
    default: 256,
    check: positiveInteger,
    meaning: "size of the LSTM's state (h and c)",
    tune: true,
    resume: refused(WEIGHT_SHAPES),
  }),
  numLayers: setting<number>({ default: 1, check: positiveInteger, meaning: "stacked LSTM layers", tune: true, resume: refused(WEIGHT_SHAPES) }),
  dropout: setting<number>({
    default: 0.1,
    check: [(v) => isNumber(v) && v >= 0 && v < 1, "a number in [0, 1)"],
    meaning: "share of the LSTM's outputs zeroed while training",
    tune: true,
    resume: refused(MODEL_REBUILT),
  }),
  vocabThreshold: setting<number>({
    default: 3,
    check: positiveInteger,
    meaning: "occurrences a word needs to get its own id",
    tune: true,
    resume: refused("the checkpoint's vocabulary was built with it"),
  }),
  wordLoss: setting<number>({
    default: 5,
    check: [(v) => isNumber(v) && v >= 0, "a number ≥ 0"],
    meaning: "weight of the auxiliary word-presence loss (0: off, as in the original Show and Tell)",
    tune: true,
    resume: refused(`${MODEL_REBUILT} (the word-presence head exists only when it is above 0)`),
  }),

  // The optimisation: the schedule may be extended or cut, or its step size changed, from the next step on.
  batchSize: setting<number>({
    default: 32,
    check: positiveInteger,
    meaning: "captions per training step",
    tune: true,
    resume: refused(`${DATA_STREAM} (and an epoch's length follows from it)`),
  }),
  epochs: setting<number>({
    default: 4,
    check: positiveInteger,
    meaning: "passes over the training captions (cross-entropy)",
    tune: true,
    resume: allowed("the run goes on (or stops) at this many epochs", (epochs, position) =>
      epochs < position.epoch ? `the run has already done ${position.epoch} epochs` : undefined,
    ),
  }),
  stepsPerEpoch: setting<number | null>({
    default: null,
    check: [(v) => v === null || positiveInteger[0](v), "a positive integer or null"],
    meaning: "steps per epoch; null: one pass over the training captions",
    tune: false,
    resume: allowed("the epochs from the current one on have this many steps"),
  }),
  learningRate: setting<number>({
    default: 3e-3,
    check: positiveNumber,
    meaning: "Adam's step size",
    tune: true,
    resume: allowed("Adam takes steps of this size from the next step on, with its moments kept"),
  }),
  lrDecay: setting<{ every: number; factor: number } | null>({
    default: null,
    check: [(v) => v === null || isDecay(v), `null or {"every": positive integer, "factor": number in (0, 1]}`],
    meaning: "step decay: the learning rate is multiplied by factor every `every` epochs; null keeps it constant",
    tune: true,
    resume: allowed("the step size follows this schedule from the next step on"),
  }),
  clipNorm: setting<number>({
    default: 5,
    check: positiveNumber,
    meaning: "a longer gradient is scaled down to this length",
    tune: true,
    resume: allowed("gradients are clipped to this norm from the next step on"),
  }),
  batching: setting<"length" | "padded">({
    default: "length",
    check: [(v) => v === "length" || v === "padded", `"length" or "padded"`],
    meaning: '"length": one caption length per batch (the original); "padded": any lengths, masked',
    tune: true,
    resume: refused(DATA_STREAM),
  }),
  augment: setting<boolean>({
    default: false,
    check: flag,
    meaning: "random crops and flips while training (COCO); off where captions name positions (synthetic)",
    tune: false,
    resume: refused(DATA_STREAM),
  }),
  featureCache: setting<boolean>({
    default: false,
    check: flag,
    meaning: "train on features computed once and cached on disk (frozen backbones only)",
    tune: false,
    resume: refused(DATA_STREAM),
  }),

  // Validation and the console: they do not touch the weights.
  valImages: setting<number>({
    default: 300,
    check: countOrZero,
    meaning: "validation images captioned and scored after each epoch (0: none)",
    tune: true,
    resume: allowed("validation scores this many images from the next epoch end on"),
  }),
  maxCaptionLength: setting<number>({
    default: 20,
    check: positiveInteger,
    meaning: "longest caption generated, in tokens",
    tune: false,
    resume: allowed("validation captions stop at this length from the next epoch end on"),
  }),
  seed: setting<number>({
    default: 1,
    check: [Number.isInteger, "an integer"],
    meaning: "the seed of the synthetic data, the weights' initialisation, the batches' order and the dropout masks",
    tune: true,
    resume: refused("the synthetic dataset and each step's dropout masks follow from it"),
  }),
  // 1 for the synthetic default, so that its numbers (the README's, the notebooks') are every
  // machine's: another W changes the float rounding. The real datasets' presets take "auto".
  workers: setting<"auto" | number>({
    default: 1,
    check: [(v) => v === "auto" || positiveInteger[0](v), `"auto" or a positive integer`],
    meaning:
      'W, the threads that the feature extraction\'s CNN (lib/features/feature-workers.ts) and the steps of both phases (lib/train/data-parallel.ts) run on: "auto" = the cores on wasm and cpu (one thread each), 1 on the native backends (which have their own threads); 1 runs the single-thread steps',
    tune: false,
    resume: allowed(
      "the threads the steps run on from the next step on; the same W resumes bit for bit, another W sums the gradients in another order, so the arithmetic (float rounding) changes (and between W = 1 and W > 1, the self-critical phase's samples are drawn otherwise)",
    ),
  }),
  printEvery: setting<number>({
    default: 50,
    check: positiveInteger,
    meaning: "a console line every this many steps (every step goes to the log)",
    tune: false,
    resume: allowed("only what the console shows"),
  }),

  // Where the run lives.
  runDir: setting<string>({
    default: "runs/latest",
    check: text,
    meaning: "where the log, checkpoints and predictions go",
    tune: false,
    resume: refused("a run goes on in the folder that holds its checkpoints and log (to branch a run, copy its folder and resume the copy)", samePath),
  }),
  keepCheckpoints: setting<number>({
    default: 3,
    check: countOrZero,
    meaning: "checkpoints kept, the oldest deleted first (0: all); the best by val CIDEr is always kept",
    tune: false,
    resume: allowed("only how many old checkpoints are kept"),
  }),

  // One epoch of self-critical training after the four of cross-entropy: greedy val CIDEr 2.11 →
  // 2.68 and scene precision / recall 0.41 / 0.36 → 0.46 / 0.40, for about 16% more training time
  // (learning rate chosen on val among 5e-5, 2e-4 and 1e-3: README, "Self-critical training").
  selfCritical: setting<SelfCriticalConfig | null>({
    default: { epochs: 1, samplesPerImage: 5, baseline: "mean", learningRate: 2e-4, imagesPerBatch: 32 },
    check: [
      (v) => v === null || isSelfCritical(v),
      `null or {"epochs": integer ≥ 0, "samplesPerImage": positive integer (≥ 2 for the "mean" baseline), "baseline": "greedy" or "mean", "learningRate": number > 0, "imagesPerBatch": positive integer, optional "noDanglingEnd": true or false}`,
    ],
    meaning: "the self-critical phase after the cross-entropy epochs (lib/train/self-critical.ts; null: none)",
    tune: true,
    resume: allowed("the self-critical phase after the cross-entropy epochs: added, extended or retuned from the next step on"),
  }),
};

/** The settings of a run, as the table types them. */
export type TrainConfig = { [K in keyof typeof SETTINGS]: (typeof SETTINGS)[K] extends Setting<infer V> ? V : never };

/** The table's defaults: the embedded synthetic run. */
export function defaultConfig(): TrainConfig {
  const entries = Object.entries(SETTINGS).map(([key, row]) => [key, structuredClone(row.default)]);
  return Object.fromEntries(entries) as TrainConfig;
}

/** What a resumed run may do with each setting. */
export const RESUME_RULES = Object.fromEntries(Object.entries(SETTINGS).map(([key, row]) => [key, row.resume])) as {
  [K in keyof TrainConfig]: ResumeRule<TrainConfig[K]>;
};

/**
 * Checks settings read from a file (a `--config` file, a checkpoint's config.json) and returns
 * them typed: every key must be a setting, with a value of the right kind. Errors name the file
 * and the setting.
 */
export function parseConfigFields(value: unknown, file: string): Partial<TrainConfig> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${file}: the configuration must be a JSON object of settings, got ${JSON.stringify(value)}`);
  }
  for (const [key, field] of Object.entries(value)) {
    if (!Object.hasOwn(SETTINGS, key)) throw new Error(`${file}: unknown setting "${key}" (the settings are ${Object.keys(SETTINGS).join(", ")})`);
    const [valid, expected] = SETTINGS[key as keyof TrainConfig].check;
    if (!valid(field)) throw new Error(`${file}: "${key}" must be ${expected}, got ${JSON.stringify(field)}`);
  }
  return value as Partial<TrainConfig>;
}

/** parseConfigFields, and every setting must be there. */
export function parseTrainConfig(value: unknown, file: string): TrainConfig {
  // Runs saved before the self-critical phase existed had none; those saved before `workers` ran on one thread.
  const fields = { selfCritical: null, workers: 1, ...parseConfigFields(value, file) };
  const missing = Object.keys(SETTINGS).filter((key) => !(key in fields));
  if (missing.length) throw new Error(`${file}: the configuration lacks ${missing.map((k) => `"${k}"`).join(", ")}`);
  return fields as TrainConfig;
}

function isEncoderChoice(v: unknown): boolean {
  const e = v as Partial<Record<string, unknown>> | null;
  if (typeof e !== "object" || e === null) return false;
  if (e.kind === "small-cnn") {
    return positiveInteger[0](e.inputSize) && Array.isArray(e.filters) && e.filters.length > 0 && e.filters.every(positiveInteger[0]);
  }
  const backbone = e.backbone as Partial<Record<string, unknown>> | undefined;
  return e.kind === "pretrained" && typeof backbone === "object" && text[0](backbone?.name) && text[0](backbone?.source);
}

function isSelfCritical(v: unknown): boolean {
  const c = v as Partial<Record<string, unknown>> | null;
  if (typeof c !== "object" || c === null) return false;
  const keys = ["epochs", "samplesPerImage", "baseline", "learningRate", "imagesPerBatch", "noDanglingEnd"];
  if (Object.keys(c).some((key) => !keys.includes(key))) return false;
  const samplesOk = positiveInteger[0](c.samplesPerImage) && (c.baseline === "greedy" || (c.baseline === "mean" && (c.samplesPerImage as number) >= 2));
  const endingsOk = c.noDanglingEnd === undefined || flag[0](c.noDanglingEnd);
  return countOrZero[0](c.epochs) && samplesOk && positiveNumber[0](c.learningRate) && positiveInteger[0](c.imagesPerBatch) && endingsOk;
}

function isDecay(v: unknown): boolean {
  const d = v as Partial<Record<string, unknown>> | null;
  return typeof d === "object" && d !== null && positiveInteger[0](d.every) && isNumber(d.factor) && d.factor > 0 && d.factor <= 1;
}
