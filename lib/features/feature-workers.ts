/**
 * Feature extraction's CNN on W worker threads (feature-worker.ts), each with its own wasm
 * backend and its own copy of the backbone: W cores run the CNN while the main thread decodes
 * images (on sharp's own threads) and writes the rows.
 *
 * Batch b goes to worker b mod W, and the main thread writes the rows in batch order: each batch
 * is the one W = 1 computes, through the same function (feature-rows.ts), so the cache's bytes
 * do not depend on W.
 */
import type { BackendKind } from "../runtime/backend";
import { WorkerPool, workerEntry } from "../runtime/worker-pool";
import type { PretrainedBackbone } from "../model/backbone";
import type { FeatureRequest, FeatureWorkerData } from "./feature-worker";

export class FeatureWorkers {
  private constructor(private readonly pool: WorkerPool) {}

  /** Starts `count` workers, each loading `backbone` from its folder, and waits until they are set up. */
  static async start(count: number, backbone: PretrainedBackbone, backend: BackendKind): Promise<FeatureWorkers> {
    const data = (): FeatureWorkerData => ({ backend, spec: { ...backbone.spec, source: backbone.folder }, fingerprint: backbone.fingerprint });
    const pool = new WorkerPool(workerEntry(__filename, "feature-worker"), count, { label: "feature worker", data });
    try {
      await pool.started();
    } catch (error) {
      await pool.close();
      throw error;
    }
    return new FeatureWorkers(pool);
  }

  get size(): number {
    return this.pool.size;
  }

  /** Batch `b`'s rows (float16 bytes), computed by worker b mod W; `pixels` is handed over (transferred). */
  rows(b: number, pixels: Float32Array, count: number, size: number): Promise<Uint8Array> {
    const request: FeatureRequest = { pixels, count, size };
    return this.pool.call<Uint8Array>(b % this.pool.size, request, [pixels.buffer]);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
