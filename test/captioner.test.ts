/**
 * The Captioner (lib/inference/captioner.ts): a saved and reloaded model captions exactly as before,
 * beam search with k = 1 is greedy decoding, a checkpoint refuses a vocabulary it was not
 * trained with, real photos (one of them grayscale) are captioned, and a model on the
 * pretrained MobileNet trains on cached features and captions.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { Captioner, concat } from "../lib/inference/captioner";
import type { ModelConfig } from "../lib/model/model-config";
import { tinyTrainConfig } from "./helpers/tiny-config";
import { loadCaptions } from "../lib/data/coco";
import { captionImages } from "../lib/evaluation/evaluate-split";
import { imageSource } from "../lib/features/image-source";
import { CaptionLoader } from "../lib/data/loader";
import { MOBILENET_V1_025, PretrainedBackbone } from "../lib/model/backbone";
import { trainStep } from "../lib/model/train-step";
import { type Caption } from "../lib/inference/greedy";
import { beamSearchCaptions } from "../lib/inference/beam-search";
import { ensureSyntheticDataset } from "../lib/data/synthetic/ensure";
import { train } from "../lib/train/loop";
import { transformImage } from "../lib/data/transforms";
import { Vocabulary, type VocabularyJSON } from "../lib/data/vocabulary";

const SHARED = path.resolve(__dirname, "../../shared");
const PHOTOS = path.join(SHARED, "coco-sample/images/val2014");
const SAMPLE_CAPTIONS = path.join(SHARED, "coco-sample/annotations/captions_val2014_sample.json");
const MOBILENET = path.join(SHARED, "models/mobilenet_v1_0.25_224");
const photosMissing = fs.existsSync(PHOTOS) ? undefined : "../shared/coco-sample not found";
const mobilenetMissing =
  photosMissing ?? (fs.existsSync(path.join(MOBILENET, "model.json")) ? undefined : "../shared/models/mobilenet_v1_0.25_224 not found");

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "captioner-test-"));
const DATA = path.join(TMP, "data");
const RUN = path.join(TMP, "run");

/** A tiny model trained for 60 steps on 48 synthetic images: enough for captions of several words. */
const config = tinyTrainConfig(DATA, RUN, { seed: 7 }); // 2 epochs of 30 steps

let testFiles: string[]; // the synthetic test split's images

/** The files' pixels as the model takes them: [files, S, S, 3]. */
async function pixels(model: Captioner, files: string[]): Promise<tf.Tensor4D> {
  const transform = model.transform(false);
  const data = await Promise.all(files.map((f) => transformImage(f, transform)));
  return tf.tensor4d(concat(data), [files.length, transform.crop, transform.crop, 3]);
}

/** Loads a model, runs `use`, and frees the model (two live models would share variable names). */
async function withModel<T>(where: string, use: (model: Captioner) => Promise<T>): Promise<T> {
  const model = await Captioner.load(where);
  try {
    return await use(model);
  } finally {
    model.dispose();
  }
}

const cocoName = (id: number) => `COCO_val2014_${String(id).padStart(12, "0")}.jpg`;

before(async () => {
  await initBackend();
  await ensureSyntheticDataset(DATA, { images: config.syntheticImages, seed: config.seed });
  const result = await train(config, { log: () => {} });
  result.model.dispose();
  const testDir = path.join(DATA, "images", "test2014");
  testFiles = fs.readdirSync(testDir).sort().map((name) => path.join(testDir, name));
});

after(() => fs.rmSync(TMP, { recursive: true, force: true }));

test("save → load gives the same captions and log-probabilities, greedy and beam search", async () => {
  const exported = path.join(TMP, "exported");
  const before = await withModel(RUN, async (model) => {
    await model.save(exported, "inference"); // no optimizer, no training state: an export for captioning
    return { greedy: await model.captionFiles(testFiles), beam: await model.captionFiles(testFiles, { beamSize: 3 }) };
  });
  assert.equal(fs.existsSync(path.join(exported, "inference", "optimizer.json")), false);
  const after = await withModel(exported, async (model) => ({
    greedy: await model.captionFiles(testFiles),
    beam: await model.captionFiles(testFiles, { beamSize: 3 }),
  }));
  assert.deepEqual(after, before);
  assert.ok(before.greedy.some((c) => c.caption.split(" ").length >= 3), `captions: ${before.greedy.map((c) => c.caption).join(" | ")}`);
  assert.ok(before.greedy.every((c) => Number.isFinite(c.logProb) && c.logProb < 0));
});

