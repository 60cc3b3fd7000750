/**
 * Word maps as pictures: for each word of a caption, the photo with the word's map blended over
 * it (upsampled smoothly, one colour scale for all words: each map's maximum is 1), the word and
 * its probability above it. An HTML block for a notebook output, or a whole self-contained page
 * for `npm run caption -- --explain` (images embedded as data URIs: it opens offline).
 */
import sharp from "sharp";
import { ImageError, thumbnail, type DisplayImage } from "../data/transforms";
import { escapeHtml, imageHtml } from "../display/cards";
import { bilinear, type ImageMap } from "./image-grid";
import type { Explanation } from "./explain-image";

/** The colour scale, from 0 to 1: dark blue, blue, cyan, yellow, red (a "jet" scale, as the Grad-CAM paper shows). */
const SCALE: [number, number, number][] = [
  [0, 0, 128],
  [0, 64, 255],
  [0, 224, 255],
  [255, 230, 0],
  [230, 0, 0],
];

/** How much of the colour covers the photo. */
const OPACITY = 0.5;

/** One word's picture. */
export interface WordFigure {
  word: string;
  probability: number;
  image: DisplayImage;
}

/** The colour of the scale at `v` in [0, 1]. */
export function scaleColour(v: number): [number, number, number] {
  const x = Math.min(Math.max(v, 0), 1) * (SCALE.length - 1);
  const i = Math.min(Math.floor(x), SCALE.length - 2);
  const f = x - i;
  return [0, 1, 2].map((c) => SCALE[i][c] * (1 - f) + SCALE[i + 1][c] * f) as [number, number, number];
}

/** The photo `file`, upright and fitted in `box` CSS pixels, with each map blended over it: one figure per word. */
export async function wordFigures(file: string, words: { word: string; logProb: number }[], maps: ImageMap[], box = 192): Promise<WordFigure[]> {
  let photo: { data: Buffer; info: sharp.OutputInfo };
  try {
    photo = await sharp(await thumbnail(file, box, "png")).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw err instanceof ImageError ? err : new ImageError(file, (err as Error).message);
  }
  return Promise.all(words.map(async (w, i) => ({ word: w.word, probability: Math.exp(w.logProb), image: await blend(photo, maps[i]) })));
}

/** photo·(1 − OPACITY) + colour(map)·OPACITY, the map interpolated at every pixel; JPEG. */
async function blend(photo: { data: Buffer; info: sharp.OutputInfo }, map: ImageMap): Promise<DisplayImage> {
  const { width, height } = photo.info;
  const [rows, cols] = map.grid;
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const r = ((y + 0.5) / height) * rows - 0.5; // in the grid's cell-centre coordinates
    for (let x = 0; x < width; x++) {
      const colour = scaleColour(bilinear(map.values, rows, cols, r, ((x + 0.5) / width) * cols - 0.5));
      const at = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) out[at + c] = Math.round(photo.data[at + c] * (1 - OPACITY) + colour[c] * OPACITY);
    }
  }
  const bytes = await sharp(out, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
  return { bytes, mime: "image/jpeg", width, height, cssWidth: width, pixelated: false };
}

/** The figures in a row (wrapping), each word and its probability above its picture, and the colour scale. */
export function wordMapsHtml(figures: WordFigure[], title?: string): string {
  const items = figures.map(
    (f) =>
      `<figure class="captioner-figure word-map" style="margin:0;text-align:center">` +
      `<figcaption style="font:14px sans-serif;margin-bottom:3px"><b>${escapeHtml(f.word)}</b> ` +
      `<span style="color:#666">${f.probability.toFixed(2)}</span></figcaption>${imageHtml(f.image, f.word)}</figure>`,
  );
  const heading = title ? `<div style="font:14px sans-serif;margin:4px 0 6px">${escapeHtml(title)}</div>` : "";
  return `<div class="word-maps">${heading}<div style="display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end">${items.join("")}</div>${scaleHtml()}</div>`;
}

/** The colour scale as a bar: 0 (no contribution) to 1 (the word's strongest place). */
function scaleHtml(): string {
  const stops = SCALE.map(([r, g, b], i) => `rgb(${r},${g},${b}) ${((100 * i) / (SCALE.length - 1)).toFixed(0)}%`).join(",");
  return (
    `<div style="display:flex;align-items:center;gap:6px;font:12px sans-serif;color:#444;margin-top:6px">` +
    `<span>0</span><span style="display:inline-block;width:160px;height:10px;background:linear-gradient(to right,${stops})"></span>` +
    `<span>1 — where the word's score rises most (Grad-CAM; number above: the word's probability)</span></div>`
  );
}

/** A whole page for one image: its caption and the word maps. */
export function explanationPage(explanation: Explanation, figures: WordFigure[]): string {
  const title = `${explanation.image}: ${explanation.caption}`;
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body style="font:14px sans-serif;margin:16px">
<h3 style="margin:0 0 8px">${escapeHtml(explanation.caption)}</h3>
<div style="color:#666;margin-bottom:10px">${escapeHtml(explanation.image)} · where the model looked for each word</div>
${wordMapsHtml(figures)}
</body></html>
`;
}
