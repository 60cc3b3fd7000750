/**
 * Quantised weights, for a model small enough to ship in git.
 *
 * The tfjs weights format can store a float32 tensor in fewer bytes and says how in the
 * manifest; tfjs turns it back into float32 when it loads (tf.io.decodeWeights), so a
 * quantised model loads like any other:
 *
 *   float16  2 bytes a value, ~3 significant digits
 *   uint8    1 byte a value: q = round((x − min) / scale), x ≈ q · scale + min, per tensor,
 *            with scale = (max − min) / 255, so the error is at most scale / 2
 *
 * What it costs in caption quality is measured, not assumed (models/flickr8k-mobilenet/README.md).
 */
import * as tf from "@tensorflow/tfjs";
import { toFloat16 } from "./float16";
import type { NamedTensor } from "./weights-io";

export type Quantization = "float32" | "float16" | "uint8";

/** The largest shard written: every file of a shipped model stays under 5 MB, friendly to git. */
export const MAX_SHARD_BYTES = 4 * 1024 * 1024;

/** Encodes float32 tensors as `quantization` says; other dtypes (int32 counters) are kept as they are. */
export async function encodeQuantized(
  tensors: NamedTensor[],
  quantization: Quantization,
): Promise<{ data: Uint8Array; specs: tf.io.WeightsManifestEntry[] }> {
  const parts: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  for (const { name, tensor } of tensors) {
    const values = await tensor.data();
    const spec: tf.io.WeightsManifestEntry = { name, shape: tensor.shape, dtype: tensor.dtype as "float32" };
    if (tensor.dtype !== "float32" || quantization === "float32") {
      parts.push(new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
    } else if (quantization === "float16") {
      const half = toFloat16(values as Float32Array);
      parts.push(new Uint8Array(half.buffer));
      spec.quantization = { dtype: "float16" };
    } else {
      const { bytes, min, scale } = toUint8(values as Float32Array);
      parts.push(bytes);
      spec.quantization = { dtype: "uint8", min, scale };
    }
    specs.push(spec);
  }
  return { data: Buffer.concat(parts), specs };
}

/** Affine uint8 of one tensor: q = round((x − min) / scale). A constant tensor gets scale 1. */
export function toUint8(values: Float32Array): { bytes: Uint8Array; min: number; scale: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!values.length) min = max = 0;
  const scale = max > min ? (max - min) / 255 : 1;
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) bytes[i] = Math.round((values[i] - min) / scale);
  return { bytes, min, scale };
}

/** Cuts `data` into shards of at most `maxBytes`, named `<prefix>1of3.bin`, ... */
export function shard(data: Uint8Array, prefix: string, maxBytes = MAX_SHARD_BYTES): { name: string; bytes: Uint8Array }[] {
  const count = Math.max(1, Math.ceil(data.length / maxBytes));
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}${i + 1}of${count}.bin`,
    bytes: data.subarray(i * maxBytes, Math.min(data.length, (i + 1) * maxBytes)),
  }));
}