test("beam search with k = 1 is greedy decoding: same tokens, same log-probability", async () => {
  await withModel(RUN, async (model) => {
    const images = await pixels(model, testFiles);
    const greedy = model.captionBatch(images);
    const embedding = model.embed(images);
    const beam1 = beamSearchCaptions(model.decoder, embedding, model.vocab, { beamSize: 1, maxLength: 20 });
    tf.dispose([images, embedding]);
    const strip = (c: Caption) => ({ tokens: c.tokens, caption: c.caption });
    assert.deepEqual(beam1.map(strip), greedy.map(strip));
    beam1.forEach((c, i) => assert.ok(Math.abs(c.logProb - greedy[i].logProb) < 1e-9, `image ${i}: ${c.logProb} vs ${greedy[i].logProb}`));
  });
});

test("a vocabulary that is not the checkpoint's is refused, even one of the same size", async () => {
  const source = path.join(RUN, "checkpoints");
  const label = (JSON.parse(fs.readFileSync(path.join(source, "latest.json"), "utf8")) as { label: string }).label;
  const copy = path.join(TMP, "swapped");
  fs.cpSync(path.join(source, label), copy, { recursive: true });
  // Two words trade ids: the same size and the same weights' shapes, but every caption would come out wrong.
  const file = path.join(copy, "vocabulary.json");
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as VocabularyJSON;
  [json.words[3], json.words[4]] = [json.words[4], json.words[3]];
  if (json.counts) [json.counts[3], json.counts[4]] = [json.counts[4], json.counts[3]];
  fs.writeFileSync(file, JSON.stringify(json));
  await assert.rejects(Captioner.load(copy), (e: Error) => {
    assert.match(e.message, /the vocabulary does not match/);
    assert.ok(e.message.startsWith(copy), `the error names the checkpoint: ${e.message}`);
    return true;
  });
});

test("captionFiles on real COCO photos, the grayscale one among them; batching changes nothing", { skip: photosMissing }, async () => {
  const ids = [139, 802, 18575, 30213, 101780, 431848];
  const files = ids.map((id) => path.join(PHOTOS, cocoName(id)));
  const grayscale = files[5];
  assert.equal((await sharp(grayscale).metadata()).channels, 1, "431848 is single-channel");

  await withModel(RUN, async (model) => {
    // The grayscale photo becomes three equal channels (compared before the per-channel normalisation).
    const transform = model.transform(false);
    const data = await transformImage(grayscale, transform);
    const level = (i: number, c: number) => data[i + c] * transform.std[c] + transform.mean[c];
    for (let i = 0; i < data.length; i += 3) {
      assert.ok(Math.abs(level(i, 0) - level(i, 1)) < 1e-6 && Math.abs(level(i, 0) - level(i, 2)) < 1e-6, `pixel ${i / 3}`);
    }

    const captions = await model.captionFiles(files, { batchSize: 16 });
    assert.equal(captions.length, files.length);
    for (const c of captions) {
      assert.ok(c.caption.length > 0 && Number.isFinite(c.logProb), JSON.stringify(c));
      assert.ok(c.caption.split(" ").every((w) => model.vocab.words.includes(w)), `words outside the vocabulary: ${c.caption}`);
    }
    const inPairs = await model.captionFiles(files, { batchSize: 2 });
    assert.deepEqual(inPairs.map((c) => c.tokens), captions.map((c) => c.tokens));
  });
});

