/**
 * The notebooks, end to end: executed through Jupyter with the tslab kernel (the runner `npm start`
 * uses), in the quick configuration (CAPTIONER_QUICK=1, about a minute), then their HTML exports
 * opened in headless Chromium and checked as a person would see them. Full-page screenshots are
 * saved under test-artifacts/notebooks/.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import {
  buildLibIfStale,
  ensureKernel,
  errorOutputs,
  NBCONVERT,
  NotebookRunError,
  PROJECT_ROOT,
  runNotebooks,
  type NotebookRun,
} from "../scripts/run-notebooks";
import { checkRendered, CHROMIUM, type PageReport } from "./helpers/render-check";

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

      assert.equal(prelim.charts.length, 2, "1_Preliminaries: vocabulary and caption-length charts");
      assert.ok(prelim.images.filter((i) => i.inCard).length >= 1, "1_Preliminaries: the sample image card");

      assert.deepEqual(training.charts.map((c) => c.title), [
        "Training loss (cross-entropy per token)",
        "Training perplexity",
        "Validation after each epoch",
      ]);
      assert.ok(training.images.filter((i) => i.inCard).length >= 1, "2_Training: caption cards");

      assert.ok(inference.images.filter((i) => i.inCard).length >= 1, "3_Inference: caption cards");
      assert.ok(inference.tables >= 1, "3_Inference: the metrics table");
    });
    passed = true;
  } finally {
    // Keep the run folder of a failed run for reading; a passed one is ~50 MB of nothing new.
    if (passed) fs.rmSync(runDir, { recursive: true, force: true });
    else t.diagnostic(`run folder kept: ${runDir}`);
  }
});

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
}
