/**
 * The notebooks, end to end: executed through Jupyter with the tslab kernel (the runner `npm start`
 * uses), in the quick configuration (CAPTIONER_QUICK=1, about a minute), then their HTML exports
 * opened in headless Chromium and checked as a person would see them. Full-page screenshots are
 * saved under test-artifacts/notebooks/. Then what running them again, or without a run, or from
 * a copy outside notebooks/ does.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import {
  buildLibIfStale,
  ensureKernel,
  errorOutputs,
  kernelEnv,
  NBCONVERT,
  NOTEBOOKS,
  NotebookRunError,
  PROJECT_ROOT,
  runNotebooks,
  type NotebookRun,
} from "../scripts/run-notebooks";
import { checkRendered, CHROMIUM, type ChartReport, type PageReport } from "./helpers/render-check";

const ARTIFACTS = path.join(PROJECT_ROOT, "test-artifacts", "notebooks");
const noJupyter = fs.existsSync(NBCONVERT) ? false : `${NBCONVERT} not found (run scripts/setup.sh to install Debian's Jupyter)`;
const noChromium = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (run scripts/setup.sh to install Debian's chromium)`;

/** A notebook of code cells for the tslab kernel, in nbformat 4. */
function tinyNotebook(sources: string[]): string {
  const cells = sources.map((source, i) => ({ cell_type: "code", id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source }));
  const metadata = { kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" } };
  return JSON.stringify({ cells, metadata, nbformat: 4, nbformat_minor: 5 });
}

test("a failing cell stops the run with the notebook, the cell and its error", { skip: noJupyter, timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "captioner-broken-"));
  const notebook = path.join(dir, "broken.ipynb");
  fs.writeFileSync(notebook, tinyNotebook(['console.log("fine")', 'throw new TypeError("boom")', 'console.log("never runs")']));
  try {
    await assert.rejects(runNotebooks({ notebooks: [notebook], runDir: path.join(dir, "run"), log: () => {} }), (error: unknown) => {
      assert.ok(error instanceof NotebookRunError, `expected a NotebookRunError, got ${error}`);
      assert.equal(error.notebook, "broken.ipynb");
      assert.match(error.message, /broken\.ipynb: cell 2 of 3 \(code cell 2, id "c1"\)/);
      assert.match(error.message, /TypeError: boom/);
      // The partial copy is kept for reading: the failing cell holds the error, the next never ran.
      const problems = errorOutputs(error.executedPath);
      assert.deepEqual(problems.map((p) => p.cell), [2]);
      return true;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the three notebooks run through Jupyter and render in Chromium (quick configuration)", { skip: noJupyter, timeout: 600_000 }, async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "captioner-notebooks-"));
  let runs: NotebookRun[] = [];
  let passed = false;
  try {
    await t.test("every cell runs without an error output", async () => {
      buildLibIfStale(); // the notebooks import lib/dist (`npm test` builds it first; a lone run of this file may not)
      ensureKernel((line) => t.diagnostic(line));
      runs = await runNotebooks({ runDir, env: { CAPTIONER_QUICK: "1" }, log: (line) => t.diagnostic(line) });
      assert.deepEqual(runs.map((r) => r.notebook), ["1_Preliminaries.ipynb", "2_Training.ipynb", "3_Inference.ipynb"]);
      for (const run of runs) assert.deepEqual(errorOutputs(run.executed), [], `${run.notebook}: error outputs`);
      // What the notebooks leave in the run folder: the training log and checkpoint (2), the metrics (3).
      assert.ok(fs.existsSync(path.join(runDir, "training-log.jsonl")), "training-log.jsonl missing");
      assert.ok(fs.readdirSync(path.join(runDir, "checkpoints")).length > 0, "no checkpoint");
      const metrics = JSON.parse(fs.readFileSync(path.join(runDir, "metrics.json"), "utf8"));
      assert.equal(typeof metrics.greedy.CIDEr, "number");
      assert.ok(metrics.samples.length > 0, "metrics.json has no sample captions");
    });

    await t.test("charts have drawn and images have decoded in the HTML exports", { skip: noChromium }, async () => {
      assert.equal(runs.length, 3, "the notebooks did not run");
      const [prelim, training, inference] = await checkRendered(runs.map((r) => r.html), ARTIFACTS);
      t.diagnostic(`screenshots: ${ARTIFACTS}`);
      for (const page of [prelim, training, inference]) assertRendered(page);

      assert.deepEqual(prelim.charts.map((c) => c.title), ["Vocabulary size by count threshold", "Caption length"]);
      assert.equal(prelim.charts[0].xType, "category", "thresholds are categories, evenly spaced");
      assert.ok(prelim.images.filter((i) => i.inCard).length >= 1, "1_Preliminaries: the random image's card");
      assert.equal(prelim.diagrams, 1, "1_Preliminaries: the model's diagram");
      assert.ok(prelim.figures >= 2, "1_Preliminaries: the image before and after preprocessing");

      assert.deepEqual(training.charts.map((c) => c.title), [
        "Training loss (cross-entropy per token)",
        "Training perplexity",
        "Validation after each epoch",
        "Self-critical phase: mean CIDEr-D of the sampled captions",
      ]);
      assertReadableLogAxis(training.charts[1]);
      assertValidationPanels(training.charts[2]);
      assert.ok(training.images.filter((i) => i.inCard).length >= 1, "2_Training: caption cards");

      assert.ok(inference.images.filter((i) => i.inCard).length >= 1, "3_Inference: caption cards");
      assert.ok(inference.tables >= 3, "3_Inference: the step-by-step table, the metrics, the mistakes");
      assert.ok(inference.figures >= 1, "3_Inference: the image decoded step by step");
      assert.ok(inference.wordMaps >= 12, "3_Inference: the word maps of a test scene and of the six photos");
      // The real photos, captioned by the shipped model (and, for contrast, by this run's model).
      const shipped = inference.cards.filter((card) => card.captions.some((c) => c.startsWith("shipped model: ")));
      assert.equal(shipped.length, fs.readdirSync(path.join(PROJECT_ROOT, "notebooks", "photos")).filter((f) => f.endsWith(".jpg")).length);
      assert.ok(shipped.every((card) => card.naturalWidth > 96 && !card.pixelated), "photos are shown at their size, not pixelated");
      assert.ok(shipped.some((card) => card.captions.some((c) => /shipped model: .*\bdog\b/.test(c))), "the dog photo is a dog");
      // plotly.js, minified, once in each notebook that draws charts; none in the one that draws none.
      assert.deepEqual([prelim, training, inference].map((p) => p.plotlyBundles), [1, 1, 0]);
      for (const page of [prelim, training, inference]) {
        const megabytes = fs.statSync(page.html).size / 2 ** 20;
        assert.ok(megabytes < 7, `${path.basename(page.html)}: ${megabytes.toFixed(1)} MB`);
      }
    });

    await t.test("the training cell's output reads in order: no progress line left above the log", () => {
      const lines = trainCellText(runs[1].executed);
      const epochDone = Math.max(...lines.map((l, i) => (/^epoch \d+\/\d+ done/.test(l) ? i : -1))); // the last epoch's
      const lastStep = Math.max(...lines.map((l, i) => (/ · step \d+\/\d+ · loss /.test(l) ? i : -1)));
      assert.ok(epochDone > lastStep && lastStep > 0, lines.join("\n"));
      assert.match(lines.at(-1)!, /^checkpoint: /);
    });

    await t.test("running 2_Training again continues the finished run: it trains nothing and loses nothing", async () => {
      const before = runFolderState(runDir);
      const [again] = await runNotebooks({ notebooks: [NOTEBOOKS[1]], runDir, env: { CAPTIONER_QUICK: "1" }, log: (line) => t.diagnostic(line) });
      assert.deepEqual(errorOutputs(again.executed), []);
      assert.deepEqual(runFolderState(runDir), before, "training log, checkpoints, latest.json and best.json unchanged");
      const lines = trainCellText(again.executed);
      assert.match(lines[0], /^continuing the run in .* from step \d+/);
      assert.ok(lines.some((l) => /^the run was complete \(\d+ steps, 2 epochs\): nothing to train$/.test(l)), lines.join("\n"));
    });
    passed = true;
  } finally {
    // Keep the run folder of a failed run for reading; a passed one is ~50 MB of nothing new.
    if (passed) fs.rmSync(runDir, { recursive: true, force: true });
    else t.diagnostic(`run folder kept: ${runDir}`);
  }
});

test("3_Inference without a trained run stops in one line that says what to do", { skip: noJupyter, timeout: 120_000 }, async () => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "captioner-no-run-"));
  try {
    await assert.rejects(runNotebooks({ notebooks: [NOTEBOOKS[2]], runDir, env: { CAPTIONER_QUICK: "1" }, log: () => {} }), (error: unknown) => {
      assert.ok(error instanceof NotebookRunError);
      assert.match(error.details, /cell 4 of \d+ \(code cell 2, id "load"\)/);
      const said = errorOutputs(error.executedPath).map((p) => p.text.trim());
      assert.equal(said.length, 1);
      assert.match(said[0], /NotebookError: no trained model in .*: run 2_Training first \(or `npm start`\), set CAPTIONER_RUN_DIR .*or caption photos with the model that ships in models\/flickr8k-mobilenet/);
      assert.equal(said[0].split("\n").length, 1, `one line, no stack trace:\n${said[0]}`);
      return true;
    });
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
});

