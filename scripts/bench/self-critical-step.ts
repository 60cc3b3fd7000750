/**
 * The `self_critical_step` figures: a self-critical step (32 images × 5 sampled captions,
 * Flickr8k's sizes) against a cross-entropy step of the same model, interleaved: `ms`,
 * `cross_entropy_step_ms`, their ratio, and ms per sampled caption. benchSelfCritical says what
 * the case is. Then one line per worker count W (--workers): the same step on W threads
 * (DataParallel.selfCriticalStep) against W = 1, interleaved.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendKind } from "../../lib/runtime/backend";
import { coreCount } from "../../lib/runtime/worker-pool";
import { DataParallel } from "../../lib/train/data-parallel";
import { Random } from "../../lib/data/random";
import { Vocabulary } from "../../lib/data/vocabulary";
import { Captioner } from "../../lib/inference/captioner";
import { trainStep } from "../../lib/model/train-step";
import { CiderReward } from "../../lib/train/cider-reward";
import { FLICKR8K_CONFIG, SELF_CRITICAL_DEFAULTS } from "../../lib/train/config";
import { selfCriticalStep } from "../../lib/train/self-critical";
import { MAX_CAPTION_LENGTH } from "./caption";
import { interleaved, interleavedAsync, round } from "./timing";
import { CLIP_NORM } from "./train-step";

/** The shipped Flickr8k recipe's sizes: what the self-critical figure is measured on. */
const FLICKR8K_SIZES = { vocab: 2549, embed: 512, hidden: 512, ceBatch: 64, ceLength: 13, images: 32, samples: 5 };

/**
 * The `self_critical_step` figures: one self-critical step (lib/train/self-critical.ts: 32 images,
 * 5 samples each, the mean baseline, CIDEr-D rewards) against one cross-entropy step (64 captions
 * of 13 tokens) of the same model, the Flickr8k recipe's sizes, interleaved. The weights are
 * untrained, so samples rarely end before maxLength (20 tokens): the worst case; a trained model's
 * samples are about half as long.
 */
export async function benchSelfCritical(backend: string, repeats: number): Promise<Record<string, unknown>> {
  const c = await selfCriticalCase();
  const reps = Math.max(1, Math.ceil(repeats / 2)); // a self-critical step takes seconds: fewer rounds
  const [scT, ceT] = interleaved([{ run: () => void c.selfCritical() }, { run: c.crossEntropy }], reps);
  c.dispose();
  return {
    name: "self_critical_step",
    backend,
    config: { ...c.sizes, baseline: "mean", max_length: MAX_CAPTION_LENGTH },
    ms: round(scT.ms),
    cross_entropy_step_ms: round(ceT.ms),
    ratio_to_cross_entropy_step: round(scT.ms / ceT.ms, 2),
    ms_per_sampled_caption: round(scT.ms / (c.sizes.images * c.sizes.samples), 2),
  };
}

/**
 * One `self_critical_step` line per worker count: the same step on W threads against W = 1,
 * interleaved. W > 1 draws other samples than W = 1 (one generator per image: data-parallel.ts),
 * but with untrained weights nearly every sample runs to maxLength, so the work is the same.
 */
export async function benchSelfCriticalWorkers(backend: string, kind: BackendKind, repeats: number, counts: number[]): Promise<Record<string, unknown>[]> {
  const c = await selfCriticalCase();
  const pools: DataParallel[] = [];
  try {
    for (const w of counts) {
      const dp = await DataParallel.start(w, c.model.decoder, kind);
      pools.push(dp);
      await dp.prepareSelfCritical(c.model.vocab, c.references);
    }
    const entries = [() => c.selfCritical(), ...pools.map((dp) => () => dp.selfCriticalStep({ ...c.params(), seed: c.nextStep() }))];
    const [single, ...onWorkers] = await interleavedAsync(entries, Math.max(1, Math.ceil(repeats / 2)));
    return counts.map((workers, i) => ({
      name: "self_critical_step",
      backend,
      workers,
      cores: coreCount(),
      ms: round(onWorkers[i].ms),
      single_ms: round(single.ms),
      speedup: round(single.ms / onWorkers[i].ms, 2),
    }));
  } finally {
    await Promise.all(pools.map((dp) => dp.close()));
    c.dispose();
  }
}

/** The benchmark's model, batch and reward; `selfCritical` and `crossEntropy` run one step each. */
async function selfCriticalCase() {
  const sizes = FLICKR8K_SIZES;
  const words = Array.from({ length: sizes.vocab - 3 }, (_, i) => `w${i}`);
  const vocab = Vocabulary.build([words.join(" ")], { threshold: 1 });
  // A stand-in encoder whose features are the input: the cached backbone features of the recipe.
  const config = { ...FLICKR8K_CONFIG, encoder: { kind: "small-cnn" as const, inputSize: 4, filters: [4] }, dropout: 0 };
  const model = await Captioner.create(config, vocab, 1);
  const featureDim = model.backbone.featureDim;
  const rng = new Random(5);
  const caption = () => Array.from({ length: sizes.ceLength - 2 }, () => words[rng.int(words.length)]).join(" ");
  const ids = Array.from({ length: sizes.images }, (_, i) => i);
  const references = new Map(ids.map((id) => [id, Array.from({ length: 5 }, caption)]));
  const reward = new CiderReward(references);
  const features = tf.randomNormal([sizes.images, featureDim], 0, 1, "float32", 3);
  const ceFeatures = tf.randomNormal([sizes.ceBatch, featureDim], 0, 1, "float32", 4);
  const tokens = tf.tidy(() => {
    const w = tf.randomUniform([sizes.ceBatch, sizes.ceLength - 2], 3, sizes.vocab, "int32", 7);
    return tf.concat([tf.zeros([sizes.ceBatch, 1], "int32"), w, tf.ones([sizes.ceBatch, 1], "int32")], 1) as tf.Tensor2D;
  });
  const mask = tf.onesLike(tokens).toFloat() as tf.Tensor2D;
  const optimizer = tf.train.adam(1e-5);
  const settings = { ...SELF_CRITICAL_DEFAULTS, samplesPerImage: sizes.samples, imagesPerBatch: sizes.images, baseline: "mean" as const };
  let step = 0;
  const params = () => ({ model, batch: { imageIds: ids, images: features }, reward, config: settings, optimizer, clipNorm: CLIP_NORM, maxLength: MAX_CAPTION_LENGTH });
  return {
    sizes,
    model,
    references,
    params,
    nextStep: () => step++,
    selfCritical: () => selfCriticalStep({ ...params(), rng: new Random(step++) }),
    crossEntropy: () =>
      void trainStep({ decoder: model.decoder, embedImages: () => model.embed(ceFeatures, true), encoderVariables: model.encoder.trainableVariables, tokens, mask, optimizer, clipNorm: CLIP_NORM }),
    dispose: () => {
      tf.dispose([features, ceFeatures, tokens, mask]);
      optimizer.dispose();
      model.dispose();
    },
  };
}
