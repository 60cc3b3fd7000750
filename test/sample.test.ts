/**
 * Greedy decoding and beam search: they stop where they should, their log-probabilities agree
 * with the training path, beam search with k = 1 is greedy decoding, batching changes nothing,
 * and on a decoder that has learned four captions both give those captions back.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { DecoderRNN } from "../lib/model/decoder";
import { logSoftmax } from "../lib/model/loss";
import { trainStep } from "../lib/model/train-step";
import { Caption, greedyCaptions } from "../lib/inference/greedy";
import { beamSearchCaptions } from "../lib/inference/beam-search";
import { END, START, Vocabulary } from "../lib/data/vocabulary";

const CAPTIONS = [
  "a red circle",
  "two blue squares on a green background",
  "a small yellow star left of a large purple triangle",
  "one white square",
];
const EMBED = 16;

let vocab: Vocabulary;
let images: tf.Tensor2D; // [4, EMBED]: one made-up image embedding per caption
let novel: tf.Tensor2D; // [6, EMBED]: embeddings it has not seen; its captions for them vary in length
let trained: DecoderRNN; // has learned CAPTIONS[i] for images[i]

/** The captions as [<start>, words..., <end>], padded with <end>, and their mask. */
function captionBatch(captions: string[]) {
  const encoded = captions.map((c) => vocab.encode(c));
  const length = Math.max(...encoded.map((ids) => ids.length));
  const padded = encoded.map((ids) => [...ids, ...Array(length - ids.length).fill(END)]);
  const mask = encoded.map((ids) => Array.from({ length }, (_, j) => (j < ids.length ? 1 : 0)));
  return { tokens: tf.tensor2d(padded, undefined, "int32"), mask: tf.tensor2d(mask) };
}

/** The log-probability of `tokens` after <start> for image `row`, by the teacher-forced training path. */
function teacherForcedLogProb(decoder: DecoderRNN, embeddings: tf.Tensor2D, row: number, tokens: number[]): number {
  return tf.tidy(() => {
    const image = tf.slice(embeddings, [row, 0], [1, EMBED]);
    const logits = decoder.forward(image, tf.tensor2d([[START, ...tokens]], undefined, "int32")); // [1, n, vocab]
    const logProbs = logSoftmax(tf.reshape(logits, [tokens.length, -1]) as tf.Tensor2D).arraySync();
    return tokens.reduce((sum, id, t) => sum + logProbs[t][id], 0);
  });
}

before(async () => {
  await initBackend();
  vocab = Vocabulary.build(CAPTIONS, { threshold: 1 });
  images = tf.randomNormal([4, EMBED], 0, 1, "float32", 1) as tf.Tensor2D;
  novel = tf.randomNormal([6, EMBED], 0, 1, "float32", 2) as tf.Tensor2D;
  trained = new DecoderRNN({ vocabSize: vocab.size, embedSize: EMBED, hiddenSize: 32, numLayers: 1, dropout: 0 }, { name: "sample-trained" });
  const { tokens, mask } = captionBatch(CAPTIONS);
  const optimizer = tf.train.adam(0.03);
  for (let step = 0; step < 120; step++) trainStep({ decoder: trained, embedImages: () => images, tokens, mask, optimizer, clipNorm: 5 });
  tf.dispose([tokens, mask]);
  optimizer.dispose();
});

after(() => {
  trained.dispose();
  tf.dispose([images, novel]);
});

/** A decoder that has learned nothing; `endBias` shifts the logit of <end> (very negative: it never ends). */
function untrained(name: string, endBias: number): DecoderRNN {
  const decoder = new DecoderRNN({ vocabSize: vocab.size, embedSize: EMBED, hiddenSize: 32, numLayers: 2, dropout: 0 }, { name, seed: 4 });
  const bias = decoder.outputBias.bufferSync();
  bias.set(endBias, END);
  decoder.outputBias.assign(bias.toTensor());
  return decoder;
}

