/**
 * Data-parallel training steps on W threads: the main one and W − 1 worker threads
 * (step-worker.ts), each with its own wasm backend, which runs one thread in Node
 * (tensorflow/tfjs#3830). With W = 1 training runs lib/model/train-step.ts's `trainStep` instead,
 * unchanged. One step:
 *
 *   1. main:    the encoder on the WHOLE batch (its batch norm needs the batch's statistics, so it
 *               is not sharded; with cached features it is one small linear layer + batch norm);
 *               the decoder's current weights into a SharedArrayBuffer
 *   2. shards:  the batch's rows split into W contiguous shards; shard 0 runs in the main thread,
 *               shard k in worker k: the decoder forward, the shard's share of the loss (divided by
 *               the WHOLE batch's token count), backward (lib/model/shard-step.ts). Each shard's
 *               dropout masks are the whole batch's rows, so every row is dropped as with W = 1.
 *   3. main:    the decoder gradients summed in shard order (0, 1, ..., W − 1: the same
 *               arithmetic on every run, so a run is bit-for-bit repeatable for a given W); the
 *               embedding rows' gradients carried back through the encoder (and the word-presence
 *               loss, which lives on the encoder side, added there); the global norm clipped over
 *               everything; Adam applied once.
 *
 * The result equals the single-thread step up to float rounding (sums in another order); a
 * different W changes the rounding, so a run resumed with another W is not bit-identical to one
 * that kept its W.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendKind } from "../runtime/backend";
import { coreCount, WorkerPool, workerEntry } from "../runtime/worker-pool";
import type { DecoderRNN } from "../model/decoder";
import { scoredTokenCount } from "../model/loss";
import { decoderShardGradients } from "../model/shard-step";
import { clipByGlobalNorm, type TrainStepParams } from "../model/train-step";
import { layoutOf, readShared, sharedBuffer, writeShared, type SharedLayout } from "../runtime/shared-tensors";
import type { CrossEntropyReply, CrossEntropyRequest, StepWorkerData } from "./step-worker";

/** The `workers` setting: a count, or "auto". */
export type WorkersSetting = "auto" | number;

/**
 * How many threads `workers` means on this backend: "auto" is the machine's cores on wasm and
 * cpu (one thread each), 1 on the native backends (TensorFlow has its own threads).
 */
export function resolveWorkers(setting: WorkersSetting, backend: BackendKind, cores = coreCount()): number {
  if (setting === "auto") return backend === "wasm" || backend === "cpu" ? Math.max(1, cores) : 1;
  return setting;
}

/** Rows [start, end) of each of W shards of `batch` rows: contiguous, sizes differing by at most 1. */
export function shardRanges(batch: number, shards: number): [number, number][] {
  const n = Math.min(shards, batch);
  const base = Math.floor(batch / n);
  const extra = batch % n;
  const ranges: [number, number][] = [];
  let start = 0;
  for (let k = 0; k < n; k++) {
    const end = start + base + (k < extra ? 1 : 0);
    ranges.push([start, end]);
    start = end;
  }
  return ranges;
}

/** What a data-parallel step needs beyond trainStep's parameters. */
export interface DataParallelStepParams extends TrainStepParams {
  /**
   * State the encoder updates in training (batch norm's running statistics): the encoder runs
   * twice per step here (forward, then again inside the gradient tape for the backward pass), and
   * this state is put back after the second run, so that it moves once a step, as with W = 1.
   */
  encoderState?: tf.Variable[];
}

export class DataParallel {
  private readonly layout: SharedLayout;
  private readonly weights: SharedArrayBuffer;
  private readonly grads: SharedArrayBuffer[];
  private readonly pool: WorkerPool;
  private version = 0;

  private constructor(
    /** W: the threads a step runs on, the main one included. */
    readonly workers: number,
    private readonly decoder: DecoderRNN,
    backend: BackendKind,
  ) {
    this.layout = layoutOf(decoder.variables);
    this.weights = sharedBuffer(this.layout);
    this.grads = Array.from({ length: workers - 1 }, () => sharedBuffer(this.layout));
    const data = (i: number): StepWorkerData => ({
      index: i,
      backend,
      decoder: decoder.config,
      layout: this.layout,
      weights: this.weights,
      grads: this.grads[i],
    });
    this.pool = new WorkerPool(workerEntry(__filename, "step-worker"), workers - 1, { label: "training worker", data });
  }

  /** Starts W − 1 workers for `decoder`'s shapes (W ≥ 2) and waits until they are set up. */
  static async start(workers: number, decoder: DecoderRNN, backend: BackendKind): Promise<DataParallel> {
    if (!Number.isInteger(workers) || workers < 2) throw new Error(`data-parallel.ts: a data-parallel step needs W ≥ 2 threads, got ${workers}`);
    const dp = new DataParallel(workers, decoder, backend);
    try {
      await dp.pool.started();
    } catch (error) {
      await dp.close();
      throw error;
    }
    return dp;
  }

