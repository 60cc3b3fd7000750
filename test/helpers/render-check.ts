/**
 * Looks at exported notebooks as a person would: opens each HTML export in headless Chromium
 * (Debian's /usr/bin/chromium, driven by playwright-core) and reports what is really on screen —
 * Plotly charts that have drawn their data, images that have decoded, the metrics tables — and
 * saves a full-page screenshot of each.
 *
 * Also a command that crops the README's pictures out of a real run:
 *   npx tsx test/helpers/render-check.ts runs/<id> --docs docs
 */
// The functions given to page.evaluate run in the browser: they need the DOM's types.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** One Plotly chart as drawn: its title, the marks of its data traces, its axes. */
export interface ChartReport {
  title: string;
  /** Data traces drawn (scatter or bar). */
  traces: number;
  /** Markers and bars drawn. */
  points: number;
  /** Line paths drawn with a non-empty shape. */
  lines: number;
  /** Each trace's name and the y axis it is drawn on ("y", "y2", ...), from the chart's data. */
  traceAxes: { name: string; yaxis: string; points: number }[];
  /** The axis types Plotly used for the first x and y axes ("linear", "log", "category"). */
  xType: string;
  yType: string;
  /** The y axes of the chart (one per panel). */
  yAxes: number;
  /** The tick labels drawn on the y axes, as shown. */
  yTicks: string[];
}

/** One caption card as shown. */
export interface CardReport {
  /** The image's drawn and natural widths, and whether it is drawn pixelated. */
  shownWidth: number;
  naturalWidth: number;
  pixelated: boolean;
  /** Whether the scores sit on the title's line (not wrapped onto one of their own). */
  scoresOnTitleLine: boolean;
  /** The computed display of the references' <summary>: "list-item" shows its ▸ marker. */
  summaryDisplay: string;
  /** The model's captions, as shown. */
  captions: string[];
}

/** One image: in a caption card or a plain image output, and whether it decoded. */
export interface ImageReport {
  inCard: boolean;
  naturalWidth: number;
}

export interface PageReport {
  html: string;
  /** Every chart container the notebook made (div.captioner-plot), drawn or not. */
  chartContainers: number;
  charts: ChartReport[];
  images: ImageReport[];
  /** Metrics tables (table.captioner-table). */
  tables: number;
  /** The text a chart shows in place of itself when plotly.js never arrived. */
  plotlyMissing: boolean;
  /** <script> elements that hold the plotly.js bundle itself. */
  plotlyBundles: number;
  cards: CardReport[];
  /** Figures (figuresHtml: an image with a line under it) whose image decoded. */
  figures: number;
  /** Word maps (lib/explain/word-maps-html.ts: a word's Grad-CAM map over the image) whose image decoded. */
  wordMaps: number;
  /** The model's diagram (svg.captioner-diagram). */
  diagrams: number;
  /** The computed word-break of text outputs ("break-all" cuts words in the middle). */
  outputWordBreak: string;
  /** Code cells whose code is wider than the cell (cut off at the right edge). */
  codeOverflows: number;
  screenshot?: string;
}

/** Launches Debian's Chromium headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Opens each HTML file, waits for charts and images, reports them, and saves a full-page screenshot into `screenshotDir`. */
export async function checkRendered(htmlFiles: string[], screenshotDir?: string): Promise<PageReport[]> {
  const browser = await launchChromium();
  try {
    const reports: PageReport[] = [];
    for (const html of htmlFiles) {
      const page = await openExport(browser, html);
      const report = await inspect(page, html);
      if (screenshotDir) {
        fs.mkdirSync(screenshotDir, { recursive: true });
        report.screenshot = path.join(screenshotDir, path.basename(html).replace(/\.html$/, ".png"));
        await page.screenshot({ path: report.screenshot, fullPage: true });
      }
      reports.push(report);
      await page.close();
    }
    return reports;
  } finally {
    await browser.close();
  }
}

/** Loads an export and waits until every chart has drawn (or given up) and every image has loaded. */
async function openExport(browser: Browser, html: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(`file://${path.resolve(html)}`, { waitUntil: "load" });
  // A chart's script retries for 10 s before it writes "plotly.js is not loaded" into its div.
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll(".captioner-plot")].every((div) => div.querySelector(".main-svg") || div.textContent) &&
      [...document.images].every((img) => img.complete),
    undefined,
    { timeout: 20_000 },
  );
  // nbconvert's page loads MathJax, which shows a "Loading ..." box at the bottom left until it is ready.
  await page.waitForFunction(() => document.getElementById("MathJax_Message")?.style.display !== "", undefined, { timeout: 20_000 });
  return page;
}

