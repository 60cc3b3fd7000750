/**
 * Extracts a split's image features with a frozen pretrained backbone into a feature cache
 * (lib/features/feature-cache.ts), so that training reads features instead of running the CNN every epoch.
 *
 *   npm run features -- --data coco --split train               # data/cocoapi, the COCO preset's MobileNet V2
 *   npm run features -- --data flickr8k --data-root ../flickr8k --backbone ../models/mobilenet_v1_0.75_224
 *   npm run features -- --images DIR --out DIR --backbone mobilenet_v1_0.25
 *   npm run features -- --bench 200 --backbone mobilenet_v1_0.25_graph --backbone-source /models/mobilenet_v1_0.25_224/imagenet
 *
 * A split's cache is the one training reads (`<featureDir>/<backbone name>/<split>`, the
 * preset's featureDir), made with the same transform, so training never extracts it again.
 * The CNN runs on --workers W threads (default: the cores on wasm and cpu), each batch on one of
 * them; the cache is byte for byte the same for every W (lib/features/feature-workers.ts).
 *
 * Safe to interrupt: Ctrl-C finishes the current batch and saves the index; running the same
 * command again resumes. Unreadable images are skipped and listed at the end.
 * --bench N copies N COCO-sized (640x480) JPEGs, made from the photos in --images (default
 * ../shared/coco-sample), into a temporary folder and measures decode+transform alone and the
 * whole extraction there: images/s, bytes per 1000 images and peak memory (RSS).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { initBackend } from "../lib/runtime/backend";
import { SPLITS, type Split } from "../lib/data/coco";
import { PRESETS, presetFor } from "../lib/train/config";
import { loadSplit } from "../lib/data/dataset";
import { extractFeatures, featureProgressBar, type FeatureExtractionResult, type ImageRef } from "../lib/features/feature-cache";
import { featureCacheDir } from "../lib/features/image-source";
import { PretrainedBackbone, transformFor, type BackboneSpec } from "../lib/model/backbone";
import { DEFAULT_MODEL_CACHE } from "../lib/io/model-cache";
import { transformImage } from "../lib/data/transforms";
import { resolveWorkers } from "../lib/train/data-parallel";
import { BACKBONE_FLAGS, backboneFromFlags } from "./backbone-args";

const SAMPLE_PHOTOS = path.resolve(__dirname, "../../shared/coco-sample/images/val2014");
const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;

const USAGE = `Usage: npm run features -- [options]
  --data NAME            ${Object.keys(PRESETS).join(" | ")} (default coco): the preset whose dataset,
                         backbone and feature folder are used
  --data-root DIR        where the dataset is (default: the preset's dataRoot)
  --feature-dir DIR      the folder of feature caches (default: the preset's featureDir, as training)
  --split NAME           train | val | test, or all (default train)
  --images DIR           instead of --data/--split: every image in DIR (id = the file name's last number)
  --limit N              only the first N images
  --backbone NAME|DIR    a preset backbone or a model folder/URL (default: the dataset preset's);
                         --backbone-source, --backbone-name, --backbone-format, --feature-layer, --input-size, --resize,
                         --normalization describe any other model (scripts/backbone-args.ts)
  --cache-root DIR       downloaded models (default ${DEFAULT_MODEL_CACHE})
  --out DIR              the feature cache (default: the one training reads,
                         <preset featureDir>/<backbone>/<split>; data/features/<folder>/<backbone> with --images)
  --batch N              images per batch (default 32)
  --workers N|auto       W, the threads that run the CNN (default auto: the cores on wasm and cpu,
                         1 on the native backends); the cache's bytes are the same for every W
  --recompute            replace a cache made with another backbone or transform
  --bench N              measure on N generated 640x480 JPEGs instead (see the file comment)
  --no-progress          no progress bar
  --json                 print the summary as one JSON line`;

function parse() {
  const { values } = parseArgs({
    options: {
      data: { type: "string", default: "coco" },
      "data-root": { type: "string" },
      "feature-dir": { type: "string" },
      split: { type: "string", default: "train" },
      images: { type: "string" },
      limit: { type: "string" },
      ...BACKBONE_FLAGS,
      "cache-root": { type: "string", default: DEFAULT_MODEL_CACHE },
      out: { type: "string" },
      batch: { type: "string", default: "32" },
      workers: { type: "string", default: "auto" },
      recompute: { type: "boolean", default: false },
      bench: { type: "string" },
      "no-progress": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const preset = presetFor(values.data, "--data");
  const base = preset.encoder.kind === "pretrained" ? preset.encoder.backbone : undefined;
  const spec: BackboneSpec | undefined = backboneFromFlags(values, base) ?? base;
  if (!spec) throw new Error(`the ${values.data} preset trains its own CNN: give --backbone to extract features`);
  const dataRoot = values["data-root"] ?? preset.dataRoot;
  return { ...values, spec, dataRoot, featureDir: values["feature-dir"] ?? preset.featureDir, batch: positiveInt(values.batch, "--batch"), workers: values.workers === "auto" ? ("auto" as const) : positiveInt(values.workers, "--workers"), limit: values.limit ? positiveInt(values.limit, "--limit") : Infinity };
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got "${text}"`);
  return n;
}

/** Every image file in `dir`, its id taken from the last number in its name (COCO_val2014_000000000139.jpg → 139). */
function imagesInFolder(dir: string): ImageRef[] {
  if (!fs.existsSync(dir)) throw new Error(`${dir}: folder not found`);
  const files = fs.readdirSync(dir).filter((f) => IMAGE_FILE.test(f)).sort();
  const seen = new Map<number, string>();
  return files.map((f) => {
    const digits = f.match(/(\d+)\D*$/);
    if (!digits) throw new Error(`${path.join(dir, f)}: no number in the file name to use as the image id`);
    const imageId = Number(digits[1]);
    if (seen.has(imageId)) throw new Error(`${dir}: ${seen.get(imageId)} and ${f} would both be image ${imageId}`);
    seen.set(imageId, f);
    return { imageId, file: path.join(dir, f) };
  });
}

