/**
 * CaptionLoader: (image, caption) pairs → batches of image data and token ids, decoded ahead.
 *
 * Three modes:
 *   "length"  (default, as the original) every caption in a batch has the same length;
 *   "padded"  shuffled captions of any length per epoch, padded with END, with a mask;
 *   "images"  each image once per pass, in order, for validation and test captioning.
 *
 * Where the image data comes from is pluggable (an ImageSource): pixels through a
 * transform (lib/data/transforms.ts `transformSource`) or features from the encoder's feature
 * cache. Either way the loader keeps `prefetch` batches in preparation while the consumer
 * works on the current one, with at most `concurrency` source calls in flight.
 *
 * Determinism: batches are planned one after another, synchronously, and every example
 * receives its own Random (forked in plan order) for its crop and flip. So a batch's
 * contents never depend on which decode finishes first, and the same seed gives the same
 * batches whatever the timing.
 */
import * as tf from "@tensorflow/tfjs";
import { Random, type RandomState } from "./random";
import { LengthBucketSampler, PaddedSampler, SequentialSampler, type BatchSampler, type SamplerState } from "./batch-sampler";
// Padding uses END, always under a mask of 0: the loss never scores it.
import { END, START } from "./vocabulary";

/** What the loader needs of a vocabulary: a caption → [START, w1, ..., wn, END]. */
export interface CaptionEncoder {
  encode(caption: string): number[];
}

/** One caption of one image (a COCO annotation). */
export interface CaptionPair {
  imageId: number;
  caption: string;
}

/**
 * Image id → the image's data, e.g. Float32Array [224, 224, 3] of pixels or [featureDim]
 * of features. `rng` is this example's own generator, for random crops and flips; a source
 * without randomness ignores it. A source throws ImageError for an unreadable image.
 */
export type ImageSource = (imageId: number, rng: Random) => Promise<Float32Array>;

export type LoaderMode = "length" | "padded" | "images";

export interface LoaderOptions {
  /** The (image, caption) pairs; may be empty in "images" mode (test split) if `imageIds` is given. */
  captions: readonly CaptionPair[];
  vocab: CaptionEncoder;
  source: ImageSource;
  /** Shape of one image's data from `source`, e.g. [224, 224, 3] or [1280]. */
  imageShape: readonly number[];
  batchSize: number;
  seed: number;
  /** Default "length". */
  mode?: LoaderMode;
  /** "images" mode: the images to iterate, in order. Default: those of `captions`, in order of first appearance. */
  imageIds?: readonly number[];
  /**
   * "images" mode: batch rows per image, one per caption, at most this many (default 1;
   * Infinity = all its captions, for validation loss; 0 = no captions, for captioning).
   * An image without captions gets one row with no tokens. Each image is read once and its
   * data copied into each of its rows.
   */
  captionsPerImage?: number;
  /** Batches prepared ahead of the one being consumed (default 2). */
  prefetch?: number;
  /** Image-source calls in flight at most (default 2, the machine's core count here). An error of the source fails the batch. */
  concurrency?: number;
}

/** One batch of `rows` examples. */
export interface Batch {
  imageIds: number[]; // [rows]
  /** Index into `options.captions` of each row; -1 for a row without a caption. */
  captionIndices: number[]; // [rows]
  images: Float32Array; // [rows, ...imageShape of the options]
  /** The full shape of `images`, ready for tf.tensor(images, imageShape). */
  imageShape: number[];
  /** [START, w1, ..., wn, END] per row, padded with END after the caption. */
  tokens: Int32Array; // [rows, time]
  /** 1 where `tokens` holds a caption token (START and END included), 0 on padding. */
  mask: Float32Array; // [rows, time]
  /** Longest caption in the batch, in tokens; 0 when no row has a caption. */
  time: number;
}

/** A batch as the model takes it: what `batchTensors` makes of a Batch. The caller disposes them. */
export interface BatchTensors {
  images: tf.Tensor; // [rows, ...imageShape]
  tokens: tf.Tensor2D; // [rows, time] int32
  mask: tf.Tensor2D; // [rows, time] float32
}

/**
 * A Batch as tensors, for the decoder and the loss (lib/model/loss.ts `captionLoss` scores each
 * output against the next token). Used by training, evaluation and scripts/decoder-ceiling.ts.
 */
export function batchTensors(batch: Batch): BatchTensors {
  const rows = batch.imageIds.length;
  return {
    images: tf.tensor(batch.images, batch.imageShape),
    tokens: tf.tensor2d(batch.tokens, [rows, batch.time], "int32"),
    mask: tf.tensor2d(batch.mask, [rows, batch.time]),
  };
}

