/**
 * A fixed set of Node worker threads that each answer requests one at a time: the plumbing of
 * data-parallel training (lib/train/data-parallel.ts) and of feature extraction in workers
 * (lib/features/feature-workers.ts). Each worker runs its own copy of tfjs and its own wasm
 * backend (tfjs-backend-wasm runs one thread per instance in Node, tensorflow/tfjs#3830), so W
 * workers use W cores.
 *
 * A worker that dies (an uncaught error, an out-of-memory abort, `terminate()`) fails the request
 * it was answering, and every later one, with an error that names it: a caller awaiting a worker
 * never hangs.
 *
 * The protocol is small: the worker posts `{ ready: true }` once set up (or `{ failed }`), then
 * answers each `{ id, request }` with `{ id, result }` or `{ id, error }`. `serveRequests` below is
 * the worker side.
 */
import * as path from "node:path";
import { isMainThread, parentPort, Worker, workerData, type TransferListItem } from "node:worker_threads";
import * as os from "node:os";

/** The machine's cores, as `workers: "auto"` counts them. */
export function coreCount(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

/**
 * The file of a worker entry that sits beside the calling module: `name`.ts when the caller runs
 * from source (under tsx, whose loader the worker inherits through execArgv), `name`.js when it
 * runs compiled from lib/dist (the notebooks).
 */
export function workerEntry(callerFile: string, name: string): string {
  return path.join(path.dirname(callerFile), name + path.extname(callerFile));
}

/**
 * A worker running `file`. A .ts entry (the caller runs from source, under tsx) is loaded through
 * tsx's require hook: a worker does not inherit the loader that tsx's `--import` installed in the
 * main thread. A .js entry (compiled, lib/dist) runs directly.
 */
function startWorker(file: string, data: unknown): Worker {
  if (path.extname(file) !== ".ts") return new Worker(file, { workerData: data });
  const bootstrap = `require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(file)});`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

/** Thrown when a worker dies or fails to start; `worker` is its index. */
export class WorkerDiedError extends Error {
  constructor(
    message: string,
    readonly worker: number,
  ) {
    super(message);
    this.name = "WorkerDiedError";
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export interface WorkerPoolOptions {
  /** What the workers are for, for messages ("training step worker"). */
  label: string;
  /** Data each worker receives as `workerData` (SharedArrayBuffers are shared, not copied). */
  data: (index: number) => unknown;
}

export class WorkerPool {
  private readonly workers: Worker[];
  private readonly pending: Map<number, Pending>[];
  private readonly dead: (WorkerDiedError | null)[];
  private readonly ready: Promise<void>;
  private nextId = 1;
  private closing = false;

  constructor(
    file: string,
    readonly size: number,
    private readonly options: WorkerPoolOptions,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`worker-pool.ts: a pool needs at least one worker, got ${size}`);
    this.workers = [];
    this.pending = [];
    this.dead = [];
    const readies: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const worker = startWorker(file, { index: i, ...(options.data(i) as object) });
      this.workers.push(worker);
      this.pending.push(new Map());
      this.dead.push(null);
      readies.push(
        new Promise<void>((resolve, reject) => {
          const onReady = (message: { ready?: boolean; failed?: string }) => {
            if (message.ready) resolve();
            else if (message.failed) reject(new WorkerDiedError(`${this.name(i)} failed to start: ${message.failed}`, i));
            else return;
            worker.off("message", onReady);
          };
          worker.on("message", onReady);
          worker.once("exit", () => reject(this.dead[i] ?? new WorkerDiedError(`${this.name(i)} exited while starting`, i)));
        }),
      );
      worker.on("message", (message: { id?: number; result?: unknown; error?: string }) => {
        if (message.id === undefined) return;
        const waiting = this.pending[i].get(message.id);
        if (!waiting) return;
        this.pending[i].delete(message.id);
        if (message.error !== undefined) waiting.reject(new Error(`${this.name(i)}: ${message.error}`));
        else waiting.resolve(message.result);
      });
      worker.on("error", (error) => this.fail(i, `${this.name(i)} died: ${error?.message ?? error}`));
      worker.on("exit", (code) => this.fail(i, `${this.name(i)} exited (code ${code})${this.closing ? " as the pool closed" : ""}`));
    }
    this.ready = Promise.all(readies).then(() => undefined);
    this.ready.catch(() => {}); // reported to whoever awaits started()
  }

  /** Resolves once every worker is set up; rejects if one fails to. */
  started(): Promise<void> {
    return this.ready;
  }

  /** Sends `request` to worker `index`; resolves with its result. */
  call<T>(index: number, request: unknown, transfer: TransferListItem[] = []): Promise<T> {
    const dead = this.dead[index];
    if (dead) return Promise.reject(dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending[index].set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.workers[index].postMessage({ id, request }, transfer);
    });
  }

  /** Stops worker `index` as if it had crashed (for tests of what a dead worker does). */
  async kill(index: number): Promise<void> {
    await this.workers[index].terminate();
  }

  /** Stops every worker. Pending requests fail. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private name(i: number): string {
    return `${this.options.label} ${i + 1} of ${this.size}`;
  }

  private fail(i: number, message: string): void {
    const error = (this.dead[i] ??= new WorkerDiedError(message, i));
    for (const waiting of this.pending[i].values()) waiting.reject(error);
    this.pending[i].clear();
  }
}

/**
 * The worker side: sets up with `init(workerData)`, says it is ready, then answers each request
 * with `handle(request)` in turn (one at a time: a request's promise settles before the next runs).
 */
export function serveRequests<S>(init: (data: unknown) => Promise<S>, handle: (state: S, request: unknown) => Promise<{ result: unknown; transfer?: TransferListItem[] }>): void {
  if (isMainThread || !parentPort) throw new Error("worker-pool.ts: serveRequests runs in a worker thread");
  const port = parentPort;
  let queue: Promise<unknown> = Promise.resolve();
  init(workerData).then(
    (state) => {
      port.on("message", (message: { id: number; request: unknown }) => {
        queue = queue.then(async () => {
          try {
            const { result, transfer } = await handle(state, message.request);
            port.postMessage({ id: message.id, result }, transfer ?? []);
          } catch (error) {
            port.postMessage({ id: message.id, error: error instanceof Error ? error.stack ?? error.message : String(error) });
          }
        });
      });
      port.postMessage({ ready: true });
    },
    (error) => port.postMessage({ failed: error instanceof Error ? error.message : String(error) }),
  );
}
