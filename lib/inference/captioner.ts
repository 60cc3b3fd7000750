/**
 * The whole model in one object: the encoder, the decoder and the vocabulary they share.
 *
 *   image file ──transform──▶ pixels [batch, S, S, 3] ──encoder──▶ [batch, embed] ──decoder──▶ caption
 *
 * It knows how to caption image files (greedy or beam search), and how to save itself as a
 * checkpoint and come back from one.
 */
import * as tf from "@tensorflow/tfjs";
import { type ModelConfig, MODEL_KEYS, modelConfigOf } from "../model/model-config";
import {
  assertSameConfig,
  readCheckpointMeta,
  readCheckpointVocabulary,
  resolveCheckpoint,
  restoreVariables,
  saveCheckpoint,
} from "../io/checkpoint";
import { EncoderCNN } from "../model/encoder";
import { hasModelCard, isModelFolder, modelFolderParts, readModelCard } from "./model-folder";
import { PretrainedBackbone, transformFor, type Backbone } from "../model/backbone";
import { DecoderRNN } from "../model/decoder";
import { SmallCNN } from "../model/small-cnn";
import { WordPresenceHead } from "../model/word-presence";
import { danglingWordIds, greedyCaptions, type Caption } from "./greedy";
import { beamSearchCaptions } from "./beam-search";
import { transformImage, type TransformConfig } from "../data/transforms";
import { assertSameVocabulary, Vocabulary, type VocabularyJSON } from "../data/vocabulary";

export interface CaptionOptions {
  /** 1 = greedy decoding; k > 1 = beam search with k hypotheses. */
  beamSize?: number;
  maxLength?: number;
  /** Length normalisation of beam search (see lib/inference/beam-search.ts). */
  alpha?: number;
  /** Let captions contain `<unk>` (by default it is masked out: lib/inference/greedy.ts). */
  allowUnk?: boolean;
  /** Never end a caption on "a", "the", "in"... (DANGLING_WORDS in lib/inference/greedy.ts). */
  noDanglingEnd?: boolean;
}

/** Counts models made in this process: each gets its own variable-name scope (see `create`). */
let modelsCreated = 0;

export class Captioner {
  /**
   * How this model captions files when the caller does not say: a model folder's card gives the
   * beam search chosen on its dev split (card.json → beam); any other model decodes greedily.
   */
  decoding: CaptionOptions = { beamSize: 1 };

  private constructor(
    readonly config: ModelConfig,
    readonly vocab: Vocabulary,
    readonly encoder: EncoderCNN,
    readonly decoder: DecoderRNN,
    /** The auxiliary word-presence head (training only), or null when config.wordLoss is 0. */
    readonly wordHead: WordPresenceHead | null,
    /** Prefix of this model's variable names, left out of the names saved in checkpoints. */
    private readonly scope: string,
  ) {}

  /**
   * A new model with freshly initialised weights (the pretrained backbone is loaded, or downloaded once).
   *
   * tfjs wants every live variable's name to be unique, so each model's names start with its own
   * scope (`model3/decoder/embedding`): re-running a notebook cell that creates a model works while
   * the previous one is still alive. Checkpoints store the names without the scope.
   */
  static async create(config: ModelConfig, vocab: Vocabulary, seed = 1): Promise<Captioner> {
    const scope = `model${++modelsCreated}`;
    const backbone = await createBackbone(config, seed, `${scope}/encoder/cnn`);
    const encoder = new EncoderCNN(backbone, { embedSize: config.embedSize, seed: seed + 1, name: `${scope}/encoder` });
    const decoder = new DecoderRNN(
      { vocabSize: vocab.size, embedSize: config.embedSize, hiddenSize: config.hiddenSize, numLayers: config.numLayers, dropout: config.dropout },
      { seed: seed + 2, name: `${scope}/decoder` },
    );
    const wordHead = config.wordLoss > 0 ? new WordPresenceHead(config.embedSize, vocab.size, `${scope}/word_presence`, seed + 3) : null;
    return new Captioner(modelConfigOf(config), vocab, encoder, decoder, wordHead, scope);
  }

  /**
   * Loads a checkpoint: a checkpoint folder, a run folder (its latest checkpoint, or with
   * `which: "best"` the best by val CIDEr), or a shipped model folder (lib/inference/model-folder.ts). With
   * `expected`, a checkpoint made with another model configuration is refused.
   */
  static async load(where: string, expected?: ModelConfig, which: "latest" | "best" = "latest"): Promise<Captioner> {
    const shipped = isModelFolder(where) ? modelFolderParts(where) : undefined;
    const dir = shipped?.checkpoint ?? resolveCheckpoint(where, which);
    const meta = readCheckpointMeta<ModelConfig>(dir);
    const config = shipped?.config ?? meta.config;
    if (expected) assertSameConfig(dir, modelConfigOf(config), modelConfigOf(expected), MODEL_KEYS);
    const vocab = Vocabulary.fromJSON(readCheckpointVocabulary(dir) as VocabularyJSON, `${dir}/vocabulary.json`);
    assertSameVocabulary(meta.vocabularyFingerprint, vocab, dir);
    const model = await Captioner.create(config, vocab);
    await restoreVariables(dir, model.variables, model.savedName);
    if (shipped && hasModelCard(where)) {
      const { beam } = readModelCard(where);
      model.decoding = { beamSize: beam.size, alpha: beam.alpha, noDanglingEnd: beam.noDanglingEnd ?? false };
    }
    return model;
  }

