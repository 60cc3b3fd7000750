/**
 * The synthetic dataset: scenes, captions that are true of their image, COCO files,
 * determinism, and generate-only-when-missing.
 *
 * The caption checker below reads captions back through the contract that the scene
 * scorer relies on ("[size] colour shape", "<colour> background", plural only for
 * counting), independently of how describe.ts builds them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import {
  COLORS,
  SHAPES,
  SHAPE_PLURALS,
  SIZES,
  OBJECT_RADIUS,
  SYNTHETIC_MANIFEST_FILE,
  MAX_CAPTION_WORDS,
  MIN_CAPTION_WORDS,
  syntheticFileName,
  imageRandom,
  describeScene,
  ensureSyntheticDataset,
  generateSyntheticDataset,
  gridCell,
  relationHolds,
  syntheticSplitSizes,
  sampleScene,
  type Relation,
  type Scene,
  type SceneObject,
} from "../lib/data/synthetic";
import { SPLITS, type CocoCaptionsFile } from "../lib/data/synthetic/coco-format";

// ---------------------------------------------------------------- caption checker

interface Mention {
  start: number; // token index of the first word after the article (size or colour)
  end: number; // token index of the shape word
  color: string;
  shape: string;
  size?: string;
  count: number; // 1, or 2/3 for "two red circles"
}

const PLURAL_TO_SHAPE = new Map(Object.entries(SHAPE_PLURALS).map(([shape, plural]) => [plural, shape]));
const COUNTS: Record<string, number> = { two: 2, three: 3 };
const RELATION_WORDS: Array<[string[], Relation]> = [
  [["to", "the", "left", "of"], "left"],
  [["to", "the", "right", "of"], "right"],
  [["above"], "above"],
  [["below"], "below"],
];
const POSITION_WORDS: Array<[string[], (col: number, row: number) => boolean]> = [
  [["in", "the", "top", "left", "corner"], (c, r) => c === 0 && r === 0],
  [["in", "the", "top", "right", "corner"], (c, r) => c === 2 && r === 0],
  [["in", "the", "bottom", "left", "corner"], (c, r) => c === 0 && r === 2],
  [["in", "the", "bottom", "right", "corner"], (c, r) => c === 2 && r === 2],
  [["on", "the", "left", "side"], (c, r) => c === 0 && r === 1],
  [["on", "the", "right", "side"], (c, r) => c === 2 && r === 1],
  [["at", "the", "top"], (c, r) => c === 1 && r === 0],
  [["at", "the", "bottom"], (c, r) => c === 1 && r === 2],
  [["in", "the", "center"], (c, r) => c === 1 && r === 1],
];

const tokenize = (caption: string) => caption.toLowerCase().replace(/[:,]/g, " $& ").split(/\s+/).filter(Boolean);
const startsAt = (tokens: string[], i: number, words: string[]) => words.every((w, k) => tokens[i + k] === w);

function matches(object: SceneObject, m: Mention): boolean {
  return object.color === m.color && object.shape === m.shape && (m.size === undefined || object.size === m.size);
}

/** Every object mention of a caption, by the contract: [count] [size] colour shape. */
function mentions(tokens: string[]): Mention[] {
  const found: Mention[] = [];
  tokens.forEach((token, i) => {
    const plural = PLURAL_TO_SHAPE.get(token);
    const shape = plural ?? ((SHAPES as readonly string[]).includes(token) ? token : undefined);
    if (!shape) return;
    const color = tokens[i - 1];
    assert.ok((COLORS as readonly string[]).includes(color), `"${token}" is not preceded by a colour in "${tokens.join(" ")}"`);
    const size = (SIZES as readonly string[]).includes(tokens[i - 2]) ? tokens[i - 2] : undefined;
    const start = size ? i - 2 : i - 1;
    const count = plural ? COUNTS[tokens[start - 1]] : 1;
    assert.ok(count, `plural "${token}" without a count word in "${tokens.join(" ")}"`);
    found.push({ start, end: i, color, shape, size, count });
  });
  return found;
}

/** The cell (column, row) of the 3x3 grid that an object sits in. */
const cellOf = (o: SceneObject) => [Math.floor(o.x * 3), Math.floor(o.y * 3)] as const;

