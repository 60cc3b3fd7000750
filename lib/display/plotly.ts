/**
 * Plotly charts in notebook outputs, offline.
 *
 * plotly.js comes from the `plotly.js-dist-min` package (the minified bundle, 4.7 MB), never from a
 * CDN. It is put into a notebook once, by `plotlyLibraryHtml()` in the first cell (see
 * `notebookHeadHtml`); each chart's output then holds only its data and a few lines that wait for
 * `window.Plotly`. That keeps charts drawn when the
 * notebook is reopened (a trusted notebook) or exported to HTML, which replays every output in order.
 */
import * as fs from "node:fs";
import { nanoid } from "nanoid";

/** A Plotly figure as plain JSON: traces, layout and config (https://plotly.com/javascript/reference/). */
export interface Figure {
  data: Record<string, unknown>[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** A `<script>` holding the whole plotly.js bundle: display it once per notebook. */
export function plotlyLibraryHtml(): string {
  const bundle = fs.readFileSync(require.resolve("plotly.js-dist-min"), "utf8");
  return `<script type="text/javascript">${escapeScript(bundle)}</script>` +
    `<div style="color:#888;font-size:12px">plotly.js loaded (offline, from node_modules/plotly.js-dist-min)</div>`;
}

/** The HTML of one chart: a div and a script that draws into it once plotly.js is there. */
export function plotHtml(figure: Figure, height = 360): string {
  const id = `plot-${nanoid(10)}`;
  const layout = { height, margin: { t: 40, r: 20, b: 50, l: 60 }, ...figure.layout };
  const config = { displaylogo: false, responsive: true, ...figure.config };
  const args = escapeScript(JSON.stringify([id, figure.data, layout, config]));
  return `<div id="${id}" class="captioner-plot" style="width:100%;height:${height}px"></div>
<script type="text/javascript">
(function draw(tries) {
  if (window.Plotly) { window.Plotly.newPlot.apply(window.Plotly, ${args}); return; }
  if (tries > 0) setTimeout(function () { draw(tries - 1); }, 100);
  else document.getElementById("${id}").textContent = "plotly.js is not loaded: run the cell that displays plotlyLibraryHtml() first";
})(100);
</script>`;
}

/** Keeps `</script>` inside data from closing the script element early. */
function escapeScript(source: string): string {
  return source.replace(/<\/(script)/gi, "<\\/$1");
}
