/**
 * Tensors laid end to end in one SharedArrayBuffer: how the data-parallel step
 * (lib/train/data-parallel.ts) hands the decoder's weights to its workers, and how each worker hands its
 * gradients back, without copying them through messages.
 */
import * as tf from "@tensorflow/tfjs";

/** Where each tensor lies in the buffer, in float32 elements. */
export interface SharedLayout {
  entries: { name: string; shape: number[]; offset: number; size: number }[];
  /** Float32 elements in all. */
  length: number;
}

export function layoutOf(tensors: { name: string; shape: number[] }[]): SharedLayout {
  let offset = 0;
  const entries = tensors.map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const entry = { name, shape: [...shape], offset, size };
    offset += size;
    return entry;
  });
  return { entries, length: offset };
}

export function sharedBuffer(layout: SharedLayout): SharedArrayBuffer {
  return new SharedArrayBuffer(layout.length * Float32Array.BYTES_PER_ELEMENT);
}

/** Copies `tensors` (in layout order) into the buffer. */
export function writeShared(buffer: SharedArrayBuffer, layout: SharedLayout, tensors: tf.Tensor[]): void {
  const all = new Float32Array(buffer);
  layout.entries.forEach((entry, i) => {
    if (tensors[i].size !== entry.size) throw new Error(`shared-tensors.ts: ${entry.name} has ${entry.size} values, got a tensor of ${tensors[i].size}`);
    all.set(float32Values(tensors[i]), entry.offset);
  });
}

/**
 * A float32 tensor's values, on wasm as a view of the backend's heap rather than a copy:
 * `dataSync` allocates a new array, and for tens of megabytes (the decoder's weights) the fresh
 * allocation costs ~50 ms where copying the same bytes into an existing buffer takes ~1 ms
 * (measured on the development machine, 4.5 M floats). Read the view at once: the heap can move.
 */
function float32Values(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array }; dataIdMap?: { get(id: object): { memoryOffset: number } | undefined } };
  const entry = tf.getBackend() === "wasm" && t.dtype === "float32" ? backend.dataIdMap?.get(t.dataId) : undefined;
  if (entry && backend.wasm) return new Float32Array(backend.wasm.HEAPU8.buffer, entry.memoryOffset, t.size);
  return t.dataSync() as Float32Array;
}

/**
 * Entry `i` of the buffer as a new tensor. The values are copied into the backend (the wasm
 * backend copies into its heap; the cpu backend would keep the view itself, so it gets a copy).
 */
export function readShared(buffer: SharedArrayBuffer, layout: SharedLayout, i: number): tf.Tensor {
  const { offset, size, shape } = layout.entries[i];
  const view = new Float32Array(buffer, offset * Float32Array.BYTES_PER_ELEMENT, size);
  return tf.tensor(tf.getBackend() === "wasm" ? view : view.slice(), shape, "float32");
}
