/**
 * Occlusion sensitivity (Zeiler & Fergus, 2014), a model-agnostic check on Grad-CAM: cover one
 * part of the image at a time and see how much each word's log-probability falls, the caption's
 * own words fed before it (teacher forcing, as in grad-cam.ts). It needs no gradient and no
 * feature map, only forward passes, one per part: the parts are cells of a grid over the
 * model's square input, each filled with 0 (the normalised mean colour).
 *
 *   map[cell] = max(0, log p(w_t | image) − log p(w_t | image with the cell covered)), divided by its maximum
 */
import * as tf from "@tensorflow/tfjs";
import type { Captioner } from "../inference/captioner";
import { logSoftmax } from "../model/loss";
import { END, START } from "../data/vocabulary";

/** Each word's occlusion map over a [rows, cols] grid of the input, row-major, maximum 1 (all 0 when no cell lowers the word). */
export function occlusionMaps(model: Captioner, pixels: tf.Tensor4D, tokens: number[], [rows, cols]: [number, number]): Float32Array[] {
  const words = tokens[tokens.length - 1] === END ? tokens.slice(0, -1) : tokens;
  if (words.length === 0) return [];
  const images = tf.tidy(() => tf.concat([pixels, ...occluded(pixels, rows, cols)])); // [1 + cells, S, S, 3]
  const logProbs = tf.tidy(() => teacherForcedLogProbs(model, images, words));
  const values = logProbs.dataSync() as Float32Array; // [1 + cells, words]
  tf.dispose([images, logProbs]);
  const n = words.length;
  return words.map((_, t) => {
    const map = new Float32Array(rows * cols);
    for (let cell = 0; cell < rows * cols; cell++) map[cell] = Math.max(0, values[t] - values[(cell + 1) * n + t]);
    const max = map.reduce((m, v) => Math.max(m, v), 0);
    if (max > 0) for (let k = 0; k < map.length; k++) map[k] /= max;
    return map;
  });
}

/** One copy of `pixels` [1, S, S, 3] per cell of a rows x cols grid, that cell set to 0. */
function occluded(pixels: tf.Tensor4D, rows: number, cols: number): tf.Tensor4D[] {
  const [, size] = pixels.shape;
  const edge = (k: number, cells: number) => Math.round((k * size) / cells);
  const copies: tf.Tensor4D[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const mask = tf.buffer([1, size, size, 1]);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const inside = y >= edge(r, rows) && y < edge(r + 1, rows) && x >= edge(c, cols) && x < edge(c + 1, cols);
          mask.set(inside ? 0 : 1, 0, y, x, 0);
        }
      }
      copies.push(pixels.mul(mask.toTensor()));
    }
  }
  return copies;
}

/** log p(words[t] | image, words[<t]) for each image: [images, words]. */
function teacherForcedLogProbs(model: Captioner, images: tf.Tensor4D, words: number[]): tf.Tensor2D {
  const [batch] = images.shape;
  const n = words.length;
  const inputs = tf.tensor2d(Array.from({ length: batch }, () => [START, ...words]), [batch, n + 1], "int32");
  const logits = model.decoder.forward(model.embed(images), inputs); // [batch, n, vocab]
  const vocab = logits.shape[2];
  const logProbs = logSoftmax(logits.reshape([batch * n, vocab]) as tf.Tensor2D); // [batch·n, vocab]
  const ids = tf.tensor1d(Array.from({ length: batch * n }, (_, k) => words[k % n]), "int32");
  const picked = tf.sum(tf.mul(logProbs, tf.oneHot(ids, vocab)), 1); // [batch·n]
  return picked.reshape([batch, n]) as tf.Tensor2D;
}
