/**
 * Throughput of the training image transform (decode → resize 256 → random crop 224 → flip
 * → normalise), in images per second, with 1 and 2 transforms running at once.
 *
 *   npx tsx scripts/bench-transforms.ts [--images DIR] [--generated N] [--rounds R] [--repeats K] [--json]
 *
 * Two image sets: the real COCO photos in ../shared/coco-sample (60 images, ~640×480), and N
 * generated 640×480 JPEGs in a temp folder. Two implementations of crop + flip:
 *   "raw":     lib/data/transforms.ts — sharp decodes and resizes, one JS loop crops, flips, normalises;
 *   "extract": sharp crops and flips (extract + flop) after a metadata read, JS only normalises.
 * The second exists only here, to justify the choice of the first. A third line, "loader",
 * is the raw transform inside a CaptionLoader (batches of 16, prefetch 2): its overhead.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { CaptionLoader } from "../lib/data/loader";
import { Random } from "../lib/data/random";
import { ALPHA_BACKGROUND, trainTransform, transformImage, transformSource, type TransformConfig } from "../lib/data/transforms";

type Transform = (file: string, config: TransformConfig, rng: Random) => Promise<Float32Array>;

/** The alternative: crop and flip inside sharp. Same draws and offsets as lib/data/transforms.ts. */
const extractTransform: Transform = async (file, config, rng) => {
  const [fx, fy, flip] = [rng.next(), rng.next(), config.flip && rng.next() < 0.5];
  const meta = await sharp(file).metadata();
  const upright = (meta.orientation ?? 1) >= 5; // EXIF 5-8 swap width and height
  const [w0, h0] = upright ? [meta.height!, meta.width!] : [meta.width!, meta.height!];
  const scale = config.resize / Math.min(w0, h0);
  const [width, height] = [Math.max(config.resize, Math.round(w0 * scale)), Math.max(config.resize, Math.round(h0 * scale))];
  const left = Math.floor(fx * (width - config.crop + 1));
  const top = Math.floor(fy * (height - config.crop + 1));
  let pipeline = sharp(file, { failOn: "error" })
    .rotate()
    .flatten({ background: ALPHA_BACKGROUND })
    .toColourspace("srgb")
    .resize(width, height, { fit: "fill" })
    .extract({ left, top, width: config.crop, height: config.crop });
  if (flip) pipeline = pipeline.flop();
  const data = await pipeline.raw().toBuffer();
  const out = new Float32Array(data.length); // [crop, crop, 3]
  for (let i = 0; i < data.length; i++) out[i] = (data[i] / 255 - config.mean[i % 3]) / config.std[i % 3];
  return out;
};

const TRANSFORMS: Record<string, Transform> = { raw: transformImage, extract: extractTransform };

/** Writes `count` 640×480 JPEGs with detail (blurred noise, ~160 KB each, like an average COCO photo) into a temp folder. */
async function generateJpegs(count: number): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-transforms-"));
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `image-${i}.jpg`);
    const noise = { type: "gaussian" as const, mean: 90 + (i % 5) * 20, sigma: 60 };
    await sharp({ create: { width: 640, height: 480, channels: 3, background: "#000", noise } })
      .blur(0.7)
      .jpeg({ quality: 90 })
      .toFile(file);
    files.push(file);
  }
  return files;
}

/** Throughput of `images` images processed by `run`: wall-clock rate and CPU time per image. */
interface Rate {
  imagesPerSecond: number;
  /** CPU time of this process (JS and libvips threads) per image: steadier than wall time on a shared machine. */
  cpuMsPerImage: number;
}

async function timed(images: number, run: () => Promise<void>): Promise<Rate> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run();
  const { user, system } = process.cpuUsage(cpu);
  return { imagesPerSecond: images / ((performance.now() - started) / 1000), cpuMsPerImage: (user + system) / 1000 / images };
}

/** `transform` over `files` × `rounds`, with `concurrency` jobs at once. */
function measure(transform: Transform, files: string[], rounds: number, concurrency: number): Promise<Rate> {
  const config = trainTransform();
  const rng = new Random(0);
  const work = Array.from({ length: rounds }, () => files).flat();
  let next = 0;
  const worker = async () => {
    while (next < work.length) await transform(work[next++], config, rng);
  };
  return timed(work.length, async () => {
    await Promise.all(Array.from({ length: concurrency }, worker));
  });
}

/**
 * The raw transform inside a CaptionLoader (batches of 16, prefetch 2) with an idle consumer:
 * the transform's rate minus the loader's overhead. "images" mode, one pass over `files` ×
 * `rounds`: it stops reading ahead at the end of the pass, so no decoding is left running
 * to slow down the next measurement.
 */
