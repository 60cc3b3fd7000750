/**
 * Grad-CAM (Selvaraju et al., ICCV 2017) for Show and Tell: where the model looked for each word.
 *
 * The decoder reads the image once, at step 0, as one vector; everything it says about the image
 * comes through the backbone's last convolutional feature map A ([rows, cols, channels]: 7x7x768
 * for MobileNet V1 0.75, 4x4x64 for the small CNN). For the word w_t of a caption, teacher-forced
 * on the caption's own prefix w_<t, Grad-CAM weighs A's channels by how much they raise the
 * word's log-probability:
 *
 *   g     = ∂ log p(w_t | image, w_<t) / ∂A              [rows, cols, channels]
 *   α_k   = mean over rows and columns of g[:, :, k]      one weight per channel
 *   map   = ReLU(Σ_k α_k A[:, :, k])                      [rows, cols], then divided by its maximum
 *
 * The ReLU keeps the places that speak *for* the word. The backbone runs forward to A once; the
 * rest of it (MobileNet's global average pool, the small CNN's flatten and max pool), the
 * encoder's linear layer and the whole decoder are in the gradient path. The words' gradients are
 * taken in one backward pass: A is repeated once per word, row t scores only word t, and the rows
 * do not interact (inference mode: batch norm on its running statistics), so the gradient of the
 * sum of the rows' scores with respect to row t of the repeated A is word t's own gradient.
 */
import * as tf from "@tensorflow/tfjs";
import type { Captioner } from "../inference/captioner";
import { hasFeatureMap, type MapBackbone } from "../model/backbone";
import { logSoftmax } from "../model/loss";
import { END, START } from "../data/vocabulary";
import type { MapPlacement } from "./image-grid";

/** One word's map over the feature grid. */
export interface WordMap {
  word: string;
  /** log p(word | image, the words before it): the same number greedy decoding added up. */
  logProb: number;
  /** [rows, cols] row-major from the top-left, ≥ 0, maximum 1; all 0 when no place raises the word. */
  map: Float32Array;
}

/** The maps of a caption's words, on the backbone's feature grid (the model's square input). */
export interface CaptionMaps {
  /** [rows, cols] of the feature map. */
  grid: [number, number];
  /** Where the grid lies on the model's input: its size and the cells' centres. */
  placement: MapPlacement;
  words: WordMap[];
}

/**
 * Grad-CAM maps of each of `count` scores: `featureMap` is A [1, rows, cols, channels]; `score`
 * takes A repeated [count, rows, cols, channels] and returns [count] scores, row t's depending on
 * row t of its input only. Returns each score's map (normalised to a maximum of 1) and its value.
 */
export function gradCamMaps(
  featureMap: tf.Tensor4D,
  count: number,
  score: (maps: tf.Tensor4D) => tf.Tensor1D,
): { maps: Float32Array[]; scores: Float32Array } {
  const [, rows, cols] = featureMap.shape;
  const [cams, scores] = tf.tidy(() => {
    const repeated = tf.tile(featureMap, [count, 1, 1, 1]) as tf.Tensor4D; // [count, rows, cols, channels]
    const { value, grad } = tf.valueAndGrad((a: tf.Tensor4D) => score(a).sum())(repeated);
    value.dispose();
    const alpha = grad.mean([1, 2], true); // [count, 1, 1, channels]: α_k per score
    const cam = tf.relu(featureMap.mul(alpha).sum(3)); // [count, rows, cols]
    return [cam, score(repeated)];
  });
  const values = cams.dataSync() as Float32Array;
  const cellCount = rows * cols;
  const maps = Array.from({ length: count }, (_, t) => normalised(values.slice(t * cellCount, (t + 1) * cellCount)));
  const result = { maps, scores: scores.dataSync() as Float32Array };
  tf.dispose([cams, scores]);
  return result;
}

/** Divides by the maximum (in place); an all-zero map stays zero. */
function normalised(map: Float32Array): Float32Array {
  const max = map.reduce((m, v) => Math.max(m, v), 0);
  if (max > 0) for (let i = 0; i < map.length; i++) map[i] /= max;
  return map;
}

/**
 * The Grad-CAM map of every word of a caption of one image.
 *
 *   pixels: [1, S, S, 3], the image as the model's evaluation transform gives it
 *   tokens: the caption's ids without <start> (as `Caption.tokens`); a final <end> is not explained
 */
export function captionMaps(model: Captioner, pixels: tf.Tensor4D, tokens: number[]): CaptionMaps {
  const backbone = mapBackbone(model);
  const words = tokens[tokens.length - 1] === END ? tokens.slice(0, -1) : tokens;
  const featureMap = backbone.featureMap(pixels); // [1, rows, cols, channels]
  const [, rows, cols] = featureMap.shape;
  const placement = { inputSize: backbone.inputSize, geometry: backbone.mapGeometry };
  try {
    if (words.length === 0) return { grid: [rows, cols], placement, words: [] };
    const { maps, scores } = gradCamMaps(featureMap, words.length, (a) => wordLogProbs(model, backbone, a, words));
    return {
      grid: [rows, cols],
      placement,
      words: words.map((id, t) => ({ word: model.vocab.wordOf(id), logProb: scores[t], map: maps[t] })),
    };
  } finally {
    featureMap.dispose();
  }
}

/** The backbone of `model`, if it has a feature map; an error saying why not otherwise. */
function mapBackbone(model: Captioner): MapBackbone {
  const { backbone } = model;
  if (!hasFeatureMap(backbone)) throw new Error(`Grad-CAM: backbone ${backbone.name} has no convolutional feature map`);
  return backbone;
}

/**
 * Row t of `maps` [words, rows, cols, channels] → log p(words[t] | image, words[<t]) [words]:
 * every row is teacher-forced on the whole caption; row t keeps the score of its word t only.
 */
function wordLogProbs(model: Captioner, backbone: MapBackbone, maps: tf.Tensor4D, words: number[]): tf.Tensor1D {
  const n = words.length;
  const embedding = model.encoder.embed(backbone.featuresOfMap(maps)); // [n, embed]
  const inputs = tf.tensor2d(Array.from({ length: n }, () => [START, ...words]), [n, n + 1], "int32") // [n, n + 1];
  const logits = model.decoder.forward(embedding, inputs); // [n, n, vocab]: row, step, word
  const vocab = logits.shape[2];
  const logProbs = logSoftmax(logits.reshape([n * n, vocab]) as tf.Tensor2D); // [n·n, vocab]
  // One entry per row: step t of row t, its word w_t.
  const pick = tf.buffer([n * n, vocab]);
  words.forEach((id, t) => pick.set(1, t * n + t, id));
  return logProbs.mul(pick.toTensor()).reshape([n, n * vocab]).sum(1) as tf.Tensor1D;
}
