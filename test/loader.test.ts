import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CaptionLoader, type Batch, type CaptionPair, type ImageSource, type LoaderOptions } from "../lib/data/loader";
import { Random } from "../lib/data/random";
import { ImageError, evalTransform, trainTransform, transformSource } from "../lib/data/transforms";
import { Vocabulary } from "../lib/data/vocabulary";

const SAMPLE = path.resolve(__dirname, "../../shared/coco-sample");
const skipCoco = fs.existsSync(SAMPLE) ? undefined : "../shared/coco-sample not found";

/** A stand-in vocabulary: each new word gets the next id from 3; [START=0, ..., END=1]. */
function wordVocab() {
  const ids = new Map<string, number>();
  return {
    encode(caption: string): number[] {
      const words = caption.toLowerCase().split(/\s+/).filter(Boolean);
      return [0, ...words.map((w) => ids.get(w) ?? ids.set(w, ids.size + 3).get(w)!), 1];
    },
  };
}

/** 12 images × 3 captions of 2 to 5 words. */
const CAPTIONS: CaptionPair[] = Array.from({ length: 36 }, (_, i) => ({
  imageId: 100 + Math.floor(i / 3),
  caption: ["a cat", "a dog runs", "two birds fly high", "a red bus on roads"][(i * 7) % 4],
}));

/**
 * A fake image source: image id → [id, a draw from the example's Random], after a delay.
 * `delays` decides the completion order; it records the calls in flight.
 */
function fakeSource(delays: (call: number) => number, bad = new Set<number>()) {
  const stats = { calls: 0, inFlight: 0, maxInFlight: 0 };
  const source: ImageSource = async (imageId, rng) => {
    const call = stats.calls++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    const draw = rng.next();
    await sleep(delays(call));
    stats.inFlight--;
    if (bad.has(imageId)) throw new ImageError(`img/${imageId}.jpg`, "corrupt or truncated image (test)");
    return Float32Array.of(imageId, draw);
  };
  return { source, stats };
}

function loader(overrides: Partial<LoaderOptions> & Pick<LoaderOptions, "source">) {
  return new CaptionLoader({ captions: CAPTIONS, vocab: wordVocab(), imageShape: [2], batchSize: 4, seed: 7, ...overrides });
}

async function take(l: CaptionLoader, n: number): Promise<Batch[]> {
  const batches: Batch[] = [];
  for (let i = 0; i < n; i++) batches.push(await l.next());
  return batches;
}

/** Checks the layout of a batch against the captions it says it holds. */
function assertConsistent(batch: Batch) {
  const vocab = wordVocab();
  CAPTIONS.forEach((c) => vocab.encode(c.caption)); // same id assignment order as the loader's
  const rows = batch.imageIds.length;
  assert.deepEqual(batch.imageShape, [rows, 2]);
  assert.equal(batch.tokens.length, rows * batch.time);
  batch.captionIndices.forEach((c, r) => {
    assert.equal(CAPTIONS[c].imageId, batch.imageIds[r]);
    assert.equal(batch.images[r * 2], batch.imageIds[r], "row's image data is that row's image");
    const ids = vocab.encode(CAPTIONS[c].caption);
    const row = Array.from(batch.tokens.subarray(r * batch.time, (r + 1) * batch.time));
    const mask = Array.from(batch.mask.subarray(r * batch.time, (r + 1) * batch.time));
    assert.deepEqual(row, [...ids, ...new Array(batch.time - ids.length).fill(1)]);
    assert.deepEqual(mask, [...new Array(ids.length).fill(1), ...new Array(batch.time - ids.length).fill(0)]);
  });
}

test("length mode: [START, words, END] rows of one length, matching their images", async () => {
  const { source } = fakeSource(() => 0);
  const batches = await take(loader({ source }), 10);
  for (const batch of batches) {
    assertConsistent(batch);
    assert.equal(batch.imageIds.length, 4);
    assert.ok(batch.mask.every((m) => m === 1), "one length per batch: no padding");
  }
  assert.ok(new Set(batches.map((b) => b.time)).size > 1, "different batches draw different lengths");
});

test("same seed → same batches whatever order the decodes finish in", async () => {
  const a = fakeSource((call) => (call % 5) * 3);
  const b = fakeSource((call) => 15 - (call % 7) * 2);
  const first = await take(loader({ source: a.source, concurrency: 4 }), 8);
  const second = await take(loader({ source: b.source, concurrency: 3 }), 8);
  assert.deepEqual(second, first);
  const other = await take(loader({ source: fakeSource(() => 0).source, seed: 8 }), 8);
  assert.notDeepEqual(other, first);
});

test("prefetch keeps `prefetch` batches in preparation, with at most `concurrency` calls in flight", async () => {
  const { source, stats } = fakeSource(() => 5);
  const l = loader({ source, prefetch: 2, concurrency: 3 });
  await l.next();
  await sleep(60); // the consumer "works"; the next two batches get ready meanwhile
  assert.equal(stats.calls, 3 * 4, "the batch taken plus two ahead, and no further");
  assert.equal(stats.inFlight, 0);
  // The next batch is ready: it settles within one turn of the event loop, far less than a 5 ms decode.
  let ready = false;
  l.next().then(() => (ready = true));
  await new Promise(setImmediate);
  assert.ok(ready, "a prefetched batch is ready at once");
  await take(l, 5);
  assert.equal(stats.maxInFlight, 3);
});

test("padded mode: mixed lengths padded with END and masked; an epoch covers every caption once", async () => {
  const { source } = fakeSource(() => 1);
  const l = loader({ source, mode: "padded", batchSize: 5 });
  assert.equal(l.batchesPerEpoch, 8);
  const seen: number[] = [];
  let padded = false;
  for await (const batch of l.epoch()) {
    assertConsistent(batch);
    seen.push(...batch.captionIndices);
    padded ||= batch.mask.some((m) => m === 0);
  }
  assert.deepEqual(seen.sort((a, b) => a - b), CAPTIONS.map((_, i) => i));
  assert.ok(padded, "some batch should mix lengths");
});

