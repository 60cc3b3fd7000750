/**
 * The `synthetic_step` figures: one training step of the embedded synthetic default
 * (SYNTHETIC_CONFIG: the small CNN trained jointly with the decoder and the word-presence head,
 * batch 32, captions of 14 tokens, the synthetic vocabulary's size): `ms`, and `encoder_ms`, the
 * CNN and its linear layer alone (forward and backward). On wasm, `native_kernels_ms` is the same
 * step with tfjs's own kernels in place of those that lib/runtime/wasm-replaced-kernels.ts
 * replaces, timed in the same run, and `speedup_from_kernels` their ratio.
 */
import * as tf from "@tensorflow/tfjs";
import { DecoderRNN } from "../../lib/model/decoder";
import { EncoderCNN } from "../../lib/model/encoder";
import { SmallCNN } from "../../lib/model/small-cnn";
import { trainStep } from "../../lib/model/train-step";
import { WordPresenceHead } from "../../lib/model/word-presence";
import { registerWasmKernels, restoreOriginalWasmKernels } from "../../lib/runtime/wasm-kernels";
import { SYNTHETIC_CONFIG } from "../../lib/train/config";
import { interleaved, round, type Timed } from "./timing";

/** The synthetic default's sizes that the config does not fix: its vocabulary and a typical caption length. */
const SYNTHETIC_VOCAB = 56;
const SYNTHETIC_LENGTH = 14;

/** The `synthetic_step` figures: the default's whole step (CNN + decoder + word loss) and its encoder part. */
export function benchSyntheticStep(backend: string, repeats: number): Record<string, unknown> {
  const config = SYNTHETIC_CONFIG;
  if (config.encoder.kind !== "small-cnn") throw new Error("scripts/bench/synthetic-step.ts: the synthetic default is expected to use the small CNN");
  const { inputSize, filters } = config.encoder;
  const batch = config.batchSize;
  const encoder = new EncoderCNN(new SmallCNN({ inputSize, filters, name: "bench/cnn" }), { embedSize: config.embedSize, name: "bench/encoder" });
  const decoder = new DecoderRNN(
    { vocabSize: SYNTHETIC_VOCAB, embedSize: config.embedSize, hiddenSize: config.hiddenSize, numLayers: config.numLayers, dropout: config.dropout },
    { name: "bench/decoder" },
  );
  const head = new WordPresenceHead(config.embedSize, SYNTHETIC_VOCAB, "bench/words");
  const [images, tokens, mask, words] = tf.tidy(() => [
    tf.randomNormal([batch, inputSize, inputSize, 3], 0, 1, "float32", 10) as tf.Tensor4D,
    tf.randomUniform([batch, SYNTHETIC_LENGTH], 3, SYNTHETIC_VOCAB, "int32", 11) as tf.Tensor2D,
    tf.ones([batch, SYNTHETIC_LENGTH]) as tf.Tensor2D,
    tf.cast(tf.greater(tf.randomUniform([batch, SYNTHETIC_VOCAB], 0, 1, "float32", 12), 0.8), "float32") as tf.Tensor2D,
  ]);
  const optimizer = tf.train.adam(config.learningRate);
  const step: Timed = {
    run: () =>
      void trainStep({
        decoder,
        embedImages: () => encoder.apply(images, true),
        encoderVariables: encoder.trainableVariables,
        tokens,
        mask,
        optimizer,
        clipNorm: config.clipNorm,
        auxiliaryLoss: { weight: config.wordLoss, variables: head.variables, loss: (e) => head.loss(e, words) },
      }),
  };
  const encoderOnly: Timed = {
    run: () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(encoder.apply(images, true)) as tf.Scalar, encoder.trainableVariables);
      value.dataSync();
      tf.dispose([value, grads]);
    },
  };
  const [stepT, encoderT] = interleaved([step, encoderOnly], repeats);
  const result: Record<string, unknown> = {
    name: "synthetic_step",
    backend,
    config: { batch, inputSize, filters, embed: config.embedSize, hidden: config.hiddenSize, vocab: SYNTHETIC_VOCAB, length: SYNTHETIC_LENGTH },
    ms: round(stepT.ms),
    encoder_ms: round(encoderT.ms),
  };
  if (backend === "wasm") {
    restoreOriginalWasmKernels();
    try {
      const [nativeT] = interleaved([step], repeats);
      Object.assign(result, { native_kernels_ms: round(nativeT.ms), speedup_from_kernels: round(nativeT.ms / stepT.ms, 2) });
    } finally {
      registerWasmKernels();
    }
  }
  tf.dispose([images, tokens, mask, words]);
  optimizer.dispose();
  [encoder, decoder, head].forEach((m) => m.dispose());
  return result;
}
