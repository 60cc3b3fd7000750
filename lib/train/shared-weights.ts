/**
 * Tensors laid end to end in one SharedArrayBuffer: how the data-parallel step
 * (data-parallel.ts) hands the decoder's weights to its workers, and how each worker hands its
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
  layout.entries.forEach((entry, i) => all.set(tensors[i].dataSync() as Float32Array, entry.offset));
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