/** How many tokens the loss scores in a batch: the real ones after <start> (see `captionLoss`). */
export function scoredTokens(batch: Batch): number {
  let count = 0;
  for (let r = 0; r < batch.imageIds.length; r++) for (let t = 1; t < batch.time; t++) count += batch.mask[r * batch.time + t];
  return count;
}

/** Where the loader stands: `setState` on it gives the same batches from there. */
export interface LoaderState {
  sampler: SamplerState;
  rng: RandomState;
}

/** All captions' token ids in one array: caption i is data[offsets[i] .. offsets[i + 1]). */
interface PackedTokens {
  data: Int32Array;
  offsets: Int32Array; // [captions + 1]
}

/** Encodes every caption once, checking that each comes back as [START, ..., END]. */
function packCaptions(captions: readonly CaptionPair[], vocab: CaptionEncoder): PackedTokens {
  const data: number[] = [];
  const offsets = new Int32Array(captions.length + 1);
  captions.forEach(({ imageId, caption }, i) => {
    const ids = vocab.encode(caption);
    if (ids.length < 2 || ids[0] !== START || ids[ids.length - 1] !== END) {
      throw new Error(
        `CaptionLoader: vocab.encode() must return [START=${START}, ..., END=${END}]; caption ${i} ` +
          `(image ${imageId}) ${JSON.stringify(caption)} gave [${ids.join(", ")}]`,
      );
    }
    for (const id of ids) data.push(id);
    offsets[i + 1] = data.length;
  });
  return { data: Int32Array.from(data), offsets };
}

/** The caption indices of each image, grouped in the order of `imageIds` (or of first appearance). */
function groupByImage(captions: readonly CaptionPair[], imageIds: readonly number[] | undefined, perImage: number) {
  const byImage = new Map<number, number[]>();
  captions.forEach(({ imageId }, i) => {
    const list = byImage.get(imageId);
    if (list) list.push(i);
    else byImage.set(imageId, [i]);
  });
  const order = imageIds ?? [...byImage.keys()];
  return order.map((imageId) => {
    const rows = (byImage.get(imageId) ?? []).slice(0, perImage);
    return { imageId, captions: rows.length > 0 ? rows : [-1] };
  });
}

/** Runs async jobs with at most `max` in flight; waiting jobs start in the order they were queued. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // hand our slot straight to the next job
      else this.active--;
    }
  }
}

/** An example whose image is to be read: one batch row per entry of `captions` (-1 = no caption). */
interface Slot {
  imageId: number;
  captions: number[];
  rng: Random;
}

interface Loaded {
  imageId: number;
  captions: number[];
  data: Float32Array;
}

function checkCount(name: string, value: number, min: number, infinityAllowed = false): void {
  if (!(Number.isInteger(value) || (infinityAllowed && value === Infinity)) || value < min) {
    throw new Error(`CaptionLoader: ${name} must be an integer ≥ ${min}${infinityAllowed ? " or Infinity" : ""}, got ${value}`);
  }
}

/** Batches of images and captions, prepared ahead; see the file comment. */
export class CaptionLoader {
  readonly mode: LoaderMode;
  readonly batchSize: number;
  /** Batches per pass over the data (captions; images in "images" mode). */
  readonly batchesPerEpoch: number;

  private readonly tokens: PackedTokens;
  private readonly sampler: BatchSampler;
  private readonly rng: Random;
  private readonly limiter: Limiter;
  private readonly imageSize: number;
  private readonly prefetch: number;
  /** "images" mode: the images in order, with their rows. */
  private readonly images: { imageId: number; captions: number[] }[] = [];
  /** Batches planned and in preparation, oldest first, each with the state before it. */
  private queue: { state: LoaderState; batch: Promise<Batch> }[] = [];

