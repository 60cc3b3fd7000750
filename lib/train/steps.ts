/**
 * One training step of each phase, as the loop runs it: an update on a batch, timed, and the
 * step's record for the log.
 *
 *   cross-entropy: a batch of (image, caption) pairs → forward, masked cross-entropy (and the
 *                  word-presence loss), gradients, clipping, Adam (model/train-step.ts)
 *   self-critical: a batch of images → K sampled captions each, their CIDEr-D rewards, the
 *                  baseline, the policy-gradient loss, gradients, clipping, Adam (self-critical.ts)
 *
 * Every random draw of a step (dropout masks, samples, the images' order, their crops) follows from
 * the seed, the step and the epoch, so that a resumed run repeats it exactly.
 */
import * as tf from "@tensorflow/tfjs";
import { concat, type Captioner } from "../inference/captioner";
import { captionsByImage, type SplitData } from "../data/dataset";
import { batchTensors, scoredTokens, type Batch } from "../data/loader";
import { Random } from "../data/random";
import type { DataSource } from "../features/image-source";
import { perplexity } from "../model/loss";
import { trainStep } from "../model/train-step";
import { CiderReward } from "./cider-reward";
import type { TrainConfig } from "./config";
import type { TrainState } from "./resume-config";
import { selfCriticalStep, type ImageBatch, type SelfCriticalStats } from "./self-critical";
import type { StepRecord } from "./train-log";
import type { WordsByImage } from "./training-data";
import type { DataParallel } from "./data-parallel";

/** A run under way, as its steps and its validation see it. */
export interface Run {
  config: TrainConfig;
  model: Captioner;
  optimizer: tf.Optimizer;
  /** Where the loop stands: the step number seeds the step's dropout masks or samples. */
  state: TrainState;
  /** The data-parallel step's workers when W > 1 (data-parallel.ts); absent, steps run trainStep on one thread. */
  parallel?: DataParallel;
}

/** What a step did, and how long it took (seconds). */
export type StepDone =
  | { phase: "cross-entropy"; seconds: number; loss: number; tokens: number }
  | ({ phase: "self-critical"; seconds: number; captions: number } & SelfCriticalStats);

/**
 * One cross-entropy step: teacher forcing on a batch, with the word-presence loss when the model
 * has its head; on W threads when the run has data-parallel workers.
 */
export async function crossEntropyStep({ config, model, optimizer, state, parallel }: Run, batch: Batch, words: WordsByImage): Promise<StepDone> {
  const started = performance.now();
  const { images, tokens, mask } = batchTensors(batch);
  const targets = model.wordHead ? wordTargets(batch, words, model.vocab.size) : null;
  let loss: number;
  try {
    const params = {
      decoder: model.decoder,
      embedImages: () => model.embed(images, true),
      encoderVariables: model.encoder.trainableVariables,
      tokens,
      mask,
      optimizer,
      clipNorm: config.clipNorm,
      dropoutSeed: stepSeed(config, state),
      auxiliaryLoss: model.wordHead
        ? { weight: config.wordLoss, variables: model.wordHead.variables, loss: (e: tf.Tensor2D) => model.wordHead!.loss(e, targets!) }
        : undefined,
    };
    loss = parallel ? await parallel.step({ ...params, encoderState: model.encoder.stateVariables }) : trainStep(params);
  } finally {
    tf.dispose([images, tokens, mask, ...(targets ? [targets] : [])]);
  }
  return { phase: "cross-entropy", seconds: secondsSince(started), loss, tokens: scoredTokens(batch) };
}

/** [rows, vocab]: the words each row's image is described with. */
function wordTargets(batch: Batch, words: WordsByImage, vocab: number): tf.Tensor2D {
  const out = new Float32Array(batch.imageIds.length * vocab);
  batch.imageIds.forEach((id, row) => out.set(words.get(id)!, row * vocab));
  return tf.tensor2d(out, [batch.imageIds.length, vocab]);
}

/**
 * The images of the next self-critical step: the next `imagesPerBatch` of the epoch's order (a
 * shuffle of the training images that is a function of the epoch), going round it again when an
 * epoch has more steps than the images fill (a set stepsPerEpoch): a batch is never short or empty.
 */
export async function selfCriticalImages({ config, state }: Run, trainSplit: SplitData, trainData: DataSource): Promise<ImageBatch> {
  const perBatch = config.selfCritical!.imagesPerBatch;
  const order = new Random(config.seed * 7_919 + state.epoch).shuffle(trainSplit.index.images.map((image) => image.id));
  const first = state.stepInEpoch * perBatch;
  const imageIds = Array.from({ length: perBatch }, (_, i) => order[(first + i) % order.length]);
  // A source draws its random crops (with `augment`, on pixels) from the generator it is given:
  // seeded by the image here, so a resumed run reads the same pixels.
  const pixels = await Promise.all(imageIds.map((id) => trainData.source(id, new Random(id))));
  return { imageIds, images: tf.tensor(concat(pixels), [imageIds.length, ...trainData.shape]) }; // [B, ...image shape]
}

/**
 * The self-critical phase's reward (CIDEr-D against the training split's references), built when
 * the phase begins; with data-parallel workers, their copies are sent the references then, once.
 */
export async function selfCriticalReward({ model, parallel }: Run, trainSplit: SplitData): Promise<CiderReward> {
  const references = captionsByImage(trainSplit);
  await parallel?.prepareSelfCritical(model.vocab, references);
  return new CiderReward(references);
}

/**
 * One self-critical step on a batch of images (whose tensor it disposes of), rewarded by `reward`;
 * on W threads, by image, when the run has data-parallel workers (their samples are drawn from one
 * generator per image: data-parallel.ts).
 */
export async function scstStep({ config, model, optimizer, state, parallel }: Run, reward: CiderReward, batch: ImageBatch): Promise<StepDone> {
  const settings = config.selfCritical!;
  const started = performance.now();
  const seed = stepSeed(config, state);
  const params = { model, batch, reward, config: settings, optimizer, clipNorm: config.clipNorm, maxLength: config.maxCaptionLength };
  let stats: SelfCriticalStats;
  try {
    stats = parallel ? await parallel.selfCriticalStep({ ...params, seed }) : selfCriticalStep({ ...params, rng: new Random(seed) });
  } finally {
    batch.images.dispose();
  }
  return { phase: "self-critical", seconds: secondsSince(started), captions: batch.imageIds.length * settings.samplesPerImage, ...stats };
}

/** The step's record for the log, `state` having counted it. */
export function stepRecord(done: StepDone, state: TrainState): StepRecord {
  const at = { step: state.step, epoch: state.epoch + 1 };
  if (done.phase === "cross-entropy") {
    const { loss, tokens, seconds } = done;
    return { kind: "step", ...at, loss, perplexity: perplexity(loss), seconds: state.seconds, tokensPerSecond: tokens / seconds };
  }
  return {
    kind: "step",
    phase: "self-critical",
    ...at,
    loss: done.loss,
    perplexity: NaN,
    seconds: state.seconds,
    tokensPerSecond: done.captions / done.seconds, // captions per second, here
    reward: done.meanReward,
    baseline: done.meanBaseline,
    positiveShare: done.positiveShare,
  };
}

/** The seed of the step about to run: its dropout masks or its samples, drawn again when a run resumes. */
function stepSeed(config: TrainConfig, state: TrainState): number {
  return config.seed * 1_000_003 + state.step;
}

export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}
