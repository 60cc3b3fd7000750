import { SYNTHETIC_CONFIG, type TrainConfig } from "../../lib/train/config";

/**
 * A model small enough for a training step to take milliseconds, on a 60-image synthetic set
 * generated into `dataRoot`: what the training, captioner and CLI tests train.
 */
export function tinyTrainConfig(dataRoot: string, runDir: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...SYNTHETIC_CONFIG,
    dataRoot,
    syntheticImages: 60,
    encoder: { kind: "small-cnn", inputSize: 32, filters: [8, 16] },
    embedSize: 32,
    hiddenSize: 64,
    numLayers: 1,
    dropout: 0,
    vocabThreshold: 1,
    batchSize: 8,
    epochs: 2,
    stepsPerEpoch: null,
    learningRate: 3e-2,
    valImages: 0,
    printEvery: 1000,
    runDir,
    selfCritical: null, // tests that need the phase add it
    workers: 1, // the single-thread step; test/train-workers.test.ts runs W = 2
    ...overrides,
  };
}
