/**
 * How good can the decoder get with perfect eyes? Trains the Show-and-Tell decoder as the main job
 * does (same settings, same number of steps, same length-bucketed batches), but on the ground truth
 * of each synthetic scene instead of a CNN's features (lib/data/synthetic/scene-features.ts), and scores
 * its greedy captions on the val scenes. No encoder can give the decoder more than this, so the
 * scene precision and recall it reaches bound what the whole captioner can reach in the budget.
 *
 *   npm run ceiling -- [--data data/synthetic] [--steps N] [--eval-every 250] [--json]
 *
 * --steps defaults to the main job's: SYNTHETIC_CONFIG.epochs passes over the training captions.
 * The ground truth goes through the real encoder's last part (linear layer + batch norm, as
 * EncoderCNN.embed); the word-presence loss, which only helps a CNN learn to see, is left out.
 * Prints a line per evaluation, or with --json one JSON object per evaluation.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { SYNTHETIC_CONFIG } from "../lib/train/config";
import { captionPairs, loadSplit, type SplitData } from "../lib/data/dataset";
import { batchTensors, CaptionLoader } from "../lib/data/loader";
import { sceneScores } from "../lib/evaluation/metrics/scene-score";
import { ZERO_TO_ONE, type Backbone } from "../lib/model/backbone";
import { DecoderRNN } from "../lib/model/decoder";
import { EncoderCNN } from "../lib/model/encoder";
import { trainStep } from "../lib/model/train-step";
import { greedyCaptions } from "../lib/inference/greedy";
import type { Scene } from "../lib/data/synthetic/scene";
import { SCENE_FEATURE_DIM, sceneFeatures } from "../lib/data/synthetic/scene-features";
import { Vocabulary } from "../lib/data/vocabulary";

const USAGE = "usage: npm run ceiling -- [--data DIR] [--steps N] [--eval-every N] [--json]";
const config = SYNTHETIC_CONFIG;

/** What one evaluation reports. */
export interface CeilingPoint {
  step: number;
  /** The last training batch's caption loss. */
  loss: number;
  /** Scene precision and recall of greedy captions on the val images. */
  precision: number;
  recall: number;
  seconds: number;
}

/** A backbone that never sees pixels: its features are the scenes' ground truth, handed to EncoderCNN.embed. */
const groundTruth: Backbone = {
  name: "scene-ground-truth",
  inputSize: 0,
  normalization: ZERO_TO_ONE,
  featureDim: SCENE_FEATURE_DIM,
  frozen: true,
  trainableVariables: [],
  features() {
    throw new Error("decoder-ceiling: the ground-truth backbone reads scenes, not images");
  },
  dispose() {},
};

/** A split's ground-truth scenes, or an error naming the missing file. */
function scenesOf(split: SplitData, dataRoot: string): Scene[] {
  if (!split.scenes) throw new Error(`${dataRoot}: no scenes_${split.split}2014.json: the ceiling needs a synthetic dataset's ground truth`);
  return split.scenes;
}

/** Trains for `steps` steps, evaluating every `evalEvery` steps and at the end. */
export async function decoderCeiling(dataRoot: string, steps: number | undefined, evalEvery: number, report: (point: CeilingPoint) => void): Promise<void> {
  const [train, val] = await Promise.all([loadSplit(dataRoot, "train"), loadSplit(dataRoot, "val")]);
  const trainFeatures = new Map(scenesOf(train, dataRoot).map((scene) => [scene.imageId, sceneFeatures(scene)]));
  const valScenes = scenesOf(val, dataRoot);
  const vocab = Vocabulary.build(train.index.captions.map((c) => c.caption), { threshold: config.vocabThreshold });
  // The same seeds as Captioner.create gives the main job's encoder and decoder.
  const encoder = new EncoderCNN(groundTruth, { embedSize: config.embedSize, seed: config.seed + 1 });
  const { embedSize, hiddenSize, numLayers, dropout } = config;
  const decoder = new DecoderRNN({ vocabSize: vocab.size, embedSize, hiddenSize, numLayers, dropout }, { seed: config.seed + 2 });
  const loader = new CaptionLoader({
    captions: captionPairs(train),
    vocab,
    source: async (imageId) => trainFeatures.get(imageId)!,
    imageShape: [SCENE_FEATURE_DIM],
    batchSize: config.batchSize,
    seed: config.seed,
    mode: config.batching,
  });
  const totalSteps = steps ?? config.epochs * loader.batchesPerEpoch;
  const optimizer = tf.train.adam(config.learningRate);
  const valInputs = tf.tensor2d(valScenes.map((scene) => [...sceneFeatures(scene)])); // [val images, SCENE_FEATURE_DIM]

  const evaluate = (): { precision: number; recall: number } => {
    const embedding = encoder.embed(valInputs);
    const captions = greedyCaptions(decoder, embedding, vocab, { maxLength: config.maxCaptionLength });
    embedding.dispose();
    const { precision, recall } = sceneScores(new Map(valScenes.map((scene, i) => [scene.imageId, captions[i].caption])), valScenes);
    return { precision, recall };
  };

  const started = performance.now();
  try {
    for (let step = 1; step <= totalSteps; step++) {
      const batch = await loader.next();
      const { images: inputs, tokens, mask } = batchTensors(batch);
      const loss = trainStep({
        decoder,
        embedImages: () => encoder.embed(inputs as tf.Tensor2D, true),
        encoderVariables: encoder.trainableVariables,
        tokens,
        mask,
        optimizer,
        clipNorm: config.clipNorm,
        dropoutSeed: step,
      });
      tf.dispose([inputs, tokens, mask]);
      if (step % evalEvery === 0 || step === totalSteps) {
        report({ step, loss, ...evaluate(), seconds: (performance.now() - started) / 1000 });
      }
    }
  } finally {
    valInputs.dispose();
    optimizer.dispose();
    encoder.dispose();
    decoder.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: "string", default: config.dataRoot },
      steps: { type: "string" },
      "eval-every": { type: "string", default: "250" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return console.log(USAGE);
  const positive = (flag: string, value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${value}"\n${USAGE}`);
    return n;
  };
  const steps = values.steps === undefined ? undefined : positive("steps", values.steps);
  await initBackend({ log: (line) => console.error(line) });
  await decoderCeiling(values.data, steps, positive("eval-every", values["eval-every"]), (point) => {
    if (values.json) return console.log(JSON.stringify(point));
    const { step, loss, precision, recall, seconds } = point;
    console.log(`step ${step}: loss ${loss.toFixed(3)}, val scene precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)} (${seconds.toFixed(0)} s)`);
  });
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`decoder-ceiling: ${(error as Error).message}`);
    process.exitCode = 1;
  });
}
