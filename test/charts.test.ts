/**
 * The data of the notebooks' charts: what each figure draws, on which axis, with which labels,
 * from training-log records made here (the notebook tests check the same charts as drawn).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { epochPositions, logTicks, metricPanels, smooth, stepChart, validationChart, vocabularyChart } from "../lib/display/charts";
import type { EpochRecord, StepRecord } from "../lib/train/train-log";

/** `steps` step records over `epochs` epochs, the loss falling from about 4 to 0.5. */
function stepLog(epochs: number, perEpoch: number): StepRecord[] {
  return Array.from({ length: epochs * perEpoch }, (_, i) => {
    const loss = 0.5 + 3.5 * Math.exp(-i / 20) + 0.05 * Math.sin(i);
    return { kind: "step", step: i + 1, epoch: Math.floor(i / perEpoch) + 1, loss, perplexity: Math.exp(loss), seconds: i, tokensPerSecond: 1000 };
  });
}

function epochLog(valLosses: number[]): EpochRecord[] {
  return valLosses.map((valLoss, i) => ({
    kind: "epoch", epoch: i + 1, step: (i + 1) * 10, valLoss, valPerplexity: Math.exp(valLoss), seconds: 1,
    metrics: { Bleu_4: 0.1 * (i + 1), CIDEr: 0.5 * (i + 1), scenePrecision: 0.2 + 0.05 * i, sceneRecall: 0.1 + 0.05 * i },
  }));
}

test("log-axis ticks are labelled with their own values, on the 1-2-5 sequence", () => {
  const wide = logTicks(1.7, 56);
  assert.deepEqual(wide.tickvals, [2, 5, 10, 20, 50]);
  assert.deepEqual(wide.ticktext, ["2", "5", "10", "20", "50"]);
  // A narrow range gets every digit rather than one or two ticks, still each labelled in full.
  const narrow = logTicks(28, 56);
  assert.deepEqual(narrow.tickvals, [30, 40, 50]);
  assert.deepEqual(narrow.ticktext.map(Number), narrow.tickvals);
  assert.deepEqual(logTicks(0.004, 0.03).ticktext, ["0.005", "0.01", "0.02"]);
  assert.throws(() => logTicks(0, 1), /need 0 < min/);
});

test("the perplexity chart is on a log axis with explicit ticks spanning its data; the loss chart is linear", () => {
  const steps = stepLog(2, 30);
  const perplexity = stepChart(steps, "perplexity", "Training perplexity");
  const y = perplexity.layout!.yaxis as { type: string; tickmode: string; tickvals: number[]; ticktext: string[] };
  assert.equal(y.type, "log");
  assert.equal(y.tickmode, "array");
  const values = steps.map((s) => s.perplexity);
  assert.ok(y.tickvals.every((v) => v >= Math.min(...values) && v <= Math.max(...values)), `${y.tickvals}`);
  assert.deepEqual(y.ticktext.map(Number), y.tickvals);
  assert.deepEqual(perplexity.data[0].y, values, "the raw points are the logged perplexities");
  assert.deepEqual(perplexity.data[1].y, smooth(values), "the line is their moving average");
  const loss = stepChart(steps, "loss", "Training loss");
  assert.equal((loss.layout!.yaxis as { type?: string }).type, undefined);
});

test("the vocabulary chart has categorical thresholds and says 'vocabulary size'", () => {
  const figure = vocabularyChart([1, 2, 3, 5, 10, 20, 50], [60, 58, 56, 50, 41, 30, 20]);
  const trace = figure.data[0] as { x: string[]; y: number[] };
  assert.deepEqual(trace.x, ["1", "2", "3", "5", "10", "20", "50"]);
  assert.deepEqual(trace.y, [60, 58, 56, 50, 41, 30, 20]);
  const layout = figure.layout as { xaxis: { type: string }; yaxis: { title: { text: string } } };
  assert.equal(layout.xaxis.type, "category", "evenly spaced, whatever the threshold values");
  assert.equal(layout.yaxis.title.text, "vocabulary size");
});

test("metric panels: one family per scale, only the families the run logged", () => {
  assert.deepEqual(metricPanels(["Bleu_4", "CIDEr", "scenePrecision", "sceneRecall"]).map((p) => p.keys), [
    ["CIDEr"], ["Bleu_4"], ["scenePrecision", "sceneRecall"],
  ]);
  assert.deepEqual(metricPanels(["Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr"]).map((p) => p.keys), [["CIDEr"], ["Bleu_4", "ROUGE_L"]]);
  assert.deepEqual(metricPanels([]), []);
});

test("training steps are placed in epochs so that each epoch's last step is at its validation", () => {
  const steps = stepLog(3, 4);
  assert.deepEqual(epochPositions(steps), [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3]);
});

test("the validation chart draws the validation loss over the training loss, and each metric family in its own panel", () => {
  const steps = stepLog(4, 25);
  const epochs = epochLog([1.1, 0.9, 0.85, 0.88]);
  const panels = metricPanels(Object.keys(epochs[0].metrics));
  const figure = validationChart(epochs, steps, panels);
  type Trace = { name: string; x: number[]; y: number[]; xaxis?: string; yaxis?: string };
  const traces = figure.data as Trace[];
  const byName = new Map(traces.map((t) => [t.name, t]));
  const train = byName.get("training loss (smoothed)")!;
  const val = byName.get("validation loss")!;
  // The two losses share the first panel's axes, so the gap between them shows.
  assert.equal(train.yaxis ?? "y", val.yaxis ?? "y");
  assert.equal(train.xaxis ?? "x", "x");
  assert.deepEqual(val.x, [1, 2, 3, 4]);
  assert.deepEqual(val.y, [1.1, 0.9, 0.85, 0.88]);
  assert.equal(train.x.at(-1), 4, "the training curve ends where the last validation was measured");
  assert.deepEqual(train.y, smooth(steps.map((s) => s.loss)));
  // Every metric is drawn, each on the axis of its family's panel, none on the loss axis.
  const axisOf = (key: string) => byName.get(key)!.yaxis;
  assert.deepEqual(byName.get("CIDEr")!.y, epochs.map((e) => e.metrics.CIDEr));
  assert.equal(axisOf("scenePrecision"), axisOf("sceneRecall"));
  const axes = new Set(["CIDEr", "Bleu_4", "scenePrecision"].map(axisOf));
  assert.equal(axes.size, 3, "CIDEr, BLEU-4 and the scene scores each have their own scale");
  assert.ok(![...axes].includes("y") && ![...axes].includes(undefined));
  const layout = figure.layout as Record<string, unknown> & { grid: { columns: number }; annotations: { text: string }[] };
  assert.equal(layout.grid.columns, panels.length + 1);
  for (const axis of axes) assert.ok(layout[`yaxis${axis!.slice(1)}`], `layout has ${axis}`);
  assert.deepEqual(layout.annotations.map((a) => a.text), ["loss (cross-entropy per token)", ...panels.map((p) => p.title)]);
});