  /** For tests: stops worker `index` (1 .. W − 1) as a crash would. */
  killWorker(index: number): Promise<void> {
    return this.pool.kill(index - 1);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /**
   * One training step, as trainStep (lib/model/train-step.ts) computes it, on W threads. Updates
   * the weights in place and returns the batch's caption loss. If a worker dies, it rejects with
   * an error naming the worker, and the weights and optimizer are left as they were.
   */
  async step(params: DataParallelStepParams): Promise<number> {
    const { decoder, tokens, mask, auxiliaryLoss: aux } = params;
    if (decoder !== this.decoder) throw new Error("data-parallel.ts: step() got another decoder than the one the workers were started for");
    const [batch, length] = tokens.shape;
    const ranges = shardRanges(batch, this.workers);
    const tokenCount = scoredTokenCount(mask);
    // 1. The encoder on the whole batch (batch norm's statistics move here, once: kept to be put
    // back if the step fails, so that a failed step changes nothing).
    const stateBefore = (params.encoderState ?? []).map((v) => tf.clone(v));
    const embedding = tf.tidy(() => params.embedImages());
    writeShared(this.weights, this.layout, decoder.variables);
    this.version += 1;
    // 2. Shards 1.. to the workers, then shard 0 here while they run.
    const tokenData = tokens.dataSync() as Int32Array;
    const maskData = mask.dataSync() as Float32Array;
    const embeddingData = embedding.dataSync() as Float32Array;
    const embed = embedding.shape[1];
    const replies = ranges.slice(1).map(([start, end], k) => {
      const request: CrossEntropyRequest = {
        kind: "cross-entropy",
        version: this.version,
        embedding: embeddingData.slice(start * embed, end * embed),
        tokens: tokenData.slice(start * length, end * length),
        mask: maskData.slice(start * length, end * length),
        rows: end - start,
        length,
        offset: start,
        total: batch,
        tokenCount,
        dropoutSeed: params.dropoutSeed,
      };
      return this.pool.call<CrossEntropyReply>(k, request, [request.embedding.buffer, request.tokens.buffer, request.mask.buffer]);
    });
    replies.forEach((r) => r.catch(() => {})); // each is awaited below; a failure must not go unhandled meanwhile
    const [start0, end0] = ranges[0];
    const own = tf.tidy(() => {
      const rows = end0 - start0;
      const slice = (t: tf.Tensor2D) => tf.slice(t, [start0, 0], [rows, t.shape[1]]);
      const out = decoderShardGradients(decoder, {
        embedding: slice(embedding),
        tokens: slice(tokens),
        mask: slice(mask),
        rows: { offset: start0, total: batch },
        tokenCount,
        dropoutSeed: params.dropoutSeed,
      });
      return { loss: out.loss, grads: out.grads, embeddingGrad: out.embeddingGrad };
    });
    let settled: CrossEntropyReply[];
    try {
      settled = await Promise.all(replies);
    } catch (error) {
      (params.encoderState ?? []).forEach((v, i) => v.assign(stateBefore[i]));
      tf.dispose([embedding, ...own.grads, own.embeddingGrad, ...stateBefore]);
      throw error;
    }
    tf.dispose(stateBefore);
    // 3. Sum in shard order, the encoder's backward pass, clip, one update.
    const named: tf.NamedTensorMap = {};
    decoder.variables.forEach((v, i) => {
      named[v.name] = tf.tidy(() => settled.reduce<tf.Tensor>((sum, _, k) => tf.add(sum, readShared(this.grads[k], this.layout, i)), own.grads[i]));
    });
    const embeddingGrad = tf.tidy(() =>
      tf.concat([own.embeddingGrad, ...settled.map((r, k) => tf.tensor2d(r.embeddingGrad, [ranges[k + 1][1] - ranges[k + 1][0], embed]))], 0),
    );
    tf.dispose([...own.grads, own.embeddingGrad, embedding]);
    const encoderVariables = [...(params.encoderVariables ?? []), ...(aux?.variables ?? [])].filter((v) => v.trainable);
    try {
      if (encoderVariables.length > 0) Object.assign(named, this.encoderGradients(params, embeddingGrad, encoderVariables));
      const clipped = params.clipNorm === undefined ? named : clipByGlobalNorm(named, params.clipNorm);
      params.optimizer.applyGradients(clipped);
      if (clipped !== named) tf.dispose(clipped);
    } finally {
      tf.dispose([embeddingGrad, ...Object.values(named)]);
    }
    return settled.reduce((sum, r) => sum + r.loss, own.loss);
  }

  /**
   * The encoder's gradients: d/dθ of Σ embedding ⊙ upstream (the decoder's gradient at the
   * embedding), plus the auxiliary loss on the embedding when there is one, with the encoder run
   * again inside the tape; the state it updates (batch norm's statistics) is put back afterwards.
   */
  private encoderGradients(params: DataParallelStepParams, upstream: tf.Tensor2D, variables: tf.Variable[]): tf.NamedTensorMap {
    const aux = params.auxiliaryLoss;
    const state = params.encoderState ?? [];
    const saved = state.map((v) => tf.clone(v));
    try {
      const { value, grads } = tf.variableGrads(() => {
        const embedding = params.embedImages();
        const carried = tf.sum(tf.mul(embedding, upstream)) as tf.Scalar;
        return aux && aux.weight > 0 ? tf.add(carried, tf.mul(aux.loss(embedding), aux.weight)) : carried;
      }, variables);
      value.dispose();
      return grads;
    } finally {
      state.forEach((v, i) => v.assign(saved[i]));
      tf.dispose(saved);
    }
  }
}