describe("greedy decoding", () => {
  test("gives back the learned captions, with tokens ending in <end>", () => {
    const captions = greedyCaptions(trained, images, vocab);
    assert.deepEqual(
      captions.map((c) => c.caption),
      CAPTIONS,
    );
    captions.forEach((c, i) => {
      assert.deepEqual(c.tokens, vocab.encode(CAPTIONS[i]).slice(1));
      assert.ok(c.logProb < 0 && c.logProb > -1, `a learned caption is likely: ${c.logProb}`);
    });
  });

  test("its log-probability is the teacher-forced one (sampling and training paths agree)", () => {
    for (const embeddings of [images, novel]) {
      greedyCaptions(trained, embeddings, vocab, { maxLength: 10 }).forEach((c, row) => {
        const expected = teacherForcedLogProb(trained, embeddings, row, c.tokens);
        assert.ok(Math.abs(c.logProb - expected) < 1e-4, `row ${row}: ${c.logProb} vs ${expected}`);
      });
    }
  });

  test("stops at maxLength when <end> never wins, and is deterministic (zero initial state)", () => {
    const decoder = untrained("greedy-maxlength", -20);
    try {
      const first = greedyCaptions(decoder, images, vocab, { maxLength: 5 });
      for (const c of first) {
        assert.equal(c.tokens.length, 5);
        assert.ok(!c.tokens.includes(END));
        assert.equal(c.caption.split(" ").length, 5);
      }
      assert.deepEqual(greedyCaptions(decoder, images, vocab, { maxLength: 5 }), first);
    } finally {
      decoder.dispose();
    }
  });

  test("leaks no tensor", () => {
    const before = tf.memory().numTensors;
    greedyCaptions(trained, images, vocab);
    beamSearchCaptions(trained, images, vocab, { beamSize: 3 });
    assert.equal(tf.memory().numTensors, before);
  });
});

describe("beam search", () => {
  test("with k = 1 equals greedy decoding exactly", () => {
    for (const embeddings of [images, novel]) {
      for (const maxLength of [3, 8, 20]) {
        const greedy = greedyCaptions(trained, embeddings, vocab, { maxLength });
        const beam = beamSearchCaptions(trained, embeddings, vocab, { beamSize: 1, maxLength });
        assert.deepEqual(beam, greedy);
      }
    }
    // The cases are not all alike: some captions end with <end>, some are cut at maxLength.
    const novelCaptions = greedyCaptions(trained, novel, vocab, { maxLength: 8 });
    assert.ok(novelCaptions.some((c) => c.tokens.at(-1) === END) && novelCaptions.some((c) => c.tokens.at(-1) !== END));
  });

  test("with k = 3 gives back the learned captions", () => {
    assert.deepEqual(
      beamSearchCaptions(trained, images, vocab, { beamSize: 3 }).map((c) => c.caption),
      CAPTIONS,
    );
  });

  test("a batch gives what each image gives alone, and log-probs are the teacher-forced ones", () => {
    const options = { beamSize: 3, maxLength: 12, alpha: 0.7 };
    const batched = beamSearchCaptions(trained, novel, vocab, options);
    batched.forEach((c: Caption, row) => {
      const alone = beamSearchCaptions(trained, tf.slice(novel, [row, 0], [1, EMBED]), vocab, options)[0];
      assert.deepEqual(c.tokens, alone.tokens, `row ${row}`);
      assert.ok(Math.abs(c.logProb - alone.logProb) < 1e-4);
      assert.ok(Math.abs(c.logProb - teacherForcedLogProb(trained, novel, row, c.tokens)) < 1e-4);
    });
  });

  test("length normalisation: a larger alpha never picks a shorter caption, and does pick longer ones", () => {
    const lengths = (alpha: number) => beamSearchCaptions(trained, novel, vocab, { beamSize: 4, maxLength: 12, alpha }).map((c) => c.tokens.length);
    const plain = lengths(0);
    const normalised = lengths(1.5);
    plain.forEach((n, i) => assert.ok(normalised[i] >= n, `image ${i}: ${n} → ${normalised[i]}`));
    assert.ok(normalised.some((n, i) => n > plain[i]), `alpha changed nothing: ${plain}`);
  });

  test("rejects a bad beam size", () => {
    assert.throws(() => beamSearchCaptions(trained, images, vocab, { beamSize: 0 }), /beam-search\.ts: beamSize must be a positive integer/);
  });
});
