/**
 * Download MS COCO 2014 (captions, test image info, train/val/test images) into data/cocoapi,
 * or, with `--dataset flickr8k` (`npm run data:flickr8k`), Flickr8k into data/flickr8k.
 *
 *   npm run data:coco -- [--parts annotations,val,test,train | --only PART] [--root data/cocoapi]
 *                        [--base-url http://images.cocodataset.org/] [--keep-zips] [--retries 5]
 *                        [--manifest FILE]
 *   npm run data:flickr8k -- [--parts text,images] [--root data/flickr8k] [--base-url URL] ...
 *
 * COCO is about 27 GB to download and as much again to extract; Flickr8k about 1 GB. Interrupt it at any time and run it
 * again: finished parts are skipped, a half-downloaded zip continues where it stopped.
 * --manifest reads the list of zips (the PartSpec[] of lib/io/coco-download.ts, as JSON) from a
 * file instead, for mirrors that host other files and for tests.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { SingleBar } from "cli-progress";
import { COCO_2014, COCO_BASE_URL, downloadCoco, formatBytes, type CocoDownloadOptions, type CocoEvent, type PartSpec } from "../lib/io/coco-download";
import type { DownloadEvent } from "../lib/io/download";
import { FLICKR8K_BASE_URL, FLICKR8K_PARTS } from "../lib/io/flickr8k-download";

/** What each dataset is fetched from, and where it goes by default. */
const DATASETS = {
  coco: { name: "COCO 2014", root: "data/cocoapi", baseUrl: COCO_BASE_URL, manifest: COCO_2014 },
  flickr8k: { name: "Flickr8k", root: "data/flickr8k", baseUrl: FLICKR8K_BASE_URL, manifest: FLICKR8K_PARTS },
};

const USAGE =
  "usage: npm run data:coco -- [--dataset coco|flickr8k] [--parts annotations,val,test,train | --only PART] [--root DIR] " +
  "[--base-url URL] [--keep-zips] [--retries N] [--manifest FILE]";

/** The command line as options for downloadCoco; "help" when help was asked for. */
export function parseCliArgs(argv: string[]): (CocoDownloadOptions & { dataset: string }) | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: "string", default: "coco" },
      parts: { type: "string" },
      only: { type: "string" },
      root: { type: "string" },
      "base-url": { type: "string" },
      "keep-zips": { type: "boolean", default: false },
      retries: { type: "string", default: "5" },
      manifest: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  const dataset = DATASETS[values.dataset as keyof typeof DATASETS];
  if (!dataset) throw new Error(`scripts/download-coco.ts: --dataset must be coco or flickr8k, got "${values.dataset}"\n${USAGE}`);
  if (values.parts !== undefined && values.only !== undefined) {
    throw new Error(`scripts/download-coco.ts: give --parts or --only, not both\n${USAGE}`);
  }
  const retries = Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0) {
    throw new Error(`scripts/download-coco.ts: --retries must be a whole number, got "${values.retries}"\n${USAGE}`);
  }
  const list = values.parts ?? values.only;
  return {
    dataset: dataset.name,
    root: values.root ?? dataset.root,
    baseUrl: values["base-url"] ?? dataset.baseUrl,
    parts: list?.split(",").map((p) => p.trim()),
    keepZips: values["keep-zips"],
    retries,
    manifest: values.manifest === undefined ? dataset.manifest : readManifest(values.manifest),
  };
}

/** Reads a manifest file, checking that each zip has the fields downloadCoco needs. */
function readManifest(file: string): PartSpec[] {
  const parts = JSON.parse(fs.readFileSync(file, "utf8")) as PartSpec[];
  if (!Array.isArray(parts)) throw new Error(`${file}: a manifest is an array of parts`);
  parts.forEach((part, i) => {
    if (typeof part.name !== "string" || !Array.isArray(part.zips)) throw new Error(`${file}: part ${i} needs "name" and "zips"`);
    part.zips.forEach((zip, j) => {
      for (const field of ["path", "extractTo", "extractedSize"] as const) {
        if (zip[field] === undefined) throw new Error(`${file}: part ${part.name}, zip ${j} has no "${field}"`);
      }
    });
  });
  return parts;
}

/**
 * Shows one progress bar per file (bytes, speed, ETA) on a terminal, and plain lines
 * when the output is a log file, where redrawn bars would only make noise. A message
 * ends the current bar first (the next request or archive gets a new one), so lines
 * and bars never overwrite each other.
 */