/** Asserts that a caption says only true things about the scene; returns its mentions. */
function checkCaption(caption: string, scene: Scene): Mention[] {
  const tokens = tokenize(caption);
  const where = `"${caption}" (scene ${JSON.stringify(scene)})`;
  const found = mentions(tokens);
  assert.ok(found.length > 0, `names no object: ${where}`);
  for (const m of found) {
    const matching = scene.objects.filter((o) => matches(o, m));
    if (m.count === 1) assert.ok(matching.length >= 1, `names a missing object: ${where}`);
    else assert.equal(scene.objects.filter((o) => o.color === m.color && o.shape === m.shape).length, m.count, `wrong count: ${where}`);
    if (m.count > 1) assert.equal(matching.length, m.count, `wrong size for a counted group: ${where}`);
  }
  tokens.forEach((token, i) => {
    if ((COLORS as readonly string[]).includes(token)) {
      const next = tokens[i + 1];
      assert.ok(next === "background" || SHAPES.some((s) => s === next || SHAPE_PLURALS[s] === next), `colour on a non-shape word "${next}": ${where}`);
      if (next === "background") assert.equal(token, scene.background, `wrong background: ${where}`);
    }
    if (["shapes", "objects"].includes(token) && COUNTS[tokens[i - 1]]) {
      assert.equal(COUNTS[tokens[i - 1]], scene.objects.length, `wrong object count: ${where}`);
    }
    if (["shape", "object"].includes(token)) assert.equal(scene.objects.length, 1, `"single" with several objects: ${where}`);
    for (const [words, relation] of RELATION_WORDS) {
      if (!startsAt(tokens, i, words)) continue;
      const before = found.find((m) => m.end === i - 1 || (m.end === i - 2 && tokens[i - 1] === "is"));
      const after = found.find((m) => m.start === i + words.length + 1);
      assert.ok(before && after, `relation without two objects: ${where}`);
      const holds = scene.objects.some((a) => scene.objects.some((b) => a !== b && matches(a, before) && matches(b, after) && relationHolds(a, b, relation)));
      assert.ok(holds, `false relation "${relation}": ${where}`);
    }
    for (const [words, inCell] of POSITION_WORDS) {
      if (!startsAt(tokens, i, words)) continue;
      const before = found.find((m) => m.end === i - 1);
      assert.ok(before, `position without an object: ${where}`);
      assert.ok(scene.objects.some((o) => matches(o, before) && inCell(...cellOf(o))), `false position: ${where}`);
    }
  });
  return found;
}

// ---------------------------------------------------------------- scenes and captions

function scenesAndCaptions(seed: number, n: number): Array<{ scene: Scene; captions: string[] }> {
  return Array.from({ length: n }, (_, k) => {
    const scene = sampleScene(imageRandom(seed, k + 1, "scene"), k + 1);
    return { scene, captions: describeScene(scene, imageRandom(seed, k + 1, "captions")) };
  });
}

test("gridCell: the column and row of the 3x3 grid that hold a centre, the far edge inside the last cell", () => {
  assert.deepEqual(gridCell({ x: 0.1, y: 0.1 }), { column: 0, row: 0 });
  assert.deepEqual(gridCell({ x: 0.5, y: 0.1 }), { column: 1, row: 0 });
  assert.deepEqual(gridCell({ x: 0.1, y: 0.5 }), { column: 0, row: 1 });
  assert.deepEqual(gridCell({ x: 0.9, y: 0.5 }), { column: 2, row: 1 });
  assert.deepEqual(gridCell({ x: 1, y: 1 }), { column: 2, row: 2 });
});

test("scenes: one to three objects, inside the image, not overlapping, colours distinct from the background", () => {
  const counts = [0, 0, 0, 0];
  for (const { scene } of scenesAndCaptions(3, 3000)) {
    counts[scene.objects.length]++;
    for (const [i, a] of scene.objects.entries()) {
      const r = OBJECT_RADIUS[a.size];
      assert.notEqual(a.color, scene.background);
      assert.ok(a.x - r >= 0 && a.x + r <= 1 && a.y - r >= 0 && a.y + r <= 1, `object outside the image: ${JSON.stringify(a)}`);
      for (const b of scene.objects.slice(i + 1)) {
        // Each shape lies inside the square of half-width r around its centre: the squares must not overlap.
        const apart = Math.abs(a.x - b.x) >= r + OBJECT_RADIUS[b.size] || Math.abs(a.y - b.y) >= r + OBJECT_RADIUS[b.size];
        assert.ok(apart, `overlapping objects in ${JSON.stringify(scene)}`);
      }
    }
  }
  assert.equal(counts[0], 0);
  for (const n of [1, 2, 3]) assert.ok(counts[n] > 800, `too few scenes with ${n} objects: ${counts}`);
});

