/**
 * Every setting of a training run, in one place, with the two presets the project ships:
 * the embedded synthetic scenes (trains in minutes on a CPU) and MS COCO 2014 (the real task).
 */
import { MOBILENET_V2, type BackboneSpec } from "./model/backbone";

/** Which image encoder: the small CNN trained from scratch, or a frozen pretrained backbone. */
export type EncoderChoice =
  | { kind: "small-cnn"; inputSize: number; filters: number[] }
  | { kind: "pretrained"; backbone: BackboneSpec };

/** What defines the model. A checkpoint stores it, and refuses to load into a model with other values. */
export interface ModelConfig {
  encoder: EncoderChoice;
  /** Size of the image and word embeddings (the LSTM's input). */
  embedSize: number;
  /** Size of the LSTM's hidden state. */
  hiddenSize: number;
  numLayers: number;
  /** Dropout on the LSTM outputs while training (0 = none). */
  dropout: number;
  /** A word enters the vocabulary if it occurs at least this many times in the training captions. */
  vocabThreshold: number;
  /**
   * Weight of the auxiliary word-presence loss that teaches the encoder directly which words
   * describe the image (model/word-presence.ts); 0 = off, as in the original Show and Tell.
   */
  wordLoss: number;
}

export interface TrainConfig extends ModelConfig {
  /** "synthetic" generates its data when missing; "coco" expects `npm run data:coco` to have run. */
  dataset: "synthetic" | "coco";
  /** Dataset root in the COCO layout (annotations/, images/<split>2014/). */
  dataRoot: string;
  /** Synthetic only: how many images to generate (80/10/10 train/val/test). */
  syntheticImages: number;

  batchSize: number;
  epochs: number;
  /** Steps per epoch; null = one pass over the training captions (captions / batch size). */
  stepsPerEpoch: number | null;
  learningRate: number;
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
}

/** The embedded default: synthetic scenes, a small CNN trained jointly with the decoder. */
export const SYNTHETIC_CONFIG: TrainConfig = {
  dataset: "synthetic",
  dataRoot: "data/synthetic",
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
};

/** MS COCO 2014 as the original course project trained it, with MobileNet V2 features cached. */
export const COCO_CONFIG: TrainConfig = {
  dataset: "coco",
  dataRoot: "data/cocoapi",
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
};

/** The settings a checkpoint must agree with to be loaded into a model. */
export const MODEL_KEYS: (keyof ModelConfig)[] = ["encoder", "embedSize", "hiddenSize", "numLayers", "vocabThreshold"];

export function modelConfigOf(config: ModelConfig): ModelConfig {
  const { encoder, embedSize, hiddenSize, numLayers, dropout, vocabThreshold, wordLoss } = config;
  return { encoder, embedSize, hiddenSize, numLayers, dropout, vocabThreshold, wordLoss };
}

/** The presets by dataset name: what CAPTIONER_DATASET, `npm run train -- --data` and the notebooks choose from. */
export const PRESETS: Readonly<Record<TrainConfig["dataset"], TrainConfig>> = {
  synthetic: SYNTHETIC_CONFIG,
  coco: COCO_CONFIG,
};

export type DatasetName = TrainConfig["dataset"];

/** The preset of a dataset name; an unknown name is an error that lists the known ones. */
export function presetFor(name: string): TrainConfig {
  const preset = (PRESETS as Record<string, TrainConfig | undefined>)[name];
  if (!preset) throw new Error(`config.ts: no dataset preset named ${JSON.stringify(name)} (known: ${Object.keys(PRESETS).join(", ")})`);
  return preset;
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
