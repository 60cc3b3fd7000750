/**
 * One image file, its caption, and each word's Grad-CAM map over the whole image as the user
 * gave it (upright by its EXIF orientation): what `npm run caption -- --explain` writes as JSON.
 *
 *   { "image": "photos/dog.jpg", "caption": "a dog runs through the grass .",
 *     "grid": [rows, cols],
 *     "words": [ { "word": "dog", "logProb": -0.41, "map": [[...cols numbers...], ...rows rows...] }, ... ] }
 */
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs";
import type { Captioner } from "../inference/captioner";
import type { Caption } from "../inference/greedy";
import { ImageError, transformImage } from "../data/transforms";
import { captionMaps } from "./grad-cam";
import { imageGrid, inputWindow, mapOverImage, type ImageMap, type ImageSize } from "./image-grid";

/** One word of the caption and its map over the image. */
export interface WordExplanation {
  word: string;
  logProb: number;
  /** [rows][cols] from the top-left, every value ≥ 0, the largest 1 (all 0 when no place raises the word). */
  map: number[][];
}

export interface Explanation {
  /** The path as given. */
  image: string;
  caption: string;
  /** [rows, cols] of every word's map; rows/cols follows the upright image's aspect ratio. */
  grid: [number, number];
  words: WordExplanation[];
}

/** The size of `file` once turned upright by its EXIF orientation; an ImageError naming it if it cannot be read. */
export async function uprightSize(file: string): Promise<ImageSize> {
  try {
    const { autoOrient } = await sharp(file).metadata();
    return { width: autoOrient.width, height: autoOrient.height };
  } catch (err) {
    throw new ImageError(file, `cannot read the image (${(err as Error).message})`);
  }
}

/** The maps of each word of `caption` (a caption of `file` by `model`) over the whole upright image. */
export async function explainImage(model: Captioner, file: string, caption: Caption): Promise<{ explanation: Explanation; maps: ImageMap[] }> {
  const transform = model.transform(false);
  const size = await uprightSize(file);
  const pixels = tf.tensor4d(await transformImage(file, transform), [1, transform.crop, transform.crop, 3]);
  const { words, grid, placement } = withDispose(pixels, () => captionMaps(model, pixels, caption.tokens));
  const window = inputWindow(size, transform);
  const maps = words.map((w) => mapOverImage(w.map, grid, size, window, placement));
  const explanation: Explanation = {
    image: file,
    caption: caption.caption,
    grid: imageGrid(grid, size, window),
    words: words.map((w, i) => ({ word: w.word, logProb: w.logProb, map: rowsOf(maps[i]) })),
  };
  return { explanation, maps };
}

/** `f()`, then `tensor` freed whatever happens. */
function withDispose<T>(tensor: tf.Tensor, f: () => T): T {
  try {
    return f();
  } finally {
    tensor.dispose();
  }
}

/** [rows][cols] nested arrays, values rounded to 4 decimals (the JSON stays small and readable). */
function rowsOf({ grid: [rows, cols], values }: ImageMap): number[][] {
  return Array.from({ length: rows }, (_, i) => Array.from(values.subarray(i * cols, (i + 1) * cols), (v) => Math.round(v * 1e4) / 1e4));
}