function measureLoader(files: string[], rounds: number, concurrency: number): Promise<Rate> {
  const work = Array.from({ length: rounds }, () => files).flat();
  const loader = new CaptionLoader({
    captions: [],
    imageIds: work.map((_, imageId) => imageId),
    vocab: { encode: () => [0, 1] }, // no captions are read
    source: transformSource((id) => work[id], trainTransform()),
    imageShape: [224, 224, 3],
    batchSize: 16,
    seed: 0,
    mode: "images",
    captionsPerImage: 0,
    concurrency,
  });
  return timed(work.length, async () => {
    for await (const _batch of loader.epoch());
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Largest and mean difference between the two implementations on the same (unflipped) crop. */
async function difference(file: string): Promise<{ max: number; mean: number }> {
  const config = trainTransform({ flip: false });
  const [a, b] = await Promise.all([transformImage(file, config, new Random(1)), extractTransform(file, config, new Random(1))]);
  let max = 0;
  let sum = 0;
  a.forEach((v, i) => {
    const d = Math.abs(v - b[i]);
    max = Math.max(max, d);
    sum += d;
  });
  return { max, mean: sum / a.length };
}

async function main() {
  const { values } = parseArgs({
    options: {
      images: { type: "string", default: path.resolve(__dirname, "../../shared/coco-sample/images/val2014") },
      generated: { type: "string", default: "60" },
      rounds: { type: "string", default: "1" },
      repeats: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
    },
  });
  sharp.cache(false); // each training image is read once per epoch: no cache hits to flatter the figures
  const sets: Record<string, string[]> = {};
  if (fs.existsSync(values.images)) {
    sets.coco = fs.readdirSync(values.images).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).map((f) => path.join(values.images, f));
  } else console.error(`${values.images} not found: benchmarking generated JPEGs only`);
  sets.generated_640x480 = await generateJpegs(Number(values.generated));
  if (!values.json) {
    const diff = await difference(sets.coco?.[0] ?? sets.generated_640x480[0]);
    // Not zero: "extract" resizes to integer width and height, "raw" by one scale factor for both
    // axes, so their sampling grids differ by a fraction of a pixel.
    console.log(`raw vs extract on the same crop: |difference| max ${diff.max.toFixed(3)}, mean ${diff.mean.toFixed(4)} (normalised units)`);
    console.log(`libvips threads per job: ${sharp.concurrency()}, CPU cores: ${os.availableParallelism()}, load average: ${os.loadavg()[0].toFixed(1)}`);
    console.log(`median of ${values.repeats} runs (min..max), ${values.rounds} pass(es) over each set per run`);
    console.log("CPU-ms/image: CPU time of this process per image, the steadier figure when other processes share the cores");
  }
  for (const [set, files] of Object.entries(sets)) {
    for (const transform of Object.values(TRANSFORMS)) for (const file of files.slice(0, 4)) await transform(file, trainTransform(), new Random(0)); // warm up
    for (const concurrency of [1, 2]) {
      // Methods interleaved run by run, so that load from other processes hits both alike.
      const runs: Record<string, Rate[]> = { raw: [], extract: [], loader: [] };
      for (let r = 0; r < Number(values.repeats); r++) {
        for (const [method, transform] of Object.entries(TRANSFORMS)) runs[method].push(await measure(transform, files, Number(values.rounds), concurrency));
        runs.loader.push(await measureLoader(files, Number(values.rounds), concurrency));
      }
      for (const [method, rates] of Object.entries(runs)) {
        const perSecond = rates.map((r) => r.imagesPerSecond);
        const result = {
          name: "train_transform",
          set,
          method,
          concurrency,
          images: files.length,
          imagesPerSecond: +median(perSecond).toFixed(1),
          min: +Math.min(...perSecond).toFixed(1),
          max: +Math.max(...perSecond).toFixed(1),
          cpuMsPerImage: +median(rates.map((r) => r.cpuMsPerImage)).toFixed(2),
        };
        const line =
          `${set.padEnd(18)} ${method.padEnd(8)} ${concurrency} job(s): ${String(result.imagesPerSecond).padStart(5)} images/s ` +
          `(${result.min}..${result.max}), ${result.cpuMsPerImage} CPU-ms/image`;
        console.log(values.json ? JSON.stringify(result) : line);
      }
    }
  }
  fs.rmSync(path.dirname(sets.generated_640x480[0]), { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
