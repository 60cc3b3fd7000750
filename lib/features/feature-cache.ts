/**
 * The feature cache: a frozen backbone's features, computed once per image and kept on disk.
 *
 * With a frozen backbone, every epoch would push each image through the same CNN and get the
 * same numbers; computing them once turns an epoch from hours of convolutions into minutes of
 * reading (docs/performance.md#the-feature-cache). The price: training sees one fixed centre crop
 * per image, never a random crop or a flip (no data augmentation).
 *
 * A cache is a folder:
 *   features.f16   one row of `featureDim` float16 values per image, rows back to back
 *   index.json     { fingerprint, featureDim, rows, ids, skipped }: row i holds image ids[i];
 *                  only the first `rows` rows are complete
 *
 * The fingerprint records the backbone (name, feature layer, input size, normalisation, hash of
 * its weights) and the image transform. A cache whose fingerprint differs from the one asked
 * for is never read: its features would silently be those of another model.
 *
 * Extraction streams: one batch of images is decoded (sharp, on its own threads) while the
 * previous batch runs through the CNN (or the previous W batches, on W worker threads:
 * feature-workers.ts), rows are appended to the file and the index is rewritten (atomically)
 * after each batch. One process writes a cache at a time (a lock file). Memory stays at W + 1
 * batches whatever the split's size, and an interrupted run resumes where the index says: rows
 * the file holds beyond that (a batch written but not indexed, a torn half row) are cut off first.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SingleBar } from "cli-progress";
import { fromFloat16 } from "../io/float16";
import { PretrainedBackbone, type BackboneFingerprint } from "../model/backbone";
import { ImageError, transformImage, type TransformConfig } from "../data/transforms";
import { formatSeconds } from "../runtime/format";
import { readJson, writeJsonAtomically } from "../io/json-file";
import { computeRows, packPixels } from "./feature-rows";
import { FeatureWorkers } from "./feature-workers";


/** An image that could not be read, and why: extraction skips it and lists it. */
export interface SkippedImage {
  imageId: number;
  file: string;
  reason: string;
}

export const FEATURES_FORMAT = "captioner-features";
export const FEATURES_VERSION = 1;
const BYTES_PER_VALUE = 2; // float16
const FEATURES_FILE = "features.f16";
const INDEX_FILE = "index.json";
const LOCK_FILE = ".lock";

/** What identifies a cache's contents. Two caches with equal fingerprints hold the same numbers. */
export interface FeatureFingerprint {
  backbone: BackboneFingerprint;
  transform: TransformConfig;
  dtype: "float16";
}

/** The fingerprint of the features that `backbone` gives for images prepared by `transform`. */
export function featureFingerprint(backbone: { fingerprint: BackboneFingerprint }, transform: TransformConfig): FeatureFingerprint {
  return { backbone: backbone.fingerprint, transform, dtype: "float16" };
}

/** The part of a backbone that extraction uses (a PretrainedBackbone has it). */
export interface FrozenBackbone {
  readonly fingerprint: BackboneFingerprint;
  readonly featureDim: number;
  /** [batch, size, size, 3] → [batch, featureDim] */
  features(images: tf.Tensor4D): tf.Tensor2D;
}

/** One image to extract. */
export interface ImageRef {
  imageId: number;
  file: string;
}

interface FeatureIndex {
  format: typeof FEATURES_FORMAT;
  version: number;
  fingerprint: FeatureFingerprint;
  featureDim: number;
  /** Number of complete rows in features.f16. */
  rows: number;
  /** Image id of each row (ids.length === rows). */
  ids: number[];
  /** Images that could not be read (tried again by the next run). */
  skipped: SkippedImage[];
}

