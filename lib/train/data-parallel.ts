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
 *
 * The self-critical step (`selfCriticalStep`) is split the same way, by image: the encoder on
 * the whole batch here, then each shard samples K captions per image, rewards them and computes
 * its share of the policy-gradient loss's gradients (self-critical-shard.ts); the sum, the
 * encoder's backward pass, clipping and Adam as above. Its samples come from one generator per
 * image, the same for every W > 1; W = 1 keeps self-critical.ts's single generator, so W = 1 and
 * W > 1 draw different captions (each W repeats its own bit for bit).
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendKind } from "../runtime/backend";
import { coreCount, WorkerPool, workerEntry } from "../runtime/worker-pool";
import type { DecoderRNN } from "../model/decoder";
import { scoredTokenCount } from "../model/loss";
import { decoderShardGradients, type DecoderShardGradients } from "../model/shard-step";
import { clipByGlobalNorm, type TrainStepParams } from "../model/train-step";
import { layoutOf, readShared, sharedBuffer, writeShared, type SharedLayout } from "../runtime/shared-tensors";
import type { Captioner } from "../inference/captioner";
import type { Vocabulary } from "../data/vocabulary";
import type { CiderReward } from "./cider-reward";
import type { SelfCriticalConfig } from "./config";
import { summarize, type ImageBatch, type SelfCriticalStats } from "./self-critical";
import { selfCriticalShardGradients, type SelfCriticalShardResult } from "./self-critical-shard";
import type { CrossEntropyReply, CrossEntropyRequest, SelfCriticalReply, SelfCriticalRequest, SelfCriticalSetupRequest, StepWorkerData } from "./step-worker";

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

/** What a shard computed in this thread hands on: the decoder's gradients and its embedding rows'. */
type ShardGradients = Pick<DecoderShardGradients, "grads" | "embeddingGrad">;

/** What the end of a step (the encoder's backward pass, clipping, the update) needs. */
type EncoderUpdate = Pick<DataParallelStepParams, "embedImages" | "encoderVariables" | "auxiliaryLoss" | "encoderState" | "optimizer" | "clipNorm">;

