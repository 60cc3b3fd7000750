/**
 * lib/train/resume-config.ts on checkpoints written here as JSON only (no weights, no training): a
 * resume keeps the run's settings, applies the overrides RESUME_RULES allows, refuses the others
 * saying which and why, and bad checkpoint files name the file and what is wrong.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from "../lib/io/checkpoint";
import { parseConfigFields, type TrainConfig } from "../lib/train/config";
import { writeJsonAtomically } from "../lib/io/json-file";
import { readResumePoint, RESUME_RULES, resumedConfig } from "../lib/train/resume-config";
import type { TrainState } from "../lib/train/resume-config";
import { tinyTrainConfig } from "./helpers/tiny-config";

/** The run's settings as stored; it was started in a folder it no longer is in. */
const STORED = tinyTrainConfig("data/synthetic-tiny", "runs/where-it-started", { epochs: 3, stepsPerEpoch: 5 });
/** Stopped in its second epoch. */
const STATE: TrainState = {
  step: 7,
  epoch: 1,
  stepInEpoch: 2,
  seconds: 1.5,
  loader: { sampler: { kind: "sequential", position: 0 }, rng: { algorithm: "xoshiro128**", s: [1, 2, 3, 4] } },
};

/** A value other than STORED's for every setting, each one valid. */
const OTHER: TrainConfig = {
  dataset: "coco",
  dataRoot: "data/elsewhere",
  featureDir: "data/elsewhere/features",
  syntheticImages: 120,
  encoder: { kind: "small-cnn", inputSize: 16, filters: [4] },
  embedSize: 16,
  hiddenSize: 16,
  numLayers: 2,
  dropout: 0.5,
  vocabThreshold: 2,
  wordLoss: 0,
  batchSize: 4,
  epochs: 5,
  stepsPerEpoch: 9,
  learningRate: 0.5,
  lrDecay: { every: 2, factor: 0.5 },
  clipNorm: 1,
  batching: "padded",
  augment: true,
  featureCache: true,
  valImages: 2,
  maxCaptionLength: 7,
  seed: 11,
  workers: 2,
  printEvery: 3,
  runDir: "runs/elsewhere",
  keepCheckpoints: 1,
  selfCritical: { epochs: 2, samplesPerImage: 3, baseline: "greedy", learningRate: 1e-5, imagesPerBatch: 4 },
};

/** Writes `<tmp>/run/checkpoints/epoch-001/checkpoint.json` (and latest.json); returns the run folder. */
function writeRun(meta: { config?: unknown; state?: unknown } = {}): string {
  const run = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "resume-config-")), "run");
  const checkpoints = path.join(run, "checkpoints");
  fs.mkdirSync(path.join(checkpoints, "epoch-001"), { recursive: true });
  writeJsonAtomically(path.join(checkpoints, "epoch-001", "checkpoint.json"), {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    label: "epoch-001",
    savedAt: new Date().toISOString(),
    config: "config" in meta ? meta.config : STORED,
    vocabularyFingerprint: "",
    state: "state" in meta ? meta.state : STATE,
  });
  writeJsonAtomically(path.join(checkpoints, "latest.json"), { label: "epoch-001" });
  return run;
}

test("the policy: the schedule, the learning rate and what validation shows may change; the model, the data and the folder may not", () => {
  const allowed = Object.entries(RESUME_RULES).filter(([, rule]) => rule.override).map(([key]) => key);
  assert.deepEqual(allowed.sort(), ["clipNorm", "epochs", "featureDir", "keepCheckpoints", "learningRate", "lrDecay", "maxCaptionLength", "printEvery", "selfCritical", "stepsPerEpoch", "valImages", "workers"]);
  for (const [key, rule] of Object.entries(RESUME_RULES)) assert.ok(rule.why.length > 10, `${key} says why`);
});

test("a resume with no overrides keeps every setting of the run, in the folder that holds its checkpoint now", () => {
  const run = writeRun();
  const point = readResumePoint(run);
  assert.equal(point.checkpoint, path.join(run, "checkpoints", "epoch-001"));
  assert.deepEqual(point.state, STATE);
  assert.deepEqual(resumedConfig(point), { config: { ...STORED, runDir: run }, changes: [] });
  // A checkpoint folder of the run means the same run.
  assert.deepEqual(readResumePoint(point.checkpoint).config, { ...STORED, runDir: run });
});