export interface FeatureExtractionProgress {
  /** Images done, those cached by an earlier run included. */
  done: number;
  total: number;
  skipped: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

export interface FeatureExtractionOptions {
  /** The cache folder (created if missing). */
  dir: string;
  backbone: FrozenBackbone;
  /** An evaluation transform (centre crop: features must not depend on chance). */
  transform: TransformConfig;
  images: ImageRef[];
  batchSize?: number;
  /** A cache made with another fingerprint: "error" (default) refuses it, "recompute" deletes it and starts over. */
  onMismatch?: "error" | "recompute";
  onProgress?: (progress: FeatureExtractionProgress) => void;
  /** Aborting stops after the current batch, leaving a cache that a later call resumes. */
  signal?: AbortSignal;
  /**
   * W, the threads that run the CNN (default 1: this one). W > 1 starts W worker threads, each
   * loading the backbone (a PretrainedBackbone) from its folder (feature-workers.ts); on wasm and
   * cpu only. The cache's bytes are the same for every W.
   */
  workers?: number;
}

export interface FeatureExtractionResult {
  /** Rows in the cache now. */
  rows: number;
  /** Rows computed by this call (the rest were already cached). */
  extracted: number;
  skipped: SkippedImage[];
  /** false when stopped by the signal before the end. */
  complete: boolean;
  seconds: number;
}

/** Extracts the features of every image not yet in the cache at `dir` (see the file comment). */
export async function extractFeatures(opts: FeatureExtractionOptions): Promise<FeatureExtractionResult> {
  const { dir, backbone, transform } = opts;
  if (transform.train) throw new Error(`extractFeatures: ${dir}: the transform must be an evaluation transform (train: false)`);
  const fingerprint = featureFingerprint(backbone, transform);
  fs.mkdirSync(dir, { recursive: true });
  const unlock = lockCache(dir);
  try {
    return await extractUnlocked(opts, fingerprint);
  } finally {
    unlock();
  }
}

async function extractUnlocked(opts: FeatureExtractionOptions, fingerprint: FeatureFingerprint): Promise<FeatureExtractionResult> {
  const { dir, backbone, transform, batchSize = 32 } = opts;
  const index = openForAppend(dir, fingerprint, backbone.featureDim, opts.onMismatch ?? "error");
  const done = new Set(index.ids);
  const todo = uniqueById(opts.images).filter((image) => !done.has(image.imageId));
  // A complete cache is only read: its files keep their bytes and dates (it may be shared, or read-only).
  if (todo.length === 0) return { rows: index.rows, extracted: 0, skipped: index.skipped, complete: true, seconds: 0 };
  index.skipped = []; // images that failed before are tried again

  const started = Date.now();
  const report = (processed: number) => {
    const seconds = (Date.now() - started) / 1000;
    const rate = processed / Math.max(seconds, 1e-3);
    const remaining = todo.length - processed;
    opts.onProgress?.({
      done: done.size + processed,
      total: done.size + todo.length,
      skipped: index.skipped.length,
      imagesPerSecond: rate,
      etaSeconds: rate > 0 ? remaining / rate : Infinity,
    });
  };
  report(0);

  const cnn = await rowsFunction(opts);
  const fd = fs.openSync(path.join(dir, FEATURES_FILE), "a");
  let processed = 0;
  try {
    // Up to W batches are in the CNN at once (one per worker), written in batch order; the next
    // batch is decoded meanwhile. With W = 1: decode batch b + 1 while the CNN runs on batch b.
    const batches = chunk(todo, batchSize);
    const inFlight: { batch: ImageRef[]; decoded: DecodedBatch; rows: Promise<Uint8Array | null> }[] = [];
    const writeOldest = async () => {
      const { batch, decoded, rows } = inFlight.shift()!;
      index.skipped.push(...decoded.skipped);
      const bytes = await rows;
      if (bytes) {
        fs.writeSync(fd, bytes);
        fs.fdatasyncSync(fd); // the rows reach the disk before the index counts them
        index.ids.push(...decoded.images.map((image) => image.imageId));
        index.rows = index.ids.length;
      }
      writeIndex(dir, index);
      processed += batch.length;
      report(processed);
    };
    let next = batches.length ? decodeBatch(batches[0], transform) : undefined;
    try {
      for (let b = 0; b < batches.length && !opts.signal?.aborted; b++) {
        const decoded = await next!;
        next = b + 1 < batches.length ? decodeBatch(batches[b + 1], transform) : undefined; // overlaps the CNN below
        const count = decoded.images.length;
        const rows = count ? cnn.rows(b, packPixels(decoded.pixels, count, transform.crop), count, transform.crop) : Promise.resolve(null);
        rows.catch(() => {}); // awaited in writeOldest; a failure must not go unhandled meanwhile
        inFlight.push({ batch: batches[b], decoded, rows });
        if (inFlight.length >= cnn.threads) await writeOldest();
      }
      while (inFlight.length) await writeOldest(); // an abort still writes the batches under way
    } finally {
      next?.catch(() => {}); // a batch decoded ahead and not used (aborted, or a worker failed)
    }
  } finally {
    fs.closeSync(fd);
    await cnn.close();
  }
  writeIndex(dir, index);
  return {
    rows: index.rows,
    extracted: processed - index.skipped.length,
    skipped: index.skipped,
    complete: processed === todo.length,
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Makes this process the cache's only writer, until the returned function is called. Two
 * processes appending to one cache would interleave their rows and leave later rows under other
 * images' ids (it happened: a training run started while `npm run features` was still writing
 * the same split). The lock is a file holding the writer's pid; one left by a process that no
 * longer runs is taken over.
 */
function lockCache(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number(fs.readFileSync(file, "utf8"));
      if (isRunning(pid)) {
        throw new Error(`${dir}: process ${pid} is writing this feature cache; wait for it to finish (delete ${file} only if it is not running)`);
      }
      fs.rmSync(file, { force: true });
    }
  }
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // it exists, but is not ours
  }
}

