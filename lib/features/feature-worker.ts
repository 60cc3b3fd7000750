/**
 * The entry of a feature-extraction worker (feature-workers.ts starts W of them): its own tfjs
 * with the project's backend set-up, its own copy of the backbone loaded from the same folder as
 * the main thread's, and a loop answering one batch at a time with the batch's rows.
 */
import { initBackend, type BackendKind } from "../runtime/backend";
import { serveRequests } from "../runtime/worker-pool";
import { PretrainedBackbone, type BackboneFingerprint, type BackboneSpec } from "../model/backbone";
import { computeRows } from "./feature-rows";

export interface FeatureWorkerData {
  backend: BackendKind;
  /** The main thread's backbone, its source the local folder it was loaded from. */
  spec: BackboneSpec;
  /** The main thread's fingerprint: a worker whose copy differs refuses to start. */
  fingerprint: BackboneFingerprint;
}

/** A batch: `count` decoded images of [size, size, 3], packed (feature-rows.ts, packPixels). */
export interface FeatureRequest {
  pixels: Float32Array;
  count: number;
  size: number;
}

serveRequests<PretrainedBackbone>(
  async (raw) => {
    const data = raw as FeatureWorkerData;
    await initBackend({ force: data.backend, log: () => {} });
    const backbone = await PretrainedBackbone.load(data.spec);
    if (JSON.stringify(backbone.fingerprint) !== JSON.stringify(data.fingerprint)) {
      throw new Error(`feature-worker.ts: the backbone loaded from ${data.spec.source} is not the main thread's (another fingerprint)`);
    }
    return backbone;
  },
  async (backbone, raw) => {
    const { pixels, count, size } = raw as FeatureRequest;
    const rows = await computeRows(backbone, pixels, count, size);
    return { result: rows, transfer: [rows.buffer] };
  },
);
