/**
 * The `self_critical_step` figures: a self-critical step (32 images × 5 sampled captions,
 * Flickr8k's sizes) against a cross-entropy step of the same model, interleaved: `ms`,
 * `cross_entropy_step_ms`, their ratio, and ms per sampled caption. benchSelfCritical says what
 * the case is.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../../lib/data/random";
import { Vocabulary } from "../../lib/data/vocabulary";
import { Captioner } from "../../lib/inference/captioner";
import { trainStep } from "../../lib/model/train-step";
import { CiderReward } from "../../lib/train/cider-reward";
import { FLICKR8K_CONFIG, SELF_CRITICAL_DEFAULTS } from "../../lib/train/config";
import { selfCriticalStep } from "../../lib/train/self-critical";
import { MAX_CAPTION_LENGTH } from "./caption";
import { interleaved, round } from "./timing";
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
  const reward = new CiderReward(new Map(ids.map((id) => [id, Array.from({ length: 5 }, caption)])));
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
  const selfCritical = () =>
    void selfCriticalStep({ model, batch: { imageIds: ids, images: features }, reward, config: settings, rng: new Random(step++), optimizer, clipNorm: CLIP_NORM, maxLength: MAX_CAPTION_LENGTH });
  const crossEntropy = () =>
    void trainStep({ decoder: model.decoder, embedImages: () => model.embed(ceFeatures, true), encoderVariables: model.encoder.trainableVariables, tokens, mask, optimizer, clipNorm: CLIP_NORM });
  const reps = Math.max(1, Math.ceil(repeats / 2)); // a self-critical step takes seconds: fewer rounds
  const [scT, ceT] = interleaved([{ run: selfCritical }, { run: crossEntropy }], reps);
  tf.dispose([features, ceFeatures, tokens, mask]);
  optimizer.dispose();
  model.dispose();
  return {
    name: "self_critical_step",
    backend,
    config: { ...sizes, baseline: "mean", max_length: MAX_CAPTION_LENGTH },
    ms: round(scT.ms),
    cross_entropy_step_ms: round(ceT.ms),
    ratio_to_cross_entropy_step: round(scT.ms / ceT.ms, 2),
    ms_per_sampled_caption: round(scT.ms / (sizes.images * sizes.samples), 2),
  };
}