/**
 * Reads or creates the index of the cache at `dir` and cuts features.f16 to its complete rows.
 * A fingerprint mismatch is an error, or wipes the cache with onMismatch "recompute".
 */
function openForAppend(dir: string, fingerprint: FeatureFingerprint, featureDim: number, onMismatch: "error" | "recompute"): FeatureIndex {
  fs.mkdirSync(dir, { recursive: true });
  const indexPath = path.join(dir, INDEX_FILE);
  const featuresPath = path.join(dir, FEATURES_FILE);
  if (fs.existsSync(indexPath)) {
    const index = readIndex(dir);
    const diffs = fingerprintDiffs(index.fingerprint, fingerprint);
    if (!diffs.length) {
      truncateToIndex(featuresPath, index);
      return index;
    }
    if (onMismatch === "error") throw mismatchError(dir, diffs);
  }
  fs.rmSync(featuresPath, { force: true });
  const index: FeatureIndex = { format: FEATURES_FORMAT, version: FEATURES_VERSION, fingerprint, featureDim, rows: 0, ids: [], skipped: [] };
  fs.writeFileSync(featuresPath, Buffer.alloc(0));
  writeIndex(dir, index);
  return index;
}

/**
 * Makes features.f16 hold exactly the indexed rows: bytes after them (an unindexed batch, a
 * torn row) are cut off; if the file is shorter than the index says, the index shrinks to the
 * whole rows that are there.
 */
function truncateToIndex(featuresPath: string, index: FeatureIndex): void {
  const rowBytes = index.featureDim * BYTES_PER_VALUE;
  const size = fs.existsSync(featuresPath) ? fs.statSync(featuresPath).size : 0;
  index.rows = Math.min(index.rows, Math.floor(size / rowBytes));
  index.ids = index.ids.slice(0, index.rows);
  if (!fs.existsSync(featuresPath)) fs.writeFileSync(featuresPath, Buffer.alloc(0));
  if (size !== index.rows * rowBytes) fs.truncateSync(featuresPath, index.rows * rowBytes);
}

interface DecodedBatch {
  images: ImageRef[];
  pixels: Float32Array[]; // one [crop, crop, 3] per image
  skipped: SkippedImage[];
}

/**
 * Decodes a batch concurrently. An unreadable image (ImageError) is listed as skipped instead of
 * failing the run; any other error is a bug and is thrown.
 */
async function decodeBatch(batch: ImageRef[], transform: TransformConfig): Promise<DecodedBatch> {
  const results = await Promise.allSettled(batch.map((image) => transformImage(image.file, transform)));
  const out: DecodedBatch = { images: [], pixels: [], skipped: [] };
  results.forEach((result, i) => {
    if (result.status === "fulfilled") {
      out.images.push(batch[i]);
      out.pixels.push(result.value);
    } else if (result.reason instanceof ImageError) {
      out.skipped.push({ ...batch[i], reason: result.reason.reason });
    } else {
      throw result.reason;
    }
  });
  return out;
}

