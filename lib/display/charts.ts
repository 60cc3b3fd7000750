/**
 * The figures the notebooks draw, as Plotly JSON (see plotly.ts for how they are displayed).
 */
import type { Figure } from "./plotly";
import type { EpochRecord, StepRecord } from "../train-log";

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

/** A per-step curve: the raw points faint, the smoothed line on top. */
export function stepChart(steps: StepRecord[], key: "loss" | "perplexity", title: string): Figure {
  const x = steps.map((s) => s.step);
  const y = steps.map((s) => s[key]);
  return {
    data: [
      { x, y, type: "scatter", mode: "markers", name: "each step", marker: { size: 3, color: "rgba(31,119,180,0.35)" } },
      { x, y: smooth(y), type: "scatter", mode: "lines", name: "smoothed", line: { color: "#1f77b4", width: 2 } },
    ],
    layout: {
      title: { text: title },
      xaxis: { title: { text: "step" } },
      yaxis: { title: { text: key }, type: key === "perplexity" ? "log" : "linear" },
    },
  };
}

/** Validation loss and metrics after each epoch, metrics on a second axis. */
export function epochChart(epochs: EpochRecord[], metricKeys: string[]): Figure {
  const x = epochs.map((e) => e.epoch);
  return {
    data: [
      { x, y: epochs.map((e) => e.valLoss), type: "scatter", mode: "lines+markers", name: "val loss" },
      ...metricKeys.map((k) => ({
        x,
        y: epochs.map((e) => e.metrics[k]),
        type: "scatter",
        mode: "lines+markers",
        name: k,
        yaxis: "y2",
      })),
    ],
    layout: {
      title: { text: "Validation after each epoch" },
      xaxis: { title: { text: "epoch" }, dtick: 1 },
      yaxis: { title: { text: "loss" } },
      yaxis2: { title: { text: "score" }, overlaying: "y", side: "right" },
      legend: { orientation: "h", y: -0.25 },
      margin: { t: 40, r: 70, b: 50, l: 60 }, // room for the right axis' title
    },
  };
}

/** A bar chart of counts, e.g. how many captions have each length. */
export function barChart(labels: (string | number)[], counts: number[], title: string, xTitle: string): Figure {
  return {
    data: [{ x: labels, y: counts, type: "bar", marker: { color: "#2ca02c" } }],
    layout: { title: { text: title }, xaxis: { title: { text: xTitle } }, yaxis: { title: { text: "count" } } },
  };
}
