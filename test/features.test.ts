import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { extractFeatures, FeatureCache, featureFingerprint, featureSource, type ImageRef } from "../lib/features/feature-cache";
import { fromFloat16, fromHalfBits, toFloat16, toHalfBits } from "../lib/io/float16";
import { MOBILENET_V1_025, MOBILENET_V1_025_GRAPH, PretrainedBackbone, transformFor } from "../lib/model/backbone";
import { ImageError, transformImage } from "../lib/data/transforms";

const ROOT = path.resolve(__dirname, "..");
const SHARED = path.resolve(__dirname, "../../shared");
const GRAPH_MODEL = path.join(SHARED, "models/mobilenet_v1_0.25_224/imagenet");
const PHOTOS = path.join(SHARED, "coco-sample/images/val2014");
/** Why a test must skip: "<what> not found" for the first missing [file, what], or undefined. */
function skipWithout(...needed: [file: string, what: string][]): string | undefined {
  const missing = needed.find(([file]) => !fs.existsSync(file));
  return missing && `${missing[1]} not found`;
}
const skip = skipWithout([path.join(GRAPH_MODEL, "model.json"), "../shared/models/mobilenet_v1_0.25_224"], [PHOTOS, "../shared/coco-sample"]);

const LAYERS_MODEL = path.join(SHARED, "models/mobilenet_v1_0.25_224");
const FLICKR_PHOTOS = path.join(SHARED, "flickr8k/images");
const skipWorkers = skipWithout([path.join(LAYERS_MODEL, "model.json"), "../shared/models/mobilenet_v1_0.25_224"], [FLICKR_PHOTOS, "../shared/flickr8k/images"]);

// Real photos, the grayscale one (431848) among them.
const PHOTO_IDS = [139, 802, 18575, 30213, 101780, 113354, 160012, 235064, 431848, 565607];

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "features-"));
}

/** A folder with links to the photos, a corrupt JPEG (id 999999) and, listed but absent, id 888888. */
function imageFolder(): { dir: string; images: ImageRef[] } {
  const dir = tmpDir();
  const images: ImageRef[] = PHOTO_IDS.map((id) => {
    const name = `COCO_val2014_${String(id).padStart(12, "0")}.jpg`;
    fs.symlinkSync(path.join(PHOTOS, name), path.join(dir, name));
    return { imageId: id, file: path.join(dir, name) };
  });
  const corrupt = path.join(dir, "COCO_val2014_000000999999.jpg");
  fs.writeFileSync(corrupt, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 7)]));
  images.splice(4, 0, { imageId: 999999, file: corrupt });
  images.push({ imageId: 888888, file: path.join(dir, "missing.jpg") });
  return { dir, images };
}

let backbonePromise: Promise<PretrainedBackbone> | undefined;
async function backbone(): Promise<PretrainedBackbone> {
  await initBackend();
  backbonePromise ??= PretrainedBackbone.load({ ...MOBILENET_V1_025_GRAPH, source: GRAPH_MODEL });
  return backbonePromise;
}

/** Every row of a cache, by image id. */
async function readAll(dir: string): Promise<Map<number, Float32Array>> {
  const cache = await FeatureCache.open(dir);
  const rows = new Map<number, Float32Array>();
  for (const id of cache.ids) rows.set(id, await cache.get(id));
  await cache.close();
  return rows;
}

function assertSameRows(actual: Map<number, Float32Array>, expected: Map<number, Float32Array>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [id, row] of expected) {
    const other = actual.get(id)!;
    // Batches are cut differently after a resume; float16 rounding hides float32 noise, within a step.
    const worst = Math.max(...row.map((v, i) => Math.abs(v - other[i]) / Math.max(Math.abs(v), 1e-3)));
    assert.ok(worst <= 2 ** -10, `image ${id}: rows differ (relative ${worst})`);
  }
}