  constructor(private readonly options: LoaderOptions) {
    const { captions, batchSize, imageShape, mode = "length" } = options;
    this.mode = mode;
    this.batchSize = batchSize;
    this.prefetch = options.prefetch ?? 2;
    checkCount("prefetch", this.prefetch, 0);
    checkCount("concurrency", options.concurrency ?? 2, 1);
    checkCount("captionsPerImage", options.captionsPerImage ?? 1, 0, true);
    if (imageShape.length === 0 || !imageShape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`CaptionLoader: imageShape must be positive integers, got [${imageShape.join(", ")}]`);
    }
    this.imageSize = imageShape.reduce((a, b) => a * b, 1);
    this.limiter = new Limiter(options.concurrency ?? 2);
    this.tokens = packCaptions(captions, options.vocab);
    const lengths = Array.from({ length: captions.length }, (_, i) => this.tokenCount(i));
    this.rng = new Random(options.seed);
    const samplerRng = this.rng.fork();
    if (mode === "length") this.sampler = new LengthBucketSampler(lengths, batchSize, samplerRng);
    else if (mode === "padded") this.sampler = new PaddedSampler(captions.length, batchSize, samplerRng);
    else if (mode === "images") {
      this.images = groupByImage(captions, options.imageIds, options.captionsPerImage ?? 1);
      this.sampler = new SequentialSampler(this.images.length, batchSize);
    } else throw new Error(`CaptionLoader: unknown mode ${JSON.stringify(mode)}`);
    this.batchesPerEpoch = this.sampler.batchesPerEpoch;
  }

  /** The next batch. Keeps `prefetch` more in preparation while the caller works on this one. */
  next(): Promise<Batch> {
    if (this.queue.length === 0) this.enqueue();
    const head = this.queue.shift()!;
    while (this.queue.length < this.prefetch && this.mayReadAhead()) this.enqueue();
    return head.batch;
  }

  /** The next `batchesPerEpoch` batches: one pass over the data. */
  async *epoch(): AsyncGenerator<Batch> {
    for (let i = 0; i < this.batchesPerEpoch; i++) yield await this.next();
  }

  /** The state before the next batch that `next()` will return. */
  state(): LoaderState {
    return this.queue[0]?.state ?? this.currentState();
  }

  /** Continues from a saved state; batches already in preparation are dropped. */
  setState(state: LoaderState): void {
    this.queue = [];
    this.sampler.setState(state.sampler);
    this.rng.setState(state.rng);
  }

  /**
   * In "images" mode reading ahead stops at the end of a pass: an evaluation reads each
   * image once and should not be left decoding the next pass's first batches.
   */
  private mayReadAhead(): boolean {
    return !(this.sampler instanceof SequentialSampler) || this.sampler.remaining > 0;
  }

  private currentState(): LoaderState {
    return { sampler: this.sampler.state(), rng: this.rng.state() };
  }

  /** Plans the next batch and starts reading its images. */
  private enqueue(): void {
    const state = this.currentState();
    const slots = this.plan();
    const batch = Promise.all(slots.map((slot) => this.load(slot))).then((loaded) => this.assemble(loaded));
    // A batch read ahead may fail before anyone awaits it; its error reaches the caller of
    // next() for that batch. Without this, Node would abort on the "unhandled" rejection.
    batch.catch(() => {});
    this.queue.push({ state, batch });
  }

  /** The examples of the next batch, each with its own Random (forked now, in order). */
  private plan(): Slot[] {
    const picks = this.sampler.next();
    if (this.mode === "images") return picks.map((i) => ({ ...this.images[i], rng: this.rng.fork() }));
    return picks.map((c) => ({ imageId: this.options.captions[c].imageId, captions: [c], rng: this.rng.fork() }));
  }

  /** Reads a slot's image. */
  private async load(slot: Slot): Promise<Loaded> {
    const data = await this.limiter.run(() => this.options.source(slot.imageId, slot.rng.fork()));
    if (data.length !== this.imageSize) {
      throw new Error(
        `CaptionLoader: the image source gave ${data.length} values for image ${slot.imageId}, ` +
          `expected ${this.imageSize} (imageShape [${this.options.imageShape.join(", ")}])`,
      );
    }
    return { imageId: slot.imageId, captions: slot.captions, data };
  }

  /** Lays the loaded examples out as one batch, padding tokens with END. */
  private assemble(loaded: Loaded[]): Batch {
    const rows = loaded.flatMap((l) => l.captions.map((caption) => ({ imageId: l.imageId, caption, data: l.data })));
    const time = rows.reduce((max, row) => Math.max(max, this.tokenCount(row.caption)), 0);
    const images = new Float32Array(rows.length * this.imageSize); // [rows, ...imageShape]
    const tokens = new Int32Array(rows.length * time).fill(END); // [rows, time]
    const mask = new Float32Array(rows.length * time); // [rows, time]
    rows.forEach((row, r) => {
      images.set(row.data, r * this.imageSize);
      const ids = this.captionTokens(row.caption);
      tokens.set(ids, r * time);
      mask.fill(1, r * time, r * time + ids.length);
    });
    return {
      imageIds: rows.map((row) => row.imageId),
      captionIndices: rows.map((row) => row.caption),
      images,
      imageShape: [rows.length, ...this.options.imageShape],
      tokens,
      mask,
      time,
    };
  }

  /** Token ids of caption `index` ([START, ..., END]); empty for -1 (no caption). */
  private captionTokens(index: number): Int32Array {
    if (index < 0) return new Int32Array(0);
    return this.tokens.data.subarray(this.tokens.offsets[index], this.tokens.offsets[index + 1]);
  }

  private tokenCount(index: number): number {
    return index < 0 ? 0 : this.tokens.offsets[index + 1] - this.tokens.offsets[index];
  }
}
