/**
 * The figures the notebooks draw, as Plotly JSON (see plotly.ts for how they are displayed).
 */
import type { Figure } from "./plotly";
import type { EpochRecord, StepRecord } from "../train/train-log";

/** Exponential moving average, as TensorBoard smooths its curves; `weight` in [0, 1). Starts at the first value. */
export function smooth(values: number[], weight = 0.9): number[] {
  const out: number[] = [];
  let last = values[0] ?? 0;
  for (const v of values) {
    last = weight * last + (1 - weight) * v;
    out.push(last);
  }
  return out;
}

/**
 * Tick values for a log axis from `min` to `max`, each labelled with its own value: Plotly's
 * default labels the minor ticks with a bare digit, so that "7" can mean 70. The ticks follow the
 * 1-2-5 sequence (…, 2, 5, 10, 20, 50, …), or every digit (…, 2, 3, 4, …, 9, 10, 20, …) when a
 * narrow range would get fewer than three.
 */
export function logTicks(min: number, max: number): { tickvals: number[]; ticktext: string[] } {
  if (!(min > 0 && max >= min)) throw new Error(`logTicks: need 0 < min ≤ max, got ${min}, ${max}`);
  const within = (mantissas: number[]) => {
    const values: number[] = [];
    for (let decade = Math.floor(Math.log10(min)); 10 ** decade <= max; decade++) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** decade).toPrecision(12));
        if (v >= min && v <= max) values.push(v);
      }
    }
    return values;
  };
  let tickvals = within([1, 2, 5]);
  if (tickvals.length < 3) tickvals = within([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  return { tickvals, ticktext: tickvals.map((v) => String(v)) };
}

/** A per-step curve: the raw points faint, the smoothed line on top. Perplexity goes on a log axis. */
export function stepChart(steps: StepRecord[], key: "loss" | "perplexity" | "reward", title: string): Figure {
  const x = steps.map((s) => s.step);
  const y = steps.map((s) => s[key] ?? NaN);
  const yaxis: Record<string, unknown> = { title: { text: key } };
  if (key === "perplexity" && y.length > 0) {
    Object.assign(yaxis, { type: "log", tickmode: "array", ...logTicks(Math.min(...y), Math.max(...y)) });
  }
  return {
    data: [
      { x, y, type: "scatter", mode: "markers", name: "each step", marker: { size: 3, color: "rgba(31,119,180,0.35)" } },
      { x, y: smooth(y), type: "scatter", mode: "lines", name: "smoothed", line: { color: "#1f77b4", width: 2 } },
    ],
    layout: { title: { text: title }, xaxis: { title: { text: "step" } }, yaxis },
  };
}

/** One panel of the validation chart: a title and the epoch metrics drawn in it (keys of EpochRecord.metrics). */
export interface MetricPanel {
  title: string;
  keys: string[];
}

/**
 * The panels for the metrics a run logged: each family on its own scale, since CIDEr (0-10, about
 * 2 here) would flatten BLEU-4 and the scene scores (0-1) on a shared axis.
 */
export function metricPanels(metricKeys: string[]): MetricPanel[] {
  const families: MetricPanel[] = [
    { title: "CIDEr-D", keys: ["CIDEr"] },
    { title: "BLEU-4 and ROUGE-L", keys: ["Bleu_4", "ROUGE_L"] },
    { title: "scene precision and recall", keys: ["scenePrecision", "sceneRecall"] },
  ];
  return families
    .map((panel) => ({ ...panel, keys: panel.keys.filter((k) => metricKeys.includes(k)) }))
    .filter((panel) => panel.keys.length > 0);
}

/**
 * Where each training step lies in epochs: step k of an epoch of n steps is at epoch − 1 + k / n,
 * so that the end of epoch e is at x = e, where its validation was measured.
 */
export function epochPositions(steps: StepRecord[]): number[] {
  const perEpoch = new Map<number, number>();
  for (const s of steps) perEpoch.set(s.epoch, (perEpoch.get(s.epoch) ?? 0) + 1);
  const seen = new Map<number, number>();
  return steps.map((s) => {
    const k = (seen.get(s.epoch) ?? 0) + 1;
    seen.set(s.epoch, k);
    return s.epoch - 1 + k / perEpoch.get(s.epoch)!;
  });
}

const PANEL_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];

/**
 * Validation after each epoch, as separate panels side by side: first the loss, the validation
 * loss drawn over the (smoothed) training loss on one axis so that overfitting shows as a gap;
 * then one panel per metric family (`metricPanels`).
 */
export function validationChart(epochs: EpochRecord[], steps: StepRecord[], panels: MetricPanel[]): Figure {
  const x = epochs.map((e) => e.epoch);
  const trainLoss = smooth(steps.map((s) => s.loss));
  const data: Record<string, unknown>[] = [
    { x: epochPositions(steps), y: trainLoss, type: "scatter", mode: "lines", name: "training loss (smoothed)", line: { color: "#9ecae1", width: 2 } },
    { x, y: epochs.map((e) => e.valLoss), type: "scatter", mode: "lines+markers", name: "validation loss", line: { color: "#08519c", width: 2 } },
  ];
  const layout: Record<string, unknown> = {
    title: { text: "Validation after each epoch" },
    grid: { rows: 1, columns: panels.length + 1, pattern: "independent", xgap: 0.12 },
    legend: { orientation: "h", y: -0.3 },
    margin: { t: 60, r: 20, b: 60, l: 50 },
    annotations: [],
  };
  const titles = ["loss (cross-entropy per token)", ...panels.map((p) => p.title)];
  titles.forEach((title, i) => {
    const n = i === 0 ? "" : String(i + 1);
    layout[`xaxis${n}`] = { title: { text: "epoch" }, dtick: 1, rangemode: "tozero" };
    layout[`yaxis${n}`] = i === 0 ? {} : { rangemode: "tozero" };
    (layout.annotations as unknown[]).push({
      text: title, showarrow: false, xref: `x${n} domain`, yref: `y${n} domain`, x: 0.5, y: 1.12, font: { size: 13 },
    });
  });
  panels.forEach((panel, i) => {
    const n = String(i + 2);
    panel.keys.forEach((key, j) => {
      data.push({
        x, y: epochs.map((e) => e.metrics[key]), type: "scatter", mode: "lines+markers", name: key,
        xaxis: `x${n}`, yaxis: `y${n}`, line: { color: PANEL_COLORS[(i + j + 1) % PANEL_COLORS.length] },
      });
    });
  });
  return { data, layout };
}

/** Vocabulary size for each count threshold; the thresholds are categories, evenly spaced whatever their values. */
export function vocabularyChart(thresholds: number[], sizes: number[]): Figure {
  return {
    data: [{ x: thresholds.map(String), y: sizes, type: "bar", marker: { color: "#2ca02c" }, text: sizes.map(String), textposition: "outside" }],
    layout: {
      title: { text: "Vocabulary size by count threshold" },
      xaxis: { title: { text: "threshold (occurrences a word needs in the training captions)" }, type: "category" },
      yaxis: { title: { text: "vocabulary size" }, rangemode: "tozero" },
    },
  };
}

/** A bar chart of counts, e.g. how many captions have each length. */
export function barChart(labels: (string | number)[], counts: number[], title: string, xTitle: string, yTitle = "count"): Figure {
  return {
    data: [{ x: labels, y: counts, type: "bar", marker: { color: "#2ca02c" } }],
    layout: { title: { text: title }, xaxis: { title: { text: xTitle } }, yaxis: { title: { text: yTitle } } },
  };
}
