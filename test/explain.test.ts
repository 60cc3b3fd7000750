/// <reference lib="dom" />
/**
 * Grad-CAM (lib/explain/): the map of a word lies where the part of the feature map that decides
 * it is; every backbone splits at its feature map without changing its features; maps go back
 * over the whole upright image (portrait, landscape, EXIF-rotated); and `npm run caption --
 * --explain` writes JSON of the documented shape and an HTML page that renders in Chromium.
 */
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { Captioner } from "../lib/inference/captioner";
import { SHIPPED_MODEL } from "../lib/inference/model-folder";
import { hasFeatureMap, PretrainedBackbone, ZERO_TO_ONE } from "../lib/model/backbone";
import { SmallCNN } from "../lib/model/small-cnn";
import { gradCamMaps } from "../lib/explain/grad-cam";
import { explainImage, uprightSize, type Explanation } from "../lib/explain/explain-image";
import { inputWindow, mapOverImage, massShare } from "../lib/explain/image-grid";
import { occlusionMaps } from "../lib/explain/occlusion";
import { transformImage } from "../lib/data/transforms";
import { geometryOf, samePadBefore } from "../lib/model/map-geometry";
import { explanationNames } from "../lib/explain/write-explanations";
import { main } from "../scripts/caption";
import { CHROMIUM, launchChromium } from "./helpers/render-check";

