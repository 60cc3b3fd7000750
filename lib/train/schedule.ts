/**
 * The schedule of a run: how many steps each epoch has, how many are left, and the step size Adam
 * takes (learningRateAt in config.ts says which, epoch by epoch).
 */
import type * as tf from "@tensorflow/tfjs";
import { phaseOf, totalEpochs, type TrainConfig } from "./config";
import type { TrainState } from "./resume-config";

/** The number of steps in epoch `epoch` (0-based). */
export type EpochLengths = (epoch: number) => number;

/**
 * A cross-entropy epoch is one pass over the loader's batches, a self-critical one a pass over the
 * training images, `imagesPerBatch` at a time; `stepsPerEpoch`, when set, is the length of both.
 */
export function epochLengths(config: TrainConfig, batchesPerEpoch: number, trainImages: number): EpochLengths {
  const crossEntropy = config.stepsPerEpoch ?? batchesPerEpoch;
  const selfCritical = config.stepsPerEpoch ?? Math.ceil(trainImages / (config.selfCritical?.imagesPerBatch ?? trainImages));
  return (epoch) => (phaseOf(config, epoch) === "self-critical" ? selfCritical : crossEntropy);
}

/** Steps still to do: the rest of the current epoch, and every later one. */
export function stepsLeft(config: TrainConfig, stepsIn: EpochLengths, state: TrainState): number {
  let left = stepsIn(state.epoch) - state.stepInEpoch;
  for (let epoch = state.epoch + 1; epoch < totalEpochs(config); epoch++) left += stepsIn(epoch);
  return left;
}

/**
 * Sets the step size of Adam's next updates. Adam reads it at every update, so setting it before
 * each step applies the schedule (a pure function of the epoch: a resumed run follows it exactly).
 * tfjs has no learning-rate schedules, and declares the field protected: hence the cast.
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
}
