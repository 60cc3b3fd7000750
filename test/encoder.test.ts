import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import sharp from "sharp";
import { initBackend } from "../lib/runtime/backend";
import { MOBILENET_V1_025, MOBILENET_V1_025_GRAPH, PretrainedBackbone, transformFor, type BackboneSpec } from "../lib/model/backbone";
import { EncoderCNN } from "../lib/model/encoder";
import { fileSystemHandler, modelJsonUrl } from "../lib/io/model-cache";
import { SmallCNN } from "../lib/model/small-cnn";
import { transformImage } from "../lib/data/transforms";
import { FileServer } from "./helpers/file-server";

const SHARED = path.resolve(__dirname, "../../shared");
const MODEL_DIR = path.join(SHARED, "models/mobilenet_v1_0.25_224");
const PHOTOS = path.join(SHARED, "coco-sample/images/val2014");
const skipModel = fs.existsSync(path.join(MODEL_DIR, "model.json")) ? undefined : "../shared/models/mobilenet_v1_0.25_224 not found";
const skipPhotos = skipModel ?? (fs.existsSync(PHOTOS) ? undefined : "../shared/coco-sample not found");

/** The shared Keras MobileNet V1 0.25, loaded from its folder. */
const LOCAL_V1: BackboneSpec = { ...MOBILENET_V1_025, source: MODEL_DIR };
/** The same network in TF Hub's graph format: [0,1] input, 1001 logits (0 = background). */
const LOCAL_V1_GRAPH: BackboneSpec = { ...MOBILENET_V1_025_GRAPH, source: path.join(MODEL_DIR, "imagenet") };

function photo(id: number): string {
  return path.join(PHOTOS, `COCO_val2014_${String(id).padStart(12, "0")}.jpg`);
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "encoder-"));
}

/** The photos, transformed as `backbone` expects, as one batch [n, size, size, 3]. */
async function photoBatch(backbone: PretrainedBackbone, ids: number[]): Promise<tf.Tensor4D> {
  const transform = transformFor(backbone);
  const pixels = await Promise.all(ids.map((id) => transformImage(photo(id), transform)));
  const size = backbone.inputSize;
  const batch = new Float32Array(ids.length * size * size * 3);
  pixels.forEach((p, i) => batch.set(p, i * p.length));
  return tf.tensor4d(batch, [ids.length, size, size, 3]);
}

function imagenetLabels(): string[] {
  return (JSON.parse(fs.readFileSync(path.join(MODEL_DIR, "metadata.json"), "utf8")) as { labels: string[] }).labels;
}

/** Indices of the k largest values of each row. */
function topK(rows: number[][], k: number): number[][] {
  return rows.map((row) => row.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, k).map(([, i]) => i));
}

test("EncoderCNN on the small CNN: output shapes, named trainable variables, embed() on features", async () => {
  await initBackend();
  const encoder = new EncoderCNN(new SmallCNN(), { embedSize: 32 });
  const images = tf.randomNormal([2, 64, 64, 3]) as tf.Tensor4D;
  const out = encoder.apply(images);
  assert.deepEqual(out.shape, [2, 32]);
  assert.equal(encoder.featureDim, 4 * 4 * 64 + 64); // a 4x4 map of 64 channels, flattened, and its global max
  const embedded = encoder.embed(tf.zeros([3, encoder.featureDim]) as tf.Tensor2D);
  assert.deepEqual(embedded.shape, [3, 32]);
  assert.throws(() => encoder.embed(tf.zeros([1, 256]) as tf.Tensor2D), /features have 256 values per image.*gives 1088/);

  const names = encoder.trainableVariables.map((v) => v.name);
  assert.deepEqual(names, [
    ...[1, 2, 3, 4].flatMap((i) => [`encoder/cnn/conv${i}/filter`, `encoder/cnn/conv${i}/norm/gamma`, `encoder/cnn/conv${i}/norm/beta`]),
    "encoder/embed/kernel",
    "encoder/embed/norm/gamma",
    "encoder/embed/norm/beta",
  ]);
  assert.deepEqual(encoder.stateVariables.map((v) => v.name), [
    ...[1, 2, 3, 4].flatMap((i) => [`encoder/cnn/conv${i}/norm/running_mean`, `encoder/cnn/conv${i}/norm/running_variance`]),
    "encoder/embed/norm/running_mean",
    "encoder/embed/norm/running_variance",
  ]);
  assert.ok(encoder.trainableVariables.every((v) => v.trainable));
  tf.dispose([images, out, embedded]);
  encoder.dispose();
});