async function imagesOfSplit(root: string, split: Split): Promise<ImageRef[]> {
  const { index } = await loadSplit(root, split);
  return index.images.map((image) => ({ imageId: image.id, file: index.imagePath(image.id) }));
}

function splitsOf(text: string): Split[] {
  if (text === "all") return [...SPLITS];
  if (!SPLITS.includes(text as Split)) throw new Error(`--split must be train, val, test or all, got "${text}"`);
  return [text as Split];
}

/** Peak resident memory of this process so far, in MB. */
function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

async function extract(opts: ReturnType<typeof parse>, images: ImageRef[], out: string): Promise<FeatureExtractionResult & { featureDim: number; workers: number }> {
  const backend = await initBackend();
  const backbone = await PretrainedBackbone.load(opts.spec, opts["cache-root"]);
  const workers = resolveWorkers(opts.workers, backend.kind);
  const bar = opts["no-progress"] ? undefined : featureProgressBar(`features ${backbone.name}`);
  // Ctrl-C: stop after the current batch with a consistent cache; a second Ctrl-C quits at once.
  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  try {
    const result = await extractFeatures({
      dir: out,
      backbone,
      transform: transformFor(backbone),
      images,
      batchSize: opts.batch,
      workers,
      onMismatch: opts.recompute ? "recompute" : "error",
      onProgress: bar?.onProgress,
      signal: abort.signal,
    });
    return { ...result, featureDim: backbone.featureDim, workers };
  } finally {
    bar?.stop();
    backbone.dispose();
  }
}