test("float16: exact values, rounding to nearest even, overflow, subnormals, and every half round-trips", () => {
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff); // the largest half
  assert.equal(toHalfBits(65520), 0x7c00); // rounds up to Inf
  assert.equal(toHalfBits(2 ** -24), 0x0001); // the smallest subnormal
  assert.equal(toHalfBits(2 ** -26), 0x0000); // below half of it: zero
  assert.equal(fromHalfBits(toHalfBits(0.1)), 0.0999755859375);
  assert.equal(fromHalfBits(toHalfBits(2049)), 2048); // a tie goes to the even mantissa
  assert.equal(fromHalfBits(toHalfBits(2051)), 2052);
  assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
  for (let bits = 0; bits < 0x10000; bits++) {
    const value = fromHalfBits(bits);
    if (!Number.isNaN(value)) assert.equal(toHalfBits(value), bits, `bits ${bits.toString(16)}`);
  }
  const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
  const back = fromFloat16(toFloat16(values));
  values.forEach((v, i) => assert.ok(Math.abs(back[i] - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25, `${v} → ${back[i]}`));
});

test("extract a split: rows are the backbone's features; corrupt and missing images are skipped and listed", { skip }, async () => {
  const model = await backbone();
  const transform = transformFor(model);
  const { images } = imageFolder();
  const dir = tmpDir();
  const progress: number[] = [];
  const result = await extractFeatures({ dir, backbone: model, transform, images, batchSize: 4, onProgress: (p) => progress.push(p.done) });
  assert.equal(result.complete, true);
  assert.equal(result.rows, PHOTO_IDS.length);
  assert.equal(result.extracted, PHOTO_IDS.length);
  assert.deepEqual(result.skipped.map((s) => s.imageId), [999999, 888888]);
  assert.match(result.skipped[0].reason, /corrupt|not an image/);
  assert.match(result.skipped[1].reason, /file not found/);
  assert.deepEqual(progress, [0, 4, 8, 12]);
  assert.equal(fs.statSync(path.join(dir, "features.f16")).size, PHOTO_IDS.length * model.featureDim * 2);

  const cache = await FeatureCache.open(dir, featureFingerprint(model, transform));
  assert.deepEqual([...cache.ids].sort((a, b) => a - b), [...PHOTO_IDS].sort((a, b) => a - b));
  assert.deepEqual(cache.skipped.map((s) => s.imageId), [999999, 888888]);
  const source = featureSource(cache);
  // A photo's row equals what the backbone computes on it alone, to float16 precision.
  const pixels = await transformImage(images[0].file, transform);
  const direct = tf.tidy(() => model.features(tf.tensor4d(pixels, [1, 224, 224, 3])).dataSync() as Float32Array);
  const cached = await source(images[0].imageId);
  assert.equal(cached.length, model.featureDim);
  direct.forEach((v, i) => assert.ok(Math.abs(cached[i] - v) <= Math.abs(v) * 2 ** -10 + 1e-5, `value ${i}: ${cached[i]} vs ${v}`));
  // The loader's skip mode knows ImageError: a skipped image is one.
  await assert.rejects(source(999999), (e: unknown) => e instanceof ImageError && /999999/.test(e.file));
  await assert.rejects(source(4242), /image 4242 is not in this feature cache/);
  await cache.close();
});

test("fingerprint: another transform or other weights are refused with the differing fields; recompute rebuilds", { skip }, async () => {
  const model = await backbone();
  const transform = transformFor(model);
  const images = imageFolder().images.slice(0, 3);
  const dir = tmpDir();
  await extractFeatures({ dir, backbone: model, transform, images });

  const wider = { ...transform, resize: 300 };
  await assert.rejects(extractFeatures({ dir, backbone: model, transform: wider, images }), /transform\.resize: cache 256, wanted 300/);
  const otherWeights = { ...featureFingerprint(model, transform), backbone: { ...model.fingerprint, weightsSha256: "0".repeat(64) } };
  await assert.rejects(FeatureCache.open(dir, otherWeights), /backbone\.weightsSha256: cache "[0-9a-f]{64}", wanted "0{64}"/);
  await assert.rejects(extractFeatures({ dir, backbone: model, transform: { ...transform, train: true }, images }), /evaluation transform/);

  const rebuilt = await extractFeatures({ dir, backbone: model, transform: wider, images, onMismatch: "recompute" });
  assert.equal(rebuilt.extracted, 3);
  const cache = await FeatureCache.open(dir, featureFingerprint(model, wider)); // now the cache is the new one's
  assert.equal(cache.ids.length, 3);
  await cache.close();
});

