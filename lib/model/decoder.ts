/**
 * The Show and Tell decoder (Vinyals et al. 2015): a word embedding, an LSTM and a linear layer
 * to the vocabulary.
 *
 * The image embedding is the LSTM's first input; then come <start> and the caption's words
 * (teacher forcing). For the tokens [<start>, w1, ..., wn, <end>] the inputs per step are
 *
 *   step:    0        1              2          ...  n+1
 *   input:   image    emb(<start>)   emb(w1)    ...  emb(wn)
 *   target:  (none)   w1             w2         ...  <end>
 *
 * so a caption of `length` tokens runs `length` steps and scores the last `length − 1` outputs.
 * The LSTM starts from the zero state. Dropout (training only) is applied to the LSTM's outputs
 * before the output layer, and between LSTM layers.
 *
 * Two LSTMs compute the same numbers on the same weights (as nanoGPT keeps its attention written
 * out beside the flash kernel): the fast one, lstm-fused.ts, which everything runs by default,
 * and the textbook one, lstm.ts, its gate equations left to autodiff, for reading and checking
 * (`forward(..., { lstm: "textbook" })`).
 */
import * as tf from "@tensorflow/tfjs";
import { logSoftmax } from "./loss";
import { lstmRun, rowDropout, type BatchRows, type LSTMState } from "./lstm";
import { FusedLSTM } from "./lstm-fused";

export interface DecoderConfig {
  vocabSize: number;
  embedSize: number;
  hiddenSize: number;
  numLayers: number;
  /** Dropout rate in training, 0 for none. */
  dropout: number;
}

export interface DecoderOptions {
  /** Prefix of the variable names (`decoder/embedding`, ...). Two live decoders need different names. */
  name?: string;
  /** Seed of the weight initialisation. */
  seed?: number;
}

export interface ForwardOptions {
  /** Training mode applies dropout. */
  training?: boolean;
  /** Seed of the dropout masks, to make a training step repeatable (e.g. on resume). */
  seed?: number;
  /** Which LSTM computes the pass: "fast" (lstm-fused.ts, the default) or "textbook" (lstm.ts); same numbers. */
  lstm?: "fast" | "textbook";
  /**
   * This batch is rows `offset ..` of a larger batch of `total` rows (a shard of a data-parallel
   * step, lib/train/data-parallel.ts): the dropout masks are the whole batch's, so each row is
   * dropped as it would be unsharded. Omitted: the batch is whole.
   */
  rows?: BatchRows;
}

export class DecoderRNN {
  readonly config: DecoderConfig;
  readonly embedding: tf.Variable; // [vocab, embed]
  readonly lstm: FusedLSTM;
  readonly outputKernel: tf.Variable; // [hidden, vocab]
  readonly outputBias: tf.Variable; // [vocab]

  constructor(config: DecoderConfig, options: DecoderOptions = {}) {
    checkConfig(config);
    const name = options.name ?? "decoder";
    const seed = options.seed ?? 1;
    this.config = { ...config };
    const { vocabSize, embedSize, hiddenSize } = config;
    // Uniform(-0.1, 0.1) for the embedding and the output layer, as in the PyTorch original.
    // tidy frees the initial values; the variables it returns are kept.
    [this.embedding, this.outputKernel, this.outputBias] = tf.tidy(() => [
      tf.variable(tf.randomUniform([vocabSize, embedSize], -0.1, 0.1, "float32", seed), true, `${name}/embedding`),
      tf.variable(tf.randomUniform([hiddenSize, vocabSize], -0.1, 0.1, "float32", seed + 2), true, `${name}/output/kernel`),
      tf.variable(tf.zeros([vocabSize]), true, `${name}/output/bias`),
    ]);
    this.lstm = new FusedLSTM({ inputSize: embedSize, hiddenSize, numLayers: config.numLayers }, `${name}/lstm`, seed + 100);
  }

  /** Every weight, each a tf.Variable whose `name` is stable across runs: what a checkpoint saves. */
  get variables(): tf.Variable[] {
    return [this.embedding, ...this.lstm.variables, this.outputKernel, this.outputBias];
  }

