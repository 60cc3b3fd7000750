/**
 * Backbones described by what they are: presets, folders named like a preset, other folders
 * described by flags, the format read from model.json, classifier outputs refused; and the
 * folded fast path (batch norm inside fused convolutions) giving the layers model's numbers.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { BACKBONES, backboneSpecFrom, MINUS_ONE_TO_ONE, MOBILENET_V1_025, MOBILENET_V1_025_GRAPH, MOBILENET_V1_075, PretrainedBackbone } from "../lib/model/backbone";
import { foldLayersModel } from "../lib/runtime/folded-cnn";
import { fileSystemHandler, modelJsonFormat } from "../lib/io/model-cache";
import { backboneFromFlags } from "../scripts/backbone-args";

const MODELS = path.resolve(__dirname, "../../shared/models");
const V1_025 = path.join(MODELS, "mobilenet_v1_0.25_224");
const skipModel = fs.existsSync(path.join(V1_025, "model.json")) ? undefined : `${V1_025} not found`;

test("a backbone is a preset by name, or a folder: a preset when named like one, else described in full", () => {
  assert.deepEqual(backboneSpecFrom({ backbone: "mobilenet_v1_0.75" }), MOBILENET_V1_075);
  const folder = backboneSpecFrom({ backbone: "/models/mobilenet_v1_0.75_224/" });
  assert.deepEqual(folder, { ...MOBILENET_V1_075, source: "/models/mobilenet_v1_0.75_224/" });
  assert.throws(() => backboneSpecFrom({ backbone: "/models/my_cnn" }), /\/models\/my_cnn: not a known backbone .*--input-size N --normalization/);
  const described = backboneSpecFrom({ backbone: "/models/my_cnn/model.json", inputSize: 160, normalization: "imagenet", format: "graph", featureLayer: "pool" });
  assert.equal(described.name, "my_cnn", "the folder's name labels caches and checkpoints");
  assert.deepEqual([described.inputSize, described.format, described.featureLayer, described.source], [160, "graph", "pool", "/models/my_cnn/model.json"]);
  assert.deepEqual(Object.keys(BACKBONES).sort(), ["mobilenet_v1_0.25", "mobilenet_v1_0.25_graph", "mobilenet_v1_0.75", "mobilenet_v2", "resnet50_v2"]);
});

test("the command-line flags keep the preset's whole-image resize for a local copy of the same backbone", () => {
  const base = { ...MOBILENET_V1_075, resize: 224 };
  assert.equal(backboneFromFlags({}, base), undefined, "no flag, no change");
  const local = backboneFromFlags({ backbone: "/copy/mobilenet_v1_0.75_224" }, base)!;
  assert.deepEqual([local.name, local.source, local.resize], ["mobilenet_v1_0.75_224", "/copy/mobilenet_v1_0.75_224", 224]);
  assert.throws(() => backboneFromFlags({ backbone: "/x", normalization: "bogus" }, base), /--normalization must be one of/);
});

test("model.json says its format; a folder loaded under the wrong format is a clear error", { skip: skipModel }, async () => {
  await initBackend();
  assert.equal(modelJsonFormat(V1_025), "layers");
  assert.equal(modelJsonFormat(path.join(V1_025, "imagenet")), "graph");
  // The failure a user met: a layers folder given where a graph model was declared ("producer" of undefined).
  await assert.rejects(
    PretrainedBackbone.load({ ...MOBILENET_V1_025_GRAPH, source: V1_025 }),
    /mobilenet_v1_0\.25_224\/model\.json: a layers model, but backbone "mobilenet_v1_025_224_graph" is declared graph/,
  );
});

test("a graph model's classifier output is not taken as features", { skip: skipModel }, async () => {
  await initBackend();
  const spec = { name: "tfhub_v1", source: path.join(V1_025, "imagenet"), format: "graph" as const, inputSize: 224, normalization: MINUS_ONE_TO_ONE };
  await assert.rejects(PretrainedBackbone.load(spec), /model's output has 1001 values, an ImageNet classifier's scores, not features; name the feature node/);
  // A folder described without its format takes model.json's.
  const described = backboneSpecFrom({ backbone: path.join(V1_025, "imagenet"), inputSize: 224, normalization: "zero-to-one", featureLayer: "module_apply_default/MobilenetV1/Logits/global_pool" });
  assert.equal(described.format, undefined);
  const loaded = await PretrainedBackbone.load(described);
  assert.deepEqual([loaded.name, loaded.featureDim, loaded.fingerprint.format], ["imagenet", 256, "graph"]);
  loaded.dispose();
});

test("folded batch norm gives the layers model's features, on photos-like input", { skip: skipModel }, async () => {
  await initBackend();
  const backbone = await PretrainedBackbone.load({ ...MOBILENET_V1_025, source: V1_025 });
  const model = await tf.loadLayersModel(fileSystemHandler(V1_025));
  const cut = tf.model({ inputs: model.inputs, outputs: model.getLayer("global_average_pooling2d_1").output as tf.SymbolicTensor });
  const images = tf.randomUniform([3, 224, 224, 3], -1, 1, "float32", 7) as tf.Tensor4D;
  const reference = cut.predict(images) as tf.Tensor;
  const folded = backbone.features(images);
  const maxDiff = tf.max(tf.abs(tf.sub(reference, folded))).dataSync()[0];
  const scale = tf.max(tf.abs(reference)).dataSync()[0];
  assert.ok(maxDiff < 1e-4 * Math.max(1, scale), `max difference ${maxDiff} (features up to ${scale})`);
  tf.dispose([images, reference, folded]);
  model.dispose();
  backbone.dispose();
});

test("a model with a layer that cannot be folded runs as the layers model (foldLayersModel gives null)", async () => {
  await initBackend();
  const input = tf.input({ shape: [8, 8, 3] });
  const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", name: "a" }).apply(input) as tf.SymbolicTensor;
  const b = tf.layers.conv2d({ filters: 4, kernelSize: 1, name: "b" }).apply(a) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "residual" }).apply([a, b]) as tf.SymbolicTensor; // ResNet's addition
  const pooled = tf.layers.globalAveragePooling2d({ name: "pool" }).apply(sum) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: pooled });
  assert.equal(foldLayersModel(model, "pool"), null);
  assert.notEqual(foldLayersModel(tf.model({ inputs: input, outputs: b }), "b"), null, "a plain chain folds");
  model.dispose();
});

test("the shared MobileNet V1 0.75 folder loads as its preset: 768 features", { skip: fs.existsSync(path.join(MODELS, "mobilenet_v1_0.75_224/model.json")) ? undefined : "../shared/models/mobilenet_v1_0.75_224 not found" }, async () => {
  await initBackend();
  const spec = backboneSpecFrom({ backbone: path.join(MODELS, "mobilenet_v1_0.75_224") });
  const backbone = await PretrainedBackbone.load(spec, fs.mkdtempSync(path.join(os.tmpdir(), "backbone-")));
  assert.deepEqual([backbone.name, backbone.featureDim], ["mobilenet_v1_0.75_224", 768]);
  backbone.dispose();
});