/** Reads what the page shows; runs in the browser. */
async function inspect(page: Page, html: string): Promise<PageReport> {
  const seen = await page.evaluate(() => {
    const containers = [...document.querySelectorAll(".captioner-plot")];
    const charts = containers
      .filter((div) => div.querySelector(".main-svg"))
      .map((div) => {
        const traces = [...div.querySelectorAll(".scatterlayer .trace, .barlayer .trace")];
        // Plotly keeps the figure on its div: the data as given, the layout as it drew it.
        const plot = div as unknown as { data: { name?: string; yaxis?: string; y?: unknown[] }[]; _fullLayout: Record<string, { type?: string }> };
        return {
          title: div.querySelector(".gtitle")?.textContent ?? "",
          traces: traces.length,
          points: traces.reduce((n, t) => n + t.querySelectorAll(".point").length, 0),
          lines: traces.reduce((n, t) => n + [...t.querySelectorAll("path.js-line")].filter((p) => (p.getAttribute("d") ?? "").length > 1).length, 0),
          traceAxes: plot.data.map((t) => ({ name: t.name ?? "", yaxis: t.yaxis ?? "y", points: t.y?.length ?? 0 })),
          xType: plot._fullLayout.xaxis?.type ?? "",
          yType: plot._fullLayout.yaxis?.type ?? "",
          yAxes: Object.keys(plot._fullLayout).filter((k) => /^yaxis\d*$/.test(k)).length,
          yTicks: [...div.querySelectorAll(".ytick text")].map((t) => t.textContent ?? ""),
        };
      });
    const cards = [...document.querySelectorAll(".caption-card")].map((card) => {
      const img = card.querySelector("img") as HTMLImageElement;
      const scores = card.querySelector(".card-scores");
      const title = scores?.previousElementSibling;
      const summary = card.querySelector("summary");
      return {
        shownWidth: img.getBoundingClientRect().width,
        naturalWidth: img.naturalWidth,
        pixelated: getComputedStyle(img).imageRendering === "pixelated",
        scoresOnTitleLine: !scores || !title || Math.abs(scores.getBoundingClientRect().top - title.getBoundingClientRect().top) < 2,
        summaryDisplay: summary ? getComputedStyle(summary).display : "",
        captions: [...card.querySelectorAll(":scope > div > b")].map((b) => b.parentElement?.textContent ?? ""),
      };
    });
    const outputPre = document.querySelector(".jp-OutputArea-output pre");
    const codeBlocks = [...document.querySelectorAll(".jp-InputArea-editor pre")];
    // Images of caption cards, and image outputs (nbconvert's lab template wraps them in .jp-RenderedImage).
    const images = [...document.querySelectorAll(".caption-card img, .jp-RenderedImage img")].map((img) => ({
      inCard: img.closest(".caption-card") !== null,
      naturalWidth: (img as HTMLImageElement).naturalWidth,
    }));
    return {
      chartContainers: containers.length,
      charts,
      images,
      tables: document.querySelectorAll("table.captioner-table").length,
      plotlyMissing: document.body.innerText.includes("plotly.js is not loaded"),
      plotlyBundles: [...document.scripts].filter((script) => (script.textContent ?? "").length > 1_000_000).length,
      cards,
      figures: [...document.querySelectorAll("figure.captioner-figure img")].filter((img) => (img as HTMLImageElement).naturalWidth > 0).length,
      wordMaps: [...document.querySelectorAll("figure.word-map img")].filter((img) => (img as HTMLImageElement).naturalWidth > 0).length,
      diagrams: document.querySelectorAll("svg.captioner-diagram").length,
      outputWordBreak: outputPre ? getComputedStyle(outputPre).wordBreak : "",
      codeOverflows: codeBlocks.filter((pre) => pre.scrollWidth > pre.clientWidth + 1).length,
    };
  });
  return { html, ...seen };
}

/** A picture for the README: a part of an exported notebook, found by what its code cell says. */
interface DocPicture {
  file: string;
  notebook: "1_Preliminaries" | "2_Training" | "3_Inference";
  /** Text in the cell's code that finds it. */
  cell: string;
  /** The whole cell (code and output), or its output only. */
  part: "cell" | "output";
}

