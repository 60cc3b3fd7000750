/**
 * What the wasm kernels of wasm-added-kernels.ts and wasm-replaced-kernels.ts share: the
 * arguments tfjs passes a kernel, and how one kernel calls another.
 *
 * Every kernel works on the wasm heap directly (inputs are wasm tensors; outputs are
 * allocated with backend.makeOutput) and frees its intermediates with backend.disposeData.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

export const WASM = "wasm";

/** A kernel's named inputs (tfjs types them as possibly undefined; ours are all given). */
export type Inputs = Record<string, tf.TensorInfo>;

/** The arguments tfjs passes to a kernel function, with the wasm backend's type. */
export interface WasmKernelArgs {
  inputs: Inputs;
  backend: BackendWasm;
  attrs: tf.NamedAttrMap;
}
export type WasmKernelFunc = (args: WasmKernelArgs) => tf.TensorInfo;

/** The kernel function that is registered now for `name` on wasm. */
export function registeredWasmKernel(name: string): WasmKernelFunc {
  const config = tf.getKernel(name, WASM);
  if (config == null) {
    throw new Error(
      `lib/runtime/wasm-kernel-calls.ts: kernel '${name}' is not registered for wasm; ` +
        `load @tensorflow/tfjs-backend-wasm before registerWasmKernels()`,
    );
  }
  return config.kernelFunc as unknown as WasmKernelFunc;
}

/** Runs the wasm kernel `name` from inside another kernel (no tape, no engine scope). */
export function run(
  name: string,
  backend: BackendWasm,
  inputs: Inputs,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  return registeredWasmKernel(name)({ inputs, backend, attrs });
}

export function reshape(backend: BackendWasm, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return run("Reshape", backend, { x }, { shape });
}

export function dispose(backend: BackendWasm, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}
