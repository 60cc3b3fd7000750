/**
 * What the notebooks show besides charts: images at a size that keeps their pixels, what the
 * encoder sees, caption cards, the model's diagram, the settings table.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import sharp from "sharp";
import { CARD_IMAGE_BOX, cardsHtml } from "../lib/display/cards";
import { architectureSvg } from "../lib/display/diagram";
import { tableHtml } from "../lib/display/table";
import { displayImage, evalTransform, modelInputImage, transformImage } from "../lib/data/transforms";

let dir = "";
const file = (name: string) => path.join(dir, name);

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "display-test-"));
  // A 96×80 image, left half red, right half blue, and a 640×480 one.
  const pixels = Buffer.alloc(96 * 80 * 3);
  for (let i = 0; i < 96 * 80; i++) pixels.set((i % 96) < 48 ? [255, 0, 0] : [0, 0, 255], i * 3);
  await sharp(pixels, { raw: { width: 96, height: 80, channels: 3 } }).png().toFile(file("small.png"));
  await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 0, g: 128, b: 0 } } }).jpeg().toFile(file("large.jpg"));
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a small image keeps its pixels and is drawn at a whole multiple of its size, pixelated", async () => {
  const image = await displayImage(file("small.png"), 288);
  assert.deepEqual([image.mime, image.width, image.height, image.cssWidth, image.pixelated], ["image/png", 96, 80, 288, true]);
  const decoded = await sharp(image.bytes).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([decoded.info.width, decoded.info.height], [96, 80], "not resampled");
  assert.deepEqual([...decoded.data.subarray(0, 3)], [255, 0, 0]);
  const fits = await displayImage(file("small.png"), 150);
  assert.deepEqual([fits.cssWidth, fits.pixelated], [96, false], "1x when 2x does not fit");
});

test("a large image is scaled down to the box, not pixelated", async () => {
  const image = await displayImage(file("large.jpg"), 288);
  const meta = await sharp(image.bytes).metadata();
  assert.deepEqual([image.mime, meta.width, meta.height, image.cssWidth, image.pixelated], ["image/jpeg", 288, 216, 288, false]);
});

test("the encoder's input, mapped back to colours, is the image the transform made", async () => {
  const transform = evalTransform({ resize: 48, crop: 48 });
  const pixels = await transformImage(file("small.png"), transform);
  const image = await modelInputImage(pixels, transform, 192);
  assert.deepEqual([image.width, image.cssWidth, image.pixelated], [48, 192, true]);
  const { data } = await sharp(image.bytes).raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => [...data.subarray((y * 48 + x) * 3, (y * 48 + x) * 3 + 3)];
  assert.deepEqual(at(2, 10), [255, 0, 0]);
  assert.deepEqual(at(45, 10), [0, 0, 255]);
  await assert.rejects(modelInputImage(pixels.subarray(3), transform, 192), /not a 48x48x3 image/);
});

test("a caption card: pixelated image at its multiple, a title that cannot push the scores onto a line of their own, a marked fold", async () => {
  const image = await displayImage(file("small.png"), CARD_IMAGE_BOX);
  const html = cardsHtml([{
    title: "synthetic_test_000181.jpg", image, captions: { greedy: "a red square, a blue square" },
    references: ["a red and a blue square", "two squares"], scores: { CIDEr: 1.23456 }, note: "in the picture: two squares",
  }]);
  assert.match(html, new RegExp(`<img [^>]*width="${image.cssWidth}" style="image-rendering:pixelated;`));
  assert.match(html, /<span class="card-scores" style="white-space:nowrap">CIDEr 1\.235<\/span>/);
  assert.match(html, /text-overflow:ellipsis;white-space:nowrap">synthetic_test_000181\.jpg</);
  assert.match(html, /<summary style="display:list-item;[^"]*">2 reference captions<\/summary>/);
  assert.match(html, /a red square, a blue square/);
  assert.match(html, /in the picture: two squares/);
});

test("the diagram is drawn with the model's sizes and the example's words", () => {
  const svg = architectureSvg({ encoder: "small CNN", inputSize: 64, embedSize: 128, hiddenSize: 256, vocabSize: 56, words: ["a", "red", "circle", "<end>"] });
  assert.match(svg, /^<svg class="captioner-diagram"/);
  assert.equal(svg.match(/LSTM \[256\]/g)?.length, 5, "step 0 (the image) and one step per input token");
  assert.equal(svg.match(/linear \[56\]/g)?.length, 4, "every step but the image's is scored");
  assert.match(svg, /image vector \[128\]/);
  assert.match(svg, /image 64×64×3/);
  for (const word of ["&lt;start&gt;", ">a<", ">red<", ">circle<", "&lt;end&gt;"]) assert.ok(svg.includes(word), word);
});

test("tables right-align numbers and numerals, and left-align text", () => {
  const html = tableHtml([{ decoding: "greedy", CIDEr: 2.1 }]);
  assert.match(tableHtml([{ count: "12" }, { count: "3" }]), /<td style="padding:2px 10px;text-align:right">12</);
  assert.match(html, /<th style="padding:2px 10px;text-align:left">decoding<\/th><th style="padding:2px 10px;text-align:right">CIDEr/);
  assert.match(html, /<td style="padding:2px 10px;text-align:left">greedy<\/td><td style="padding:2px 10px;text-align:right">2\.100/);
});
