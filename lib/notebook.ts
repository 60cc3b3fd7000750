/**
 * What the three notebooks share: the first cell's set-up (the dataset preset, the data and run
 * folders, the backend), the training configuration with a learner's changes, whether a run can be
 * continued, and errors that tell a person what to do in one line.
 *
 * Environment variables, all optional:
 *   CAPTIONER_DATASET   a preset of lib/train/config.ts (PRESETS): "synthetic" (default), "flickr8k", "coco"
 *   CAPTIONER_DATA_ROOT where that dataset is, if not in the preset's folder (e.g. a Flickr8k elsewhere)
 *   CAPTIONER_BACKBONE  a local copy of the preset's pretrained backbone (offline machines)
 *   CAPTIONER_RUN_DIR   the run folder; default runs/latest (`npm start` points it at its last run)
 *   CAPTIONER_QUICK=1   everything shrunk to a smoke test (the test suite runs the notebooks so)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { initBackend, type BackendInfo } from "./runtime/backend";
import { Captioner } from "./inference/captioner";
import { SHIPPED_MODEL } from "./inference/model-folder";
import { readCheckpointMeta, resolveCheckpoint } from "./io/checkpoint";
import { dataFolderFor, presetFor, QUICK_SETTINGS, type DatasetName, type TrainConfig } from "./train/config";
import { SETTINGS, type Setting } from "./train/settings";
import { escapeHtml } from "./display/cards";
import { plotlyLibraryHtml } from "./display/plotly";
import { tableHtml } from "./display/table";
import { projectRoot } from "./runtime/paths";
import { ensureSyntheticDataset } from "./data/synthetic/ensure";
import type { SplitData } from "./data/dataset";
import { imageSource, type DataSource, type ImageModel } from "./features/image-source";

export interface NotebookSetup {
  /** The project's folder. */
  root: string;
  /** Where 2_Training writes and 3_Inference reads. */
  runDir: string;
  dataset: DatasetName;
  quick: boolean;
  /** The dataset's preset (lib/train/config.ts), before a learner's changes. */
  preset: TrainConfig;
  /** The dataset's folder (absolute). */
  dataRoot: string;
  /** Synthetic images to generate when the folder has none (0 for a downloaded dataset). */
  syntheticImages: number;
  backend: BackendInfo;
}

/**
 * An error meant for a person, not a programmer: the notebook shows its message alone, in one
 * line, without a stack trace (tslab prints an error's `stack`).
 */
export class NotebookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotebookError";
    this.stack = `${this.name}: ${message}`;
  }
}

/** Reads the environment, starts the compute backend and says in a few lines what it chose. */
export async function setupNotebook(
  { env = process.env, log = console.log }: { env?: NodeJS.ProcessEnv; log?: (line: string) => void } = {},
): Promise<NotebookSetup> {
  const root = projectRoot();
  const quick = env.CAPTIONER_QUICK === "1";
  const preset = withLocalBackbone(presetFor(env.CAPTIONER_DATASET ?? "synthetic"), env.CAPTIONER_BACKBONE);
  const folder = dataFolderFor(preset, quick);
  const dataRoot = path.resolve(root, env.CAPTIONER_DATA_ROOT ?? folder.dataRoot);
  const runDir = path.resolve(root, env.CAPTIONER_RUN_DIR ?? path.join("runs", "latest"));
  const backend = await initBackend({ log });
  log(`dataset: ${preset.dataset}${quick ? " (quick smoke-test configuration)" : ""} in ${shortPath(root, dataRoot)}`);
  log(`run folder: ${describeRunDir(root, runDir)}`);
  return { root, runDir, dataset: preset.dataset, quick, preset, dataRoot, syntheticImages: folder.images, backend };
}

/** The preset with its pretrained backbone read from a local folder, when one is given. */
function withLocalBackbone(preset: TrainConfig, source: string | undefined): TrainConfig {
  if (!source) return preset;
  if (preset.encoder.kind !== "pretrained") throw new NotebookError(`CAPTIONER_BACKBONE: the ${preset.dataset} preset trains its own CNN`);
  return { ...preset, encoder: { kind: "pretrained", backbone: { ...preset.encoder.backbone, source: path.resolve(source) } } };
}

/** "runs/latest → runs/abc123 (trained to step 1500)", or that it has no checkpoint yet. */
function describeRunDir(root: string, runDir: string): string {
  const real = fs.existsSync(runDir) ? fs.realpathSync(runDir) : runDir;
  const shown = shortPath(root, runDir) + (real !== runDir ? ` → ${shortPath(root, real)}` : "");
  return `${shown} (${hasCheckpoint(runDir) ? "has a checkpoint" : "no checkpoint yet"})`;
}

