/**
 * Every setting of a training run, in one place, with the presets the project ships: the
 * embedded synthetic scenes (trains in minutes on a CPU), Flickr8k (real photos, under an hour
 * on a CPU) and MS COCO 2014 (the original course's task).
 */
import { MOBILENET_V1_075, MOBILENET_V2 } from "../model/backbone";
import type { ModelConfig } from "../model/model-config";

export interface TrainConfig extends ModelConfig {
  /**
   * "synthetic" generates its data when missing; "coco" and "flickr8k" expect
   * `npm run data:coco` / `npm run data:flickr8k` (or a `dataRoot` where the dataset already is).
   */
  dataset: DatasetName;
  /** Dataset root: the COCO layout (annotations/, images/<split>2014/) or Flickr8k's (lib/data/flickr8k.ts). */
  dataRoot: string;
  /** Feature caches of frozen backbones: `<featureDir>/<backbone name>/<split>/` (lib/features/feature-cache.ts). */
  featureDir: string;
  /** Synthetic only: how many images to generate (80/10/10 train/val/test). */
  syntheticImages: number;

  batchSize: number;
  epochs: number;
  /** Steps per epoch; null = one pass over the training captions (captions / batch size). */
  stepsPerEpoch: number | null;
  learningRate: number;
  /**
   * Step decay of the learning rate: multiplied by `factor` every `every` epochs
   * (lr = learningRate · factor^⌊epoch / every⌋); null keeps it constant.
   */
  lrDecay: { every: number; factor: number } | null;
  /** Gradients are scaled down to this global norm when larger. */
  clipNorm: number;
  /** "length": all captions of a batch share a length (the original); "padded": any lengths, masked. */
  batching: "length" | "padded";
  /** Random crops and flips while training (COCO); off when captions name positions (synthetic). */
  augment: boolean;
  /** Train on features computed once and cached on disk (frozen backbones only). */
  featureCache: boolean;

  /** Validation after each epoch on at most this many val images (0 = skip validation). */
  valImages: number;
  /** Longest caption generated, in tokens. */
  maxCaptionLength: number;
  seed: number;
  /** Print (and log to the console) every this many steps; every step goes to the JSON-lines log. */
  printEvery: number;
  /** Where the log, checkpoints and predictions go. */
  runDir: string;
  /** Checkpoints kept (oldest deleted first). */
  keepCheckpoints: number;
  /** A self-critical phase after the cross-entropy epochs (lib/train/self-critical.ts); null = none. */
  selfCritical: SelfCriticalConfig | null;
}

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

export type DatasetName = "synthetic" | "coco" | "flickr8k";

/**
 * The self-critical phase's settings where a preset has none and `npm run train -- --self-critical N`
 * adds one: the values chosen on Flickr8k's dev split (FLICKR8K_CONFIG, models/flickr8k-mobilenet/README.md).
 */
export const SELF_CRITICAL_DEFAULTS: SelfCriticalConfig = { epochs: 2, samplesPerImage: 5, baseline: "mean", learningRate: 5e-5, imagesPerBatch: 32 };

/** The embedded default: synthetic scenes, a small CNN trained jointly with the decoder. */
export const SYNTHETIC_CONFIG: TrainConfig = {
  dataset: "synthetic",
  dataRoot: "data/synthetic",
  featureDir: "data/synthetic/features",
  syntheticImages: 3000,
  encoder: { kind: "small-cnn", inputSize: 64, filters: [16, 32, 64, 64] },
  embedSize: 128,
  hiddenSize: 256,
  numLayers: 1,
  dropout: 0.1,
  vocabThreshold: 3,
  wordLoss: 5,
  batchSize: 32,
  epochs: 4,
  stepsPerEpoch: null,
  learningRate: 3e-3,
  lrDecay: null,
  clipNorm: 5,
  batching: "length",
  augment: false,
  featureCache: false,
  valImages: 300,
  maxCaptionLength: 20,
  seed: 1,
  printEvery: 50,
  runDir: "runs/latest",
  keepCheckpoints: 3,
  // One epoch of self-critical training after the four of cross-entropy: greedy val CIDEr 2.11 →
  // 2.68 and scene precision / recall 0.41 / 0.36 → 0.46 / 0.40, for about 16% more training time
  // (learning rate chosen on val among 5e-5, 2e-4 and 1e-3: README, "Self-critical training").
  selfCritical: { epochs: 1, samplesPerImage: 5, baseline: "mean", learningRate: 2e-4, imagesPerBatch: 32 },
};

