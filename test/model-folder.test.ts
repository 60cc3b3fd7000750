/**
 * Quantised weights and model folders: uint8 and float16 encodings that tfjs decodes by itself,
 * shards under the size limit, and a packed model that loads as a checkpoint does and captions
 * as the model it was packed from (exactly in float32, closely in uint8).
 */
import { after, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { Captioner } from "../lib/inference/captioner";
import type { ModelConfig } from "../lib/model/model-config";
import { loadCaptions } from "../lib/data/coco";
import { MOBILENET_V1_025 } from "../lib/model/backbone";
import { isModelFolder, modelCheckpoint, packModel } from "../lib/inference/model-folder";
import { encodeQuantized, shard, toUint8 } from "../lib/io/quantize";
import { transformImage } from "../lib/data/transforms";
import { Vocabulary } from "../lib/data/vocabulary";

const SHARED = path.resolve(__dirname, "../../shared");
const MOBILENET = path.join(SHARED, "models/mobilenet_v1_0.25_224");
const PHOTOS = path.join(SHARED, "coco-sample/images/val2014");
const CAPTIONS = path.join(SHARED, "coco-sample/annotations/captions_val2014_sample.json");
const missing = [MOBILENET, PHOTOS, CAPTIONS].find((p) => !fs.existsSync(p));
const skip = missing ? `${missing} not found` : undefined;

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "model-folder-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

test("uint8: every value within half a step of the original; tfjs decodes it back to float32", async () => {
  await initBackend();
  const values = new Float32Array([-1.5, -0.2, 0, 0.3, 2.25, 1e-3]);
  const { bytes, min, scale } = toUint8(values);
  assert.equal(min, -1.5);
  assert.ok(Math.abs(scale - 3.75 / 255) < 1e-9);
  const tensor = tf.tensor2d(values, [2, 3]);
  for (const quantization of ["uint8", "float16", "float32"] as const) {
    const { data, specs } = await encodeQuantized([{ name: "w", tensor }], quantization);
    assert.equal(data.length, values.length * { uint8: 1, float16: 2, float32: 4 }[quantization]);
    const decoded = tf.io.decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer, specs).w;
    assert.equal(decoded.dtype, "float32");
    const error = Math.max(...Array.from(decoded.dataSync(), (v, i) => Math.abs(v - values[i])));
    const bound = { uint8: scale / 2 + 1e-7, float16: 2e-3, float32: 0 }[quantization];
    assert.ok(error <= bound, `${quantization}: error ${error} > ${bound}`);
    decoded.dispose();
  }
  assert.deepEqual(Array.from(bytes.slice(0, 3)), [0, Math.round(1.3 / scale), Math.round(1.5 / scale)]);
  tensor.dispose();
});

test("shards: at most the limit each, back to back they are the data", () => {
  const data = new Uint8Array(10).map((_, i) => i);
  const shards = shard(data, "w-", 4);
  assert.deepEqual(shards.map((s) => s.name), ["w-1of3.bin", "w-2of3.bin", "w-3of3.bin"]);
  assert.deepEqual(shards.map((s) => Array.from(s.bytes)), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  assert.equal(shard(new Uint8Array(0), "e-").length, 1, "an empty model still has its one (empty) shard");
});

test("a packed model folder loads like a checkpoint and captions as the model it came from", { skip }, async () => {
  await initBackend();
  const index = await loadCaptions(CAPTIONS, PHOTOS);
  const vocab = Vocabulary.build(index.captions.map((c) => c.caption), { threshold: 2 });
  const config: ModelConfig = {
    encoder: { kind: "pretrained", backbone: { ...MOBILENET_V1_025, source: MOBILENET } },
    embedSize: 32,
    hiddenSize: 48,
    numLayers: 1,
    dropout: 0,
    vocabThreshold: 2,
    wordLoss: 0,
  };
  const model = await Captioner.create(config, vocab, 3);
  const checkpoint = await model.save(path.join(TMP, "run", "checkpoints"), "epoch-001", { config, state: {} });
  const photos = index.images.slice(0, 4).map((image) => index.imagePath(image.id));
  const original = await model.captionFiles(photos);
  const pixels = await photoBatch(model, photos);
  const originalFeatures = model.backbone.features(pixels);
  model.dispose();

  // Cosine similarity of the backbone's features to float32's, at least: what each encoding keeps.
  const bounds = { float32: 0.99999, float16: 0.999, uint8: 0.85 };
  for (const quantization of ["float32", "float16", "uint8"] as const) {
    const out = path.join(TMP, `packed-${quantization}`);
    const sizes = await packModel({ checkpoint: path.join(TMP, "run"), backboneDir: MOBILENET, out, quantization: { backbone: quantization, captioner: quantization } });
    assert.ok(isModelFolder(out));
    assert.equal(modelCheckpoint(out), path.join(out, "captioner"));
    assert.ok(Object.values(sizes).every((bytes) => bytes < 5e6), `a file over 5 MB: ${JSON.stringify(sizes)}`);
    const packed = await Captioner.load(out);
    const captions = await packed.captionFiles(photos);
    const features = packed.backbone.features(pixels);
    const similarity = cosineSimilarities(originalFeatures, features);
    features.dispose();
    packed.dispose();
    if (quantization === "float32") {
      assert.deepEqual(captions.map((c) => c.tokens), original.map((c) => c.tokens), "float32 packing changes nothing");
    }
    // Untrained decoder weights make near-ties between words common, so the backbone is compared, not the words.
    // Per-tensor uint8 is coarse for MobileNet's depthwise filters (0.91-0.94 measured): the shipped model keeps float16 there.
    assert.ok(similarity.every((s) => s > bounds[quantization]), `${quantization} features: cosine similarity to float32 ${similarity.map((s) => s.toFixed(5))}`);
    if (quantization === "uint8") {
      const backboneBytes = Object.entries(sizes).filter(([f]) => f.startsWith("backbone/") && f.endsWith(".bin")).reduce((n, [, b]) => n + b, 0);
      const float32Bytes = fs.readdirSync(MOBILENET).filter((f) => /^group\d+-shard/.test(f)).reduce((n, f) => n + fs.statSync(path.join(MOBILENET, f)).size, 0);
      assert.ok(backboneBytes < 0.26 * float32Bytes, `uint8 backbone ${backboneBytes} bytes, float32 ${float32Bytes}: about a quarter`);
    }
  }
  assert.ok(fs.existsSync(checkpoint));
  tf.dispose([pixels, originalFeatures]);
  await assert.rejects(packModel({ checkpoint: TMP, backboneDir: MOBILENET, out: path.join(TMP, "x"), quantization: { backbone: "uint8", captioner: "uint8" } }), /no checkpoint here/);
});

/** The photos as one batch of the model's input [n, S, S, 3]. */
async function photoBatch(model: Captioner, files: string[]): Promise<tf.Tensor4D> {
  const transform = model.transform(false);
  const pixels = await Promise.all(files.map((f) => transformImage(f, transform)));
  const size = transform.crop;
  const batch = new Float32Array(files.length * size * size * 3);
  pixels.forEach((p, i) => batch.set(p, i * p.length));
  return tf.tensor4d(batch, [files.length, size, size, 3]);
}

/** Cosine similarity of each row of a with the same row of b. */
function cosineSimilarities(a: tf.Tensor2D, b: tf.Tensor2D): number[] {
  return tf.tidy(() => Array.from(tf.sum(tf.mul(a, b), 1).div(tf.norm(a, 2, 1).mul(tf.norm(b, 2, 1))).dataSync()));
}