const PHOTOS = path.resolve(__dirname, "../notebooks/photos");
const PORTRAIT = path.join(PHOTOS, "COCO_val2014_000000199055.jpg"); // 480x640, the skateboarder
const LANDSCAPE = path.join(PHOTOS, "COCO_val2014_000000427034.jpg");
const GRAPH_MODEL = path.resolve(__dirname, "../../shared/models/mobilenet_v1_0.25_224/imagenet");
const noGraphModel = fs.existsSync(path.join(GRAPH_MODEL, "model.json")) ? false : `${GRAPH_MODEL} not found (../shared/models)`;
const noChromium = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (run scripts/setup.sh to install Debian's chromium)`;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "explain-"));

let shipped: Captioner;
before(async () => {
  await initBackend();
  shipped = await Captioner.load(SHIPPED_MODEL);
});

const argMax = (values: Float32Array) => values.reduce((best, v, i) => (v > values[best] ? i : best), 0);

test("a score's map peaks where the channels that raise it are, and is empty for a score that only falls", () => {
  // A 4x4 map with 3 channels: channel 0 fires at (1, 2), channel 1 at (3, 0), channel 2 everywhere.
  const a = tf.buffer([1, 4, 4, 3]);
  a.set(1, 0, 1, 2, 0);
  a.set(1, 0, 3, 0, 1);
  for (let i = 0; i < 16; i++) a.set(0.5, 0, Math.floor(i / 4), i % 4, 2);
  const featureMap = a.toTensor() as tf.Tensor4D;
  // Score 0 rises with channel 0, score 1 with channel 1, score 2 falls with channel 0; channel 2 plays no part.
  const score = (maps: tf.Tensor4D) => {
    const pooled = maps.mean([1, 2]) as tf.Tensor2D; // [3, channels]
    const weights = tf.tensor2d([[2, 0, 0], [0, 3, 0], [-1, 0, 0]]); // row t: the weights of score t
    return pooled.mul(weights).sum(1) as tf.Tensor1D;
  };
  const { maps, scores } = gradCamMaps(featureMap, 3, score);
  assert.deepEqual(Array.from(scores, (s) => Number(s.toFixed(4))), [0.125, 0.1875, -0.0625]);
  assert.equal(argMax(maps[0]), 1 * 4 + 2);
  assert.equal(argMax(maps[1]), 3 * 4 + 0);
  assert.equal(Math.max(...maps[0]), 1);
  assert.equal(maps[0][3 * 4 + 0], 0, "channel 1's place does not raise score 0");
  assert.ok(maps[2].every((v) => v === 0), "a score that only falls with the image has no positive evidence");
  featureMap.dispose();
});

test("the shipped model's \"dog\" lies on the dog: Grad-CAM's mass and occlusion's drop, the dog photo left or right of a blank half", async () => {
  const dog = await sharp(LANDSCAPE).resize(224, 224, { fit: "cover" }).extract({ left: 56, top: 0, width: 112, height: 224 }).raw().toBuffer();
  const tokens = shipped.vocab.encode("a dog is laying on a bed").slice(1); // without <start>
  const at = tokens.indexOf(shipped.vocab.encode("dog")[1]);
  for (const dogLeft of [true, false]) {
    const file = path.join(TMP, `dog-${dogLeft ? "left" : "right"}.png`);
    await sharp({ create: { width: 224, height: 224, channels: 3, background: { r: 128, g: 128, b: 128 } } })
      .composite([{ input: dog, raw: { width: 112, height: 224, channels: 3 }, left: dogLeft ? 0 : 112, top: 0 }])
      .png()
      .toFile(file);
    const { maps } = await explainImage(shipped, file, { tokens, caption: "", logProb: 0 });
    const onDog = dogLeft ? massShare(maps[at], 0, 0.5) : massShare(maps[at], 0.5, 1);
    assert.ok(onDog > 0.7, `${file}: ${onDog.toFixed(2)} of the "dog" map on the dog's half`);
    const transform = shipped.transform(false);
    const pixels = tf.tensor4d(await transformImage(file, transform), [1, 224, 224, 3]);
    const [left, right] = occlusionMaps(shipped, pixels, tokens, [1, 2])[at];
    pixels.dispose();
    // Covering the dog lowers "dog" (the map's maximum, 1); covering the grey half with grey hardly does.
    const [onDogCell, onBlankCell] = dogLeft ? [left, right] : [right, left];
    assert.ok(onDogCell === 1 && onBlankCell < 0.05, `occlusion: ${onDogCell} on the dog, ${onBlankCell} on the blank half`);
  }
});

test("every backbone splits at its feature map: features = featuresOfMap(featureMap)", { skip: noGraphModel }, async () => {
  const images = tf.randomUniform([2, 224, 224, 3], -1, 1, "float32", 3) as tf.Tensor4D;
  const graph = await PretrainedBackbone.load({
    name: "v1_025_graph", source: GRAPH_MODEL, format: "graph", inputSize: 224, normalization: ZERO_TO_ONE,
    featureLayer: "module_apply_default/MobilenetV1/Logits/global_pool",
  });
  const small = new SmallCNN({ inputSize: 64, filters: [8, 8, 8, 8], seed: 2, name: "explain-test/cnn" });
  const smallImages = tf.randomNormal([2, 64, 64, 3], 0, 1, "float32", 4) as tf.Tensor4D;
  const cases = [
    { backbone: shipped.backbone, images, layer: "conv_pw_13_relu", shape: [2, 7, 7, 768] }, // folded layers model
    { backbone: graph, images, layer: "module_apply_default/MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6", shape: [2, 7, 7, 256] },
    { backbone: small, images: smallImages, layer: "explain-test/cnn/conv4/relu", shape: [2, 4, 4, 8] },
  ];
  for (const { backbone, images: x, layer, shape } of cases) {
    assert.ok(hasFeatureMap(backbone), backbone.name);
    assert.equal(backbone.mapLayer, layer);
    const map = backbone.featureMap(x);
    assert.deepEqual(map.shape, shape);
    const direct = backbone.features(x).arraySync() as number[][];
    const split = backbone.featuresOfMap(map).arraySync() as number[][];
    const worst = Math.max(...direct.flatMap((row, i) => row.map((v, j) => Math.abs(v - split[i][j]))));
    assert.ok(worst < 1e-5, `${backbone.name}: features differ by ${worst}`);
    map.dispose();
  }
  graph.dispose();
  small.dispose();
  tf.dispose([images, smallImages]);
});

test("the word maps' log-probabilities are the caption's: their sum is the beam's logProb", async () => {
  const [caption] = await shipped.captionFiles([LANDSCAPE], { beamSize: 3, alpha: 1 });
  const { explanation } = await explainImage(shipped, LANDSCAPE, caption);
  assert.equal(explanation.words.length, caption.tokens.length - 1); // all but <end>
  const sum = explanation.words.reduce((s, w) => s + w.logProb, 0);
  assert.ok(Math.abs(sum - caption.logProb) < 0.01, `${sum} vs ${caption.logProb}`);
});

test("the window the model sees: the centre square of the upright photo, whole for a square one", () => {
  const transform = { resize: 224, crop: 224 };
  // 640x480 is resized to 299x224 and cropped from x = 37: 79.3 of the photo's pixels.
  assert.deepEqual(inputWindow({ width: 640, height: 480 }, transform), { left: 37 / (224 / 480), top: 0, side: 480 });
  assert.deepEqual(inputWindow({ width: 480, height: 640 }, transform), { left: 0, top: 37 / (224 / 480), side: 480 });
  assert.deepEqual(inputWindow({ width: 300, height: 300 }, transform), { left: 0, top: 0, side: 300 });
  assert.deepEqual(inputWindow({ width: 640, height: 480 }, { resize: 256, crop: 224 }), { left: 58 / (256 / 480), top: 16 / (256 / 480), side: 224 / (256 / 480) });
});

test("the map's cells sit where the layers put them: half a cell off the even spread, for MobileNet and the small CNN", () => {
  assert.ok(hasFeatureMap(shipped.backbone));
  assert.deepEqual(shipped.backbone.mapGeometry, { offset: 31.5, stride: 32 }); // read from the Keras layers
  assert.deepEqual(new SmallCNN({ inputSize: 64, filters: [8, 8, 8, 8], name: "explain-test/geometry" }).mapGeometry, { offset: 15.5, stride: 16 });
  assert.deepEqual(geometryOf([{ kernel: 3, stride: 1, padBefore: 1 }]), { offset: 0.5, stride: 1 }); // "same", stride 1: no shift
  assert.equal(samePadBefore(64, 3, 2), 0);
  assert.equal(samePadBefore(7, 3, 1), 1);
});

test("a map goes back over the whole image in its own aspect ratio: a peak stays at its cell's place, unseen bands are 0", () => {
  const map = new Float32Array(7 * 7);
  map[1 * 7 + 5] = 1; // row 1, column 5: centred at (191.5, 63.5) of the model's 224 pixels
  const size = { width: 480, height: 640 }; // portrait: the model sees rows 80..560
  const window = inputWindow(size, { resize: 224, crop: 224 });
  const over = mapOverImage(map, [7, 7], size, window, { inputSize: 224, geometry: { offset: 31.5, stride: 32 } });
  const [rows, cols] = over.grid;
  assert.deepEqual(over.grid, [37, 28]); // 640/480 of 28 rows: not transposed, not squashed
  const peak = argMax(over.values);
  const [y, x] = [((Math.floor(peak / cols) + 0.5) * 640) / rows, ((peak % cols) + 0.5) * (480 / cols)];
  const expected = { x: (191.5 * window.side) / 224, y: window.top + (63.5 * window.side) / 224 };
  assert.ok(Math.abs(x - expected.x) < 480 / cols && Math.abs(y - expected.y) < 640 / rows, `peak at (${x}, ${y}), expected (${expected.x}, ${expected.y})`);
  const band = Array.from({ length: cols * 4 }, (_, k) => over.values[k]); // the top 4 rows: above the window
  assert.ok(band.every((v) => v === 0));
  assert.equal(Math.max(...over.values), 1);
});

test("an EXIF-rotated photo maps like the upright one: same grid, same maps", async () => {
  // Store the portrait photo lying on its side, with EXIF orientation 6 ("turn 90° clockwise to view").
  // Both lossless (PNG), so that they hold the same pixels, only stored differently.
  const rotated = path.join(TMP, "rotated.png");
  const upright = path.join(TMP, "upright.png");
  await sharp(PORTRAIT).rotate(-90).withMetadata({ orientation: 6 }).png().toFile(rotated);
  await sharp(PORTRAIT).png().toFile(upright);
  assert.deepEqual((await sharp(rotated).metadata()).width, 640); // stored landscape
  assert.deepEqual(await uprightSize(rotated), { width: 480, height: 640 });
  const [caption] = await shipped.captionFiles([upright]);
  const a = (await explainImage(shipped, upright, caption)).explanation;
  const b = (await explainImage(shipped, rotated, caption)).explanation;
  assert.deepEqual(b.grid, a.grid);
  assert.ok(a.grid[0] > a.grid[1], `portrait grid ${a.grid}`);
  // Not quite equal: sharp resizes before it rotates, and the model's pixels differ by rounding
  // (0.2 levels of 255 on average). A map turned upside down differs far more.
  const diff = a.words.map((w, i) => meanAbsDiff(w.map.flat(), b.words[i].map.flat()));
  const flipped = a.words.map((w) => meanAbsDiff(w.map.flat(), [...w.map].reverse().flat()));
  assert.ok(Math.max(...diff) < 0.05, `mean differences ${diff.map((d) => d.toFixed(3))}`);
  assert.ok(mean(diff) < mean(flipped) / 4, `${mean(diff)} against ${mean(flipped)} for a map upside down`);
});

const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;

function meanAbsDiff(a: number[], b: number[]): number {
  return a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
}

test("output names: a file's stem, with a visible suffix when two inputs share one", () => {
  assert.deepEqual(explanationNames(["a/dog.jpg", "b/dog.png", "c/Dog.jpg", "cat.jpg"]), ["dog", "dog-2", "Dog-3", "cat"]);
});

test("caption --explain writes, for each image, JSON of the documented shape and an HTML page that renders offline", { timeout: 120_000 }, async (t) => {
  const dir = path.join(TMP, "maps");
  const other = path.join(TMP, "other");
  fs.mkdirSync(other);
  const twin = path.join(other, path.basename(LANDSCAPE, ".jpg") + ".png"); // same stem as LANDSCAPE
  await sharp(LANDSCAPE).resize(200).png().toFile(twin);
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["--json", "--explain", dir, PORTRAIT, LANDSCAPE, twin, path.join(TMP, "missing.jpg")], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  });
  assert.equal(code, 1, "the missing file fails the run"); // and the others are still explained
  assert.ok(err.some((l) => l.includes("missing.jpg") && /file not found/.test(l)), err.join("\n"));
  const stem = path.basename(LANDSCAPE, ".jpg");
  assert.deepEqual(fs.readdirSync(dir).sort(), [`${stem}-2.html`, `${stem}-2.json`, `${stem}.html`, `${stem}.json`, "COCO_val2014_000000199055.html", "COCO_val2014_000000199055.json"].sort());
  assert.ok(err.some((l) => l.includes(`${stem}-2.json`)), "the clash is said");

  const printed = out.map((l) => JSON.parse(l) as { file: string; caption: string });
  for (const [file, name, size] of [[PORTRAIT, "COCO_val2014_000000199055", [480, 640]], [twin, `${stem}-2`, [200, 150]]] as const) {
    const json = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), "utf8")) as Explanation;
    assert.deepEqual(Object.keys(json), ["image", "caption", "grid", "words"]);
    assert.equal(json.image, file);
    assert.equal(json.caption, printed.find((p) => p.file === file)!.caption);
    const [rows, cols] = json.grid;
    assert.ok(Math.abs(rows / cols - size[1] / size[0]) < 0.06, `grid ${json.grid} for ${size}`);
    assert.ok(json.words.length > 2);
    const maxima = json.words.map((w) => {
      assert.deepEqual(Object.keys(w), ["word", "logProb", "map"]);
      assert.ok(w.logProb <= 0);
      assert.equal(w.map.length, rows);
      assert.ok(w.map.every((row) => row.length === cols && row.every((v) => v >= 0 && v <= 1)));
      return Math.max(...w.map.flat());
    });
    assert.ok(maxima.every((m) => m === 1 || m === 0), `maxima ${maxima}`);
    assert.ok(maxima.filter((m) => m === 1).length >= json.words.length / 2);
    assert.equal(json.words.map((w) => w.word).join(" ").replace(/ \./, "."), json.caption.replace(/ \./, "."));
  }

  await t.test("the HTML renders in Chromium: one decoded picture per word, nothing fetched", { skip: noChromium }, async () => {
    const html = path.join(dir, "COCO_val2014_000000199055.html");
    const json = JSON.parse(fs.readFileSync(html.replace(/html$/, "json"), "utf8")) as Explanation;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on("request", (r) => { if (!r.url().startsWith("data:") && !r.url().startsWith("file:")) requests.push(r.url()); });
      await page.goto(`file://${html}`, { waitUntil: "load" });
      const shown = await page.evaluate(() =>
        [...document.querySelectorAll("figure.word-map")].map((f) => ({
          word: f.querySelector("figcaption b")?.textContent ?? "",
          width: (f.querySelector("img") as HTMLImageElement).naturalWidth,
          height: (f.querySelector("img") as HTMLImageElement).naturalHeight,
        })),
      );
      assert.deepEqual(shown.map((s) => s.word), json.words.map((w) => w.word));
      assert.ok(shown.every((s) => s.width === 144 && s.height === 192), JSON.stringify(shown[0])); // portrait, not squashed
      assert.deepEqual(requests, []);
    } finally {
      await browser.close();
    }
  });
});