  /**
   * Teacher-forced pass over whole captions (differentiable; the training path).
   *
   *   imageEmbedding: [batch, embed]
   *   tokens:         [batch, length] int32, [<start>, w1, ..., wn, <end>, padding...]
   *   returns logits  [batch, length − 1, vocab], scored against tokens[:, 1:]
   */
  forward(imageEmbedding: tf.Tensor2D, tokens: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    const [batch, length] = tokens.shape;
    const { embedSize, hiddenSize, vocabSize, dropout } = this.config;
    if (imageEmbedding.shape[0] !== batch || imageEmbedding.shape[1] !== embedSize) {
      throw new Error(`decoder.ts: image embedding must be [${batch}, ${embedSize}], got [${imageEmbedding.shape}]`);
    }
    if (length < 2) throw new Error(`decoder.ts: a caption needs at least <start> and <end>, got length ${length}`);
    const rate = options.training ? dropout : 0;
    return tf.tidy(() => {
      // Time-major word inputs: the tokens except the last, looked up as [length − 1, batch, embed].
      const inputIds = tf.transpose(tf.slice(tokens, [0, 0], [batch, length - 1])); // [length − 1, batch]
      const words = tf.gather(this.embedding, inputIds) as tf.Tensor3D; // [length − 1, batch, embed]
      const inputs = tf.concat([tf.expandDims(imageEmbedding, 0), words], 0) as tf.Tensor3D; // [length, batch, embed]
      // All steps through the LSTM: the fast one, or the textbook one (lstmRun → lstmCell, in lstm.ts).
      const hs = options.lstm === "textbook" // [length, batch, hidden]
        ? lstmRun(this.lstm.layers, inputs, rate, options.seed, options.rows)
        : this.lstm.run(inputs, rate, options.seed, options.rows);
      // Step 0 (the image) predicts nothing; steps 1..length−1 predict tokens 1..length−1.
      let outputs: tf.Tensor = tf.slice(hs, [1, 0, 0], [length - 1, batch, hiddenSize]); // [length − 1, batch, hidden]
      if (rate > 0) outputs = rowDropout(outputs as tf.Tensor3D, rate, options.seed, options.rows);
      outputs = tf.transpose(outputs, [1, 0, 2]); // [batch, length − 1, hidden]
      // One output product for all steps: [batch·(length − 1), hidden] x [hidden, vocab].
      const logits = this.project(tf.reshape(outputs, [batch * (length - 1), hiddenSize]) as tf.Tensor2D);
      return tf.reshape(logits, [batch, length - 1, vocabSize]) as tf.Tensor3D;
    });
  }

  /** Word embeddings of token ids: [rows] int32 → [rows, embed]. */
  embed(ids: tf.Tensor1D): tf.Tensor2D {
    return tf.gather(this.embedding, ids) as tf.Tensor2D;
  }

  /**
   * Feeds the image embedding from the zero state (step 0 when sampling). Its output is not
   * scored, as in training, so only the state is returned.
   *
   *   imageEmbedding: [batch, embed] → state of [batch, hidden] tensors
   */
  start(imageEmbedding: tf.Tensor2D): LSTMState {
    return tf.tidy(() => this.lstm.step(imageEmbedding, null).state);
  }

  /**
   * One step of sampling, shared by greedy and beam search: the next word's log-probabilities.
   *
   *   input: [rows, embed] (a word embedding), state → { logProbs [rows, vocab], state }
   */
  step(input: tf.Tensor2D, state: LSTMState): { logProbs: tf.Tensor2D; state: LSTMState } {
    return tf.tidy(() => {
      const { output, state: next } = this.lstm.step(input, state);
      return { logProbs: logSoftmax(this.project(output)), state: next };
    });
  }

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(this.variables);
  }

  /** The output layer: [rows, hidden] → logits [rows, vocab]. */
  private project(hidden: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(hidden, this.outputKernel), this.outputBias) as tf.Tensor2D;
  }
}

/** Validates a config, naming the field that is wrong. */
function checkConfig(config: DecoderConfig): void {
  for (const key of ["vocabSize", "embedSize", "hiddenSize", "numLayers"] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 1) {
      throw new Error(`decoder.ts: config.${key} must be a positive integer, got ${config[key]}`);
    }
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    throw new Error(`decoder.ts: config.dropout must be in [0, 1), got ${config.dropout}`);
  }
}