/** The teaching cells of the notebooks, as the README shows them. */
const DOC_PICTURES: DocPicture[] = [
  { file: "random-image.png", notebook: "1_Preliminaries", cell: "Math.random on purpose", part: "cell" },
  { file: "vocabulary.png", notebook: "1_Preliminaries", cell: "cap.vocabularyChart(", part: "output" },
  { file: "architecture.png", notebook: "1_Preliminaries", cell: "cap.architectureSvg(", part: "output" },
  { file: "preprocessing.png", notebook: "1_Preliminaries", cell: "the evaluation transform: no random crop", part: "output" },
  { file: "settings.png", notebook: "2_Training", cell: "cap.settingsTableHtml(", part: "cell" },
  { file: "training-by-hand.png", notebook: "2_Training", cell: "step <= 5", part: "cell" },
  { file: "training-loss.png", notebook: "2_Training", cell: '"Training loss (cross-entropy per token)"', part: "output" },
  { file: "validation-epochs.png", notebook: "2_Training", cell: "cap.validationChart(", part: "output" },
  { file: "decoding-step-by-step.png", notebook: "3_Inference", cell: "the five most likely next words", part: "cell" },
  { file: "mistakes.png", notebook: "3_Inference", cell: "cap.sceneMistakes(", part: "output" },
  { file: "real-photos.png", notebook: "3_Inference", cell: "cap.SHIPPED_MODEL", part: "output" },
];

/**
 * The README's pictures from a real run: each teaching cell of the notebooks (DOC_PICTURES), cropped
 * to the cell or to its output, and the first caption cards of notebook 3.
 */
export async function saveDocScreenshots(runDir: string, docsDir: string): Promise<string[]> {
  fs.mkdirSync(docsDir, { recursive: true });
  const browser = await launchChromium();
  const saved: string[] = [];
  try {
    const pages = new Map<string, Page>();
    for (const notebook of ["1_Preliminaries", "2_Training", "3_Inference"]) {
      pages.set(notebook, await openExport(browser, path.join(runDir, `${notebook}.html`)));
    }
    for (const picture of DOC_PICTURES) {
      const cell = pages.get(picture.notebook)!.locator(".jp-CodeCell", { has: pages.get(picture.notebook)!.locator(".jp-InputArea", { hasText: picture.cell }) });
      const target = picture.part === "cell" ? cell : cell.locator(".jp-Cell-outputWrapper");
      const file = path.join(docsDir, picture.file);
      await target.first().screenshot({ path: file });
      saved.push(file);
    }
    saved.push(await shootCards(pages.get("3_Inference")!, 3, path.join(docsDir, "caption-cards.png")));
  } finally {
    await browser.close();
  }
  return saved;
}

/** A picture of the page's first `count` caption cards (one row of them), cropped to the cards. */
async function shootCards(page: Page, count: number, file: string): Promise<string> {
  const cards = page.locator(".caption-card");
  await cards.first().scrollIntoViewIfNeeded();
  const boxes = [];
  for (let i = 0; i < count; i++) boxes.push((await cards.nth(i).boundingBox())!);
  const x = Math.min(...boxes.map((b) => b.x));
  const y = Math.min(...boxes.map((b) => b.y));
  const right = Math.max(...boxes.map((b) => b.x + b.width));
  const bottom = Math.max(...boxes.map((b) => b.y + b.height));
  await page.screenshot({ path: file, clip: { x, y, width: right - x, height: bottom - y } });
  return file;
}

/** The command: check a run folder's three exports; with --docs, also crop the README's pictures. */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { docs: { type: "string" }, shots: { type: "string" } } });
  const runDir = positionals[0];
  if (!runDir) throw new Error("usage: npx tsx test/helpers/render-check.ts RUN_DIR [--docs DIR] [--shots DIR]");
  const files = ["1_Preliminaries.html", "2_Training.html", "3_Inference.html"].map((f) => path.join(runDir, f));
  for (const report of await checkRendered(files, values.shots)) console.log(JSON.stringify(report));
  if (values.docs) {
    for (const file of await saveDocScreenshots(runDir, values.docs)) console.log(`saved ${file} (${(fs.statSync(file).size / 1024).toFixed(0)} KB)`);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