test("SmallCNN keeps position: a square moved 16 px right pools to the same vector but flattens to another; the max part says what is there", async () => {
  await initBackend();
  assert.throws(() => new SmallCNN({ inputSize: 60, name: "bad" }), /60 is not divisible by 2\^4/);
  const cnn = new SmallCNN({ name: "position" });
  // A white 16x16 square on black, at x = 16 and at x = 32: one cell of the final 4x4 map apart.
  const square = (left: number) =>
    tf.tidy(() => tf.pad(tf.ones([1, 16, 16, 3]), [[0, 0], [24, 24], [left, 48 - left], [0, 0]]) as tf.Tensor4D);
  const [a, b] = [cnn.features(square(16)), cnn.features(square(32))];
  const map = (f: tf.Tensor2D) => f.slice([0, 0], [1, 16 * 64]).reshape([16, 64]); // the flattened 4x4x64 map
  const pooled = (f: tf.Tensor2D) => map(f).mean(0); // global average pooling of the map
  const pooledDiff = tf.sub(pooled(a), pooled(b)).abs().max().dataSync()[0];
  const flatDiff = tf.sub(map(a), map(b)).abs().max().dataSync()[0];
  assert.ok(pooledDiff < 1e-5, `pooled features differ by ${pooledDiff}`); // why SmallCNN does not only pool
  assert.ok(flatDiff > 0.1, `flattened features differ by only ${flatDiff}`);
  // The last 64 features are the map's global max: the same wherever the square is.
  const maxPart = (f: tf.Tensor2D) => f.slice([0, 16 * 64], [1, 64]);
  assert.ok(tf.sub(maxPart(a), map(a).max(0)).abs().max().dataSync()[0] < 1e-6, "max part is the map's global max");
  assert.ok(tf.sub(maxPart(a), maxPart(b)).abs().max().dataSync()[0] < 1e-5, "max part does not depend on position");
  cnn.dispose();
});

test("the small CNN sees the whole image (no centre crop); pretrained backbones keep ImageNet's resize-and-crop", async () => {
  const cnn = new SmallCNN({ name: "whole-image" });
  const small = transformFor(cnn);
  assert.equal(small.resize, 64);
  assert.equal(small.crop, 64);
  assert.equal(transformFor({ inputSize: 224, normalization: cnn.normalization }).resize, 256);
  // A 96 px synthetic-sized image whose outer 4 px are red and whose inside is blue: the model's
  // first row must still be red (a centre crop of 64 from 73 px would cut the frame away).
  const dir = tmpDir();
  const file = path.join(dir, "framed.png");
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="#ff0000"/><rect x="4" y="4" width="88" height="88" fill="#0000ff"/></svg>';
  await sharp(Buffer.from(svg)).png().toFile(file);
  const pixels = await transformImage(file, small); // [64, 64, 3], normalised
  const red = (i: number) => pixels[i * 3] * small.std[0] + small.mean[0]; // back to [0, 1]
  assert.ok(red(32) > 0.9, `top edge pixel's red is ${red(32).toFixed(2)}: the border was cropped away`);
  assert.ok(red(32 * 64 + 32) < 0.1, "the centre is blue");
  cnn.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Loss and gradients of one forward+backward pass through a seeded encoder, on the active backend. */
function encoderGradients(images: tf.Tensor4D, name: string): { loss: number; grads: Record<string, Float32Array> } {
  const encoder = new EncoderCNN(new SmallCNN({ name: `${name}/cnn` }), { embedSize: 16, name });
  const target = tf.randomNormal([images.shape[0], 16], 0, 1, "float32", 7);
  const { value, grads } = tf.variableGrads(() => tf.losses.meanSquaredError(target, encoder.apply(images)) as tf.Scalar, encoder.trainableVariables);
  const result = {
    loss: value.dataSync()[0],
    grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k.slice(name.length), g.dataSync() as Float32Array])),
  };
  tf.dispose([target, value, ...Object.values(grads)]);
  encoder.dispose();
  return result;
}

