/**
 * The training loop (lib/train/loop.ts) on a tiny synthetic dataset: the loss falls, nothing leaks,
 * and a run that stops (at maxSteps, or by its abort signal) and resumes from its checkpoint
 * ends with the same weights and the same log as a run that never stopped. A resume keeps the
 * run's settings but those it may change; a run folder with checkpoints is never trained over.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { Captioner } from "../lib/inference/captioner";
import type { TrainConfig } from "../lib/train/config";
import { folderSnapshot, sameRunAssertions, trainAndRead } from "./helpers/same-run";
import { tinyTrainConfig } from "./helpers/tiny-config";
import { ensureSyntheticDataset } from "../lib/data/synthetic/ensure";
import { readCheckpointMeta } from "../lib/io/checkpoint";
import { readJson } from "../lib/io/json-file";
import { stepRecords } from "../lib/train/train-log";
import { train } from "../lib/train/loop";
import { runFiles } from "../lib/train/run-folder";

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "train-test-"));
const DATA = path.join(TMP, "data");
/** Steps of the uninterrupted reference run, and where the interrupted runs stop. */
const N = 12;
const K = 7;

/** A model small enough for a step to take milliseconds; 5 steps per epoch, so runs cross epoch ends. */
function tinyConfig(runName: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return tinyTrainConfig(DATA, path.join(TMP, runName), {
    dropout: 0.1, // kept on: resuming must also repeat each step's dropout masks
    epochs: 3,
    stepsPerEpoch: 5,
    valImages: 4,
    maxCaptionLength: 12,
    seed: 3,
    ...overrides,
  });
}

let reference: Awaited<ReturnType<typeof trainAndRead>>; // N steps in one go
let same: ReturnType<typeof sameRunAssertions>; // bit for bit on wasm/cpu, once the backend is chosen

before(async () => {
  same = sameRunAssertions((await initBackend()).kind);
  await ensureSyntheticDataset(DATA, { images: 60, seed: 3 });
  reference = await trainAndRead(tinyConfig("reference"), { maxSteps: N });
});

after(() => fs.rmSync(TMP, { recursive: true, force: true }));

test("the loss falls over 40 steps, and the number of live tensors is the same after step 2 and step 50", async () => {
  const losses: number[] = [];
  const liveTensors = new Map<number, number>();
  // One epoch of 30 steps: step 50 comes after an epoch end (validation, checkpoint) and an epoch start.
  const config = tinyConfig("long", { stepsPerEpoch: 30, epochs: 2 });
  const result = await train(config, {
    log: () => {},
    maxSteps: 50,
    onStep(p) {
      losses.push(p.loss);
      liveTensors.set(p.step, tf.memory().numTensors);
    },
  });
  result.model.dispose();
  assert.equal(losses.length, 50);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(losses.slice(0, 5));
  const around40 = mean(losses.slice(36, 41));
  assert.ok(around40 < 0.7 * first, `mean loss of steps 1-5 ${first.toFixed(3)}, of steps 37-41 ${around40.toFixed(3)}`);
  assert.equal(liveTensors.get(50), liveTensors.get(2), "tensors leaked between step 2 and step 50");
});

test("maxSteps K, then resume to N: the same weights (bit for bit on wasm/cpu) and the same log as N steps in one go", async () => {
  const config = tinyConfig("resumed");
  const first = await trainAndRead(config, { maxSteps: K });
  assert.equal(first.interrupted, true);
  assert.equal(first.state.step, K);
  assert.equal(path.basename(first.checkpoint), `step-${String(K).padStart(6, "0")}`);

  const resumed = await trainAndRead(config, { resume: config.runDir, maxSteps: N });
  assert.equal(resumed.state.step, N);
  same.assertSameWeights(resumed.weights, reference.weights);
  same.assertSameLog(resumed.log, reference.log);
  assert.deepEqual(stepRecords(resumed.log).map((r) => r.step), Array.from({ length: N }, (_, i) => i + 1));
});

test("an abort signal stops after the current step with a checkpoint that resumes exactly", async () => {
  const config = tinyConfig("aborted");
  const abort = new AbortController();
  const stopped = await trainAndRead(config, {
    signal: abort.signal,
    onStep: (p) => p.step === 4 && abort.abort(),
  });
  assert.equal(stopped.interrupted, true);
  assert.equal(stopped.state.step, 4, "the step running when the signal came is finished, no other");
  assert.equal(path.basename(stopped.checkpoint), "step-000004");
  assert.ok(fs.existsSync(path.join(stopped.checkpoint, "optimizer.json")), "the checkpoint holds Adam's state");

  const resumed = await trainAndRead(config, { resume: stopped.checkpoint, maxSteps: N });
  same.assertSameWeights(resumed.weights, reference.weights);
});

