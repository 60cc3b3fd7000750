/**
 * The presets the project ships, each written as its differences from the settings table's
 * defaults (settings.ts): the embedded synthetic scenes (trains in minutes on a CPU), Flickr8k
 * (real photos, under an hour on a CPU) and MS COCO 2014 (the original course's task); and the
 * schedule a run's settings give (learning rate per epoch, the phases).
 */
import { MOBILENET_V1_075, MOBILENET_V2 } from "../model/backbone";
import { DATASET_NAMES, defaultConfig, type DatasetName, type SelfCriticalConfig, type TrainConfig } from "./settings";

export { parseConfigFields, parseTrainConfig, type DatasetName, type SelfCriticalConfig, type TrainConfig } from "./settings";

/**
 * The self-critical phase's settings where a preset has none and `npm run train -- --self-critical N`
 * adds one: the values chosen on Flickr8k's dev split (FLICKR8K_CONFIG, models/flickr8k-mobilenet/README.md).
 */
export const SELF_CRITICAL_DEFAULTS: SelfCriticalConfig = { epochs: 2, samplesPerImage: 5, baseline: "mean", learningRate: 5e-5, imagesPerBatch: 32 };

/** The embedded default: synthetic scenes, a small CNN trained jointly with the decoder (the table's defaults). */
export const SYNTHETIC_CONFIG: TrainConfig = defaultConfig();

/** MS COCO 2014 as the original course project trained it, with MobileNet V2 features cached. */
export const COCO_CONFIG: TrainConfig = {
  ...SYNTHETIC_CONFIG,
  dataset: "coco",
  dataRoot: "data/cocoapi",
  featureDir: "data/cocoapi/features",
  syntheticImages: 0,
  encoder: { kind: "pretrained", backbone: MOBILENET_V2 },
  embedSize: 512,
  hiddenSize: 512,
  dropout: 0.3,
  vocabThreshold: 5,
  wordLoss: 0,
  batchSize: 128,
  epochs: 3,
  learningRate: 1e-3,
  augment: true,
  featureCache: true,
  valImages: 5000,
  printEvery: 100,
  runDir: "runs/coco",
  // Not tuned on COCO: FLICKR8K_CONFIG's phase is a starting point (`--self-critical 2`).
  selfCritical: null,
  workers: "auto",
};

/**
 * Flickr8k with MobileNet V1 0.75 features, cached once: the recipe of the captioner that ships in
 * models/flickr8k-mobilenet (its README is the model card). The decoder is the original course's
 * (embed 512, one LSTM layer of 512, dropout 0.5, batch 64, vocabulary threshold 5); Adam starts
 * at 2e-3 and halves every 2 epochs for 6 epochs (the best by dev CIDEr of 7). Then 2 epochs of
 * self-critical training (376 steps) at 5e-5: dev CIDEr peaked there, and the policy collapsed
 * into unfinished captions soon after (the model card). The checkpoint kept is the best by dev
 * CIDEr. The backbone sees the photo's whole centre square (resize = input size: the shorter side
 * is not cut, as it is by resize 256 → crop 224). It runs on every core (workers "auto", as
 * COCO_CONFIG does): the same weights come out bit for bit for the same W, and to float rounding
 * for another (docs/performance.md#data-parallel-steps-worker-threads).
 */
export const FLICKR8K_CONFIG: TrainConfig = {
  ...SYNTHETIC_CONFIG,
  dataset: "flickr8k",
  dataRoot: "data/flickr8k",
  featureDir: "data/features/flickr8k",
  syntheticImages: 0,
  encoder: { kind: "pretrained", backbone: { ...MOBILENET_V1_075, resize: 224 } },
  embedSize: 512,
  hiddenSize: 512,
  dropout: 0.5,
  vocabThreshold: 5,
  wordLoss: 0,
  batchSize: 64,
  epochs: 6,
  learningRate: 2e-3,
  lrDecay: { every: 2, factor: 0.5 },
  featureCache: true,
  valImages: 1000,
  runDir: "runs/flickr8k",
  keepCheckpoints: 0,
  selfCritical: SELF_CRITICAL_DEFAULTS,
  workers: "auto",
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

export function isDatasetName(value: unknown): value is DatasetName {
  return typeof value === "string" && DATASET_NAMES.includes(value as DatasetName);
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
