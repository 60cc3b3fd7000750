/**
 * The kernels that training this model needs on the wasm backend, registered with tfjs:
 *
 * - wasm-added-kernels.ts: the ones tfjs-backend-wasm 4.22 lacks (UnsortedSegmentSum, the
 *   convolution filter gradient, the depthwise convolution gradients);
 * - wasm-replaced-kernels.ts: the ones it runs pathologically slowly (transposed matMuls, the
 *   convolution input gradient, MaxPoolGrad, Tile, Slice, Unpack, SplitV) or wrongly (OneHot).
 *
 * A replacement keeps the original kernel, calls it for the cases it does not handle, and can be
 * undone (restoreOriginalWasmKernels) so that a benchmark measures before and after in one run
 * (npm run bench: `synthetic_step`, docs/performance.md#the-wasm-kernels).
 */
import * as tf from "@tensorflow/tfjs";
import { ADDED_KERNELS } from "./wasm-added-kernels";
import { registeredWasmKernel, WASM } from "./wasm-kernel-calls";
import { REPLACEMENTS } from "./wasm-replaced-kernels";

/**
 * A replacement made here keeps the kernel it replaces under this key, so that registering
 * twice never wraps a wrapper and the replacement can be undone. Symbol.for: shared by every
 * copy of this module (lib/ via tsx and lib/dist can both be loaded in one process).
 */
const ORIGINAL = Symbol.for("captioner.wasm-kernels.original");

/** Names of the kernels that registerWasmKernels adds to wasm. */
export const ADDED_WASM_KERNELS: readonly string[] = Object.keys(ADDED_KERNELS);
/** Names of the wasm kernels that registerWasmKernels replaces (by faster ones; OneHot by a correct one). */
export const REPLACED_WASM_KERNELS: readonly string[] = Object.keys(REPLACEMENTS);

/** The original of a replaced kernel function, or undefined for one not replaced here. */
function originalOf(kernelFunc: unknown): tf.KernelFunc | undefined {
  return (kernelFunc as { [ORIGINAL]?: tf.KernelFunc })[ORIGINAL];
}

/** Re-registers the wasm kernel `name` with another kernel function, keeping its hooks. */
function reregister(name: string, kernelFunc: tf.KernelFunc): void {
  const config = tf.getKernel(name, WASM);
  if (config == null) throw new Error(`lib/runtime/wasm-kernels.ts: kernel '${name}' is not registered for wasm`);
  tf.unregisterKernel(name, WASM);
  // setupFunc stays: the original's setup (a cwrap of the C++ function) serves its fallback.
  tf.registerKernel({ ...config, kernelFunc });
}

/**
 * Adds the missing kernels and replaces the slow ones on the wasm backend. Idempotent.
 * Needs @tensorflow/tfjs-backend-wasm loaded (its kernels registered); initBackend() calls
 * this when it picks wasm.
 */
export function registerWasmKernels(): void {
  for (const [name, kernelFunc] of Object.entries(ADDED_KERNELS)) {
    if (tf.getKernel(name, WASM) != null) continue;
    tf.registerKernel({ kernelName: name, backendName: WASM, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  for (const [name, makeReplacement] of Object.entries(REPLACEMENTS)) {
    const current = registeredWasmKernel(name);
    if (originalOf(current) != null) continue;
    const replacement = Object.assign(makeReplacement(current), { [ORIGINAL]: current });
    reregister(name, replacement as unknown as tf.KernelFunc);
  }
}

/** The replaced kernels whose replacement is registered now. */
export function replacedWasmKernels(): string[] {
  return REPLACED_WASM_KERNELS.filter((name) => originalOf(tf.getKernel(name, WASM)?.kernelFunc) != null);
}

/**
 * Puts the original wasm kernels back for `names` (default: all replaced ones); the added
 * kernels stay, since without them training fails. For benchmarks that measure a slow
 * kernel before and after in one run; registerWasmKernels() replaces them again.
 */
export function restoreOriginalWasmKernels(names: readonly string[] = REPLACED_WASM_KERNELS): void {
  for (const name of names) {
    const original = originalOf(tf.getKernel(name, WASM)?.kernelFunc);
    if (original != null) reregister(name, original);
  }
}