/** What a data-parallel self-critical step needs: self-critical.ts's StepParams, its generator a seed. */
export interface DataParallelSelfCriticalParams {
  model: Captioner;
  batch: ImageBatch;
  reward: CiderReward;
  config: SelfCriticalConfig;
  /** The step's seed: each image's generator follows from it (self-critical-shard.ts, imageStreams). */
  seed: number;
  optimizer: tf.Optimizer;
  clipNorm: number;
  maxLength: number;
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
    const { decoder, tokens, mask } = params;
    if (decoder !== this.decoder) throw new Error("data-parallel.ts: step() got another decoder than the one the workers were started for");
    const [batch, length] = tokens.shape;
    const ranges = shardRanges(batch, this.workers);
    const tokenCount = scoredTokenCount(mask);
    // 1. The encoder on the whole batch (batch norm's statistics move here, once: kept to be put
    // back if a shard fails, so that a failed step changes nothing).
    const stateBefore = (params.encoderState ?? []).map((v) => tf.clone(v));
    const embedding = tf.tidy(() => params.embedImages());
    const tokenData = tokens.dataSync() as Int32Array;
    const maskData = mask.dataSync() as Float32Array;
    const embeddingData = embedding.dataSync() as Float32Array;
    const embed = embedding.shape[1];
    try {
      // 2. and 3.: the shards, then the sum, the encoder's backward pass, clipping, one update.
      const { own, replies } = await this.runShards<DecoderShardGradients, CrossEntropyReply>({
        ranges,
        embed,
        toWorker: (start, end) => {
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
          return { request, transfer: [request.embedding.buffer, request.tokens.buffer, request.mask.buffer] };
        },
        here: (start, end) => {
          const slice = (t: tf.Tensor2D) => tf.slice(t, [start, 0], [end - start, t.shape[1]]);
          const out = decoderShardGradients(decoder, {
            embedding: slice(embedding),
            tokens: slice(tokens),
            mask: slice(mask),
            rows: { offset: start, total: batch },
            tokenCount,
            dropoutSeed: params.dropoutSeed,
          });
          return { loss: out.loss, grads: out.grads, embeddingGrad: out.embeddingGrad };
        },
        onShardFailure: () => (params.encoderState ?? []).forEach((v, i) => v.assign(stateBefore[i])),
        update: params,
      });
      return replies.reduce((sum, r) => sum + r.loss, own.loss);
    } finally {
      tf.dispose([embedding, ...stateBefore]);
    }
  }

  /**
   * Sends what the workers' self-critical shards need, once, when the phase begins: the
   * vocabulary (to turn samples into text) and the references their rewards score against.
   */
  async prepareSelfCritical(vocab: Vocabulary, references: ReadonlyMap<number, readonly string[]>): Promise<void> {
    const request: SelfCriticalSetupRequest = {
      kind: "self-critical-setup",
      vocabulary: vocab.toJSON(),
      references: [...references].map(([id, captions]) => [id, [...captions]]),
    };
    await Promise.all(Array.from({ length: this.workers - 1 }, (_, k) => this.pool.call(k, request)));
  }

  /**
   * One self-critical step (self-critical.ts) on W threads, the batch's images split into W
   * contiguous shards (self-critical-shard.ts: its draws, one generator per image, are those of
   * every W > 1, not those of W = 1). Call prepareSelfCritical first. Updates the weights in
   * place; if a worker dies, rejects naming it and leaves the weights as they were.
   */
  async selfCriticalStep(params: DataParallelSelfCriticalParams): Promise<SelfCriticalStats> {
    const { model, batch, config } = params;
    if (model.decoder !== this.decoder) throw new Error("data-parallel.ts: selfCriticalStep() got another decoder than the one the workers were started for");
    const images = batch.imageIds.length;
    const ranges = shardRanges(images, this.workers);
    const totalCaptions = images * config.samplesPerImage;
    const embedImages = () => model.embed(batch.images); // no dropout, batch norm's running statistics: nothing to put back
    const embedding = tf.tidy(embedImages);
    const embeddingData = embedding.dataSync() as Float32Array;
    const embed = embedding.shape[1];
    const shard = (start: number, end: number) => ({
      imageIds: batch.imageIds.slice(start, end),
      firstImage: start,
      totalCaptions,
      seed: params.seed,
      config,
      maxLength: params.maxLength,
    });
    try {
      const { own, replies } = await this.runShards<SelfCriticalShardResult, SelfCriticalReply>({
        ranges,
        embed,
        toWorker: (start, end) => {
          const request: SelfCriticalRequest = { kind: "self-critical", version: this.version, embedding: embeddingData.slice(start * embed, end * embed), ...shard(start, end) };
          return { request, transfer: [request.embedding.buffer] };
        },
        here: (start, end) => {
          const out = selfCriticalShardGradients(model.decoder, model.vocab, params.reward, { embedding: tf.slice(embedding, [start, 0], [end - start, embed]), ...shard(start, end) });
          const { loss, grads, embeddingGrad, rewards, baselines, advantages } = out;
          return { loss, grads, embeddingGrad, rewards, baselines, advantages }; // a literal, as tidy takes it
        },
        update: { embedImages, encoderVariables: model.encoder.trainableVariables, optimizer: params.optimizer, clipNorm: params.clipNorm },
      });
      const all = [own, ...replies];
      const samples = { rewards: all.flatMap((r) => r.rewards), baselines: all.flatMap((r) => r.baselines), advantages: all.flatMap((r) => r.advantages) };
      return { loss: replies.reduce((sum, r) => sum + r.loss, own.loss), ...summarize(samples) };
    } finally {
      embedding.dispose();
    }
  }

  /**
   * What both phases' steps share after the encoder: the decoder's weights into the shared
   * buffer, shard k ≥ 1 (of `ranges`) to worker k − 1 (`toWorker`) and shard 0 in this thread
   * (`here`) while they run; then the gradients summed in shard order, the encoder's backward
   * pass, clipping and one update. If a shard fails (a worker died), calls `onShardFailure` and
   * rethrows, having updated nothing.
   */
  private async runShards<Own extends ShardGradients, Reply extends { loss: number; embeddingGrad: Float32Array }>(shards: {
    ranges: [number, number][];
    embed: number;
    toWorker: (start: number, end: number) => { request: object; transfer: ArrayBuffer[] };
    here: (start: number, end: number) => Own;
    onShardFailure?: () => void;
    update: EncoderUpdate;
  }): Promise<{ own: Own; replies: Reply[] }> {
    const { ranges } = shards;
    writeShared(this.weights, this.layout, this.decoder.variables);
    this.version += 1;
    const pending = ranges.slice(1).map(([start, end], k) => {
      const { request, transfer } = shards.toWorker(start, end);
      return this.pool.call<Reply>(k, request, transfer);
    });
    pending.forEach((r) => r.catch(() => {})); // each is awaited below; a failure must not go unhandled meanwhile
    const own = tf.tidy(() => shards.here(...ranges[0]));
    let replies: Reply[];
    try {
      replies = await Promise.all(pending);
    } catch (error) {
      shards.onShardFailure?.();
      tf.dispose([...own.grads, own.embeddingGrad]);
      throw error;
    }
    const named = this.summedGrads(own.grads, replies.length);
    const embeddingGrad = this.embeddingGrads(own.embeddingGrad, replies, ranges, shards.embed);
    tf.dispose([...own.grads, own.embeddingGrad]);
    this.update(named, embeddingGrad, shards.update);
    return { own, replies };
  }

  /** The decoder's gradients by name: this thread's shard's plus each worker's, in shard order. */
  private summedGrads(own: tf.Tensor[], workers: number): tf.NamedTensorMap {
    const named: tf.NamedTensorMap = {};
    this.decoder.variables.forEach((v, i) => {
      named[v.name] = tf.tidy(() => Array.from({ length: workers }).reduce<tf.Tensor>((sum, _, k) => tf.add(sum, readShared(this.grads[k], this.layout, i)), own[i]));
    });
    return named;
  }

  /** [batch rows, embed]: the gradient at each shard's embedding rows, end to end in shard order. */
  private embeddingGrads(own: tf.Tensor2D, replies: { embeddingGrad: Float32Array }[], ranges: [number, number][], embed: number): tf.Tensor2D {
    return tf.tidy(() => tf.concat([own, ...replies.map((r, k) => tf.tensor2d(r.embeddingGrad, [ranges[k + 1][1] - ranges[k + 1][0], embed]))], 0));
  }

  /**
   * The end of a step: the encoder's gradients from the embedding's (with the auxiliary loss, if
   * any), the global norm clipped over everything, Adam once. Disposes `named` and `embeddingGrad`.
   */
  private update(named: tf.NamedTensorMap, embeddingGrad: tf.Tensor2D, params: EncoderUpdate): void {
    const aux = params.auxiliaryLoss;
    const encoderVariables = [...(params.encoderVariables ?? []), ...(aux?.variables ?? [])].filter((v) => v.trainable);
    try {
      if (encoderVariables.length > 0) Object.assign(named, this.encoderGradients(params, embeddingGrad, encoderVariables));
      const clipped = params.clipNorm === undefined ? named : clipByGlobalNorm(named, params.clipNorm);
      params.optimizer.applyGradients(clipped);
      if (clipped !== named) tf.dispose(clipped);
    } finally {
      tf.dispose([embeddingGrad, ...Object.values(named)]);
    }
  }

  /**
   * The encoder's gradients: d/dθ of Σ embedding ⊙ upstream (the decoder's gradient at the
   * embedding), plus the auxiliary loss on the embedding when there is one, with the encoder run
   * again inside the tape; the state it updates (batch norm's statistics) is put back afterwards.
   */
  private encoderGradients(params: EncoderUpdate, upstream: tf.Tensor2D, variables: tf.Variable[]): tf.NamedTensorMap {
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