  /** Every weight a checkpoint saves: what training updates, and batch norm's running statistics (a frozen backbone's are not among them). */
  get variables(): tf.Variable[] {
    return [
      ...this.encoder.trainableVariables,
      ...this.encoder.stateVariables,
      ...this.decoder.variables,
      ...(this.wordHead?.variables ?? []),
    ];
  }

  /** A variable's name in checkpoints: without this model's scope. */
  readonly savedName = (v: tf.Variable): string => v.name.slice(this.scope.length + 1);

  get backbone(): Backbone {
    return this.encoder.backbone;
  }

  /** The image transform this model expects: centre crop for evaluation, random crop (+ flip) to train. */
  transform(train = false, flip = false): TransformConfig {
    return transformFor(this.backbone, { train, flip: train && flip });
  }

  /**
   * Image data of a batch → embeddings [batch, embed]. The data is either pixels
   * [batch, S, S, 3] (run the whole encoder) or cached backbone features [batch, featureDim].
   * `training` normalises with the batch's statistics (and updates the running ones).
   */
  embed(images: tf.Tensor, training = false): tf.Tensor2D {
    return images.rank === 4
      ? this.encoder.apply(images as tf.Tensor4D, training)
      : this.encoder.embed(images as tf.Tensor2D, training);
  }

  /** Captions for a batch of image data (pixels or features, as `embed` takes). */
  captionBatch(images: tf.Tensor, options: CaptionOptions = {}): Caption[] {
    const embedding = this.embed(images);
    try {
      const { beamSize = 1, maxLength, alpha, allowUnk } = options;
      const noEndAfter = options.noDanglingEnd ? danglingWordIds(this.vocab) : undefined;
      return beamSize > 1
        ? beamSearchCaptions(this.decoder, embedding, this.vocab, { beamSize, maxLength, alpha, allowUnk, noEndAfter })
        : greedyCaptions(this.decoder, embedding, this.vocab, { maxLength, allowUnk, noEndAfter });
    } finally {
      embedding.dispose();
    }
  }

  /**
   * Captions for image files (any format sharp reads), in batches of `batchSize`; an unreadable
   * file fails the call. Decoding settings not given are the model's own (`decoding`).
   */
  async captionFiles(files: string[], options: CaptionOptions & { batchSize?: number } = {}): Promise<Caption[]> {
    const captions: Caption[] = [];
    await this.captionEachFile(files, options, (index, caption) => (captions[index] = caption));
    return captions;
  }

  /**
   * Captions image files in batches of `batchSize` (default 16), calling `onCaption` for each in
   * order, decoding with the model's own settings (`decoding`) where `options` gives none. A file
   * that cannot be read goes to `onError` and its batch goes on without it; without `onError`, the
   * first such file (in order) fails the call, with an error that names it.
   */
  async captionEachFile(
    files: string[],
    options: CaptionOptions & { batchSize?: number },
    onCaption: (index: number, caption: Caption) => void,
    onError?: (index: number, error: Error) => void,
  ): Promise<void> {
    const transform = this.transform(false);
    const size = transform.crop;
    const batchSize = options.batchSize ?? 16;
    const decoding = { ...this.decoding, ...definedOnly(options) };
    for (let start = 0; start < files.length; start += batchSize) {
      const chunk = files.slice(start, start + batchSize);
      const decoded = await Promise.allSettled(chunk.map((file) => transformImage(file, transform)));
      const good: number[] = []; // indices into `files` of the images that decoded
      decoded.forEach((d, i) => {
        if (d.status === "fulfilled") good.push(start + i);
        else if (onError) onError(start + i, d.reason as Error);
        else throw d.reason;
      });
      if (good.length === 0) continue;
      const pixels = good.map((index) => (decoded[index - start] as PromiseFulfilledResult<Float32Array>).value);
      const images = tf.tensor4d(concat(pixels), [good.length, size, size, 3]); // [batch, S, S, 3]
      try {
        this.captionBatch(images, decoding).forEach((caption, row) => onCaption(good[row], caption));
      } finally {
        images.dispose();
      }
    }
  }

  /** Saves the model (and optionally the optimizer and training state) as `<checkpointsDir>/<label>`. */
  async save(checkpointsDir: string, label: string, extra: { config?: unknown; state?: unknown; optimizer?: tf.Optimizer; keep?: number } = {}) {
    return saveCheckpoint(checkpointsDir, {
      label,
      config: extra.config ?? this.config,
      state: extra.state ?? {},
      vocabulary: this.vocab,
      variables: this.variables,
      nameOf: this.savedName,
      optimizer: extra.optimizer,
      keep: extra.keep,
    });
  }

  dispose(): void {
    this.encoder.dispose();
    this.decoder.dispose();
    this.wordHead?.dispose();
  }
}

async function createBackbone(config: ModelConfig, seed: number, name: string): Promise<Backbone> {
  const { encoder } = config;
  if (encoder.kind === "small-cnn") return new SmallCNN({ inputSize: encoder.inputSize, filters: encoder.filters, seed, name });
  return PretrainedBackbone.load(encoder.backbone);
}

/** The entries of `options` that are set: an option given as undefined does not replace a default. */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** Joins equal-length arrays into one. */
export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