test("a notebook copied out of notebooks/ fails in nbconvert with what to do", { skip: noJupyter, timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "captioner-copied-"));
  try {
    const copy = path.join(dir, "3_Inference.ipynb");
    fs.copyFileSync(NOTEBOOKS[2], copy);
    const run = spawnSync(NBCONVERT, ["--to", "notebook", "--execute", copy, "--output", "executed"], {
      cwd: dir, env: kernelEnv(dir), encoding: "utf8", timeout: 100_000,
    });
    assert.notEqual(run.status, 0);
    // nbconvert shows the failing cell's source: its first lines say why and what to do.
    assert.match(run.stderr, /if this cell fails with "Cannot find module 'captioner'",\n.*open the notebook from there \(`npm run lab` in the project, after `npm ci`\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The text lines that the training cell ("train") printed, in order, and any text its displays were left with. */
function trainCellText(executed: string): string[] {
  const nb = JSON.parse(fs.readFileSync(executed, "utf8")) as { cells: { id: string; outputs?: { output_type: string; text?: string | string[]; data?: Record<string, string | string[]> }[] }[] };
  const cell = nb.cells.find((c) => c.id === "train")!;
  const join = (text: string | string[] | undefined) => (Array.isArray(text) ? text.join("") : (text ?? ""));
  const texts = cell.outputs!.map((o) => (o.output_type === "stream" ? join(o.text) : join(o.data?.["text/plain"])));
  return texts.join("").split("\n").filter((line) => line.trim() !== "");
}

/** What a re-run must not change: the training log, every checkpoint's metadata, and which are latest and best. */
function runFolderState(runDir: string): Record<string, string> {
  const checkpoints = path.join(runDir, "checkpoints");
  const state: Record<string, string> = { log: fs.readFileSync(path.join(runDir, "training-log.jsonl"), "utf8") };
  for (const name of fs.readdirSync(checkpoints)) {
    const entry = path.join(checkpoints, name); // a checkpoint folder, or latest.json / best.json
    state[name] = fs.readFileSync(fs.statSync(entry).isDirectory() ? path.join(entry, "checkpoint.json") : entry, "utf8");
  }
  assert.ok("latest.json" in state, `${checkpoints}: no latest.json`);
  return state;
}

/** A log axis whose tick labels each say their own value, in increasing order (no "7" that means 70). */
function assertReadableLogAxis(chart: ChartReport): void {
  assert.equal(chart.yType, "log", `${chart.title}: log axis`);
  const values = chart.yTicks.map(Number);
  assert.ok(values.length >= 2 && values.every(Number.isFinite), `${chart.title}: ticks ${chart.yTicks}`);
  assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]), `${chart.title}: ticks ${chart.yTicks} must increase`);
}