/** Where a batch's rows are computed: in this thread (W = 1), or by W workers; `threads` batches at a time. */
interface RowsFunction {
  threads: number;
  rows(b: number, input: Float32Array, count: number, size: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function rowsFunction({ backbone, workers = 1 }: FeatureExtractionOptions): Promise<RowsFunction> {
  if (workers === 1) return { threads: 1, rows: (_, input, count, size) => computeRows(backbone, input, count, size), close: async () => {} };
  if (!(backbone instanceof PretrainedBackbone)) throw new Error("extractFeatures: workers > 1 needs a PretrainedBackbone (each worker loads it from its folder)");
  const kind = tf.getBackend();
  if (kind !== "wasm" && kind !== "cpu") throw new Error(`extractFeatures: workers > 1 runs on wasm or cpu (one thread each), not on ${kind}, which has its own threads`);
  const pool = await FeatureWorkers.start(workers, backbone, kind);
  return { threads: workers, rows: (b, input, count, size) => pool.rows(b, input, count, size), close: () => pool.close() };
}

/** Rewrites index.json through a temporary file and a rename: a reader sees the old index or the new, never half. */
function writeIndex(dir: string, index: FeatureIndex): void {
  writeJsonAtomically(path.join(dir, INDEX_FILE), index, 0);
}

function readIndex(dir: string): FeatureIndex {
  const file = path.join(dir, INDEX_FILE);
  const index = readJson(file) as FeatureIndex;
  if (index.format !== FEATURES_FORMAT) throw new Error(`${file}: not a feature cache index (format ${JSON.stringify(index.format)})`);
  if (index.version !== FEATURES_VERSION) throw new Error(`${file}: feature cache version ${index.version}, this code reads ${FEATURES_VERSION}`);
  if (!Array.isArray(index.ids) || index.ids.length !== index.rows) {
    throw new Error(`${file}: "ids" must list one image id per row (${index.rows} rows)`);
  }
  return index;
}

/** The fields (as dotted paths) where two fingerprints differ, each with both values. */
function fingerprintDiffs(cached: FeatureFingerprint, wanted: FeatureFingerprint): string[] {
  const a = flattenJson(cached);
  const b = flattenJson(wanted);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => a[k] !== b[k]).map((k) => `${k}: cache ${a[k] ?? "(none)"}, wanted ${b[k] ?? "(none)"}`);
}

function flattenJson(value: unknown, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenJson(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}

function mismatchError(dir: string, diffs: string[]): Error {
  return new Error(
    `${dir}: this feature cache was made with another backbone or transform (${diffs.join("; ")}). ` +
      `Delete the folder, use another one, or extract with onMismatch "recompute" (--recompute).`,
  );
}

/** Read access to a complete (or partial) feature cache. */
export class FeatureCache {
  private readonly rowOf: Map<number, number>;
  private readonly skippedById: Map<number, SkippedImage>;
  private readonly rowBytes: number;

  private constructor(
    readonly dir: string,
    readonly fingerprint: FeatureFingerprint,
    readonly featureDim: number,
    readonly ids: readonly number[],
    readonly skipped: readonly SkippedImage[],
    private readonly file: fs.promises.FileHandle,
  ) {
    this.rowOf = new Map(ids.map((id, row) => [id, row]));
    this.skippedById = new Map(skipped.map((s) => [s.imageId, s]));
    this.rowBytes = featureDim * BYTES_PER_VALUE;
  }

  /**
   * Opens the cache at `dir`. With `expected`, a cache of another fingerprint is an error
   * naming the fields that differ.
   */
  static async open(dir: string, expected?: FeatureFingerprint): Promise<FeatureCache> {
    const index = readIndex(dir);
    if (expected) {
      const diffs = fingerprintDiffs(index.fingerprint, expected);
      if (diffs.length) throw mismatchError(dir, diffs);
    }
    const featuresPath = path.join(dir, FEATURES_FILE);
    if (!fs.existsSync(featuresPath)) throw new Error(`${featuresPath}: file not found (named by ${INDEX_FILE})`);
    // An interrupted extraction may have left fewer whole rows than indexed: only those are readable.
    const rows = Math.min(index.rows, Math.floor(fs.statSync(featuresPath).size / (index.featureDim * BYTES_PER_VALUE)));
    const file = await fs.promises.open(featuresPath, "r");
    return new FeatureCache(dir, index.fingerprint, index.featureDim, index.ids.slice(0, rows), index.skipped, file);
  }

  has(imageId: number): boolean {
    return this.rowOf.has(imageId);
  }

  /**
   * The features of one image: Float32Array [featureDim]. An image that extraction skipped
   * throws ImageError naming the file and why, as decoding it would.
   */
  async get(imageId: number): Promise<Float32Array> {
    const row = this.rowOf.get(imageId);
    if (row === undefined) {
      const skipped = this.skippedById.get(imageId);
      if (skipped) throw new ImageError(skipped.file, skipped.reason);
      throw new Error(`${this.dir}: image ${imageId} is not in this feature cache (extract its split first)`);
    }
    const half = new Uint16Array(this.featureDim);
    await this.file.read(new Uint8Array(half.buffer), 0, this.rowBytes, row * this.rowBytes);
    return fromFloat16(half);
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

/** The loader's view of a cache: image id → its features. */
export function featureSource(cache: FeatureCache): (imageId: number) => Promise<Float32Array> {
  return (imageId) => cache.get(imageId);
}

/** A progress callback that draws a terminal bar (images, images/s, ETA, skipped), and its stop function. */
export function featureProgressBar(label: string): { onProgress: (p: FeatureExtractionProgress) => void; stop: () => void } {
  const bar = new SingleBar({
    format: `${label} [{bar}] {value}/{total} | {rate} img/s | ETA {etaText} | skipped {skippedCount}`,
    hideCursor: true,
  });
  let started = false;
  return {
    onProgress: (p) => {
      const payload = { rate: p.imagesPerSecond.toFixed(1), etaText: formatSeconds(p.etaSeconds), skippedCount: p.skipped };
      if (!started) bar.start(p.total, p.done, payload);
      else bar.update(p.done, payload);
      started = true;
    },
    stop: () => bar.stop(),
  };
}

function uniqueById(images: ImageRef[]): ImageRef[] {
  const seen = new Set<number>();
  return images.filter((image) => !seen.has(image.imageId) && seen.add(image.imageId));
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
