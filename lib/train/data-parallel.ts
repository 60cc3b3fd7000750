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
 *   3. main:    the embedding rows' gradients carried back through the encoder (and the
 *               word-presence loss, which lives on the encoder side, added there).
 *   4. all:     the update. With tf.train.adam, Adam on the W threads, each on a part of the
 *               weights (sharded-adam.ts): the gradients summed in shard order (0, 1, ..., W − 1:
 *               the same arithmetic on every run, so a run is bit-for-bit repeatable for a given
 *               W), the global norm clipped over everything, one update. With another optimizer,
 *               the same sum and clipping in the main thread, then its applyGradients.
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
import { decoderShardGradients } from "../model/shard-step";
import { clipByGlobalNorm, type TrainStepParams } from "../model/train-step";
import { layoutOf, readShared, writeShared, type SharedLayout } from "../runtime/shared-tensors";
import { adamConstants, adamMoments, countUpdate, isAdam, setAdamMoments } from "./adam-state";
import { adamBuffers, applyPart, clipScale, sumPart, type AdamBuffers, type Part } from "./sharded-adam";
import type { Captioner } from "../inference/captioner";
import type { Vocabulary } from "../data/vocabulary";
import type { CiderReward } from "./cider-reward";
import type { SelfCriticalConfig } from "./config";
import { summarize, type ImageBatch, type SelfCriticalStats } from "./self-critical";
import { selfCriticalShardGradients } from "./self-critical-shard";
import type { AdamApplyRequest, AdamSumRequest, CrossEntropyReply, CrossEntropyRequest, SelfCriticalReply, SelfCriticalRequest, SelfCriticalSetupRequest, StepWorkerData } from "./step-worker";

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
  /** The weights the steps update: the decoder's, then `others`, end to end in the shared buffers. */
  private readonly variables: tf.Variable[];
  private readonly layout: SharedLayout;
  private readonly buffers: AdamBuffers;
  private readonly pool: WorkerPool;
  private version = 0;
  /** The tf.train.adam whose moments the buffers hold (from its first step on), and which pair is current. */
  private adam?: tf.AdamOptimizer;
  private currentMoments = 0;

  private constructor(
    /** W: the threads a step runs on, the main one included. */
    readonly workers: number,
    private readonly decoder: DecoderRNN,
    backend: BackendKind,
    others: tf.Variable[],
  ) {
    this.variables = [...decoder.variables, ...others];
    this.layout = layoutOf(this.variables);
    this.buffers = adamBuffers(this.layout, workers);
    const data = (i: number): StepWorkerData => ({ thread: i + 1, backend, decoder: decoder.config, layout: this.layout, buffers: this.buffers });
    this.pool = new WorkerPool(workerEntry(__filename, "step-worker"), workers - 1, { label: "training worker", data });
  }

  /**
   * Starts W − 1 workers for `decoder`'s shapes (W ≥ 2) and waits until they are set up.
   * `others`: the trainable variables that the steps update besides the decoder's, in the order
   * of the steps' gradients (the encoder's, then the word head's); a step may leave out a tail
   * of them (the self-critical one has no word-presence loss).
   */
  static async start(workers: number, decoder: DecoderRNN, backend: BackendKind, others: tf.Variable[] = []): Promise<DataParallel> {
    if (!Number.isInteger(workers) || workers < 2) throw new Error(`data-parallel.ts: a data-parallel step needs W ≥ 2 threads, got ${workers}`);
    const dp = new DataParallel(workers, decoder, backend, others);
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
    // back if the step fails, so that a failed step changes nothing).
    const stateBefore = (params.encoderState ?? []).map((v) => tf.clone(v));
    const embedding = tf.tidy(() => params.embedImages());
    writeShared(this.buffers.weights, this.layout, this.variables);
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
    try {
      const settled = await Promise.all(replies);
      // 3. The encoder's backward pass; 4. the update.
      const embeddingGrad = this.embeddingGrads(own.embeddingGrad, settled, ranges, embed);
      await this.update(own.grads, embeddingGrad, params);
      return settled.reduce((sum, r) => sum + r.loss, own.loss);
    } catch (error) {
      (params.encoderState ?? []).forEach((v, i) => v.assign(stateBefore[i]));
      throw error;
    } finally {
      tf.dispose([embedding, ...own.grads, own.embeddingGrad, ...stateBefore]);
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
    writeShared(this.buffers.weights, this.layout, this.variables);
    this.version += 1;
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
    const replies = ranges.slice(1).map(([start, end], k) => {
      const request: SelfCriticalRequest = { kind: "self-critical", version: this.version, embedding: embeddingData.slice(start * embed, end * embed), ...shard(start, end) };
      return this.pool.call<SelfCriticalReply>(k, request, [request.embedding.buffer]);
    });
    replies.forEach((r) => r.catch(() => {})); // each is awaited below; a failure must not go unhandled meanwhile
    const [start0, end0] = ranges[0];
    const own = tf.tidy(() => {
      const out = selfCriticalShardGradients(model.decoder, model.vocab, params.reward, {
        embedding: tf.slice(embedding, [start0, 0], [end0 - start0, embed]),
        ...shard(start0, end0),
      });
      const { loss, grads, embeddingGrad, rewards, baselines, advantages } = out;
      return { loss, grads, embeddingGrad, rewards, baselines, advantages }; // a literal, as tidy takes it
    });
    let settled: SelfCriticalReply[];
    try {
      settled = await Promise.all(replies);
      const embeddingGrad = this.embeddingGrads(own.embeddingGrad, settled, ranges, embed);
      await this.update(own.grads, embeddingGrad, { embedImages, encoderVariables: model.encoder.trainableVariables, optimizer: params.optimizer, clipNorm: params.clipNorm });
    } finally {
      tf.dispose([embedding, ...own.grads, own.embeddingGrad]);
    }
    const all = [own, ...settled];
    const samples = { rewards: all.flatMap((r) => r.rewards), baselines: all.flatMap((r) => r.baselines), advantages: all.flatMap((r) => r.advantages) };
    return { loss: settled.reduce((sum, r) => sum + r.loss, own.loss), ...summarize(samples) };
  }

  /**
   * Copies Adam's moments from the shared buffers into the optimizer, for a checkpoint: until then
   * they live only there (sharded-adam.ts). Does nothing before the first Adam step.
   */
  async syncOptimizer(): Promise<void> {
    if (!this.adam) return;
    const [first, second] = this.buffers.moments[this.currentMoments].map((buffer) => this.variables.map((_, i) => readShared(buffer, this.layout, i)));
    await setAdamMoments(this.adam, this.variables.map((v) => v.name), first, second);
  }

  /** [batch rows, embed]: the gradient at each shard's embedding rows, end to end in shard order. */
  private embeddingGrads(own: tf.Tensor2D, replies: { embeddingGrad: Float32Array }[], ranges: [number, number][], embed: number): tf.Tensor2D {
    return tf.tidy(() => tf.concat([own, ...replies.map((r, k) => tf.tensor2d(r.embeddingGrad, [ranges[k + 1][1] - ranges[k + 1][0], embed]))], 0));
  }

  /**
   * Step 4: the encoder's gradients from the embedding's (with the auxiliary loss, if any), then
   * the update of everything with them and the decoder's gradients (this thread's shard's in
   * `own`, the workers' in their buffers). Disposes `embeddingGrad`.
   */
  private async update(own: tf.Tensor[], embeddingGrad: tf.Tensor2D, params: EncoderUpdate): Promise<void> {
    const aux = params.auxiliaryLoss;
    const others = [...(params.encoderVariables ?? []), ...(aux?.variables ?? [])].filter((v) => v.trainable);
    let otherGrads: tf.NamedTensorMap = {};
    try {
      if (others.length > 0) otherGrads = this.encoderGradients(params, embeddingGrad, others);
      const grads = [...own, ...others.map((v) => otherGrads[v.name])];
      if (isAdam(params.optimizer)) await this.shardedAdam(grads, others, params.optimizer, params.clipNorm);
      else this.applyInMainThread(grads, [...this.decoder.variables, ...others], params.optimizer, params.clipNorm);
    } finally {
      tf.dispose([embeddingGrad, ...Object.values(otherGrads)]);
    }
  }

  /** Adam on the W threads (sharded-adam.ts). `grads`: this thread's, for the decoder and then `others`. */
  private async shardedAdam(grads: tf.Tensor[], others: tf.Variable[], optimizer: tf.AdamOptimizer, clipNorm: number | undefined): Promise<void> {
    const used = this.decoder.variables.length + others.length;
    if (others.some((v, i) => v !== this.variables[this.decoder.variables.length + i])) {
      throw new Error("data-parallel.ts: the step's encoder-side variables are not those (or a first part of those) the workers were started with");
    }
    await this.holdMoments(optimizer);
    writeShared(this.buffers.grads[0], this.layout, grads);
    const last = this.layout.entries[used - 1];
    const parts = shardRanges(last.offset + last.size, this.workers);
    const sums = await this.onParts(parts, (part) => sumPart(this.buffers, part), (part): AdamSumRequest => ({ kind: "adam-sum", part }));
    const apply = { scale: clipScale(sums, clipNorm), constants: adamConstants(optimizer), current: this.currentMoments };
    await this.onParts(parts, (part) => applyPart(this.buffers, { ...apply, part }), (part): AdamApplyRequest => ({ kind: "adam-apply", ...apply, part }));
    // Every part is done: the new weights into the variables, the new moments current, one update counted.
    this.variables.slice(0, used).forEach((v, i) => {
      const t = readShared(this.buffers.weights, this.layout, i);
      v.assign(t);
      t.dispose();
    });
    this.currentMoments = 1 - this.currentMoments;
    countUpdate(optimizer);
  }

  /** Runs part 0 here and part k on worker k, at once; their results in part order. */
  private async onParts<T>(parts: Part[], here: (part: Part) => T, request: (part: Part) => object): Promise<T[]> {
    const replies = parts.slice(1).map((part, k) => this.pool.call<T>(k, request(part)));
    replies.forEach((r) => r.catch(() => {})); // each is awaited below; a failure must not go unhandled meanwhile
    const own = here(parts[0]);
    return [own, ...(await Promise.all(replies))];
  }

  /** From the first Adam step on, the buffers hold the optimizer's moments (any it has: a resumed run's). */
  private async holdMoments(optimizer: tf.AdamOptimizer): Promise<void> {
    if (this.adam === optimizer) return;
    if (this.adam) throw new Error("data-parallel.ts: a step with another Adam optimizer than the earlier steps'; its moments are held here");
    const { first, second } = await adamMoments(optimizer);
    if (first.length > this.variables.length) throw new Error(`data-parallel.ts: the optimizer has moments for ${first.length} variables, the steps update ${this.variables.length}`);
    const [firstBuffer, secondBuffer] = this.buffers.moments[this.currentMoments];
    writeShared(firstBuffer, this.layout, first);
    writeShared(secondBuffer, this.layout, second);
    this.adam = optimizer;
  }

  /** Any other optimizer: the gradients of `variables` summed in shard order, clipped, applied here. */
  private applyInMainThread(grads: tf.Tensor[], variables: tf.Variable[], optimizer: tf.Optimizer, clipNorm: number | undefined): void {
    const decoderCount = this.decoder.variables.length;
    const named: tf.NamedTensorMap = tf.tidy(() =>
      Object.fromEntries(
        grads.map((own, i) => {
          const sum = i < decoderCount ? this.buffers.grads.slice(1).reduce<tf.Tensor>((acc, b) => tf.add(acc, readShared(b, this.layout, i)), own) : tf.clone(own);
          return [variables[i].name, sum];
        }),
      ),
    );
    try {
      const clipped = clipNorm === undefined ? named : clipByGlobalNorm(named, clipNorm);
      optimizer.applyGradients(clipped);
      if (clipped !== named) tf.dispose(clipped);
    } finally {
      tf.dispose(Object.values(named));
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
