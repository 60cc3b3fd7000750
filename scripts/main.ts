/**
 * `npm start`: the main job. Runs the three notebooks end to end into a new run folder and prints
 * what came out of it.
 *
 *   npm start                       the default training (a few minutes on 2 CPU cores)
 *   CAPTIONER_QUICK=1 npm start     a tiny smoke run (about a minute), as the tests run it
 *   npm start -- --quick            the same
 *
 * Steps: build lib/ if its sources changed, register the tslab kernel if needed, generate the
 * synthetic dataset if missing, create runs/<id>/, execute 1_Preliminaries → 2_Training →
 * 3_Inference into it (executed notebooks, HTML exports, checkpoints, training log, metrics.json),
 * point runs/latest at it (a full run; `npm run lab` opens the notebooks on runs/latest), then
 * print the backend, the test metrics and a few captions from metrics.json.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { customAlphabet } from "nanoid";
import { dataFolderFor, presetFor } from "../lib/train/config";
import { readJson } from "../lib/io/json-file";
import { ensureSyntheticDataset } from "../lib/data/synthetic";
import { assertJupyter, buildLibIfStale, ensureKernel, pointLatestRun, PROJECT_ROOT, runNotebooks, shortPath } from "./run-notebooks";

/** Run ids: short, and safe in any shell or file system (no "-" or "_" as nanoid's default has). */
const runId = customAlphabet("0123456789abcdefghijklmnopqrstuvwxyz", 10);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: process.env.CAPTIONER_QUICK === "1" },
      "run-dir": { type: "string" },
    },
  });
  const quick = values.quick!;
  const start = performance.now();

  buildLibIfStale();
  assertJupyter();
  ensureKernel();
  await ensureData(quick);

  const runDir = path.resolve(values["run-dir"] ?? path.join(PROJECT_ROOT, "runs", runId()));
  console.log(`run folder: ${shortPath(runDir)}${quick ? " (quick configuration)" : ""}`);
  const env: Record<string, string> = quick ? { CAPTIONER_QUICK: "1" } : {};
  await runNotebooks({ runDir, env, echo: true });

  printSummary(runDir, (performance.now() - start) / 1000);
  // A quick run is a smoke test: runs/latest keeps pointing at the last real one.
  if (!quick) console.log(pointLatestRun(path.join(PROJECT_ROOT, "runs"), runDir));
}

/**
 * Generates the synthetic dataset up front when it is missing (a few seconds). The notebooks make
 * the same choice of folder and size (lib/notebook.ts), and would generate it too; doing it here
 * shows it as a step of its own. Other datasets (CAPTIONER_DATASET=coco) are downloaded instead.
 */
async function ensureData(quick: boolean): Promise<void> {
  const preset = presetFor(process.env.CAPTIONER_DATASET ?? "synthetic");
  if (preset.dataset !== "synthetic") return;
  const { dataRoot, images } = dataFolderFor(preset, quick);
  const root = path.resolve(PROJECT_ROOT, dataRoot);
  const made = await ensureSyntheticDataset(root, { images, seed: preset.seed });
  console.log(`${made.generated ? "generated" : "using"} the synthetic dataset in ${shortPath(root)} (${images} images)`);
}

/** What notebook 3 writes to metrics.json (the fields read here). */
interface RunMetrics {
  backend: string;
  dataset: string;
  split: string;
  images: number;
  greedy: Record<string, number>;
  beam3: Record<string, number>;
  blind: Record<string, number>;
  blindCaption: string;
  msPerImage: { greedy: number; beam3: number };
  samples: { image_id: number; greedy: string; beam3: string }[];
}

const SHOWN_METRICS = ["Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr", "scenePrecision", "sceneRecall"];

function printSummary(runDir: string, seconds: number): void {
  const file = path.join(runDir, "metrics.json");
  if (!fs.existsSync(file)) throw new Error(`main: ${file} is missing: notebook 3 ran but did not write its metrics`);
  const m = readJson(file) as RunMetrics;
  const keys = SHOWN_METRICS.filter((k) => k in m.greedy);
  const row = (label: string, scores: Record<string, number>) =>
    label.padEnd(18) + keys.map((k) => (scores[k] ?? NaN).toFixed(3).padStart(15)).join("");

  console.log("");
  console.log(`backend: ${m.backend}    dataset: ${m.dataset}    test metrics on ${m.images} ${m.split} images`);
  console.log("".padEnd(18) + keys.map((k) => k.padStart(15)).join(""));
  console.log(row("greedy", m.greedy));
  console.log(row("beam 3", m.beam3));
  console.log(row("blind caption", m.blind));
  console.log(`blind caption (the same for every image): "${m.blindCaption}"`);
  console.log(`captioning speed: greedy ${m.msPerImage.greedy.toFixed(1)} ms/image, beam 3 ${m.msPerImage.beam3.toFixed(1)} ms/image`);
  console.log("sample captions (greedy | beam 3):");
  for (const s of m.samples.slice(0, 5)) console.log(`  image ${s.image_id}: ${s.greedy} | ${s.beam3}`);
  console.log("");
  console.log(`wall time: ${(seconds / 60).toFixed(1)} min (${seconds.toFixed(0)} s)`);
  console.log(`run folder: ${shortPath(runDir)}/ (executed notebooks, HTML exports, checkpoints, training-log.jsonl, metrics.json)`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