test("small CNN forward+backward: wasm gives the cpu backend's loss and gradients", async (t) => {
  const input = tf.tidy(() => tf.randomNormal([2, 64, 64, 3], 0, 1, "float32", 3).dataSync() as Float32Array);
  await initBackend({ force: "wasm" });
  const wasm = encoderGradients(tf.tensor4d(input, [2, 64, 64, 3]), "wasm");
  await initBackend({ force: "cpu" });
  const cpu = encoderGradients(tf.tensor4d(input, [2, 64, 64, 3]), "cpu");
  assert.ok(Math.abs(wasm.loss - cpu.loss) < 1e-4 * Math.abs(cpu.loss), `loss wasm ${wasm.loss} cpu ${cpu.loss}`);
  assert.deepEqual(Object.keys(wasm.grads), Object.keys(cpu.grads));
  for (const [name, g] of Object.entries(cpu.grads)) {
    const scale = Math.max(...g.map(Math.abs));
    const worst = Math.max(...g.map((v, i) => Math.abs(v - wasm.grads[name][i])));
    assert.ok(scale > 0, `${name}: zero gradient`);
    assert.ok(worst <= 1e-3 * scale, `${name}: wasm and cpu differ by ${worst} (gradient scale ${scale})`);
  }
  t.diagnostic(`loss ${cpu.loss.toFixed(5)}; ${Object.keys(cpu.grads).length} gradients agree`);
});