test("one writer at a time: a cache locked by a running process is refused; a dead writer's lock is taken over", { skip }, async () => {
  const model = await backbone();
  const transform = transformFor(model);
  const images = imageFolder().images.slice(0, 2);
  const dir = tmpDir();
  const lock = path.join(dir, ".lock");
  fs.writeFileSync(lock, String(process.pid)); // a writer that is running (this process)
  await assert.rejects(extractFeatures({ dir, backbone: model, transform, images }), new RegExp(`process ${process.pid} is writing this feature cache`));
  assert.ok(!fs.existsSync(path.join(dir, "features.f16")), "nothing was written");
  const dead = spawnSync(process.execPath, ["-e", "0"]).pid!; // a process that has exited
  fs.writeFileSync(lock, String(dead));
  const result = await extractFeatures({ dir, backbone: model, transform, images });
  assert.equal(result.rows, 2);
  assert.ok(!fs.existsSync(lock), "the lock is released after the extraction");
});

test("resume: stopped after one batch, then a torn row and an unindexed batch appended, ends equal to one run", { skip }, async () => {
  const model = await backbone();
  const transform = transformFor(model);
  const { images } = imageFolder();
  const reference = tmpDir();
  await extractFeatures({ dir: reference, backbone: model, transform, images, batchSize: 5 });

  const dir = tmpDir();
  const stop = new AbortController();
  const first = await extractFeatures({
    dir, backbone: model, transform, images, batchSize: 3,
    onProgress: (p) => p.done > 0 && stop.abort(), // stop after the first batch
    signal: stop.signal,
  });
  assert.equal(first.complete, false);
  assert.equal(first.rows, 3);
  // As if killed while writing: one and a half rows that the index never counted.
  fs.appendFileSync(path.join(dir, "features.f16"), Buffer.alloc(model.featureDim * 3, 0x55));
  const second = await extractFeatures({ dir, backbone: model, transform, images, batchSize: 3 });
  assert.equal(second.complete, true);
  assert.equal(second.extracted, PHOTO_IDS.length - 3);
  assertSameRows(await readAll(dir), await readAll(reference));

  // The other way round: the file lost its end (half of the last row), the index still counts it.
  const file = path.join(dir, "features.f16");
  fs.truncateSync(file, fs.statSync(file).size - model.featureDim);
  const torn = await FeatureCache.open(dir);
  assert.equal(torn.ids.length, PHOTO_IDS.length - 1); // the torn row is not readable
  await torn.close();
  const third = await extractFeatures({ dir, backbone: model, transform, images });
  assert.equal(third.extracted, 1); // only the lost row is computed again
  assertSameRows(await readAll(dir), await readAll(reference));
});

/** SHA-256 of each file of a cache: equal hashes, byte-identical caches. */
function cacheHashes(dir: string): Record<string, string> {
  const hash = (file: string) => createHash("sha256").update(fs.readFileSync(path.join(dir, file))).digest("hex");
  return { "features.f16": hash("features.f16"), "index.json": hash("index.json") };
}

/** 16 Flickr8k photos (the first by name) and, among them, a corrupt JPEG that is skipped. */
function flickrImages(): ImageRef[] {
  const files = fs.readdirSync(FLICKR_PHOTOS).filter((f) => f.endsWith(".jpg")).sort().slice(0, 16);
  const images: ImageRef[] = files.map((f, i) => ({ imageId: i + 1, file: path.join(FLICKR_PHOTOS, f) }));
  const corrupt = path.join(tmpDir(), "corrupt.jpg");
  fs.writeFileSync(corrupt, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 7)]));
  images.splice(5, 0, { imageId: 999999, file: corrupt });
  return images;
}

