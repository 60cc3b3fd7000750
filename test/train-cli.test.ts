/**
 * `npm run train` as a user runs it, on a tiny model and a 60-image synthetic set in a temporary
 * folder: a run killed with SIGKILL at a random step and resumed with `--resume RUN_DIR` alone ends
 * with the weights and the log of a run that never stopped; a resume may extend a finished run
 * (--epochs) and refuses a change it cannot make without touching the run; config.json holds the
 * settings the run really used.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { readCheckpointMeta, resolveCheckpoint } from "../lib/io/checkpoint";
import type { TrainConfig } from "../lib/train/config";
import { readJson } from "../lib/io/json-file";
import { ensureSyntheticDataset } from "../lib/data/synthetic/ensure";
import { runFiles } from "../lib/train/run-folder";
import type { TrainState } from "../lib/train/resume-config";
import { readLog, stepRecords } from "../lib/train/train-log";
import { loadTensors } from "../lib/io/weights-io";
import { folderSnapshot, sameRunAssertions } from "./helpers/same-run";
import { tinyTrainConfig } from "./helpers/tiny-config";

const ROOT = path.resolve(__dirname, "..");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "train-cli-"));
const DATA = path.join(TMP, "data");
const SETTINGS_FILE = path.join(TMP, "tiny.json");
const REFERENCE = path.join(TMP, "reference");

/** The tiny model's settings, as a --config file holds them (the run folder comes from --run-dir). */
const { runDir: _, ...SETTINGS } = tinyTrainConfig(DATA, "unused", { dropout: 0.1, valImages: 4, maxCaptionLength: 12, seed: 3, printEvery: 1 });
const EPOCHS = 3;
/** Enough steps that a kill in epoch 2 lands an epoch before the run could end. */
const STEPS_PER_EPOCH = 25;
const NEW_RUN = ["--config", SETTINGS_FILE, "--epochs", String(EPOCHS), "--steps-per-epoch", String(STEPS_PER_EPOCH)];

interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `npm run train -- ARGS` (its script, without npm); `onLine` sees each line of stdout as it comes. */
function trainCommand(args: string[], onLine?: (line: string, child: ChildProcess) => void): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/train.ts", ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    let partial = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) onLine?.(line, child);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The step a progress line reports, counted from the start of the run ("epoch 2/3 · step 4/25 · ..." is 29). */
function stepOf(line: string): number | undefined {
  const match = /^epoch (\d+)\/\d+ · step (\d+)\/(\d+) · /.exec(line);
  return match ? (Number(match[1]) - 1) * Number(match[3]) + Number(match[2]) : undefined;
}

/** Where a run folder ended: its latest checkpoint (weights, state, settings), its log and its config.json. */
async function runEnd(runDir: string) {
  const checkpoint = resolveCheckpoint(runDir);
  const tensors = await loadTensors(checkpoint, "weights");
  const weights = new Map(Object.entries(tensors).map(([name, t]) => [name, Float32Array.from(t.dataSync())]));
  tf.dispose(Object.values(tensors));
  const meta = readCheckpointMeta<TrainConfig, TrainState>(checkpoint);
  const files = runFiles(runDir);
  return { checkpoint, weights, meta, log: readLog(files.log), config: readJson(files.config) as TrainConfig };
}

let same: ReturnType<typeof sameRunAssertions>;
let reference: Awaited<ReturnType<typeof runEnd>>; // the run that never stopped

before(async () => {
  same = sameRunAssertions((await initBackend()).kind); // the command chooses the same backend
  await ensureSyntheticDataset(DATA, { images: SETTINGS.syntheticImages, seed: SETTINGS.seed });
  fs.writeFileSync(SETTINGS_FILE, JSON.stringify(SETTINGS, null, 2));
  const run = await trainCommand([...NEW_RUN, "--run-dir", REFERENCE]);
  assert.equal(run.code, 0, run.stderr);
  reference = await runEnd(REFERENCE);
});

after(() => fs.rmSync(TMP, { recursive: true, force: true }));

test("a new run's config.json holds the settings it used: the --config file's, with the flags applied", () => {
  const used = { ...SETTINGS, epochs: EPOCHS, stepsPerEpoch: STEPS_PER_EPOCH, runDir: REFERENCE };
  assert.deepEqual(reference.config, used);
  assert.deepEqual(reference.meta.config, used, "the checkpoint stores the same");
  assert.equal(reference.meta.state.step, EPOCHS * STEPS_PER_EPOCH);
});