test("an abort during an epoch's validation stops it at once; the resumed run validates that epoch and ends exactly", async () => {
  const config = tinyConfig("aborted-in-validation");
  const abort = new AbortController();
  let started = 0;
  const stopped = await trainAndRead(config, {
    signal: abort.signal,
    // Abort after the epoch's last step: the loop does not look at the signal again before validating.
    onStep: (p) => p.stepInEpoch === p.stepsPerEpoch && abort.abort(),
    onEpoch: () => started++,
  });
  assert.equal(stopped.interrupted, true);
  assert.equal(started, 0, "the epoch's validation did not finish");
  assert.equal(stopped.state.step, 5);
  assert.equal(stopped.state.epoch, 0, "the epoch is not counted as done before it is validated");
  assert.equal(path.basename(stopped.checkpoint), "step-000005");
  assert.deepEqual(stopped.log.map((r) => r.kind), Array(5).fill("step"), "no epoch record");

  const resumed = await trainAndRead(config, { resume: stopped.checkpoint, maxSteps: N });
  same.assertSameWeights(resumed.weights, reference.weights);
  same.assertSameLog(resumed.log, reference.log);
});

test("resuming from an earlier checkpoint drops the log records after it, so the log reads as one run", async () => {
  const config = tinyConfig("truncated");
  const ran = await trainAndRead(config, { maxSteps: K }); // log: steps 1-7, the end of epoch 1 (after step 5)
  assert.deepEqual(stepRecords(ran.log).map((r) => r.step), [1, 2, 3, 4, 5, 6, 7]);

  const epochOne = path.join(runFiles(config.runDir).checkpoints, "epoch-001"); // written after step 5
  const resumed = await trainAndRead(config, { resume: epochOne, maxSteps: 9 });
  assert.deepEqual(stepRecords(resumed.log).map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(resumed.log.filter((r) => r.kind === "epoch").length, 1, "the end of epoch 1 is logged once");
  const prefix = reference.log.filter((r) => r.step <= 9);
  same.assertSameLog(resumed.log, prefix);
});

test("resuming with another model configuration is refused, naming the checkpoint, the setting and both values", async () => {
  const checkpoint = reference.checkpoint;
  const other = tinyConfig("reference", { hiddenSize: 48 });
  await assert.rejects(train(other, { resume: checkpoint, log: () => {} }), (e: Error) => {
    assert.ok(e.message.startsWith(`${checkpoint}: cannot resume with hiddenSize 64 → 48 (`), e.message);
    return true;
  });
  await assert.rejects(Captioner.load(checkpoint, { ...other, hiddenSize: 64, embedSize: 8 }), /embedSize: checkpoint 32, requested 8/);
});

test("a resume given the run's whole config with more epochs goes on to them, and config.json says so", async () => {
  const shorter = tinyConfig("extended", { epochs: 1 });
  const first = await trainAndRead(shorter);
  assert.equal(first.state.step, 5, "one epoch of 5 steps");

  const lines: string[] = [];
  const longer = { ...shorter, epochs: 2 };
  const extended = await trainAndRead(longer, { resume: longer.runDir, log: (line) => lines.push(line) });
  assert.equal(extended.state.step, 10);
  assert.ok(lines.includes("resuming with epochs 1 → 2"), lines.join("\n"));
  same.assertSameLog(extended.log, reference.log.filter((r) => r.step <= 10)); // the schedule's length changes no step
  assert.deepEqual(readJson(runFiles(longer.runDir).config), longer);
  assert.equal(readCheckpointMeta<TrainConfig>(extended.checkpoint).config.epochs, 2);
});

test("training from scratch into a run folder that holds checkpoints is refused, in one line that says how to go on", async () => {
  const config = tinyConfig("reference");
  const before = folderSnapshot(config.runDir);
  await assert.rejects(train(config, { log: () => {} }), (e: Error) => {
    assert.ok(e.message.startsWith(`${config.runDir} already holds a run (checkpoints `), e.message);
    assert.match(e.message, /step-000012/, "it names the checkpoints");
    assert.ok(e.message.includes(`--resume ${config.runDir}`) && e.message.includes("new run folder"), e.message);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  assert.deepEqual(folderSnapshot(config.runDir), before, "nothing in the run folder changed");
});

test("a new run where an earlier attempt died before its first checkpoint starts the log afresh", async () => {
  const config = tinyConfig("died-early");
  const log = runFiles(config.runDir).log;
  fs.mkdirSync(config.runDir, { recursive: true });
  const stale = stepRecords(reference.log).slice(0, 3).map((r) => ({ ...r, loss: 99 }));
  fs.writeFileSync(log, stale.map((r) => JSON.stringify(r) + "\n").join("") + '{"kind":"st'); // torn by the kill

  const fresh = await trainAndRead(config, { maxSteps: 2 });
  same.assertSameLog(fresh.log, reference.log.slice(0, 2));
});
