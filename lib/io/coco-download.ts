/**
 * Fetch MS COCO 2014 into the layout the data layer reads:
 *
 *   <root>/annotations/captions_train2014.json, captions_val2014.json, image_info_test2014.json, ...
 *   <root>/images/train2014/, val2014/, test2014/
 *
 * The data comes in parts (annotations, val, test, train), each one or two zips. A part is
 * downloaded (lib/io/download.ts: resume, retry, verify), extracted (lib/io/unzip.ts: streaming,
 * CRC-checked), and then marked done in `<root>/downloads/done-<part>.json`, which lists
 * every extracted file with its size. Running again skips a part whose marker still matches
 * the files on disk, so a finished part costs no request. Before anything is fetched, the
 * free disk space is compared with what the pending parts need.
 */

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { downloadFile, type DownloadEvent } from "./download";
import { extractZip, type ExtractedFile } from "./unzip";

/** One zip of the dataset and where its contents go. */
export interface ZipSpec {
  /** Path under the base URL, e.g. "zips/val2014.zip". */
  path: string;
  /** Exact size in bytes, where known (checked against the server and the file). */
  size?: number;
  /** SHA-256 in hex, where known. */
  sha256?: string;
  /** The folder, relative to the dataset root, that the archive is extracted into. */
  extractTo: string;
  /** The one top-level folder of the archive ("annotations", "val2014", ...), if it has one. */
  topDir?: string;
  /** Bytes the extracted files take on disk, rounded up (for the free-space check). */
  extractedSize: number;
}

/** A part that can be asked for on its own (`--parts val`). */
export interface PartSpec {
  name: string;
  zips: ZipSpec[];
}

export const COCO_BASE_URL = "http://images.cocodataset.org/";

/** Images do not compress: extracted size = zip size + 3% for file-system blocks of ~83k small files. */
const imagesOnDisk = (zipSize: number) => Math.ceil(zipSize * 1.03);

/**
 * The files of the original instructions. Sizes and SHA-256 as recorded by TensorFlow Datasets
 * (tensorflow_datasets/url_checksums/coco.txt); COCO itself publishes no checksums.
 * The annotations' extracted sizes are estimates, rounded up.
 */
export const COCO_2014: PartSpec[] = [
  {
    name: "annotations",
    zips: [
      {
        path: "annotations/annotations_trainval2014.zip",
        size: 252_872_794,
        sha256: "031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009",
        extractTo: ".",
        topDir: "annotations",
        extractedSize: 1_200_000_000,
      },
      {
        path: "annotations/image_info_test2014.zip",
        size: 763_464,
        sha256: "7cecc66f6b09c1671c1896a1bcc1f35eb09b7fcf00a5c18420a5f0f5983dc8c9",
        extractTo: ".",
        topDir: "annotations",
        extractedSize: 10_000_000,
      },
    ],
  },
  {
    name: "val",
    zips: [
      {
        path: "zips/val2014.zip",
        size: 6_645_013_297,
        sha256: "fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0",
        extractTo: "images",
        topDir: "val2014",
        extractedSize: imagesOnDisk(6_645_013_297),
      },
    ],
  },
  {
    name: "test",
    zips: [
      {
        path: "zips/test2014.zip",
        size: 6_660_437_059,
        sha256: "ead40c62230cb2cf70ff4c8b4c70abdc260a7556e77b3282621d06d8e2e35bdf",
        extractTo: "images",
        topDir: "test2014",
        extractedSize: imagesOnDisk(6_660_437_059),
      },
    ],
  },
  {
    name: "train",
    zips: [
      {
        path: "zips/train2014.zip",
        size: 13_510_573_713,
        sha256: "ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775",
        extractTo: "images",
        topDir: "train2014",
        extractedSize: imagesOnDisk(13_510_573_713),
      },
    ],
  },
];