function shortPath(root: string, file: string): string {
  const relative = path.relative(root, file);
  return relative.startsWith("..") ? file : relative;
}

/** The HTML every notebook shows first: its page style, and plotly.js when it draws charts. */
export function notebookHeadHtml({ charts }: { charts: boolean }): string {
  // Text outputs wrap between words: JupyterLab's own style (word-break: break-all) cuts a long log
  // line in the middle of a word. Code cells wrap too, instead of being cut at the right edge.
  const style = `<style>
.jp-OutputArea-output pre, .output_text pre { word-break: normal; overflow-wrap: anywhere; white-space: pre-wrap; }
.jp-InputArea-editor .highlight pre, .jp-InputArea-editor pre { white-space: pre-wrap; overflow-wrap: anywhere; }
</style>`;
  return style + (charts ? plotlyLibraryHtml() : "");
}

/**
 * The training configuration of a notebook: the dataset's preset, with the notebook's folders, a
 * learner's `changes`, and, in a quick run, QUICK_SETTINGS on top.
 */
export function trainConfigFor(setup: NotebookSetup, changes: Partial<TrainConfig> = {}): TrainConfig {
  const folders = { dataRoot: setup.dataRoot, syntheticImages: setup.syntheticImages, runDir: setup.runDir };
  return { ...setup.preset, ...folders, ...changes, ...(setup.quick ? QUICK_SETTINGS : {}) };
}

/**
 * Every setting of `config` as a table (lib/train/settings.ts): name, value, meaning, whether a
 * learner may tune it here, and what a resumed run may do with it. The tunable ones come first.
 */
export function settingsTableHtml(config: TrainConfig): string {
  const rows = (Object.entries(SETTINGS) as [keyof TrainConfig, Setting<unknown>][])
    .sort(([, a], [, b]) => Number(b.tune) - Number(a.tune))
    .map(([key, row]) => ({
      setting: key,
      value: showSetting(config[key]),
      meaning: row.meaning,
      tune: row.tune ? "yes" : "",
      "on resume": row.resume.override ? "may change" : "fixed",
    }));
  return tableHtml(rows);
}

/** A setting's value as the table shows it: objects as JSON, the rest as text. */
function showSetting(value: unknown): string {
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

/**
 * The images of a split as the notebooks read them: a frozen backbone's features, cached in the
 * preset's featureDir (computed on first use), or decoded pixels for a CNN that trains; never
 * augmented. (`cap.imageSource(model, index, split)` alone gives pixels.)
 */
export function splitImages(setup: NotebookSetup, model: ImageModel, split: SplitData): Promise<DataSource> {
  const cacheDir = path.resolve(setup.root, setup.preset.featureDir);
  return imageSource(model, split.index, split.split, { featureCache: true, cacheDir });
}

/** Makes sure the dataset is there: generates the synthetic one when missing; says which it uses. */
export async function ensureDataset(setup: NotebookSetup, log: (line: string) => void = console.log): Promise<void> {
  if (setup.dataset !== "synthetic") return;
  const made = await ensureSyntheticDataset(setup.dataRoot, { images: setup.syntheticImages, seed: setup.preset.seed });
  log(`${made.generated ? "generated" : "using"} the synthetic dataset in ${shortPath(setup.root, setup.dataRoot)} (${setup.syntheticImages} images)`);
}

/** Steps trained in the run folder so far: those of its latest checkpoint (0 without one). */
export function trainedSteps(runDir: string): number {
  if (!hasCheckpoint(runDir)) return 0;
  const state = readCheckpointMeta<unknown, { step?: number }>(resolveCheckpoint(runDir)).state;
  return state.step ?? 0;
}

/** Whether the run folder holds a checkpoint to continue from or caption with (`checkpoints/latest.json`). */
export function hasCheckpoint(runDir: string): boolean {
  return fs.existsSync(path.join(runDir, "checkpoints", "latest.json"));
}

/** The trained model of a run; with no checkpoint there, a NotebookError that says what to do. */
export async function loadTrainedModel(setup: NotebookSetup): Promise<Captioner> {
  if (!hasCheckpoint(setup.runDir)) {
    const where = shortPath(setup.root, setup.runDir);
    throw new NotebookError(
      `no trained model in ${where}: run 2_Training first (or \`npm start\`), set CAPTIONER_RUN_DIR to a run folder that has checkpoints/, ` +
        `or caption photos with the model that ships in ${shortPath(setup.root, SHIPPED_MODEL)} (the last section)`,
    );
  }
  return Captioner.load(setup.runDir);
}

/** A short line of HTML, e.g. a sentence computed from a run's numbers, in the notebook's text style. */
export function noteHtml(text: string): string {
  return `<p class="captioner-note" style="font:14px sans-serif;max-width:60em">${escapeHtml(text)}</p>`;
}
