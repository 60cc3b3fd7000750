/**
 * The training loop on W = 2 threads (lib/train/data-parallel.ts): two runs are bit-identical, a
 * run stopped and resumed with the same W ends with the same weights as one that never stopped,
 * W = 2 learns what W = 1 learns to float tolerance, a worker that dies stops the run with a
 * message naming it and a checkpoint that resumes, and the self-critical phase on W = 2 resumes
 * bit for bit too.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { initBackend } from "../lib/runtime/backend";
import type { TrainConfig } from "../lib/train/config";
import { sameRunAssertions, trainAndRead } from "./helpers/same-run";
import { tinyTrainConfig } from "./helpers/tiny-config";
import { ensureSyntheticDataset } from "../lib/data/synthetic/ensure";
import { train } from "../lib/train/loop";

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "train-workers-test-"));
const DATA = path.join(TMP, "data");
const N = 8;
const K = 5;

function tinyConfig(runName: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return tinyTrainConfig(DATA, path.join(TMP, runName), {
    dropout: 0.1,
    wordLoss: 0.5,
    epochs: 2,
    stepsPerEpoch: 4,
    valImages: 0,
    seed: 3,
    workers: 2,
    ...overrides,
  });
}

let reference: Awaited<ReturnType<typeof trainAndRead>>;
let same: ReturnType<typeof sameRunAssertions>;

before(async () => {
  same = sameRunAssertions((await initBackend()).kind);
  await ensureSyntheticDataset(DATA, { images: 60, seed: 3 });
  reference = await trainAndRead(tinyConfig("reference"), { maxSteps: N });
});

after(() => fs.rmSync(TMP, { recursive: true, force: true }));

test("W = 2: a run stopped at K and resumed to N has the weights of N steps in one go, bit for bit; W = 1 learns the same to float tolerance", async () => {
  const config = tinyConfig("resumed");
  const lines: string[] = [];
  await trainAndRead(config, { maxSteps: K, log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => l.includes("data-parallel on W = 2 threads")), lines.join("\n"));
  const resumed = await trainAndRead(config, { resume: config.runDir, maxSteps: N });
  same.assertSameWeights(resumed.weights, reference.weights);
  same.assertSameLog(resumed.log, reference.log);

  const single = await trainAndRead(tinyConfig("single", { workers: 1 }), { maxSteps: N });
  assert.ok(reference.weights.size > 0);
  for (const [name, w] of reference.weights) {
    const w1 = single.weights.get(name)!;
    let largest = 0;
    for (let j = 0; j < w.length; j++) largest = Math.max(largest, Math.abs(w[j] - w1[j]));
    assert.ok(largest < 2e-3, `${name}: W = 2 and W = 1 differ by ${largest} after ${N} steps`);
  }
});

test("a resume with another W says that the arithmetic changes", async () => {
  const config = tinyConfig("other-w");
  await trainAndRead(config, { maxSteps: 2 });
  const lines: string[] = [];
  await trainAndRead({ ...config, workers: 1 }, { resume: config.runDir, maxSteps: 3, log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /W = 1 threads where the run's steps ran on 2: .*arithmetic/.test(l)), lines.join("\n"));
});

test("a worker that dies stops the run with a message naming it and a checkpoint of the last step, which resumes exactly", async () => {
  const config = tinyConfig("killed");
  await assert.rejects(
    train(config, {
      onDataParallel: (parallel) => {
        killer = () => void parallel.killWorker(1);
      },
      onStep: (p) => {
        if (p.step === 3) killer?.();
      },
    }),
    /training worker 1 of 1 (exited|died).*training stopped at step 3, checkpoint .*step-000003/s,
  );
  const resumed = await trainAndRead(config, { resume: config.runDir, maxSteps: N });
  same.assertSameWeights(resumed.weights, reference.weights);
});
let killer: (() => void) | undefined;

test("W = 2 through the self-critical phase (the greedy baseline): stopped mid-phase and resumed, bit for bit the run that never stopped", async () => {
  const scst = (name: string) =>
    tinyConfig(name, {
      epochs: 1,
      stepsPerEpoch: 3,
      selfCritical: { epochs: 1, samplesPerImage: 3, baseline: "greedy", learningRate: 1e-3, imagesPerBatch: 6 },
    });
  const whole = await trainAndRead(scst("scst-whole"));
  const steps = whole.log.filter((r) => r.kind === "step" && r.phase === "self-critical");
  assert.equal(steps.length, 3);
  const config = scst("scst-resumed");
  await trainAndRead(config, { maxSteps: 4 }); // one self-critical step done
  const resumed = await trainAndRead(config, { resume: config.runDir });
  same.assertSameWeights(resumed.weights, whole.weights);
  same.assertSameLog(resumed.log, whole.log);
});