test("the CNN on W = 2 workers writes a cache byte-identical to W = 1's (the real layers backbone, 16 Flickr8k photos)", { skip: skipWorkers }, async () => {
  await initBackend();
  const model = await PretrainedBackbone.load({ ...MOBILENET_V1_025, source: LAYERS_MODEL });
  const transform = transformFor(model);
  const images = flickrImages();
  const one = tmpDir();
  const two = tmpDir();
  await extractFeatures({ dir: one, backbone: model, transform, images, batchSize: 3 });
  const progress: number[] = [];
  const result = await extractFeatures({ dir: two, backbone: model, transform, images, batchSize: 3, workers: 2, onProgress: (p) => progress.push(p.done) });
  assert.equal(result.rows, 16);
  assert.deepEqual(result.skipped.map((s) => s.imageId), [999999]);
  assert.deepEqual(progress, [0, 3, 6, 9, 12, 15, 17]); // batches reported in order
  assert.deepEqual(cacheHashes(two), cacheHashes(one));
  // The command line's --workers: the same bytes again.
  const folder = tmpDir();
  for (const image of images.filter((i) => i.imageId !== 999999)) {
    fs.symlinkSync(image.file, path.join(folder, `photo_${String(image.imageId).padStart(3, "0")}.jpg`));
  }
  const viaCli = path.join(tmpDir(), "cache");
  const args = ["--images", folder, "--backbone", LAYERS_MODEL, "--out", viaCli, "--batch", "3", "--workers", "2", "--no-progress", "--json"];
  const run = await runCli(args);
  assert.equal(run.code, 0, run.stderr);
  const direct = tmpDir();
  await extractFeatures({ dir: direct, backbone: model, transform, images: images.filter((i) => i.imageId !== 999999), batchSize: 3 });
  assert.deepEqual(cacheHashes(viaCli), cacheHashes(direct));
  model.dispose();
});

/** Runs scripts/extract-features.ts; `onIndex` sees the cache's row count as it grows. */
function runCli(args: string[], onRows?: (rows: number, kill: () => void) => void): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts/extract-features.ts"), ...args], { cwd: ROOT });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const out = args[args.indexOf("--out") + 1];
  const timer = onRows
    ? setInterval(() => {
        try {
          const { rows } = JSON.parse(fs.readFileSync(path.join(out, "index.json"), "utf8")) as { rows: number };
          onRows(rows, () => child.kill("SIGKILL"));
        } catch {
          // not written yet
        }
      }, 20)
    : undefined;
  return new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, stderr });
    }),
  );
}

test("the command line: killed (SIGKILL) mid-way, run again, gives the features of an uninterrupted run", { skip }, async () => {
  const model = await backbone();
  const { dir: folder, images } = imageFolder();
  const reference = tmpDir();
  await extractFeatures({ dir: reference, backbone: model, transform: transformFor(model), images });

  const out = path.join(tmpDir(), "cache");
  const args = ["--images", folder, "--backbone", "mobilenet_v1_0.25_graph", "--backbone-source", GRAPH_MODEL, "--out", out, "--batch", "2", "--no-progress", "--json"];
  let rowsAtKill = -1;
  const killed = await runCli(args, (rows, kill) => {
    if (rows >= 2 && rowsAtKill < 0) {
      rowsAtKill = rows;
      kill();
    }
  });
  assert.equal(killed.signal, "SIGKILL", `the run was not killed: ${killed.stderr}`);
  assert.ok(rowsAtKill < PHOTO_IDS.length, `killed only after all ${rowsAtKill} rows`);

  const resumed = await runCli(args);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /skipped image 999999: .*COCO_val2014_000000999999\.jpg/);
  assertSameRows(await readAll(out), await readAll(reference));
});
