import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { Random } from "../lib/data/random";
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  ImageError,
  evalTransform,
  readRGB,
  thumbnail,
  trainTransform,
  transformImage,
  transformSource,
} from "../lib/data/transforms";

const COCO_IMAGES = path.resolve(__dirname, "../../shared/coco-sample/images/val2014");
const GRAYSCALE_COCO = "COCO_val2014_000000431848.jpg";
const haveCoco = fs.existsSync(COCO_IMAGES);
const skipCoco = haveCoco ? undefined : "../shared/coco-sample not found";

let dir = "";
const file = (name: string) => path.join(dir, name);

/** A width×height image filled with one colour (3 channels, or 4 with alpha). */
function flat(width: number, height: number, rgb: [number, number, number], alpha?: number) {
  const channels = alpha === undefined ? 3 : 4;
  const background = { r: rgb[0], g: rgb[1], b: rgb[2], alpha: alpha ?? 1 };
  return sharp({ create: { width, height, channels, background } });
}

/** Raw 8-bit pixels → sharp, for images drawn pixel by pixel. */
function fromPixels(width: number, height: number, channels: 3 | 4, pixel: (x: number, y: number) => number[]) {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * channels);
  }
  return sharp(data, { raw: { width, height, channels } });
}

/** The RGB value at (x, y) of a decoded image. */
function rgbAt(image: { data: Uint8Array; width: number }, x: number, y: number): number[] {
  const i = (y * image.width + x) * 3;
  return [image.data[i], image.data[i + 1], image.data[i + 2]];
}