/** What happens, part by part, for the command line's progress bars and messages. */
export type CocoEvent =
  | { type: "part-skipped"; part: string }
  /** A part has a marker, but the files no longer match it: it is done again. */
  | { type: "part-redo"; part: string; reason: string }
  | { type: "disk"; required: DiskNeed; free: number }
  | { type: "download"; part: string; file: string; event: DownloadEvent }
  | { type: "extract"; part: string; file: string; done: number; total: number }
  | { type: "part-done"; part: string };

export interface CocoDownloadOptions {
  /** Dataset root (default data/cocoapi). */
  root?: string;
  /** Where the zips are served (default COCO_BASE_URL); the zip paths are appended to it. */
  baseUrl?: string;
  /** Names of the parts to fetch (default: all of the manifest). */
  parts?: string[];
  /** The files to fetch (default COCO_2014). */
  manifest?: PartSpec[];
  /** Keep the zips after extraction (default: delete them, ~27 GB for all of COCO 2014). */
  keepZips?: boolean;
  /** Passed to downloadFile. */
  retries?: number;
  backoffMs?: number;
  timeoutMs?: number;
  /** Free bytes on the disk holding `dir` (default: fs.statfs); replaceable for tests. */
  freeBytes?: (dir: string) => Promise<number>;
  onEvent?: (event: CocoEvent) => void;
}

/** Bytes still to download and bytes to extract, for the pending parts. */
export interface DiskNeed {
  download: number;
  extract: number;
}

/** What a finished part leaves in `<root>/downloads/done-<part>.json`. */
interface DoneMarker {
  part: string;
  zips: { path: string; size?: number }[];
  /** Paths relative to the dataset root. */
  files: ExtractedFile[];
}

/**
 * Downloads and extracts the chosen parts. Returns the names of the parts fetched now
 * and of those skipped because they were already done.
 */
export async function downloadCoco(options: CocoDownloadOptions = {}): Promise<{ fetched: string[]; skipped: string[] }> {
  const root = path.resolve(options.root ?? "data/cocoapi");
  const manifest = options.manifest ?? COCO_2014;
  const parts = selectParts(manifest, options.parts ?? manifest.map((p) => p.name));
  const emit = options.onEvent ?? (() => {});
  await fsp.mkdir(downloadsDir(root), { recursive: true });

  const pending: PartSpec[] = [];
  const skipped: string[] = [];
  for (const part of parts) {
    const reason = await whyNotDone(root, part);
    if (reason === undefined) {
      skipped.push(part.name);
      emit({ type: "part-skipped", part: part.name });
    } else {
      if (reason !== "") emit({ type: "part-redo", part: part.name, reason });
      pending.push(part);
    }
  }
  if (pending.length === 0) return { fetched: [], skipped };

  const required = await diskNeed(root, pending);
  const free = await (options.freeBytes ?? freeDiskBytes)(root);
  emit({ type: "disk", required, free });
  assertEnoughSpace(root, required, free);

  for (const part of pending) await fetchPart(root, part, options, emit);
  return { fetched: pending.map((p) => p.name), skipped };
}