test("values equal to the run's own are no change, so a caller may pass the whole config; paths compare resolved", () => {
  const point = readResumePoint(writeRun());
  const whole = { ...point.config, dataRoot: path.resolve(STORED.dataRoot), runDir: path.resolve(point.config.runDir) + "/" };
  assert.deepEqual(resumedConfig(point, whole), { config: point.config, changes: [] });
});

test("each setting RESUME_RULES allows to change is applied and listed; each other one is refused, naming it, both values and why", () => {
  const point = readResumePoint(writeRun());
  for (const key of Object.keys(RESUME_RULES) as (keyof TrainConfig)[]) {
    assert.notDeepEqual(OTHER[key], point.config[key], `OTHER.${key} must differ from the run's`);
    const change = `${key} ${JSON.stringify(point.config[key])} → ${JSON.stringify(OTHER[key])}`;
    const override = { [key]: OTHER[key] };
    if (RESUME_RULES[key].override) {
      assert.deepEqual(resumedConfig(point, override), { config: { ...point.config, ...override }, changes: [change] });
    } else {
      assert.throws(
        () => resumedConfig(point, override),
        (e: Error) => e.message === `${point.checkpoint}: cannot resume with ${change} (${RESUME_RULES[key].why}). Resume without this change, or start a new run in another folder.`,
        key,
      );
    }
  }
});

test("several refused changes are named in one error; an allowed one beside them is not listed as refused", () => {
  const point = readResumePoint(writeRun());
  assert.throws(
    () => resumedConfig(point, { epochs: 4, batchSize: 16, vocabThreshold: 5 }),
    (e: Error) => {
      assert.match(e.message, /cannot resume with batchSize 8 → 16 \(.*\); vocabThreshold 1 → 5 \(the checkpoint's vocabulary was built with it\)\. Resume without these changes/);
      assert.doesNotMatch(e.message, /epochs/);
      return true;
    },
  );
});

test("epochs may grow, or shrink down to those already done, but not below", () => {
  const point = readResumePoint(writeRun({ state: { ...STATE, epoch: 2 } }));
  assert.equal(resumedConfig(point, { epochs: 8 }).config.epochs, 8);
  assert.equal(resumedConfig(point, { epochs: 2 }).config.epochs, 2);
  assert.throws(() => resumedConfig(point, { epochs: 1 }), /cannot resume with epochs 3 → 1 \(the run has already done 2 epochs\)/);
});

test("a checkpoint whose settings or state are wrong is refused, naming the file and what is wrong", () => {
  const { wordLoss: _, ...withoutWordLoss } = STORED;
  const file = (run: string) => path.join(run, "checkpoints", "epoch-001", "checkpoint.json");
  const lacking = writeRun({ config: withoutWordLoss });
  assert.throws(() => readResumePoint(lacking), { message: `${file(lacking)} → config: the configuration lacks "wordLoss"` });
  const wrong = writeRun({ config: { ...STORED, batchSize: "8" } });
  assert.throws(() => readResumePoint(wrong), { message: `${file(wrong)} → config: "batchSize" must be a positive integer, got "8"` });
  const noState = writeRun({ state: {} });
  assert.throws(() => readResumePoint(noState), new RegExp(`^Error: ${file(noState)}: "state" holds no training position`));
});

test("a checkpoint outside a run's checkpoints/ folder has no run to resume", () => {
  const run = writeRun();
  const loose = path.join(path.dirname(run), "exported");
  fs.renameSync(path.join(run, "checkpoints", "epoch-001"), loose);
  assert.throws(() => readResumePoint(loose), { message: `${loose}: not in a run folder's checkpoints/ folder, so there is no run to resume` });
});

test("settings read from a file: unknown names and wrong values are named with the file", () => {
  assert.deepEqual(parseConfigFields({ epochs: 2, stepsPerEpoch: null }, "f.json"), { epochs: 2, stepsPerEpoch: null });
  assert.throws(() => parseConfigFields({ epoch: 2 }, "f.json"), /^Error: f\.json: unknown setting "epoch" \(the settings are dataset, /);
  assert.throws(() => parseConfigFields({ dropout: 1 }, "f.json"), { message: `f.json: "dropout" must be a number in [0, 1), got 1` });
  assert.throws(() => parseConfigFields({ encoder: { kind: "small-cnn", inputSize: 32 } }, "f.json"), /^Error: f\.json: "encoder" must be /);
  assert.throws(() => parseConfigFields([1], "f.json"), { message: "f.json: the configuration must be a JSON object of settings, got [1]" });
});