class ProgressView {
  private readonly tty = process.stderr.isTTY; // where cli-progress draws
  private bar?: SingleBar;
  private started = { at: 0, bytes: 0 };
  private tenthsShown = 0;

  handle(event: CocoEvent): void {
    switch (event.type) {
      case "part-skipped":
        return this.say(`${event.part}: already done`);
      case "part-redo":
        return this.say(`${event.part}: doing it again, because ${event.reason}`);
      case "disk":
        return this.say(
          `disk: ${formatBytes(event.required.download)} to download + ${formatBytes(event.required.extract)} ` +
            `to extract, ${formatBytes(event.free)} free`,
        );
      case "download":
        return this.download(event.file, event.event);
      case "extract":
        return this.extract(event.file, event.done, event.total);
      case "part-done":
        return this.say(`${event.part}: done`);
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  private download(file: string, event: DownloadEvent): void {
    switch (event.type) {
      case "start":
        this.started = { at: Date.now(), bytes: event.received };
        this.tenthsShown = event.total ? Math.floor((10 * event.received) / event.total) : 0;
        this.say(`${file}: ${event.received > 0 ? `resuming at ${formatBytes(event.received)}` : "downloading"}`);
        this.bar = this.newBar(event.total ?? 0, event.received, file);
        return;
      case "progress":
        return this.advance(file, event.received, event.total, this.transferDetail(event.received, event.total));
      case "retry":
        return this.say(`${file}: ${event.reason}; retry ${event.attempt} in ${(event.delayMs / 1000).toFixed(1)} s`);
      case "restart":
        return this.say(`${file}: starting over: ${event.reason}`);
      case "verify":
        return this.say(`${file}: checking its SHA-256`);
      case "done":
        return this.say(`${file}: ${formatBytes(event.bytes)} downloaded`);
    }
  }

  private extract(file: string, done: number, total: number): void {
    if (done === 1) {
      this.say(`${file}: extracting ${total} entries`);
      this.bar = this.newBar(total, 0, file);
      this.tenthsShown = 0;
    }
    this.advance(file, done, total, `${done}/${total} entries`);
  }

  /** Redraws the bar; without a terminal, prints a line at each tenth of the work instead. */
  private advance(file: string, value: number, total: number | undefined, detail: string): void {
    if (this.bar) return this.bar.update(value, { file, detail });
    const tenth = total ? Math.floor((10 * value) / total) : 0;
    if (tenth > this.tenthsShown) console.log(`${file}: ${tenth * 10}% | ${detail}`);
    this.tenthsShown = tenth;
  }

  /** "1.2 GB / 6.6 GB | 23.4 MB/s | ETA 3m 55s", the speed averaged since this request started. */
  private transferDetail(received: number, total: number | undefined): string {
    const seconds = (Date.now() - this.started.at) / 1000;
    const speed = seconds > 0 ? (received - this.started.bytes) / seconds : 0;
    const eta = total !== undefined && speed > 0 ? formatDuration((total - received) / speed) : "?";
    return `${formatBytes(received)} / ${total === undefined ? "?" : formatBytes(total)} | ${formatBytes(speed)}/s | ETA ${eta}`;
  }

  private newBar(total: number, value: number, file: string): SingleBar | undefined {
    if (!this.tty) return undefined;
    const bar = new SingleBar({ format: "{file} [{bar}] {percentage}% | {detail}", barsize: 30 });
    bar.start(total, value, { file, detail: "" });
    return bar;
  }

  private say(line: string): void {
    this.stop();
    console.log(line);
  }
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

async function main(): Promise<void> {
  const options = parseCliArgs(process.argv.slice(2));
  if (options === "help") {
    console.log(USAGE);
    return;
  }
  const view = new ProgressView();
  // Stop the bar first, on success or error, so that the last lines are not drawn over.
  const { fetched, skipped } = await downloadCoco({ ...options, onEvent: (e) => view.handle(e) }).finally(() => view.stop());
  console.log(`${options.dataset} in ${options.root}: fetched [${fetched.join(", ")}], already there [${skipped.join(", ")}]`);
}

// Run only as a command, so that tests can import parseCliArgs.
if (require.main === module) {
  main().catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
  });
}
