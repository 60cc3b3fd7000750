/**
 * Choosing the compute backend: tfjs-node-gpu, then tfjs-node, then wasm, then cpu.
 *
 * The native backends are optional packages (tfjs-node-gpu needs CUDA and cannot be
 * installed offline), so they are required dynamically and their absence is a reason,
 * not an error. The environment variable CAPTIONER_BACKEND forces one kind; then a kind
 * that cannot load is an error that says why. One line tells which backend runs and why
 * the faster ones were not taken. When wasm runs, the kernels that training needs and
 * wasm lacks, or runs slowly, are registered (lib/runtime/wasm-kernels.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { registerWasmKernels } from "./wasm-kernels";

/** The backends in order of preference, fastest first. */
export const BACKEND_KINDS = ["node-gpu", "node", "wasm", "cpu"] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

/** The environment variable that forces a backend kind. */
export const BACKEND_ENV = "CAPTIONER_BACKEND";

export interface BackendInfo {
  /** tf.getBackend(): "tensorflow" (both native kinds), "wasm" or "cpu". */
  name: string;
  kind: BackendKind;
  /** Why this backend: what it is, and why each faster one was not taken. */
  reason: string;
}

export interface InitBackendOptions {
  /** Use this kind or fail; overrides CAPTIONER_BACKEND. */
  force?: BackendKind;
  /** Receives the one line that names the backend (default: stderr, so stdout stays JSON-clean). */
  log?: (line: string) => void;
}

/** Whether a kind can load here, and if not, why. */
export interface BackendAvailability {
  available: boolean;
  /** Why it is not available; empty when it is. */
  why: string;
}

/** The npm package behind each kind (cpu comes with @tensorflow/tfjs). */
const PACKAGES: Record<BackendKind, string | null> = {
  "node-gpu": "@tensorflow/tfjs-node-gpu",
  node: "@tensorflow/tfjs-node",
  wasm: "@tensorflow/tfjs-backend-wasm",
  cpu: null,
};

/** The tf backend name each kind registers (both native packages register "tensorflow"). */
const TF_NAMES: Record<BackendKind, string> = {
  "node-gpu": "tensorflow",
  node: "tensorflow",
  wasm: "wasm",
  cpu: "cpu",
};

/**
 * Loads the package of `kind` (registering its backend with tf) and says whether that
 * worked. Cheap after the first call (require caches). It does not initialise the backend:
 * wasm compiles its module on first use, in initBackend.
 */
export function backendAvailability(kind: BackendKind): BackendAvailability {
  const pkg = PACKAGES[kind];
  if (pkg == null) return { available: true, why: "" };
  if (kind === "wasm" && typeof (globalThis as { WebAssembly?: unknown }).WebAssembly !== "object") {
    return { available: false, why: "this runtime has no WebAssembly" };
  }
  try {
    require(pkg); // dynamic on purpose: the native packages are optional
  } catch (err) {
    return { available: false, why: describeLoadError(pkg, err) };
  }
  if (tf.findBackendFactory(TF_NAMES[kind]) == null) {
    // The package loaded its own copy of @tensorflow/tfjs-core and registered there.
    return { available: false, why: `${pkg} loaded but registered no '${TF_NAMES[kind]}' backend with this @tensorflow/tfjs (version mismatch?)` };
  }
  return { available: true, why: "" };
}

/** "not installed" for a missing package, else the first line of the loader's error. */
function describeLoadError(pkg: string, err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = String(e?.message ?? err);
  if (e?.code === "MODULE_NOT_FOUND" && message.includes(`'${pkg}'`)) return `${shortName(pkg)} not installed`;
  return `${shortName(pkg)} failed to load: ${message.split("\n")[0]}`;
}

function shortName(pkg: string): string {
  return pkg.replace("@tensorflow/", "");
}

/** The kind forced by options or CAPTIONER_BACKEND, or null; an unknown value is an error. */
function forcedKind(opts: InitBackendOptions): { kind: BackendKind; by: string } | null {
  if (opts.force != null) return { kind: checkKind(opts.force, "initBackend({ force })"), by: "initBackend({ force })" };
  const env = process.env[BACKEND_ENV];
  if (env == null || env === "") return null;
  return { kind: checkKind(env, BACKEND_ENV), by: `${BACKEND_ENV}=${env}` };
}