test("captions: five distinct, 5-16 words, every statement true of the scene, every object named", () => {
  const vocabulary = new Set<string>();
  const relationsSeen = new Set<string>();
  let plurals = 0;
  for (const { scene, captions } of scenesAndCaptions(5, 2000)) {
    assert.equal(captions.length, 5);
    assert.equal(new Set(captions).size, 5, `repeated caption for ${JSON.stringify(scene)}`);
    const named = new Set<SceneObject>();
    for (const caption of captions) {
      const words = caption.split(" ").length;
      assert.ok(words >= MIN_CAPTION_WORDS && words <= MAX_CAPTION_WORDS, `${words} words: "${caption}"`);
      for (const m of checkCaption(caption, scene)) {
        scene.objects.filter((o) => matches(o, m)).forEach((o) => named.add(o));
        if (m.count > 1) plurals++;
      }
      tokenize(caption).forEach((t) => vocabulary.add(t));
      for (const [words, relation] of RELATION_WORDS) if (caption.includes(` ${words.join(" ")} `)) relationsSeen.add(relation);
    }
    assert.equal(named.size, scene.objects.length, `an object no caption names: ${JSON.stringify(scene)} ${JSON.stringify(captions)}`);
  }
  assert.ok(vocabulary.size < 100, `vocabulary of ${vocabulary.size} words`);
  assert.deepEqual([...relationsSeen].sort(), ["above", "below", "left", "right"]);
  assert.ok(plurals > 0, "no caption counts identical objects");
});

test("the caption checker rejects false captions", () => {
  const scene: Scene = {
    imageId: 1,
    background: "green",
    objects: [
      { shape: "circle", color: "red", size: "small", x: 0.17, y: 0.5 },
      { shape: "square", color: "blue", size: "large", x: 0.83, y: 0.5 },
    ],
  };
  checkCaption("a small red circle to the left of a blue square", scene);
  for (const bad of [
    "a red circle to the right of a blue square",
    "a large red circle on a green background",
    "a red star and a blue square on a green background",
    "a red circle and a blue square on a black background",
    "three shapes on a green background: a red circle and a blue square",
    "two red circles on a green background",
    "a red shape and a blue square",
    "a red circle above a blue square",
    "a red circle in the center",
  ]) {
    assert.throws(() => checkCaption(bad, scene), assert.AssertionError, `accepted "${bad}"`);
  }
});

// ---------------------------------------------------------------- the dataset on disk

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), "synthetic-test-"));
}

/** Every file under a root, relative path → bytes. */
async function readTree(root: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const relative of await fs.readdir(root, { recursive: true })) {
    const full = path.join(root, relative);
    if ((await fs.stat(full)).isFile()) files.set(relative, await fs.readFile(full));
  }
  return files;
}

const readJson = async (root: string, file: string) => JSON.parse(await fs.readFile(path.join(root, "annotations", file), "utf8"));

test("split sizes: explicit, or a total divided 80/10/10", () => {
  assert.deepEqual(syntheticSplitSizes({ images: 3000 }), { train: 2400, val: 300, test: 300 });
  assert.deepEqual(syntheticSplitSizes({ images: 7, fractions: { train: 0.5, val: 0.25, test: 0.25 } }), { train: 3, val: 2, test: 2 });
  assert.deepEqual(syntheticSplitSizes({ splits: { train: 5, val: 0, test: 1 }, images: 99 }), { train: 5, val: 0, test: 1 });
  assert.throws(() => syntheticSplitSizes({ images: 10, fractions: { train: 0.5, val: 0.1, test: 0.1 } }), /generate\.ts: fractions/);
  assert.throws(() => syntheticSplitSizes({ splits: { train: -1, val: 0, test: 1 } }), /splits\.train/);
});

