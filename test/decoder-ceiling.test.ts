/**
 * The decoder's ceiling: scenes written as perfect features, and the script that trains the
 * decoder on them (a few steps on a tiny synthetic dataset).
 */
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { ensureSyntheticDataset } from "../lib/data/synthetic/ensure";
import { SCENE_FEATURE_DIM, sceneFeatures } from "../lib/data/synthetic/scene-features";
import type { Scene } from "../lib/data/synthetic/scene";
import { decoderCeiling, type CeilingPoint } from "../scripts/decoder-ceiling";

const DATA = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ceiling-")), "data");

before(async () => {
  await initBackend({ log: () => {} });
  await ensureSyntheticDataset(DATA, { images: 60, seed: 3 });
});

test("sceneFeatures: one colour, shape and size per object in its cell, and the background", () => {
  const scene: Scene = {
    imageId: 1,
    background: "green",
    objects: [
      { shape: "circle", color: "red", size: "large", x: 0.17, y: 0.15 }, // cell 0
      { shape: "star", color: "blue", size: "small", x: 0.83, y: 0.5 }, // cell 5
    ],
  };
  const features = sceneFeatures(scene);
  assert.equal(features.length, SCENE_FEATURE_DIM);
  const ones = [...features.keys()].filter((i) => features[i] === 1);
  // Per cell: colours 0-7 (red 0, blue 2), shapes 8-11 (circle 8, star 11), sizes 12-13 (small 12, large 13); 14 per cell.
  // The background's one-hot follows the 9 cells: 126 + green (1).
  assert.deepEqual(ones, [0, 8, 13, 5 * 14 + 2, 5 * 14 + 11, 5 * 14 + 12, 9 * 14 + 1]);
  assert.equal(features.reduce((a, b) => a + b, 0), ones.length, "every other value is 0");
});

test("decoderCeiling: trains on scene features, reports greedy scene scores on val, leaks no tensors", async () => {
  const before = tf.memory().numTensors;
  const points: CeilingPoint[] = [];
  await decoderCeiling(DATA, 12, 5, (point) => points.push(point));
  assert.deepEqual(points.map((p) => p.step), [5, 10, 12], "every 5 steps and at the end");
  for (const { loss, precision, recall } of points) {
    assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
    assert.ok(precision >= 0 && precision <= 1 && recall >= 0 && recall <= 1, `precision ${precision}, recall ${recall}`);
  }
  assert.ok(points[2].loss < points[0].loss, `loss falls: ${points.map((p) => p.loss.toFixed(3))}`);
  assert.equal(tf.memory().numTensors, before, "all tensors freed");
});

test("decoderCeiling: a dataset without ground-truth scenes is refused, naming the folder", async () => {
  const copy = path.join(path.dirname(DATA), "no-scenes");
  fs.cpSync(DATA, copy, { recursive: true });
  fs.rmSync(path.join(copy, "annotations", "scenes_train2014.json"));
  await assert.rejects(decoderCeiling(copy, 2, 1, () => {}), (error: Error) => {
    assert.match(error.message, new RegExp(`${copy}: no scenes_train2014.json`));
    return true;
  });
});