/** The validation chart: the losses on one axis, each metric family on a panel of its own. */
function assertValidationPanels(chart: ChartReport): void {
  const axis = new Map(chart.traceAxes.map((t) => [t.name, t.yaxis]));
  assert.equal(axis.get("validation loss"), axis.get("training loss (smoothed)"), "validation loss drawn over the training loss");
  assert.ok(chart.yAxes >= 3, `${chart.yAxes} panels`);
  const cider = axis.get("CIDEr");
  assert.ok(cider && cider !== axis.get("Bleu_4") && cider !== axis.get("validation loss"), "CIDEr on a scale of its own");
  assert.ok(chart.traceAxes.every((t) => t.points > 0), "every trace has data");
}

/** What every exported page must show: each chart drawn with data, each image decoded. */
function assertRendered(page: PageReport): void {
  const name = path.basename(page.html);
  assert.equal(page.plotlyMissing, false, `${name}: a chart says plotly.js is not loaded`);
  assert.equal(page.charts.length, page.chartContainers, `${name}: ${page.chartContainers - page.charts.length} chart(s) never drew`);
  for (const chart of page.charts) {
    assert.ok(chart.traces > 0 && chart.points + chart.lines > 0, `${name}: chart "${chart.title}" has no data drawn`);
  }
  const blank = page.images.filter((i) => i.naturalWidth === 0).length;
  assert.equal(blank, 0, `${name}: ${blank} of ${page.images.length} images did not decode`);
  assert.notEqual(page.outputWordBreak, "break-all", `${name}: text outputs would wrap in the middle of words`);
  assert.equal(page.codeOverflows, 0, `${name}: code cut off at the right edge`);
  for (const card of page.cards) {
    // A small image is enlarged by a whole factor, with its pixels kept sharp; never blurred.
    if (card.shownWidth > card.naturalWidth) {
      assert.ok(card.pixelated && card.shownWidth % card.naturalWidth === 0, `${name}: ${JSON.stringify(card)}`);
    }
    assert.ok(card.scoresOnTitleLine, `${name}: a card's scores wrapped under its title`);
    assert.ok(["", "list-item"].includes(card.summaryDisplay), `${name}: the references fold has no marker`);
    for (const caption of card.captions) assert.ok(!caption.includes(" ,"), `${name}: "${caption}"`);
  }
}
