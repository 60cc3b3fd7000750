/**
 * The `caption` figures: greedy and beam-3 captioning of a batch of images, ms per image, with the
 * original's decoder (train-step.ts's ORIGINAL_CONFIG). The weights are untrained, so captions
 * rarely end early: close to the worst case of `maxLength` steps.
 */
import * as tf from "@tensorflow/tfjs";
import { beamSearchCaptions } from "../../lib/inference/beam-search";
import { greedyCaptions } from "../../lib/inference/greedy";
import { DecoderRNN } from "../../lib/model/decoder";
import { interleaved, round } from "./timing";
import { ORIGINAL_CONFIG } from "./train-step";

const CAPTION_BATCH = 16;
/** The longest caption decoding writes, in tokens; the self-critical benchmark samples to it too. */
export const MAX_CAPTION_LENGTH = 20;

/** The `caption` figures: greedy and beam-3 over one batch of image embeddings. */
export function benchCaption(backend: string, repeats: number): Record<string, unknown> {
  const { vocab, embed, hidden } = ORIGINAL_CONFIG;
  const decoder = new DecoderRNN({ vocabSize: vocab, embedSize: embed, hiddenSize: hidden, numLayers: 1, dropout: 0 });
  const images = tf.randomNormal([CAPTION_BATCH, embed], 0, 1, "float32", 9) as tf.Tensor2D;
  const text = { clean: (ids: number[]) => ids.join(" ") };
  const options = { maxLength: MAX_CAPTION_LENGTH };
  const reps = Math.max(1, Math.ceil(repeats / 2)); // a batch of captions takes seconds: fewer rounds
  const [greedyT, beamT] = interleaved(
    [{ run: () => void greedyCaptions(decoder, images, text, options) }, { run: () => void beamSearchCaptions(decoder, images, text, { ...options, beamSize: 3 }) }],
    reps,
  );
  images.dispose();
  decoder.dispose();
  return {
    name: "caption",
    backend,
    batch: CAPTION_BATCH,
    max_length: MAX_CAPTION_LENGTH,
    greedy_ms_per_image: round(greedyT.ms / CAPTION_BATCH, 1),
    beam3_ms_per_image: round(beamT.ms / CAPTION_BATCH, 1),
  };
}
