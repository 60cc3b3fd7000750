/**
 * Batch samplers: which captions go into the next batch.
 *
 * LengthBucketSampler follows the original project (CoCoDataset.get_train_indices):
 *   1. pick a caption length at random, weighted by how many captions have it
 *      (the original drew a random caption and took its length: the same distribution);
 *   2. pick `batchSize` captions of that length uniformly, WITH replacement (np.random.choice).
 * Every caption in a batch then has the same length, so the batch needs no padding.
 *
 * PaddedSampler is the usual alternative: each epoch, shuffle all captions and cut the
 * permutation into batches; captions of different lengths share a batch and the loader
 * pads them with END and a mask.
 *
 * SequentialSampler walks 0, 1, 2, ... in order, for evaluation (each image once per pass).
 *
 * All are deterministic (the first two under their Random), and `state()`/`setState()` let a resumed
 * training run draw exactly the batches it would have drawn.
 */
import type { Random, RandomState } from "./random";

/** Chooses the items (caption indices; image indices in evaluation) of each batch. */
export interface BatchSampler {
  /** The indices of the next batch. */
  next(): number[];
  /** ceil(items / batchSize): the number of batches that makes one epoch. */
  readonly batchesPerEpoch: number;
  state(): SamplerState;
  setState(state: SamplerState): void;
}

export type SamplerState =
  | { kind: "length"; rng: RandomState }
  | { kind: "padded"; epochRng: RandomState; position: number; epoch: number }
  | { kind: "sequential"; position: number };

function checkSizes(count: number, batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`sampler: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(count) || count < 1) throw new Error(`sampler: need at least one item to sample, got ${count}`);
}

/** Checks a saved position against 0..count before a sampler adopts it. */
function checkPosition(position: number, count: number): void {
  if (!Number.isInteger(position) || position < 0 || position > count) {
    throw new Error(`sampler.setState: position ${position} is outside 0..${count}`);
  }
}

/** Caption indices grouped by caption length: length → indices. */
export function lengthBuckets(lengths: ArrayLike<number>): Map<number, number[]> {
  const buckets = new Map<number, number[]>();
  for (let i = 0; i < lengths.length; i++) {
    const bucket = buckets.get(lengths[i]);
    if (bucket) bucket.push(i);
    else buckets.set(lengths[i], [i]);
  }
  return buckets;
}

/** Batches whose captions all share one length, as in the original (see file comment). */
export class LengthBucketSampler implements BatchSampler {
  readonly batchesPerEpoch: number;
  private readonly buckets: Map<number, number[]>;

  /**
   * @param lengths caption length (in words) of each caption, indexed by caption index
   * @param rng owned by the sampler from now on: give it its own (`rng.fork()`), so its state is its alone
   */
  constructor(
    private readonly lengths: ArrayLike<number>,
    readonly batchSize: number,
    private readonly rng: Random,
  ) {
    checkSizes(lengths.length, batchSize);
    this.buckets = lengthBuckets(lengths);
    this.batchesPerEpoch = Math.ceil(lengths.length / batchSize);
  }

  next(): number[] {
    // A uniformly drawn caption's length: each length weighted by its caption count.
    const length = this.lengths[this.rng.int(this.lengths.length)];
    const bucket = this.buckets.get(length)!;
    return Array.from({ length: this.batchSize }, () => this.rng.choice(bucket));
  }

  state(): SamplerState {
    return { kind: "length", rng: this.rng.state() };
  }

  setState(state: SamplerState): void {
    if (state.kind !== "length") throw new Error(`LengthBucketSampler.setState: got a "${state.kind}" sampler's state`);
    this.rng.setState(state.rng);
  }
}

/** Shuffled batches of captions of any length, one pass over all captions per epoch. */
export class PaddedSampler implements BatchSampler {
  readonly batchesPerEpoch: number;
  private order: number[] = [];
  private position = 0;
  private epoch = -1;
  /** The rng state from which this epoch's permutation was drawn: enough to redraw it on restore. */
  private epochRng!: RandomState; // set by startEpoch()

  /**
   * @param count number of captions (indices 0 .. count-1)
   * @param rng owned by the sampler from now on (see LengthBucketSampler)
   */
  constructor(
    private readonly count: number,
    readonly batchSize: number,
    private readonly rng: Random,
  ) {
    checkSizes(count, batchSize);
    this.batchesPerEpoch = Math.ceil(count / batchSize);
    this.startEpoch();
  }

  /** Draws the next epoch's permutation. */
  private startEpoch(): void {
    this.epochRng = this.rng.state();
    this.order = this.rng.shuffle(Array.from({ length: this.count }, (_, i) => i));
    this.position = 0;
    this.epoch++;
  }

  /** The next `batchSize` captions of the permutation; the last batch of an epoch may be smaller. */
  next(): number[] {
    if (this.position >= this.count) this.startEpoch();
    const batch = this.order.slice(this.position, this.position + this.batchSize);
    this.position += batch.length;
    return batch;
  }

  state(): SamplerState {
    return { kind: "padded", epochRng: this.epochRng, position: this.position, epoch: this.epoch };
  }

  setState(state: SamplerState): void {
    if (state.kind !== "padded") throw new Error(`PaddedSampler.setState: got a "${state.kind}" sampler's state`);
    checkPosition(state.position, this.count);
    // Redraw the saved epoch's permutation (storing it would take megabytes for COCO).
    this.rng.setState(state.epochRng);
    this.startEpoch();
    this.position = state.position;
    this.epoch = state.epoch;
  }
}

/** 0, 1, 2, ... in batches of `batchSize`, starting over after `count - 1`; no randomness. */
export class SequentialSampler implements BatchSampler {
  readonly batchesPerEpoch: number;
  private position = 0;

  constructor(
    private readonly count: number,
    readonly batchSize: number,
  ) {
    checkSizes(count, batchSize);
    this.batchesPerEpoch = Math.ceil(count / batchSize);
  }

  /** Items left before the end of this pass. */
  get remaining(): number {
    return this.count - this.position;
  }

  /** The next indices in order; the last batch of a pass may be smaller. */
  next(): number[] {
    if (this.position >= this.count) this.position = 0;
    const end = Math.min(this.position + this.batchSize, this.count);
    const batch = Array.from({ length: end - this.position }, (_, i) => this.position + i);
    this.position = end;
    return batch;
  }

  state(): SamplerState {
    return { kind: "sequential", position: this.position };
  }

  setState(state: SamplerState): void {
    if (state.kind !== "sequential") throw new Error(`SequentialSampler.setState: got a "${state.kind}" sampler's state`);
    checkPosition(state.position, this.count);
    this.position = state.position;
  }
}