/** MS COCO 2014 as the original course project trained it, with MobileNet V2 features cached. */
export const COCO_CONFIG: TrainConfig = {
  dataset: "coco",
  dataRoot: "data/cocoapi",
  featureDir: "data/cocoapi/features",
  syntheticImages: 0,
  encoder: { kind: "pretrained", backbone: MOBILENET_V2 },
  embedSize: 512,
  hiddenSize: 512,
  numLayers: 1,
  dropout: 0.3,
  vocabThreshold: 5,
  wordLoss: 0,
  batchSize: 128,
  epochs: 3,
  stepsPerEpoch: null,
  learningRate: 1e-3,
  lrDecay: null,
  clipNorm: 5,
  batching: "length",
  augment: true,
  featureCache: true,
  valImages: 5000,
  maxCaptionLength: 20,
  seed: 1,
  printEvery: 100,
  runDir: "runs/coco",
  keepCheckpoints: 3,
  // Not tuned on COCO: FLICKR8K_CONFIG's phase is a starting point (`--self-critical 2`).
  selfCritical: null,
};

/**
 * Flickr8k with MobileNet V1 0.75 features, cached once: the recipe of the captioner that ships in
 * models/flickr8k-mobilenet (its README is the model card). The decoder is the original course's
 * (embed 512, one LSTM layer of 512, dropout 0.5, batch 64, vocabulary threshold 5); Adam starts
 * at 2e-3 and halves every 2 epochs for 6 epochs (the best by dev CIDEr of 7). Then 2 epochs of
 * self-critical training (376 steps) at 5e-5: dev CIDEr peaked there, and the policy collapsed
 * into unfinished captions soon after (the model card). The checkpoint kept is the best by dev
 * CIDEr. The backbone sees the photo's whole centre square (resize = input size: the shorter side
 * is not cut, as it is by resize 256 → crop 224).
 */
export const FLICKR8K_CONFIG: TrainConfig = {
  dataset: "flickr8k",
  dataRoot: "data/flickr8k",
  featureDir: "data/features/flickr8k",
  syntheticImages: 0,
  encoder: { kind: "pretrained", backbone: { ...MOBILENET_V1_075, resize: 224 } },
  embedSize: 512,
  hiddenSize: 512,
  numLayers: 1,
  dropout: 0.5,
  vocabThreshold: 5,
  wordLoss: 0,
  batchSize: 64,
  epochs: 6,
  stepsPerEpoch: null,
  learningRate: 2e-3,
  lrDecay: { every: 2, factor: 0.5 },
  clipNorm: 5,
  batching: "length",
  augment: false,
  featureCache: true,
  valImages: 1000,
  maxCaptionLength: 20,
  seed: 1,
  printEvery: 50,
  runDir: "runs/flickr8k",
  keepCheckpoints: 0,
  selfCritical: SELF_CRITICAL_DEFAULTS,
};

/**
 * The learning rate of epoch `epoch` (0-based) under `config`'s schedule: the decayed one in the
 * cross-entropy epochs, the self-critical phase's own after them.
 */
export function learningRateAt(config: Pick<TrainConfig, "learningRate" | "lrDecay" | "epochs" | "selfCritical">, epoch: number): number {
  const { learningRate, lrDecay } = config;
  if (config.selfCritical && epoch >= config.epochs) return config.selfCritical.learningRate;
  return lrDecay ? learningRate * lrDecay.factor ** Math.floor(epoch / lrDecay.every) : learningRate;
}

/** All the epochs of a run: cross-entropy, then self-critical. */
export function totalEpochs(config: Pick<TrainConfig, "epochs" | "selfCritical">): number {
  return config.epochs + (config.selfCritical?.epochs ?? 0);
}

/** Which phase epoch `epoch` (0-based) is in. */
export function phaseOf(config: Pick<TrainConfig, "epochs">, epoch: number): "cross-entropy" | "self-critical" {
  return epoch < config.epochs ? "cross-entropy" : "self-critical";
}

/** The presets by dataset name: what CAPTIONER_DATASET, `npm run train -- --data` and the notebooks choose from. */
export const PRESETS: Record<DatasetName, TrainConfig> = { synthetic: SYNTHETIC_CONFIG, coco: COCO_CONFIG, flickr8k: FLICKR8K_CONFIG };

/**
 * Checks settings read from a file (a `--config` file, a checkpoint's config.json) and returns
 * them typed: every key must be a setting of TrainConfig, with a value of the right kind. Errors
 * name the file and the setting.
 */