function checkKind(value: string, where: string): BackendKind {
  if ((BACKEND_KINDS as readonly string[]).includes(value)) return value as BackendKind;
  throw new Error(`lib/runtime/backend.ts: ${where} is '${value}'; expected one of ${BACKEND_KINDS.join(", ")}`);
}

/** Makes `kind` the active tf backend; returns why not when it cannot. */
async function activate(kind: BackendKind): Promise<BackendAvailability> {
  const loaded = backendAvailability(kind);
  if (!loaded.available) return loaded;
  // setBackend logs the underlying error itself and resolves false.
  if (!(await tf.setBackend(TF_NAMES[kind]))) {
    return { available: false, why: `${shortName(PACKAGES[kind] ?? kind)} failed to initialise (see the warning above)` };
  }
  await tf.ready();
  if (kind === "wasm") registerWasmKernels();
  return { available: true, why: "" };
}

/** What runs, in words: "wasm (SIMD, 1 thread)", "tensorflow (tfjs-node-gpu, GPU)". */
async function describeActive(kind: BackendKind): Promise<string> {
  const name = tf.getBackend();
  if (kind === "wasm") {
    const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) ? "SIMD" : "no SIMD";
    const wasm = require(PACKAGES.wasm as string) as typeof import("@tensorflow/tfjs-backend-wasm");
    const threads = wasm.getThreadsCount();
    return `${name} (${simd}, ${threads} thread${threads === 1 ? "" : "s"})`;
  }
  if (kind === "node-gpu") {
    // tfjs-node's backend exposes whether TensorFlow found a CUDA device.
    const onGpu = (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
    return `${name} (tfjs-node-gpu, ${onGpu === false ? "NO GPU FOUND: TensorFlow runs on the CPU" : "GPU"})`;
  }
  if (kind === "node") return `${name} (tfjs-node, native TensorFlow on the CPU)`;
  return `${name} (pure JavaScript)`;
}

/** Picks the first kind that works; `skipped` collects why each faster one did not. */
async function selectBackend(opts: InitBackendOptions): Promise<BackendInfo> {
  const forced = forcedKind(opts);
  if (forced != null) {
    const result = await activate(forced.kind);
    if (!result.available) {
      throw new Error(`lib/runtime/backend.ts: backend '${forced.kind}' forced by ${forced.by} cannot run: ${result.why}`);
    }
    return { name: tf.getBackend(), kind: forced.kind, reason: `forced by ${forced.by}` };
  }
  const skipped: string[] = [];
  for (const kind of BACKEND_KINDS) {
    const result = await activate(kind);
    if (result.available) {
      const reason = skipped.length > 0 ? skipped.join("; ") : "the fastest kind";
      return { name: tf.getBackend(), kind, reason };
    }
    skipped.push(result.why);
  }
  throw new Error("lib/runtime/backend.ts: not even the cpu backend could be set"); // cpu always loads
}

/** One selection per request ("auto" or what forced which kind), shared by concurrent callers. */
const selections = new Map<string, Promise<BackendInfo>>();

/**
 * Chooses and activates the backend: tfjs-node-gpu > tfjs-node > wasm > cpu, unless
 * opts.force or CAPTIONER_BACKEND names one. Logs one line, e.g.
 *   "backend: wasm (SIMD, 1 thread) — tfjs-node-gpu not installed; tfjs-node not installed".
 * Idempotent: the same request again returns the same info without logging (and makes that
 * backend active again if something switched away from it in between).
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const forced = forcedKind(opts);
  const request = forced == null ? "auto" : `${forced.kind} by ${forced.by}`;
  let selection = selections.get(request);
  if (selection == null) {
    const log = opts.log ?? ((line: string) => process.stderr.write(line + "\n"));
    selection = selectBackend(opts).then(async (info) => {
      log(`backend: ${await describeActive(info.kind)} — ${info.reason}`);
      return info;
    });
    selections.set(request, selection);
    selection.catch(() => selections.delete(request)); // a failure may be retried
  }
  const info = await selection;
  if (tf.getBackend() !== info.name) await tf.setBackend(info.name);
  return info;
}
