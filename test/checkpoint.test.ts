import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  assertSameConfig,
  readCheckpointMeta,
  resolveCheckpoint,
  restoreOptimizer,
  restoreVariables,
  saveCheckpoint,
} from "../lib/io/checkpoint";

const vocab = (words: string[]) => ({
  toJSON: () => ({ words }),
  fingerprint: () => words.join("|"),
});

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ckpt-"));
}

async function oneAdamStep(vars: tf.Variable[], opt: tf.Optimizer): Promise<void> {
  opt.minimize(() => tf.addN(vars.map((v) => v.square().sum())) as tf.Scalar);
}

test("save → restore gives the same weights and Adam state, so the next step is identical", async () => {
  await tf.setBackend("cpu");
  const dir = tmpDir();
  const a = tf.variable(tf.randomNormal([3, 4], 0, 1, "float32", 1), true, "ck/a");
  const b = tf.variable(tf.randomNormal([5], 0, 1, "float32", 2), true, "ck/b");
  const opt = tf.train.adam(0.1);
  await oneAdamStep([a, b], opt);
  await oneAdamStep([a, b], opt);
  const where = await saveCheckpoint(path.join(dir, "checkpoints"), {
    label: "step-2",
    config: { hidden: 4 },
    state: { step: 2 },
    vocabulary: vocab(["<start>", "<end>"]),
    variables: [a, b],
    optimizer: opt,
  });
  await oneAdamStep([a, b], opt);
  const expected = [a.arraySync(), b.arraySync()];
  tf.dispose([a, b]);
  opt.dispose();

  // A fresh model and optimizer, restored from disk, take the same third step.
  const a2 = tf.variable(tf.zeros([3, 4]), true, "ck/a");
  const b2 = tf.variable(tf.zeros([5]), true, "ck/b");
  assert.equal(resolveCheckpoint(dir), where);
  await restoreVariables(where, [a2, b2]);
  const opt2 = tf.train.adam(0.1);
  assert.equal(await restoreOptimizer(where, opt2), true);
  await oneAdamStep([a2, b2], opt2);
  assert.deepEqual([a2.arraySync(), b2.arraySync()], expected);
  assert.equal(readCheckpointMeta<{ hidden: number }, { step: number }>(where).state.step, 2);
  tf.dispose([a2, b2]);
});

test("a checkpoint of another shape, config or vocabulary is refused with a clear message", async () => {
  await tf.setBackend("cpu");
  const dir = tmpDir();
  const w = tf.variable(tf.ones([2, 2]), true, "shape/w");
  const where = await saveCheckpoint(dir, {
    label: "x",
    config: { hiddenSize: 2, embedSize: 3 },
    state: {},
    vocabulary: vocab(["a"]),
    variables: [w],
  });
  w.dispose();
  const wrong = tf.variable(tf.ones([3, 2]), true, "shape/w");
  await assert.rejects(restoreVariables(where, [wrong]), /"shape\/w" has shape \[2,2\] in the checkpoint but \[3,2\]/);
  const absent = tf.variable(tf.ones([2, 2]), true, "shape/other");
  await assert.rejects(restoreVariables(where, [absent]), /no weight "shape\/other"/);
  const meta = readCheckpointMeta<{ hiddenSize: number; embedSize: number }>(where);
  assert.throws(
    () => assertSameConfig(where, meta.config, { hiddenSize: 4, embedSize: 3 }, ["hiddenSize", "embedSize"]),
    /hiddenSize: checkpoint 2, requested 4/,
  );
  assert.equal(await restoreOptimizer(where, tf.train.adam()), false);
  tf.dispose([wrong, absent]);
});

test("an interrupted save leaves the previous checkpoint as latest; broken files are named in errors", async () => {
  await tf.setBackend("cpu");
  const dir = tmpDir();
  const w = tf.variable(tf.ones([2]), true, "torn/w");
  const first = await saveCheckpoint(dir, { label: "epoch-1", config: {}, state: {}, vocabulary: vocab([]), variables: [w] });
  // Simulate a crash mid-save: a temporary folder without checkpoint.json.
  fs.mkdirSync(path.join(dir, ".tmp-epoch-2-abc"));
  assert.equal(resolveCheckpoint(dir), first);

  fs.writeFileSync(path.join(first, "checkpoint.json"), "{ not json");
  assert.throws(() => readCheckpointMeta(first), /checkpoint\.json: not valid JSON/);
  fs.writeFileSync(path.join(first, "checkpoint.json"), JSON.stringify({ format: "something-else" }));
  assert.throws(() => readCheckpointMeta(first), /not a captioner checkpoint/);
  fs.rmSync(path.join(first, "weights.bin"));
  await assert.rejects(restoreVariables(first, [w]), /weights\.bin: weight file missing/);
  assert.throws(() => resolveCheckpoint(path.join(dir, "nowhere")), /no checkpoint here/);
  w.dispose();
});

test("keep prunes the oldest checkpoints", async () => {
  await tf.setBackend("cpu");
  const dir = tmpDir();
  const w = tf.variable(tf.ones([1]), true, "keep/w");
  for (const label of ["e1", "e2", "e3"]) {
    await saveCheckpoint(dir, { label, config: {}, state: {}, vocabulary: vocab([]), variables: [w], keep: 2 });
    await new Promise((r) => setTimeout(r, 15)); // distinct modification times
  }
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith("e")).sort(), ["e2", "e3"]);
  assert.equal(resolveCheckpoint(dir), path.join(dir, "e3"));
  w.dispose();
});