test("state() / setState() resume the exact batches, crops included", async () => {
  const l = loader({ source: fakeSource(() => 1).source, mode: "padded" });
  await take(l, 5);
  const saved = JSON.parse(JSON.stringify(l.state()));
  const expected = await take(l, 6);
  const resumed = loader({ source: fakeSource(() => 2).source, mode: "padded", seed: 1234 });
  await take(resumed, 2); // its own prefetched batches are dropped by setState
  resumed.setState(saved);
  assert.deepEqual(await take(resumed, 6), expected);
});

test("an unreadable image fails its batch with the source's error", async () => {
  const l = loader({ source: fakeSource(() => 0, new Set([100, 101, 102, 103])).source, mode: "padded", batchSize: 36 });
  await assert.rejects(l.next(), ImageError);
  const broken: ImageSource = async () => {
    throw new Error("feature cache is missing image 3");
  };
  await assert.rejects(loader({ source: broken }).next(), /feature cache is missing/);
  assert.throws(() => loader({ source: broken, prefetch: Infinity }), /prefetch must be an integer ≥ 0, got Infinity/);
  const wrongSize: ImageSource = async () => new Float32Array(3);
  await assert.rejects(loader({ source: wrongSize }).next(), /gave 3 values for image \d+, expected 2/);
});

test("a vocabulary that does not return [START, ..., END] is refused, naming the caption", () => {
  const vocab = { encode: (c: string) => c.split(" ").map(() => 5) };
  assert.throws(
    () => new CaptionLoader({ captions: CAPTIONS, vocab, source: fakeSource(() => 0).source, imageShape: [2], batchSize: 4, seed: 0 }),
    /must return \[START=0, \.\.\., END=1\]; caption 0 \(image 100\) "a cat"/,
  );
});

test("images mode: each image once per pass, in order; captionsPerImage sets the rows", async () => {
  const { source, stats } = fakeSource(() => 1);
  const one = loader({ source, mode: "images", batchSize: 5 });
  assert.equal(one.batchesPerEpoch, 3);
  const batches = [];
  for await (const batch of one.epoch()) batches.push(batch);
  await sleep(20);
  assert.equal(stats.calls, 12, "reading ahead stops at the end of the pass");
  assert.deepEqual((await one.next()).imageIds, [100, 101, 102, 103, 104], "then the next pass starts over");
  assert.deepEqual(batches.flatMap((b) => b.imageIds), Array.from({ length: 12 }, (_, i) => 100 + i));
  assert.deepEqual(batches[0].captionIndices, [0, 3, 6, 9, 12], "each image's first caption");
  batches.forEach(assertConsistent);

  const counted = fakeSource(() => 1);
  const all = await loader({ source: counted.source, mode: "images", batchSize: 2, captionsPerImage: Infinity, prefetch: 0 }).next();
  assert.equal(counted.stats.calls, 2, "each image is read once, not once per caption");
  assert.deepEqual(all.imageIds, [100, 100, 100, 101, 101, 101]);
  assertConsistent(all);

  const test = await loader({ source, captions: [], mode: "images", imageIds: [7, 8, 9], captionsPerImage: 0 }).next();
  assert.deepEqual([test.imageIds, test.captionIndices, test.time, test.tokens.length], [[7, 8, 9], [-1, -1, -1], 0, 0]);
});

test("real COCO photos and the real Vocabulary, images mode; a missing file fails the batch, naming it", { skip: skipCoco }, async () => {
  const annotations = JSON.parse(fs.readFileSync(path.join(SAMPLE, "annotations/captions_val2014_sample.json"), "utf8"));
  const files = new Map<number, string>(
    annotations.images.map((im: { id: number; file_name: string }) => [im.id, path.join(SAMPLE, "images/val2014", im.file_name)]),
  );
  const captions: CaptionPair[] = annotations.annotations.map((a: { image_id: number; caption: string }) => ({
    imageId: a.image_id,
    caption: a.caption,
  }));
  const config = trainTransform({ resize: 72, crop: 64 });
  const vocab = Vocabulary.build(captions.map((c) => c.caption), { threshold: 1 });
  const options = { captions, vocab, imageShape: [64, 64, 3], batchSize: 60, seed: 3, mode: "images" as const };
  const l = new CaptionLoader({ ...options, source: transformSource((id) => files.get(id)!, config) });
  const batch = await l.next();
  assert.deepEqual(batch.imageShape, [60, 64, 64, 3]);
  assert.ok(batch.images.every(Number.isFinite));
  // The real Vocabulary plugs in: row 0 reads back as its caption.
  const row = batch.tokens.subarray(0, batch.time);
  assert.equal(vocab.clean(row), vocab.clean(vocab.encode(captions[batch.captionIndices[0]].caption)));
  assert.ok(vocab.clean(row).split(" ").length >= 5);
  // Evaluation pixels never depend on the seed.
  const evalSource = transformSource((id) => files.get(id)!, evalTransform({ resize: 72, crop: 64 }));
  const id = captions[5].imageId;
  assert.deepEqual(await evalSource(id, new Random(1)), await evalSource(id, new Random(2)));
  const gone = path.join(SAMPLE, "images/val2014/does-not-exist.jpg");
  const broken = new CaptionLoader({ ...options, source: transformSource((i) => (i === captions[0].imageId ? gone : files.get(i)!), config) });
  await assert.rejects(broken.next(), (error: unknown) => error instanceof ImageError && error.message.includes(gone));
});
