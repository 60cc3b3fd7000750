/**
 * The notebooks' shared set-up (lib/notebook.ts) and `npm start`'s pointer to its run: the dataset
 * chosen by preset name, the folders, the training configuration, and what a run folder offers.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from "../lib/io/checkpoint";
import { COCO_CONFIG, PRESETS, QUICK_SETTINGS, SYNTHETIC_CONFIG } from "../lib/train/config";
import { hasCheckpoint, loadTrainedModel, NotebookError, setupNotebook, trainConfigFor, trainedSteps } from "../lib/notebook";
import { projectRoot } from "../lib/runtime/paths";
import { pointLatestRun } from "../scripts/run-notebooks";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "notebook-test-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quiet = () => {};

/** A run folder whose latest checkpoint is at `step` (only the JSON that says so). */
function runWithCheckpoint(name: string, step: number): string {
  const runDir = path.join(tmp, name);
  const dir = path.join(runDir, "checkpoints", `step-${step}`);
  fs.mkdirSync(dir, { recursive: true });
  const meta = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, label: `step-${step}`, config: {}, state: { step } };
  fs.writeFileSync(path.join(dir, "checkpoint.json"), JSON.stringify(meta));
  fs.writeFileSync(path.join(runDir, "checkpoints", "latest.json"), JSON.stringify({ label: `step-${step}` }));
  return runDir;
}

test("setupNotebook: the synthetic preset and runs/latest by default; the data folder shrinks in quick runs", async () => {
  const setup = await setupNotebook({ env: {}, log: quiet });
  assert.equal(setup.dataset, "synthetic");
  assert.equal(setup.preset, SYNTHETIC_CONFIG);
  assert.equal(setup.runDir, path.join(projectRoot(), "runs", "latest"));
  assert.equal(setup.dataRoot, path.join(projectRoot(), SYNTHETIC_CONFIG.dataRoot));
  assert.equal(setup.syntheticImages, SYNTHETIC_CONFIG.syntheticImages);
  const quick = await setupNotebook({ env: { CAPTIONER_QUICK: "1", CAPTIONER_RUN_DIR: tmp }, log: quiet });
  assert.equal(quick.quick, true);
  assert.equal(quick.runDir, tmp);
  assert.notEqual(quick.dataRoot, setup.dataRoot, "a quick run has its own small dataset");
  assert.ok(quick.syntheticImages < setup.syntheticImages);
});

test("setupNotebook: the dataset is any preset by name; an unknown name lists the known ones", async () => {
  const lines: string[] = [];
  const coco = await setupNotebook({ env: { CAPTIONER_DATASET: "coco" }, log: (line) => lines.push(line) });
  assert.equal(coco.preset, COCO_CONFIG);
  assert.equal(coco.syntheticImages, 0, "a downloaded dataset is not generated");
  assert.ok(lines.some((l) => l.startsWith("dataset: coco")), lines.join("\n"));
  await assert.rejects(setupNotebook({ env: { CAPTIONER_DATASET: "imagenet" }, log: quiet }), (error: Error) => {
    assert.match(error.message, /no dataset preset named "imagenet"/);
    for (const name of Object.keys(PRESETS)) assert.ok(error.message.includes(name), `${name} listed`);
    return true;
  });
});

test("trainConfigFor: the preset, the notebook's folders, a learner's changes, and the quick settings last", async () => {
  const setup = await setupNotebook({ env: { CAPTIONER_RUN_DIR: tmp }, log: quiet });
  const config = trainConfigFor(setup, { epochs: 6, hiddenSize: 512 });
  assert.deepEqual([config.epochs, config.hiddenSize, config.runDir, config.dataRoot], [6, 512, tmp, setup.dataRoot]);
  assert.equal(config.learningRate, SYNTHETIC_CONFIG.learningRate);
  const quick = trainConfigFor({ ...setup, quick: true }, { epochs: 6 });
  assert.equal(quick.epochs, QUICK_SETTINGS.epochs, "a smoke test stays a smoke test");
});

test("a run folder's checkpoint: found through checkpoints/latest.json, with its step", () => {
  const empty = path.join(tmp, "empty");
  fs.mkdirSync(empty);
  assert.equal(hasCheckpoint(empty), false);
  assert.equal(trainedSteps(empty), 0);
  const run = runWithCheckpoint("trained", 1500);
  assert.equal(hasCheckpoint(run), true);
  assert.equal(trainedSteps(run), 1500);
});

test("no trained model: one line that says what to do, no stack trace", async () => {
  const setup = await setupNotebook({ env: { CAPTIONER_RUN_DIR: path.join(tmp, "nothing") }, log: quiet });
  await assert.rejects(loadTrainedModel(setup), (error: unknown) => {
    assert.ok(error instanceof NotebookError);
    assert.match(error.message, /^no trained model in .*nothing: run 2_Training first \(or `npm start`\), set CAPTIONER_RUN_DIR .*or caption photos with the model that ships in models\/flickr8k-mobilenet/);
    assert.equal(error.stack, `NotebookError: ${error.message}`);
    assert.ok(!error.message.includes("\n"));
    return true;
  });
});

test("npm start's runs/latest: a relative link to the run, replaced by the next run; a real folder is left alone", () => {
  const runs = path.join(tmp, "runs");
  const first = path.join(runs, "aaa");
  const second = path.join(runs, "bbb");
  fs.mkdirSync(first, { recursive: true });
  fs.mkdirSync(second);
  pointLatestRun(runs, first);
  assert.equal(fs.readlinkSync(path.join(runs, "latest")), "aaa");
  const line = pointLatestRun(runs, second);
  assert.equal(fs.readlinkSync(path.join(runs, "latest")), "bbb");
  assert.match(line, /latest → bbb/);
  assert.equal(fs.realpathSync(path.join(runs, "latest")), fs.realpathSync(second));
  const outside = path.join(tmp, "elsewhere");
  pointLatestRun(runs, outside);
  assert.equal(fs.readlinkSync(path.join(runs, "latest")), outside, "a run outside runs/ is linked by its absolute path");

  const own = path.join(tmp, "own-runs");
  fs.mkdirSync(path.join(own, "latest"), { recursive: true });
  fs.writeFileSync(path.join(own, "latest", "training-log.jsonl"), "");
  assert.match(pointLatestRun(own, first), /is a run folder of its own, left as it is; open this run with CAPTIONER_RUN_DIR=/);
  assert.ok(fs.lstatSync(path.join(own, "latest")).isDirectory());
  assert.ok(fs.existsSync(path.join(own, "latest", "training-log.jsonl")));
});