test("same seed → byte-identical dataset; another seed → different images and captions", async () => {
  const dir = await tempDir();
  try {
    const splits = { train: 24, val: 8, test: 8 };
    await generateSyntheticDataset(path.join(dir, "a"), { seed: 7, splits, concurrency: 8 });
    await generateSyntheticDataset(path.join(dir, "b"), { seed: 7, splits, concurrency: 1 });
    await generateSyntheticDataset(path.join(dir, "c"), { seed: 8, splits });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((name) => readTree(path.join(dir, name))));
    assert.equal(a.size, 40 + 7 + 1, "40 images, 7 annotation files, the manifest");
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [file, bytes] of a) assert.ok(bytes.equals(b.get(file)!), `${file} differs between two runs with the same seed`);
    const img = "images/train2014/" + syntheticFileName("train", 1);
    assert.ok(!a.get(img)!.equals(c.get(img)!), "seed 8 drew the same first image as seed 7");
    const captions = "annotations/captions_train2014.json";
    assert.ok(!a.get(captions)!.equals(c.get(captions)!), "seed 8 wrote the same captions as seed 7");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("COCO format: files, fields, unique ids across splits, five captions per image, scenes, image sizes", async () => {
  const dir = await tempDir();
  try {
    const root = path.join(dir, "synthetic");
    const summary = await generateSyntheticDataset(root, { seed: 3, images: 50, imageSize: 64 });
    assert.deepEqual(summary.manifest.splits, { train: 40, val: 5, test: 5 });
    const imageIds = new Set<number>();
    const annotationIds = new Set<number>();
    for (const split of SPLITS) {
      const file: CocoCaptionsFile = await readJson(root, `captions_${split}2014.json`);
      assert.deepEqual(Object.keys(file), ["info", "licenses", "images", "annotations"]);
      assert.deepEqual(Object.keys(file.info), ["description", "url", "version", "year", "contributor", "date_created"]);
      assert.match(file.info.date_created, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      assert.equal(file.licenses[0].id, 1);
      assert.equal(file.images.length, summary.manifest.splits[split]);
      const { scenes }: { scenes: Scene[] } = await readJson(root, `scenes_${split}2014.json`);
      assert.deepEqual(scenes.map((s) => s.imageId), file.images.map((i) => i.id));
      for (const image of file.images) {
        assert.ok(Number.isInteger(image.id) && !imageIds.has(image.id), `image id ${image.id} repeated`);
        imageIds.add(image.id);
        assert.equal(image.file_name, syntheticFileName(split, image.id));
        assert.match(image.file_name, new RegExp(`^synthetic_${split}_\\d{6}\\.jpg$`));
        assert.equal(image.width, 64);
        assert.equal(image.height, 64);
        const captions = file.annotations!.filter((a) => a.image_id === image.id).map((a) => a.caption);
        assert.equal(new Set(captions).size, 5, `image ${image.id} has ${captions.length} captions`);
        const scene = scenes.find((s) => s.imageId === image.id)!;
        for (const caption of captions) checkCaption(caption, scene);
      }
      for (const a of file.annotations!) {
        assert.deepEqual(Object.keys(a), ["id", "image_id", "caption"]);
        assert.ok(!annotationIds.has(a.id), `annotation id ${a.id} repeated`);
        annotationIds.add(a.id);
      }
      // Decode a few images: real JPEGs of the stated size, RGB.
      for (const image of file.images.slice(0, 3)) {
        const meta = await sharp(path.join(root, "images", `${split}2014`, image.file_name)).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ["jpeg", 64, 64, 3]);
      }
    }
    const testInfo = await readJson(root, "image_info_test2014.json");
    assert.deepEqual(Object.keys(testInfo), ["info", "licenses", "images"]);
    assert.deepEqual(testInfo.images, (await readJson(root, "captions_test2014.json")).images);
    assert.equal(annotationIds.size, 250);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("ensureSyntheticDataset generates only when missing or made with other options", async () => {
  const dir = await tempDir();
  try {
    const root = path.join(dir, "synthetic");
    const options = { seed: 1, splits: { train: 6, val: 2, test: 2 } };
    assert.equal((await ensureSyntheticDataset(root, options)).generated, true);
    const manifestBefore = await fs.stat(path.join(root, SYNTHETIC_MANIFEST_FILE));
    assert.equal((await ensureSyntheticDataset(root, options)).generated, false);
    assert.equal((await fs.stat(path.join(root, SYNTHETIC_MANIFEST_FILE))).mtimeMs, manifestBefore.mtimeMs, "rewrote a matching dataset");
    const again = await ensureSyntheticDataset(root, { ...options, seed: 2 });
    assert.equal(again.generated, true);
    assert.equal(again.manifest.seed, 2);
    assert.deepEqual((await fs.readdir(dir)).sort(), ["synthetic"], "left temporary folders behind");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("an interrupted run leaves no dataset behind; a folder that is not a dataset is never overwritten", async () => {
  const dir = await tempDir();
  try {
    const root = path.join(dir, "synthetic");
    const interrupt = (done: number) => {
      if (done === 5) throw new Error("interrupted");
    };
    await assert.rejects(generateSyntheticDataset(root, { images: 20, onProgress: interrupt }), /interrupted/);
    assert.deepEqual(await fs.readdir(dir), [], "an interrupted run left files");

    const precious = path.join(dir, "precious");
    await fs.mkdir(precious);
    await fs.writeFile(path.join(precious, "notes.txt"), "keep me");
    await assert.rejects(generateSyntheticDataset(precious, { images: 3 }), /refusing to overwrite/);
    assert.equal(await fs.readFile(path.join(precious, "notes.txt"), "utf8"), "keep me");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("speed: images per second (printed, loosely bounded)", async () => {
  const dir = await tempDir();
  try {
    const summary = await generateSyntheticDataset(path.join(dir, "synthetic"), { images: 300 });
    console.log(`synthetic generator: ${summary.images} images in ${summary.seconds.toFixed(2)} s = ${summary.imagesPerSecond.toFixed(0)} images/s`);
    // "Thousands of images per minute" is 17+ images/s; the bound is loose because the test machine is shared.
    assert.ok(summary.imagesPerSecond > 17, `only ${summary.imagesPerSecond.toFixed(1)} images/s`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