/** Undoes the ImageNet normalisation of one output value of channel c → 0..255. */
const level = (value: number, c: number) => (value * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "transforms-test-"));
  await flat(40, 30, [100, 100, 100]).toColourspace("b-w").png().toFile(file("gray.png"));
  await flat(40, 30, [255, 0, 0]).toColourspace("cmyk").jpeg().toFile(file("cmyk.jpg"));
  await flat(40, 30, [20, 120, 220]).toColourspace("rgb16").png().toFile(file("rgb16.png"));
  await flat(40, 30, [0, 200, 0]).webp({ lossless: true }).toFile(file("green.webp"));
  await flat(300, 260, [200, 100, 50]).png().toFile(file("flat.png"));
  await flat(5, 3, [10, 20, 30]).png().toFile(file("tiny.png"));
  // Left half opaque blue, right half fully transparent (red hidden under alpha 0).
  await fromPixels(40, 30, 4, (x) => (x < 20 ? [0, 0, 255, 255] : [255, 0, 0, 0])).png().toFile(file("rgba.png"));
  // Stored 60×40 with a red 10×10 marker at the stored top-left; EXIF orientation 6 says
  // "rotate 90° clockwise to display", so the marker belongs at the displayed top-right.
  await fromPixels(60, 40, 3, (x, y) => (x < 10 && y < 10 ? [255, 0, 0] : [0, 0, 255]))
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toFile(file("exif6.jpg"));
  // R = x, G = y: a pixel's colour says where it came from (no resize at resize = 256).
  await fromPixels(384, 256, 3, (x, y) => [x % 256, y, x >> 8]).png().toFile(file("coords.png"));
  // A horizontal gradient on a square image: crop = whole image, so only flips change it.
  await fromPixels(32, 32, 3, (x) => [x * 8, 0, 0]).png().toFile(file("gradient.png"));
  const jpeg = await flat(200, 150, [50, 60, 70]).jpeg().toBuffer();
  fs.writeFileSync(file("truncated.jpg"), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  fs.writeFileSync(file("garbage.jpg"), "this is not a JPEG");
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

test("grayscale PNG decodes to three equal channels", async () => {
  const image = await readRGB(file("gray.png"));
  assert.equal(image.data.length, 40 * 30 * 3);
  assert.deepEqual(rgbAt(image, 7, 9), [100, 100, 100]);
});

test("CMYK JPEG is converted to sRGB (red stays red)", async () => {
  const [r, g, b] = rgbAt(await readRGB(file("cmyk.jpg")), 20, 15);
  assert.ok(r > 200 && g < 60 && b < 60, `got [${r}, ${g}, ${b}]`);
});

test("16-bit PNG and lossless WebP decode to 8-bit RGB", async () => {
  assert.deepEqual(rgbAt(await readRGB(file("rgb16.png")), 3, 3), [20, 120, 220]);
  assert.deepEqual(rgbAt(await readRGB(file("green.webp")), 3, 3), [0, 200, 0]);
});

test("alpha is flattened onto white; opaque pixels keep their colour", async () => {
  const image = await readRGB(file("rgba.png"));
  assert.deepEqual(rgbAt(image, 5, 5), [0, 0, 255]);
  assert.deepEqual(rgbAt(image, 35, 5), [255, 255, 255]);
});

test("EXIF orientation 6 is applied: portrait, marker at the top-right", async () => {
  assert.equal((await sharp(file("exif6.jpg")).metadata()).orientation, 6);
  const image = await readRGB(file("exif6.jpg"));
  assert.deepEqual([image.width, image.height], [40, 60]);
  const [r, , b] = rgbAt(image, 35, 4);
  assert.ok(r > 200 && b < 60, `top-right should be the red marker, got ${rgbAt(image, 35, 4)}`);
  assert.ok(rgbAt(image, 4, 4)[2] > 200, "top-left should be blue");
  const thumb = await sharp(await thumbnail(file("exif6.jpg"), 30)).metadata();
  assert.deepEqual([thumb.width, thumb.height], [20, 30]);
});

test("normalisation of a flat colour gives (v/255 - mean) / std everywhere", async () => {
  const out = await transformImage(file("flat.png"), evalTransform());
  assert.equal(out.length, 224 * 224 * 3);
  const expected = [200, 100, 50].map((v, c) => (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
  for (let i = 0; i < out.length; i += 997) {
    assert.ok(Math.abs(out[i] - expected[i % 3]) < 1e-5, `value ${i}: ${out[i]} vs ${expected[i % 3]}`);
  }
});

test("custom mean/std are applied per channel", async () => {
  const out = await transformImage(file("flat.png"), evalTransform({ resize: 8, crop: 8, mean: [0, 0, 0], std: [1, 0.5, 2] }));
  assert.equal(out.length, 8 * 8 * 3);
  const expected = [200 / 255, 100 / 255 / 0.5, 50 / 255 / 2];
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(out[c] - expected[c]) < 1e-6);
});

test("eval transform is deterministic and cuts the centre of the resized image", async () => {
  const config = evalTransform();
  const a = await transformImage(file("coords.png"), config);
  const b = await transformImage(file("coords.png"), config);
  assert.deepEqual(a, b);
  // 384×256 → left (384-224)/2 = 80, top (256-224)/2 = 16.
  assert.equal(Math.round(level(a[0], 0)), 80);
  assert.equal(Math.round(level(a[1], 1)), 16);
});

test("train transform: same seed → same crop; crops vary with the seed and stay inside the image", async () => {
  const config = trainTransform({ flip: false });
  const first = await transformImage(file("coords.png"), config, new Random(1));
  assert.deepEqual(await transformImage(file("coords.png"), config, new Random(1)), first);
  const seen = new Set<string>();
  for (let seed = 0; seed < 12; seed++) {
    const out = await transformImage(file("coords.png"), config, new Random(seed));
    const left = Math.round(level(out[0], 0) + 256 * level(out[2], 2));
    const top = Math.round(level(out[1], 1));
    assert.ok(left >= 0 && left <= 384 - 224 && top >= 0 && top <= 256 - 224, `crop at (${left}, ${top})`);
    // The pixel one step right of the corner comes from one column further right: no flip.
    assert.equal(Math.round(level(out[3], 0) + 256 * level(out[5], 2)), left + 1);
    seen.add(`${left},${top}`);
  }
  assert.ok(seen.size >= 8, `only ${seen.size} distinct crops in 12 seeds`);
  await assert.rejects(transformImage(file("coords.png"), config), /needs a Random/);
});

test("flip mirrors left-right about half the time, and never when flip is off", async () => {
  const config = trainTransform({ resize: 32, crop: 32, mean: [0, 0, 0], std: [1, 1, 1] });
  const red = (out: Float32Array, x: number) => Math.round(out[x * 3] * 255);
  let flipped = 0;
  for (let seed = 0; seed < 20; seed++) {
    const out = await transformImage(file("gradient.png"), config, new Random(seed));
    const [left, right] = [red(out, 0), red(out, 31)];
    assert.ok((left === 0 && right === 248) || (left === 248 && right === 0), `row 0 runs ${left}..${right}`);
    if (left === 248) flipped++;
    const plain = await transformImage(file("gradient.png"), { ...config, flip: false }, new Random(seed));
    assert.equal(red(plain, 0), 0);
  }
  assert.ok(flipped >= 4 && flipped <= 16, `${flipped} of 20 flipped`);
});

test("an image smaller than the crop is enlarged", async () => {
  const out = await transformImage(file("tiny.png"), trainTransform(), new Random(0));
  assert.equal(out.length, 224 * 224 * 3);
  assert.ok(Math.abs(level(out[0], 0) - 10) < 1.5 && Math.abs(level(out[2], 2) - 30) < 1.5);
});

test("corrupt, truncated, non-image and missing files raise ImageError naming the file", async () => {
  const cases: [string, RegExp][] = [
    ["truncated.jpg", /corrupt or truncated.*premature end/],
    ["garbage.jpg", /not an image/],
    ["missing.jpg", /file not found/],
  ];
  for (const [name, reason] of cases) {
    await assert.rejects(transformImage(file(name), evalTransform()), (err: unknown) => {
      assert.ok(err instanceof ImageError, `${name}: ${err}`);
      assert.equal(err.file, file(name));
      assert.match(err.reason, reason);
      assert.ok(err.message.includes(file(name)));
      return true;
    });
  }
  await assert.rejects(thumbnail(file("truncated.jpg"), 64), ImageError);
});

test("failing decodes at the same time each get their own reason (libvips shares one error buffer)", async () => {
  // 40 at once, as the caption CLI decodes. sharp told a missing file by the end of libvips's shared
  // error buffer, and once (in CI) read one as "not an image" while a truncated file failed beside it.
  const names = Array.from({ length: 20 }, (_, i) => [`missing-${i}.jpg`, "truncated.jpg", "garbage.jpg"][i % 3]);
  const reasons = await Promise.all(
    [...names, ...names].map((name) => transformImage(file(name), evalTransform()).then(() => "decoded", (err: ImageError) => err.reason)),
  );
  reasons.forEach((reason, i) => {
    const name = names[i % names.length];
    const expected = name.startsWith("missing") ? /^file not found$/ : name === "garbage.jpg" ? /^not an image/ : /^corrupt or truncated/;
    assert.match(reason, expected, name);
  });
});

test("invalid transform settings are refused with the field named", () => {
  assert.throws(() => evalTransform({ crop: 300 }), /crop \(300\) must not exceed resize \(256\)/);
  assert.throws(() => trainTransform({ std: [1, 0, 1] }), /std must be 3 positive numbers/);
  assert.throws(() => evalTransform({ resize: 0 }), /resize must be a positive integer/);
});

test("thumbnail gives PNG or JPEG bytes with the longer side = size", async () => {
  const png = await sharp(await thumbnail(file("coords.png"), 96, "png")).metadata();
  assert.deepEqual([png.format, png.width, png.height], ["png", 96, 64]);
  const jpeg = await sharp(await thumbnail(file("tiny.png"), 50)).metadata();
  assert.deepEqual([jpeg.format, jpeg.width, jpeg.height], ["jpeg", 50, 30]);
});

test("transformSource maps an image id to its file", async () => {
  const source = transformSource((id) => file(id === 1 ? "flat.png" : "missing.jpg"), evalTransform({ resize: 16, crop: 16 }));
  assert.equal((await source(1)).length, 16 * 16 * 3);
  await assert.rejects(source(2), ImageError);
});

test("all real COCO photos decode; the grayscale one gives equal channels", { skip: skipCoco }, async () => {
  const names = fs.readdirSync(COCO_IMAGES).filter((f) => f.endsWith(".jpg"));
  assert.equal(names.length, 60);
  assert.ok(names.includes(GRAYSCALE_COCO));
  const config = trainTransform();
  const lo = [0, 1, 2].map((c) => (0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c] - 1e-5);
  const hi = [0, 1, 2].map((c) => (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c] + 1e-5);
  for (const [i, name] of names.entries()) {
    const out = await transformImage(path.join(COCO_IMAGES, name), config, new Random(i));
    assert.equal(out.length, 224 * 224 * 3, name);
    for (let j = 0; j < out.length; j += 101) assert.ok(out[j] >= lo[j % 3] && out[j] <= hi[j % 3], `${name}[${j}] = ${out[j]}`);
  }
  assert.equal((await sharp(path.join(COCO_IMAGES, GRAYSCALE_COCO)).metadata()).channels, 1);
  const gray = await readRGB(path.join(COCO_IMAGES, GRAYSCALE_COCO), 256);
  assert.equal(Math.min(gray.width, gray.height), 256);
  for (let i = 0; i < gray.data.length; i += 3 * 37) {
    assert.ok(gray.data[i] === gray.data[i + 1] && gray.data[i] === gray.data[i + 2], `pixel ${i / 3} is not gray`);
  }
});
