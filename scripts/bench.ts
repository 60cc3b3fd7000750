/**
 * Speed of the decoder (a training step and captioning), of the synthetic default's whole step,
 * of a self-critical step and of the frozen backbone. What each figure measures, and the figures
 * measured so far: docs/performance.md.
 *
 *   npm run bench -- [--json] [--backend wasm|cpu|node|node-gpu] [--repeats N] [--no-torch] [--no-synthetic] [--no-caption]
 *                    [--no-self-critical] [--no-features] [--no-data-parallel] [--workers W,W,...] [--backbone-dir DIR]
 *
 * Prints one line per benchmark (one JSON object per line with --json), in this order, each
 * defined in its own file under scripts/bench/:
 *
 * - `train_step` (train-step.ts): the original's decoder step, against its matrix products
 *   alone and PyTorch;
 * - `synthetic_step` (synthetic-step.ts): the synthetic default's step, with and without the
 *   replaced wasm kernels;
 * - `caption` (caption.ts): greedy and beam-3 captioning, ms per image;
 * - `self_critical_step` (self-critical-step.ts): a self-critical step against a cross-entropy one;
 *   then the same step on W threads against one, one line per W (--workers);
 * - `features` (features.ts): the backbone's forward pass with batch norm folded, against tfjs's
 *   layers model and PyTorch (`workers: 1`); then the same CNN on W extraction workers against
 *   one thread, one line per W (--workers);
 * - `data_parallel` (data-parallel.ts): the `train_step` configuration's step on W threads against
 *   one, one line per W (--workers, default 2 up to the cores and one more).
 */
import { parseArgs } from "node:util";
import { BACKEND_KINDS, BackendKind, initBackend } from "../lib/runtime/backend";
import { benchCaption } from "./bench/caption";
import { benchDataParallel, defaultWorkerCounts } from "./bench/data-parallel";
import { benchFeatures, benchFeatureWorkers, DEFAULT_BACKBONE_DIR } from "./bench/features";
import { torchAvailable } from "./bench/pytorch";
import { benchSelfCritical, benchSelfCriticalWorkers } from "./bench/self-critical-step";
import { benchSyntheticStep } from "./bench/synthetic-step";
import { benchTrainStep } from "./bench/train-step";

const USAGE =
  "usage: npm run bench -- [--json] [--backend KIND] [--repeats N] [--no-torch] [--no-synthetic] [--no-caption] [--no-self-critical] [--no-features] [--no-data-parallel] [--workers W,W,...] [--backbone-dir DIR]";

/** One benchmark's line: `name: key=value ...`, or its JSON object with --json. */
function printFigures(figures: Record<string, unknown>, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(figures));
    return;
  }
  const { name, ...rest } = figures;
  console.log(`${name}: ${Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ")}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      backend: { type: "string" },
      repeats: { type: "string", default: "5" },
      "no-torch": { type: "boolean", default: false },
      "no-caption": { type: "boolean", default: false },
      "no-self-critical": { type: "boolean", default: false },
      "no-synthetic": { type: "boolean", default: false },
      "no-features": { type: "boolean", default: false },
      "no-data-parallel": { type: "boolean", default: false },
      "no-train-step": { type: "boolean", default: false },
      workers: { type: "string" },
      "backbone-dir": { type: "string", default: DEFAULT_BACKBONE_DIR },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(USAGE);
  const repeats = Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`scripts/bench.ts: --repeats must be a positive integer, got "${values.repeats}"\n${USAGE}`);
  if (values.backend !== undefined && !(BACKEND_KINDS as readonly string[]).includes(values.backend)) {
    throw new Error(`scripts/bench.ts: --backend must be one of ${BACKEND_KINDS.join(", ")}, got "${values.backend}"\n${USAGE}`);
  }
  const info = await initBackend({ force: values.backend as BackendKind | undefined });
  const torch = !values["no-torch"] && torchAvailable();
  const workerCounts = values.workers === undefined ? defaultWorkerCounts() : values.workers.split(",").map(Number);
  if (!workerCounts.every((w) => Number.isInteger(w) && w >= 2)) throw new Error(`scripts/bench.ts: --workers must list counts ≥ 2, got "${values.workers}"\n${USAGE}`);
  if (!values["no-train-step"]) printFigures(benchTrainStep(info.name, repeats, torch), values.json);
  if (!values["no-synthetic"]) printFigures(benchSyntheticStep(info.name, repeats), values.json);
  if (!values["no-caption"]) printFigures(benchCaption(info.name, repeats), values.json);
  if (!values["no-self-critical"]) {
    printFigures(await benchSelfCritical(info.name, repeats), values.json);
    for (const line of await benchSelfCriticalWorkers(info.name, info.kind, repeats, workerCounts)) printFigures(line, values.json);
  }
  if (!values["no-features"]) {
    printFigures(await benchFeatures(info.name, repeats, values["backbone-dir"], torch), values.json);
    for (const line of await benchFeatureWorkers(info.name, info.kind, repeats, values["backbone-dir"], workerCounts)) printFigures(line, values.json);
  }
  if (!values["no-data-parallel"]) for (const line of await benchDataParallel(info.name, info.kind, repeats, workerCounts)) printFigures(line, values.json);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