function report(opts: ReturnType<typeof parse>, out: string, result: FeatureExtractionResult & { featureDim: number; workers: number }): void {
  const summary = {
    out,
    backbone: opts.spec.name,
    featureDim: result.featureDim,
    workers: result.workers,
    rows: result.rows,
    extracted: result.extracted,
    skipped: result.skipped.length,
    complete: result.complete,
    seconds: round(result.seconds),
    imagesPerSecond: round(result.extracted / Math.max(result.seconds, 1e-3)),
    bytesPer1000Images: result.featureDim * 2 * 1000,
    peakRssMb: peakRssMb(),
  };
  if (opts.json) console.log(JSON.stringify(summary));
  else console.log(Object.entries(summary).map(([k, v]) => `${k}: ${v}`).join("\n"));
  for (const s of result.skipped) console.error(`skipped image ${s.imageId}: ${s.file}: ${s.reason}`);
  if (!result.complete) {
    console.error("interrupted: the cache is consistent; run the same command again to resume");
    process.exitCode = 130;
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Writes `count` 640x480 JPEGs (COCO's usual size) made from the photos in `from`, each one different. */
async function makeBenchImages(from: string, count: number, dir: string): Promise<ImageRef[]> {
  const photos = fs.readdirSync(from).filter((f) => IMAGE_FILE.test(f)).sort();
  if (!photos.length) throw new Error(`${from}: no photos to make benchmark images from`);
  const refs: ImageRef[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `bench_${String(i + 1).padStart(12, "0")}.jpg`);
    let image = sharp(path.join(from, photos[i % photos.length])).rotate().resize(640, 480, { fit: "cover" });
    if (Math.floor(i / photos.length) % 2) image = image.flop(); // a second pass over the photos gives mirror images
    await image.modulate({ brightness: 0.8 + 0.4 * ((i * 37) % 100) / 100 }).jpeg({ quality: 90 }).toFile(file);
    refs.push({ imageId: i + 1, file });
  }
  return refs;
}

/** Decode+transform alone, with sharp's default concurrency: how fast the CPU side can feed the CNN. */
async function decodeRate(images: ImageRef[], opts: ReturnType<typeof parse>): Promise<number> {
  const transform = transformFor(opts.spec);
  const start = Date.now();
  for (let i = 0; i < images.length; i += opts.batch) {
    await Promise.all(images.slice(i, i + opts.batch).map((image) => transformImage(image.file, transform)));
  }
  return images.length / ((Date.now() - start) / 1000);
}

async function bench(opts: ReturnType<typeof parse>, count: number): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "features-bench-"));
  try {
    const images = await makeBenchImages(opts.images ?? SAMPLE_PHOTOS, count, tmp);
    const jpegBytes = images.reduce((sum, image) => sum + fs.statSync(image.file).size, 0);
    const decode = await decodeRate(images, opts);
    const result = await extract({ ...opts, "no-progress": true }, images, path.join(tmp, "features"));
    const rate = result.extracted / result.seconds;
    const summary = {
      name: "extract_features",
      backbone: opts.spec.name,
      images: count,
      meanJpegKb: Math.round(jpegBytes / count / 1024),
      workers: result.workers,
      decodeTransformImagesPerSecond: round(decode),
      extractImagesPerSecond: round(rate),
      estimatedHoursFor83kTrain: round(82783 / rate / 3600),
      bytesPer1000Images: result.featureDim * 2 * 1000,
      peakRssMb: peakRssMb(),
    };
    console.log(opts.json ? JSON.stringify(summary) : Object.entries(summary).map(([k, v]) => `${k}: ${v}`).join("\n"));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = parse();
  if (opts.bench) return bench(opts, positiveInt(opts.bench, "--bench"));
  if (opts.images) {
    const out = opts.out ?? path.join("data", "features", path.basename(path.resolve(opts.images)), opts.spec.name);
    return report(opts, out, await extract(opts, imagesInFolder(opts.images).slice(0, opts.limit), out));
  }
  const splits = splitsOf(opts.split);
  if (opts.out && splits.length > 1) throw new Error("--out names one cache: give one --split with it");
  for (const split of splits) {
    const images = (await imagesOfSplit(opts.dataRoot, split)).slice(0, opts.limit);
    const out = opts.out ?? featureCacheDir(opts.featureDir, opts.spec.name, split);
    report(opts, out, await extract(opts, images, out));
    if (process.exitCode) return;
  }
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