test("killed with SIGKILL at a random step, then --resume RUN_DIR alone: the same weights, log and state as the run that never stopped", async (t) => {
  const run = path.join(TMP, "killed");
  const killAt = STEPS_PER_EPOCH + 1 + Math.floor(Math.random() * STEPS_PER_EPOCH); // in epoch 2, after epoch 1's checkpoint
  const killed = await trainCommand([...NEW_RUN, "--run-dir", run], (line, child) => {
    if ((stepOf(line) ?? 0) >= killAt && !child.killed) child.kill("SIGKILL");
  });
  const at = `killed once step ${killAt} was printed`;
  assert.equal(killed.signal, "SIGKILL", `${at}: the run ended by itself first (exit code ${killed.code})`);
  const logged = stepRecords(readLog(runFiles(run).log)).map((r) => r.step);
  assert.ok(Math.max(...logged) < EPOCHS * STEPS_PER_EPOCH, `${at}: the log already holds step ${Math.max(...logged)}`);
  t.diagnostic(`${at}; the log ends at step ${Math.max(...logged)}, the latest checkpoint is ${path.basename(resolveCheckpoint(run))}`);

  const resumed = await trainCommand(["--resume", run]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /^resumed from .*epoch-00[12] at step \d+ /m, at);
  assert.doesNotMatch(resumed.stdout, /resuming with/, "no setting was overridden");

  const end = await runEnd(run);
  assert.equal(path.basename(end.checkpoint), `epoch-00${EPOCHS}`, at);
  same.assertSameWeights(end.weights, reference.weights);
  same.assertSameLog(end.log, reference.log);
  assert.deepEqual({ ...end.meta.state, seconds: 0 }, { ...reference.meta.state, seconds: 0 }, "the same step, epoch and data-loader state");
  assert.deepEqual(end.config, { ...reference.config, runDir: run });
});

test("--resume with --epochs goes on past the end of a finished run; config.json and the checkpoint record the change", async () => {
  const run = path.join(TMP, "extended");
  fs.cpSync(REFERENCE, run, { recursive: true }); // a copy of a run folder resumes as its own run
  const extended = await trainCommand(["--resume", run, "--epochs", String(EPOCHS + 1)]);
  assert.equal(extended.code, 0, extended.stderr);
  assert.match(extended.stdout, new RegExp(`^resuming with epochs ${EPOCHS} → ${EPOCHS + 1}$`, "m"));

  const end = await runEnd(run);
  assert.equal(path.basename(end.checkpoint), `epoch-00${EPOCHS + 1}`);
  assert.equal(end.meta.state.step, (EPOCHS + 1) * STEPS_PER_EPOCH);
  const used = { ...reference.config, epochs: EPOCHS + 1, runDir: run };
  assert.deepEqual(end.config, used);
  assert.deepEqual(end.meta.config, used);
  same.assertSameLog(end.log.slice(0, reference.log.length), reference.log);
  assert.equal(stepRecords(end.log).length, (EPOCHS + 1) * STEPS_PER_EPOCH);
});

test("--resume with a change it cannot make (--batch-size, --data) fails in one line naming the setting, and leaves the run as it was", async () => {
  const before = folderSnapshot(REFERENCE);
  const checkpoint = resolveCheckpoint(REFERENCE);
  const batch = await trainCommand(["--resume", REFERENCE, "--batch-size", "16"]);
  assert.equal(batch.code, 1);
  assert.equal(batch.stdout, "");
  assert.match(batch.stderr, new RegExp(`^train: ${checkpoint}: cannot resume with batchSize 8 → 16 \\(the data loader's saved position[^\\n]*new run in another folder\\.\\n$`));

  const data = await trainCommand(["--resume", REFERENCE, "--data", "coco"]);
  assert.equal(data.code, 1);
  assert.match(data.stderr, /cannot resume with dataset "synthetic" → "coco" \(the model and its vocabulary were trained on this dataset\)/);
  assert.deepEqual(folderSnapshot(REFERENCE), before, "nothing in the run folder changed");
});

test("a new run into a folder that holds one is refused, saying how to resume it; a bad --config file is named with what is wrong", async () => {
  const before = folderSnapshot(REFERENCE);
  const again = await trainCommand([...NEW_RUN, "--run-dir", REFERENCE]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, new RegExp(`^train: ${REFERENCE} already holds a run \\(checkpoints [^\\n]*--resume ${REFERENCE}, or train into a new run folder\\n$`));
  assert.deepEqual(folderSnapshot(REFERENCE), before);

  const bad = path.join(TMP, "bad.json");
  fs.writeFileSync(bad, JSON.stringify({ epochs: "3" }));
  const badRun = await trainCommand(["--config", bad, "--run-dir", path.join(TMP, "never")]);
  assert.equal(badRun.code, 1);
  assert.equal(badRun.stderr, `train: ${bad}: "epochs" must be a positive integer, got "3"\n`);
  assert.equal(fs.existsSync(path.join(TMP, "never")), false);
});