test("pretrained MobileNet: features cached on disk and read back, a few training steps, captions", { skip: mobilenetMissing }, async () => {
  const index = await loadCaptions(SAMPLE_CAPTIONS, PHOTOS);
  const vocab = Vocabulary.build(index.captions.map((c) => c.caption), { threshold: 3 });
  const modelConfig: ModelConfig = {
    encoder: { kind: "pretrained", backbone: { ...MOBILENET_V1_025, source: MOBILENET } },
    embedSize: 32,
    hiddenSize: 64,
    numLayers: 1,
    dropout: 0,
    vocabThreshold: 3,
    wordLoss: 0,
  };
  const model = await Captioner.create(modelConfig, vocab);
  try {
    const backbone = model.backbone as PretrainedBackbone;
    assert.ok(backbone instanceof PretrainedBackbone && backbone.frozen);
    assert.equal(backbone.trainableVariables.length, 0);
    const trained = model.encoder.trainableVariables.map(model.savedName);
    assert.ok(trained.length > 0 && trained.every((n) => n.startsWith("encoder/embed/")), `only the embedding layer trains: ${trained}`);
    // Count the images that go through the CNN.
    let cnnImages = 0;
    const features = backbone.features.bind(backbone);
    backbone.features = (images) => ((cnnImages += images.shape[0]), features(images));

    const cacheDir = path.join(TMP, "features");
    const options = { featureCache: true, cacheDir, augment: false };
    const first = await imageSource(model, index, "val", options);
    await first.close();
    assert.equal(cnnImages, 60, "the first run computes every image's features");
    const cacheFiles = path.join(cacheDir, backbone.name, "val");
    assert.deepEqual(fs.readdirSync(cacheFiles).sort(), ["features.f16", "index.json"]);
    assert.equal(fs.statSync(path.join(cacheFiles, "features.f16")).size, 60 * backbone.featureDim * 2); // float16

    const data = await imageSource(model, index, "val", options);
    assert.equal(cnnImages, 60, "the second run reads the cache: no image goes through the CNN");
    assert.deepEqual(data.shape, [backbone.featureDim]);

    const loader = new CaptionLoader({
      captions: index.captions.map((c) => ({ imageId: c.image_id, caption: c.caption })),
      vocab,
      source: data.source,
      imageShape: data.shape,
      batchSize: 8,
      seed: 1,
    });
    const optimizer = tf.train.adam(1e-2);
    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const batch = await loader.next();
      const rows = batch.imageIds.length;
      const cached = tf.tensor2d(batch.images, [rows, backbone.featureDim]); // [batch, featureDim]
      const tokens = tf.tensor2d(batch.tokens, [rows, batch.time], "int32");
      const mask = tf.tensor2d(batch.mask, [rows, batch.time]);
      losses.push(
        trainStep({
          decoder: model.decoder,
          embedImages: () => model.embed(cached),
          encoderVariables: model.encoder.trainableVariables,
          tokens,
          mask,
          optimizer,
          clipNorm: 5,
        }),
      );
      tf.dispose([cached, tokens, mask]);
    }
    optimizer.dispose();
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    assert.ok(losses[7] < losses[0], `loss ${losses[0].toFixed(3)} → ${losses[7].toFixed(3)}`);

    // Captions from the cached features, and from the photos through the whole encoder.
    const ids = [139, 431848];
    const fromCache = await captionImages(model, data, ids);
    await data.close();
    // The grayscale photo and an RGB copy of it: the same 224x224 pixels, so the same caption.
    const rgb = path.join(TMP, "431848-rgb.png");
    await sharp(path.join(PHOTOS, cocoName(431848))).toColourspace("srgb").png().toFile(rgb);
    assert.equal((await sharp(rgb).metadata()).channels, 3);
    const fromFiles = await model.captionFiles([...ids.map((id) => path.join(PHOTOS, cocoName(id))), rgb]);
    assert.equal(cnnImages, 63);
    assert.deepEqual(fromFiles[2], fromFiles[1]);
    for (const c of [...fromCache.values(), ...fromFiles]) {
      assert.ok(c.tokens.length > 0 && Number.isFinite(c.logProb), JSON.stringify(c));
      assert.ok(c.caption.split(" ").every((w) => vocab.words.includes(w)), `words outside the vocabulary: ${c.caption}`);
    }
  } finally {
    model.dispose();
  }
});
