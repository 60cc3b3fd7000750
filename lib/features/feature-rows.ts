/**
 * One batch of a feature cache's rows: the frozen backbone on a batch of decoded images, its
 * features as float16 bytes, ready to append to features.f16. The main thread runs it with W = 1
 * (lib/features/feature-cache.ts), each extraction worker with W > 1 (feature-worker.ts): the
 * same function on the same batch, so the bytes are the same.
 */
import * as tf from "@tensorflow/tfjs";
import { toFloat16 } from "../io/float16";

/** The part of a backbone that extraction uses: [batch, size, size, 3] → [batch, featureDim]. */
export interface FeatureFunction {
  features(images: tf.Tensor4D): tf.Tensor2D;
}

/** `count` images of [size, size, 3] laid end to end: the backbone's input. */
export function packPixels(pixels: Float32Array[], count: number, size: number): Float32Array {
  const input = new Float32Array(count * size * size * 3);
  pixels.forEach((p, i) => input.set(p, i * p.length));
  return input;
}

/** Runs the backbone on one packed batch and returns its rows as float16 bytes. */
export async function computeRows(backbone: FeatureFunction, input: Float32Array, count: number, size: number): Promise<Uint8Array> {
  const features = tf.tidy(() => backbone.features(tf.tensor4d(input, [count, size, size, 3]))); // [batch, featureDim]
  const values = (await features.data()) as Float32Array;
  features.dispose();
  const half = toFloat16(values);
  return new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
}