/** Downloads, extracts and marks one part; then removes its zips unless asked to keep them. */
async function fetchPart(root: string, part: PartSpec, options: CocoDownloadOptions, emit: (e: CocoEvent) => void): Promise<void> {
  for (const zip of part.zips) {
    const file = path.basename(zip.path);
    await downloadFile(new URL(zip.path, withSlash(options.baseUrl ?? COCO_BASE_URL)).href, zipFile(root, zip), {
      size: zip.size,
      sha256: zip.sha256,
      retries: options.retries,
      backoffMs: options.backoffMs,
      timeoutMs: options.timeoutMs,
      onEvent: (event) => emit({ type: "download", part: part.name, file, event }),
    });
  }
  const files: ExtractedFile[] = [];
  for (const zip of part.zips) {
    const file = path.basename(zip.path);
    const extracted = await extractZip(zipFile(root, zip), path.join(root, zip.extractTo), {
      topDir: zip.topDir,
      onProgress: (done, total) => emit({ type: "extract", part: part.name, file, done, total }),
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nDelete ${zipFile(root, zip)} and run again to download it anew.`, { cause: err });
    });
    files.push(...extracted.map((f) => ({ path: path.join(zip.extractTo, f.path), size: f.size })));
  }
  const marker: DoneMarker = { part: part.name, zips: part.zips.map((z) => ({ path: z.path, size: z.size })), files };
  const markerPath = markerFile(root, part.name);
  await fsp.writeFile(`${markerPath}.tmp`, JSON.stringify(marker));
  await fsp.rename(`${markerPath}.tmp`, markerPath); // a marker is either whole or absent
  if (!options.keepZips) {
    for (const zip of part.zips) await fsp.rm(zipFile(root, zip), { force: true });
  }
  emit({ type: "part-done", part: part.name });
}

/**
 * Why a part must be (re)done: undefined when it is done, "" when it was never finished,
 * otherwise what no longer matches its marker (a changed manifest, a missing or resized file).
 */
async function whyNotDone(root: string, part: PartSpec): Promise<string | undefined> {
  const text = await fsp.readFile(markerFile(root, part.name), "utf8").catch(() => undefined);
  if (text === undefined) return "";
  const marker = JSON.parse(text) as DoneMarker;
  const expected = part.zips.map((z) => `${z.path}:${z.size ?? "?"}`).join(",");
  if (marker.zips.map((z) => `${z.path}:${z.size ?? "?"}`).join(",") !== expected) {
    return "the manifest's files differ from those that were extracted";
  }
  for (const file of marker.files) {
    const stat = await fsp.stat(path.join(root, file.path)).catch(() => undefined);
    if (stat?.size !== file.size) return `${file.path} is ${stat ? `${stat.size} bytes instead of ${file.size}` : "missing"}`;
  }
  return undefined;
}

/** Bytes that the pending parts still need: what remains to download plus everything to extract. */
export async function diskNeed(root: string, parts: PartSpec[]): Promise<DiskNeed> {
  const need: DiskNeed = { download: 0, extract: 0 };
  for (const zip of parts.flatMap((p) => p.zips)) {
    const file = zipFile(root, zip);
    const done = await fileSize(file);
    // Without a known size, the extracted size stands in for the zip's (photos do not compress).
    need.download += done > 0 ? 0 : (zip.size ?? zip.extractedSize) - (await fileSize(`${file}.part`));
    need.extract += zip.extractedSize;
  }
  return need;
}

/** Free bytes for an unprivileged user on the file system that holds `dir`. */
export async function freeDiskBytes(dir: string): Promise<number> {
  const stats = await fsp.statfs(dir);
  return stats.bavail * stats.bsize;
}

function assertEnoughSpace(root: string, required: DiskNeed, free: number): void {
  const total = required.download + required.extract;
  if (total <= free) return;
  throw new Error(
    `Not enough free disk space in ${root}: ${formatBytes(total)} needed ` +
      `(${formatBytes(required.download)} to download + ${formatBytes(required.extract)} to extract), ` +
      `${formatBytes(free)} free. Free some space, or fetch fewer parts (--parts).`,
  );
}

/** The parts named in `names`, in the manifest's order; an unknown name is an error. */
export function selectParts(manifest: PartSpec[], names: string[]): PartSpec[] {
  const known = manifest.map((p) => p.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new Error(`Unknown part(s) ${unknown.join(", ")}: choose from ${known.join(", ")}`);
  return manifest.filter((p) => names.includes(p.name));
}

/** "13.5 GB": decimal units, as disk makers and `df -H` count. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function downloadsDir(root: string): string {
  return path.join(root, "downloads");
}

function zipFile(root: string, zip: ZipSpec): string {
  return path.join(downloadsDir(root), path.basename(zip.path));
}

function markerFile(root: string, part: string): string {
  return path.join(downloadsDir(root), `done-${part}.json`);
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

async function fileSize(file: string): Promise<number> {
  return (await fsp.stat(file).catch(() => undefined))?.size ?? 0;
}
