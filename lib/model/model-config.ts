/**
 * What defines the model: the encoder, the sizes of the embedding and of the LSTM, the vocabulary's
 * threshold. A checkpoint stores these settings and loads only into a model built with the same.
 */
import type { BackboneSpec } from "./backbone";

/** Which image encoder: the small CNN trained from scratch, or a frozen pretrained backbone. */
export type EncoderChoice =
  | { kind: "small-cnn"; inputSize: number; filters: number[] }
  | { kind: "pretrained"; backbone: BackboneSpec };

/** What defines the model. A checkpoint stores it, and refuses to load into a model with other values. */
export interface ModelConfig {
  encoder: EncoderChoice;
  /** Size of the image and word embeddings (the LSTM's input). */
  embedSize: number;
  /** Size of the LSTM's hidden state. */
  hiddenSize: number;
  numLayers: number;
  /** Dropout on the LSTM outputs while training (0 = none). */
  dropout: number;
  /** A word enters the vocabulary if it occurs at least this many times in the training captions. */
  vocabThreshold: number;
  /**
   * Weight of the auxiliary word-presence loss that teaches the encoder directly which words
   * describe the image (model/word-presence.ts); 0 = off, as in the original Show and Tell.
   */
  wordLoss: number;
}

/** The settings a checkpoint must agree with to be loaded into a model. */
export const MODEL_KEYS: (keyof ModelConfig)[] = ["encoder", "embedSize", "hiddenSize", "numLayers", "vocabThreshold"];

export function modelConfigOf(config: ModelConfig): ModelConfig {
  const { encoder, embedSize, hiddenSize, numLayers, dropout, vocabThreshold, wordLoss } = config;
  return { encoder, embedSize, hiddenSize, numLayers, dropout, vocabThreshold, wordLoss };
}
