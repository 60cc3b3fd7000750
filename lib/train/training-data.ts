/**
 * What a run trains and validates on: the train and val splits (the synthetic set generated first
 * if it is not there), a new model's vocabulary, where each split's image data comes from, the
 * loader of (image, caption) batches, and the words each training image's captions use.
 */
import { Captioner } from "../inference/captioner";
import { captionPairs, captionsByImage, loadSplit, type SplitData } from "../data/dataset";
import { CaptionLoader } from "../data/loader";
import { ensureSyntheticDataset } from "../data/synthetic/ensure";
import { UNK, Vocabulary } from "../data/vocabulary";
import { imageSource, type DataSource } from "../features/image-source";
import { wordPresenceTargets } from "../model/word-presence";
import type { TrainConfig } from "./config";

/** Image id → [vocab] multi-hot of the words its captions use: the word-presence loss's targets. */
export type WordsByImage = Map<number, Float32Array>;

export async function loadData(config: TrainConfig, say: (line: string) => void): Promise<{ trainSplit: SplitData; valSplit: SplitData }> {
  if (config.dataset === "synthetic") {
    const made = await ensureSyntheticDataset(config.dataRoot, { images: config.syntheticImages, seed: config.seed });
    if (made.generated) say(`generated ${config.syntheticImages} synthetic images in ${config.dataRoot}`);
  }
  const [trainSplit, valSplit] = await Promise.all([loadSplit(config.dataRoot, "train"), loadSplit(config.dataRoot, "val")]);
  say(
    `data: ${config.dataRoot}: train ${trainSplit.index.images.length} images / ${trainSplit.index.captions.length} captions, ` +
      `val ${valSplit.index.images.length} images`,
  );
  return { trainSplit, valSplit };
}

/** A model to train from scratch, with the vocabulary of the training captions. */
export async function newModel(config: TrainConfig, trainSplit: SplitData): Promise<Captioner> {
  const vocab = Vocabulary.build(
    trainSplit.index.captions.map((c) => c.caption),
    { threshold: config.vocabThreshold },
  );
  return Captioner.create(config, vocab, config.seed);
}

/**
 * Where each split's image data comes from: pixels, or the frozen backbone's cached features,
 * extracted first on `workers` threads where the cache lacks them. Only training augments.
 */
export async function imageSources(
  config: TrainConfig,
  model: Captioner,
  trainSplit: SplitData,
  valSplit: SplitData,
  workers: number,
): Promise<{ trainData: DataSource; valData: DataSource }> {
  const options = { featureCache: config.featureCache, cacheDir: config.featureDir, workers };
  const trainData = await imageSource(model, trainSplit.index, "train", { ...options, augment: config.augment });
  const valData = await imageSource(model, valSplit.index, "val", { ...options, augment: false });
  return { trainData, valData };
}

/** The batches of (image, caption) pairs the cross-entropy steps train on. */
export function captionLoader(config: TrainConfig, model: Captioner, trainSplit: SplitData, trainData: DataSource): CaptionLoader {
  return new CaptionLoader({
    captions: captionPairs(trainSplit),
    vocab: model.vocab,
    source: trainData.source,
    imageShape: trainData.shape,
    batchSize: config.batchSize,
    seed: config.seed,
    mode: config.batching,
  });
}

export function wordsByImage(model: Captioner, trainSplit: SplitData): WordsByImage {
  return wordPresenceTargets(captionsByImage(trainSplit), (caption) => model.vocab.encode(caption), model.vocab.size, UNK + 1);
}