export function parseConfigFields(value: unknown, file: string): Partial<TrainConfig> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${file}: the configuration must be a JSON object of settings, got ${JSON.stringify(value)}`);
  }
  for (const [key, field] of Object.entries(value)) {
    if (!(key in FIELD_CHECKS)) throw new Error(`${file}: unknown setting "${key}" (the settings are ${Object.keys(FIELD_CHECKS).join(", ")})`);
    const [valid, expected] = FIELD_CHECKS[key as keyof TrainConfig];
    if (!valid(field)) throw new Error(`${file}: "${key}" must be ${expected}, got ${JSON.stringify(field)}`);
  }
  return value as Partial<TrainConfig>;
}

/** parseConfigFields, and every setting must be there. */
export function parseTrainConfig(value: unknown, file: string): TrainConfig {
  // Runs saved before the self-critical phase existed had none.
  const fields = { selfCritical: null, ...parseConfigFields(value, file) };
  const missing = Object.keys(FIELD_CHECKS).filter((key) => !(key in fields));
  if (missing.length) throw new Error(`${file}: the configuration lacks ${missing.map((k) => `"${k}"`).join(", ")}`);
  return fields as TrainConfig;
}

type FieldCheck = [valid: (value: unknown) => boolean, expected: string];
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const positiveInteger: FieldCheck = [(v) => Number.isInteger(v) && (v as number) > 0, "a positive integer"];
const countOrZero: FieldCheck = [(v) => Number.isInteger(v) && (v as number) >= 0, "an integer ≥ 0"];
const positiveNumber: FieldCheck = [(v) => isNumber(v) && v > 0, "a number > 0"];
const text: FieldCheck = [(v) => typeof v === "string" && v !== "", "a non-empty string"];
const flag: FieldCheck = [(v) => typeof v === "boolean", "true or false"];

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

/** What each setting's value may be. */
const FIELD_CHECKS: { [K in keyof TrainConfig]: FieldCheck } = {
  dataset: [isDatasetName, `one of ${Object.keys(PRESETS).map((name) => JSON.stringify(name)).join(", ")}`],
  dataRoot: text,
  featureDir: text,
  syntheticImages: countOrZero,
  encoder: [isEncoderChoice, `{"kind": "small-cnn", "inputSize", "filters"} or {"kind": "pretrained", "backbone"}`],
  embedSize: positiveInteger,
  hiddenSize: positiveInteger,
  numLayers: positiveInteger,
  dropout: [(v) => isNumber(v) && v >= 0 && v < 1, "a number in [0, 1)"],
  vocabThreshold: positiveInteger,
  wordLoss: [(v) => isNumber(v) && v >= 0, "a number ≥ 0"],
  batchSize: positiveInteger,
  epochs: positiveInteger,
  stepsPerEpoch: [(v) => v === null || positiveInteger[0](v), "a positive integer or null"],
  learningRate: positiveNumber,
  lrDecay: [(v) => v === null || isDecay(v), `null or {"every": positive integer, "factor": number in (0, 1]}`],
  clipNorm: positiveNumber,
  batching: [(v) => v === "length" || v === "padded", `"length" or "padded"`],
  augment: flag,
  featureCache: flag,
  valImages: countOrZero,
  maxCaptionLength: positiveInteger,
  seed: [Number.isInteger, "an integer"],
  printEvery: positiveInteger,
  runDir: text,
  keepCheckpoints: countOrZero,
  selfCritical: [
    (v) => v === null || isSelfCritical(v),
    `null or {"epochs": integer ≥ 0, "samplesPerImage": positive integer (≥ 2 for the "mean" baseline), "baseline": "greedy" or "mean", "learningRate": number > 0, "imagesPerBatch": positive integer, optional "noDanglingEnd": true or false}`,
  ],
};

export function isDatasetName(value: unknown): value is DatasetName {
  return typeof value === "string" && Object.hasOwn(PRESETS, value);
}

/** The preset of a dataset name; an unknown name is an error, prefixed by `where`, that lists the known ones. */
export function presetFor(name: string, where = "config.ts"): TrainConfig {
  if (!isDatasetName(name)) throw new Error(`${where}: no dataset preset named ${JSON.stringify(name)} (known: ${Object.keys(PRESETS).join(", ")})`);
  return PRESETS[name];
}

/**
 * The data folder of a preset as the notebooks and `npm start` use it, relative to the project:
 * for the synthetic scenes the default set, or a 200-image one for quick runs (`images` is what to
 * generate); any other dataset is read where its preset says (`images` 0: nothing to generate).
 */
export function dataFolderFor(preset: TrainConfig, quick: boolean): { dataRoot: string; images: number } {
  if (preset.dataset !== "synthetic") return { dataRoot: preset.dataRoot, images: 0 };
  return quick ? { dataRoot: "data/synthetic-quick", images: 200 } : { dataRoot: preset.dataRoot, images: preset.syntheticImages };
}

/** What a quick run (CAPTIONER_QUICK=1: the tests, `npm start -- --quick`) shrinks: a smoke test of every step. */
export const QUICK_SETTINGS: Partial<TrainConfig> = { epochs: 1, stepsPerEpoch: 15, valImages: 20, printEvery: 5 };