test("small CNN training step (batch 32, 64x64) on wasm: no leaked tensors, and fast kernels only", async (t) => {
  await initBackend({ force: "wasm" });
  const encoder = new EncoderCNN(new SmallCNN({ name: "bench/cnn" }), { embedSize: 256, name: "bench" });
  const images = tf.randomNormal([32, 64, 64, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  const optimizer = tf.train.adam(1e-3);
  const step = () => optimizer.minimize(() => tf.mean(tf.square(encoder.apply(images))) as tf.Scalar, false, encoder.trainableVariables);
  step(); // warm-up: Adam creates its moments
  const before = tf.memory().numTensors;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    step();
    await encoder.trainableVariables[0].data(); // wait for the update
    times.push(performance.now() - start);
  }
  assert.equal(tf.memory().numTensors, before, "tensors leaked by a training step");
  const median = times.sort((a, b) => a - b)[2];
  t.diagnostic(`forward+backward+Adam, batch 32: median ${median.toFixed(0)} ms on wasm`);
  // The pure-JS cpu backend needs ~10 s or more for this; a wasm kernel falling back to slow code shows here.
  assert.ok(median < 5000, `a step took ${median} ms`);
  tf.dispose([images]);
  optimizer.dispose();
  encoder.dispose();
});

test("pretrained backbone from a local folder: frozen, and its features name the right ImageNet class", { skip: skipPhotos }, async () => {
  await initBackend();
  const backbone = await PretrainedBackbone.load(LOCAL_V1);
  assert.equal(backbone.featureDim, 256);
  assert.equal(backbone.frozen, true);
  assert.deepEqual(backbone.trainableVariables, []);
  // The loaded model's weights are variables: none may be trainable.
  const registered = Object.values(tf.engine().registeredVariables);
  assert.ok(registered.length > 50, `only ${registered.length} variables registered`);
  assert.deepEqual(registered.filter((v) => v.trainable).map((v) => v.name), []);

  const encoder = new EncoderCNN(backbone, { embedSize: 8, name: "frozen" });
  const images = await photoBatch(backbone, [160012, 235064, 215778]); // pizza, brown bear, laptop
  // Without a variable list, tf.variableGrads differentiates every trainable variable: only the embedding.
  const { value, grads } = tf.variableGrads(() => encoder.apply(images).square().mean() as tf.Scalar);
  assert.deepEqual(Object.keys(grads).sort(), ["frozen/embed/kernel", "frozen/embed/norm/beta", "frozen/embed/norm/gamma"]);
  tf.dispose([value, ...Object.values(grads)]);

  // The classifier of the full model (1x1 conv `conv_preds`) applied to our features must give its classes.
  const full = await tf.loadLayersModel(fileSystemHandler(MODEL_DIR));
  const [kernel, bias] = full.getLayer("conv_preds").getWeights(); // [1, 1, 256, 1000], [1000]
  const features = backbone.features(images);
  const logits = tf.add(tf.matMul(features, kernel.reshape([256, 1000])), bias);
  const labels = imagenetLabels();
  const top = topK(logits.arraySync() as number[][], 3).map((row) => row.map((i) => labels[i]));
  assert.match(top[0][0], /^pizza/, `pizza photo: ${top[0]}`);
  assert.match(top[1][0], /^brown bear/, `bear photo: ${top[1]}`);
  assert.ok(top[2].slice(0, 2).some((l) => /laptop|notebook/.test(l)), `laptop photo: ${top[2]}`);
  // And the full model itself agrees: the cut is at the right layer.
  const fullTop = topK((full.predict(images) as tf.Tensor).arraySync() as number[][], 1);
  assert.deepEqual(fullTop.map(([i]) => labels[i]), top.map((row) => row[0]));
  tf.dispose([images, features, logits]);
  full.dispose();
  encoder.dispose();
});

test("pretrained features: the two baseball photos are each other's nearest neighbour", { skip: skipPhotos }, async () => {
  await initBackend();
  const backbone = await PretrainedBackbone.load(LOCAL_V1);
  // Two baseball batters, then food, kitchens, animals, planes, a street.
  const ids = [217285, 311002, 160012, 359219, 30213, 802, 113354, 235064, 101787, 205401, 423617, 565607];
  const images = await photoBatch(backbone, ids);
  const similarity = tf.tidy(() => {
    const f = backbone.features(images);
    const unit = tf.div(f, tf.norm(f, 2, 1, true));
    return tf.matMul(unit, unit.transpose()).arraySync() as number[][]; // cosine similarity [n, n]
  });
  const nearest = (i: number) => similarity[i].map((s, j) => (j === i ? -Infinity : s)).indexOf(Math.max(...similarity[i].filter((_, j) => j !== i)));
  assert.equal(ids[nearest(0)], 311002, `nearest to 217285: ${ids[nearest(0)]}`);
  assert.equal(ids[nearest(1)], 217285, `nearest to 311002: ${ids[nearest(1)]}`);
  images.dispose();
  backbone.dispose();
});

test("graph-format backbone: a named feature node, and the model's own logits agree on the class", { skip: skipPhotos }, async () => {
  await initBackend();
  const pooled = await PretrainedBackbone.load(LOCAL_V1_GRAPH);
  assert.equal(pooled.featureDim, 256); // global_pool [N,1,1,256], flattened
  const logits = await PretrainedBackbone.load({ ...LOCAL_V1_GRAPH, featureLayer: "module_apply_default/MobilenetV1/Logits/SpatialSqueeze" });
  assert.equal(logits.featureDim, 1001);
  const images = await photoBatch(logits, [160012, 235064]);
  const top = topK(logits.features(images).arraySync() as number[][], 1).map(([i]) => imagenetLabels()[i - 1]); // 0 = background
  assert.match(top[0], /^pizza/);
  assert.match(top[1], /^brown bear/);
  await assert.rejects(PretrainedBackbone.load({ ...LOCAL_V1_GRAPH, featureLayer: "no/such/node" }), /cannot compute node "no\/such\/node"/);
  await assert.rejects(PretrainedBackbone.load({ ...LOCAL_V1, featureLayer: "no_such_layer" }), /no layer "no_such_layer".*conv_pw_13_relu/);
  images.dispose();
  [pooled, logits].forEach((b) => b.dispose());
});

/** Serves the shared model folder's files (model.json, shards) under /mobilenet/. */
async function serveModel(): Promise<FileServer> {
  const server = await FileServer.start();
  for (const file of fs.readdirSync(MODEL_DIR).filter((f) => fs.statSync(path.join(MODEL_DIR, f)).isFile())) {
    server.files.set(`/mobilenet/${file}`, { body: fs.readFileSync(path.join(MODEL_DIR, file)) });
  }
  return server;
}

test("download from a 127.0.0.1 server into the cache, then load offline from the cache", { skip: skipModel }, async (t) => {
  await initBackend();
  const cacheRoot = tmpDir();
  const server = await serveModel();
  t.after(() => server.close()); // an open server would keep the test process alive after a failure
  const url = `${server.url}mobilenet/model.json`;
  const spec: BackboneSpec = { ...MOBILENET_V1_025, name: "v1-served", source: url };
  const first = await PretrainedBackbone.load(spec, cacheRoot);
  const cached = path.join(cacheRoot, "v1-served");
  assert.ok(fs.existsSync(path.join(cached, "model.json")));
  assert.equal(fs.readdirSync(cached).filter((f) => f.startsWith("group")).length, 55); // every shard
  assert.deepEqual(fs.readdirSync(cacheRoot), ["v1-served"]); // no temporary folder left
  const requests = server.requests.length;
  assert.equal(requests, 56); // model.json + 55 shards
  await server.close();

  const offline = await PretrainedBackbone.load(spec, cacheRoot); // the server is gone
  const local = await PretrainedBackbone.load(LOCAL_V1);
  // Same weights wherever they came from: same fingerprint hash, same features.
  assert.equal(offline.fingerprint.weightsSha256, local.fingerprint.weightsSha256);
  assert.equal(first.fingerprint.weightsSha256, local.fingerprint.weightsSha256);
  const x = tf.randomUniform([1, 224, 224, 3], -1, 1, "float32", 11) as tf.Tensor4D;
  const diff = tf.sub(offline.features(x), local.features(x)).abs().max().dataSync()[0];
  assert.equal(diff, 0);
  // A cache folder made from another URL is not silently reused.
  await assert.rejects(PretrainedBackbone.load({ ...spec, source: "http://127.0.0.1:9/other/model.json" }, cacheRoot), /downloaded from .*mobilenet\/model\.json, not http:\/\/127\.0\.0\.1:9\/other/);
  tf.dispose(x);
  [first, offline, local].forEach((b) => b.dispose());
});

test("a failed download leaves no cache behind: dropped connection, missing shard, short shard", { skip: skipModel }, async (t) => {
  await initBackend();
  const cacheRoot = tmpDir();
  const server = await serveModel();
  t.after(() => server.close());
  const spec: BackboneSpec = { ...MOBILENET_V1_025, name: "v1-broken", source: `${server.url}mobilenet/model.json` };

  const shard = fs.readFileSync(path.join(MODEL_DIR, "group7-shard1of1"));
  server.files.set("/mobilenet/group7-shard1of1", { body: shard, fault: { dropAfter: 10 } }); // on its first request
  await assert.rejects(PretrainedBackbone.load(spec, cacheRoot), /group7-shard1of1: download failed/);
  assert.deepEqual(fs.readdirSync(cacheRoot), []);

  server.files.delete("/mobilenet/group7-shard1of1");
  await assert.rejects(PretrainedBackbone.load(spec, cacheRoot), /group7-shard1of1: download failed \(HTTP 404/);
  assert.deepEqual(fs.readdirSync(cacheRoot), []);

  server.files.set("/mobilenet/group7-shard1of1", { body: shard.subarray(0, shard.length - 4) });
  await assert.rejects(PretrainedBackbone.load(spec, cacheRoot), /shards hold \d+ bytes but the weights manifest needs \d+/);
  assert.deepEqual(fs.readdirSync(cacheRoot), []);

  server.files.set("/mobilenet/group7-shard1of1", { body: shard });
  const backbone = await PretrainedBackbone.load(spec, cacheRoot); // a retry after the fault succeeds
  assert.equal(backbone.featureDim, 256);
  backbone.dispose();
});

test("model URLs: TF Hub pages get model.json with ?tfjs-format=file, folders get /model.json", () => {
  assert.equal(
    modelJsonUrl("https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v2_100_224/feature_vector/3/default/1"),
    "https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v2_100_224/feature_vector/3/default/1/model.json?tfjs-format=file",
  );
  assert.equal(modelJsonUrl("https://example.org/models/mnv2/"), "https://example.org/models/mnv2/model.json");
  assert.equal(modelJsonUrl("https://example.org/m/model.json"), "https://example.org/m/model.json");
});
