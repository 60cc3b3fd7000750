import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Random } from "../lib/data/random";
import { LengthBucketSampler, PaddedSampler, SequentialSampler, lengthBuckets } from "../lib/data/batch-sampler";

const VAL2017 = path.resolve(__dirname, "../../shared/coco-sample/annotations/captions_val2017_text_only.json");
const skipCoco = fs.existsSync(VAL2017) ? undefined : "../shared/coco-sample not found";

/** `count` captions of each length, shuffled together. */
function lengthsFrom(counts: Record<number, number>, seed = 0): number[] {
  const lengths = Object.entries(counts).flatMap(([length, n]) => new Array<number>(n).fill(Number(length)));
  return new Random(seed).shuffle(lengths);
}

/**
 * Chi-square upper critical value at p = 0.001 for `dof` degrees of freedom
 * (Wilson-Hilferty approximation, accurate to about 1% here).
 */
function chiSquareCritical(dof: number): number {
  const z = 3.0902; // standard normal quantile at 0.999
  const a = 2 / (9 * dof);
  return dof * (1 - a + z * Math.sqrt(a)) ** 3;
}

/**
 * Chi-square goodness of fit of the batch lengths drawn by `nextBatch` to the caption-length
 * frequencies of `lengths` (bins with fewer than 5 expected merged); also checks that each
 * batch has a single length.
 */
function lengthFit(lengths: number[], nextBatch: () => number[], batches: number) {
  const observed = new Map<number, number>();
  for (let b = 0; b < batches; b++) {
    const batch = nextBatch();
    const length = lengths[batch[0]];
    assert.ok(batch.every((i) => lengths[i] === length), `batch ${b} mixes lengths`);
    observed.set(length, (observed.get(length) ?? 0) + 1);
  }
  let chi2 = 0;
  let bins = 0;
  let restExpected = 0;
  let restObserved = 0;
  for (const [length, captions] of lengthBuckets(lengths)) {
    const expected = (batches * captions.length) / lengths.length;
    const seen = observed.get(length) ?? 0;
    if (expected < 5) {
      restExpected += expected;
      restObserved += seen;
    } else {
      chi2 += (seen - expected) ** 2 / expected;
      bins++;
    }
  }
  if (restExpected > 0) {
    chi2 += (restObserved - restExpected) ** 2 / restExpected;
    bins++;
  }
  return { chi2, critical: chiSquareCritical(bins - 1) };
}

test("length sampler: every batch has one length; lengths follow the data's frequencies", () => {
  const lengths = lengthsFrom({ 5: 500, 8: 300, 12: 150, 20: 50 });
  const sampler = new LengthBucketSampler(lengths, 16, new Random(1));
  const fit = lengthFit(lengths, () => sampler.next(), 4000);
  assert.ok(fit.chi2 < fit.critical, `chi-square ${fit.chi2.toFixed(1)} ≥ ${fit.critical.toFixed(1)}`);

  // The test has power: a sampler that picks lengths uniformly (ignoring counts) fails it.
  const buckets = [...lengthBuckets(lengths).values()];
  const rng = new Random(1);
  const uniform = lengthFit(lengths, () => rng.choice(buckets).slice(0, 16), 4000);
  assert.ok(uniform.chi2 > uniform.critical, `uniform lengths passed: chi-square ${uniform.chi2.toFixed(1)}`);
});

test("length sampler on real COCO caption lengths (24.5k captions)", { skip: skipCoco }, () => {
  const { annotations } = JSON.parse(fs.readFileSync(VAL2017, "utf8")) as { annotations: { caption: string }[] };
  const lengths = annotations.map((a) => a.caption.trim().split(/\s+/).length);
  assert.ok(lengthBuckets(lengths).size > 10);
  const sampler = new LengthBucketSampler(lengths, 32, new Random(3));
  const fit = lengthFit(lengths, () => sampler.next(), 5000);
  assert.ok(fit.chi2 < fit.critical, `chi-square ${fit.chi2.toFixed(1)} ≥ ${fit.critical.toFixed(1)}`);
});

test("length sampler draws within a length with replacement, covering the bucket", () => {
  const lengths = lengthsFrom({ 3: 3, 9: 1000 });
  const sampler = new LengthBucketSampler(lengths, 8, new Random(4));
  const seen = new Set<number>();
  let duplicates = false;
  for (let b = 0; b < 2000; b++) {
    const batch = sampler.next();
    assert.equal(batch.length, 8);
    if (lengths[batch[0]] !== 3) continue;
    batch.forEach((i) => seen.add(i));
    if (new Set(batch).size < batch.length) duplicates = true;
  }
  assert.equal(seen.size, 3, "all three captions of length 3 should appear");
  assert.ok(duplicates, "8 draws from 3 captions must repeat some: sampling is with replacement");
});

test("length sampler: same seed → same batches; state() restores the exact sequence", () => {
  const lengths = lengthsFrom({ 4: 40, 6: 60, 7: 30 });
  const run = (seed: number) => {
    const sampler = new LengthBucketSampler(lengths, 5, new Random(seed));
    return Array.from({ length: 30 }, () => sampler.next());
  };
  assert.deepEqual(run(11), run(11));
  assert.notDeepEqual(run(12), run(11));

  const sampler = new LengthBucketSampler(lengths, 5, new Random(11));
  for (let i = 0; i < 10; i++) sampler.next();
  const saved = JSON.parse(JSON.stringify(sampler.state()));
  const expected = Array.from({ length: 10 }, () => sampler.next());
  const resumed = new LengthBucketSampler(lengths, 5, new Random(999));
  resumed.setState(saved);
  assert.deepEqual(Array.from({ length: 10 }, () => resumed.next()), expected);
  assert.equal(resumed.batchesPerEpoch, Math.ceil(130 / 5));
  assert.throws(() => resumed.setState({ kind: "sequential", position: 0 }), /"sequential" sampler's state/);
});

test("padded sampler: each epoch is a permutation of all captions; epochs differ", () => {
  const sampler = new PaddedSampler(23, 5, new Random(5));
  assert.equal(sampler.batchesPerEpoch, 5);
  const epochs = [0, 1].map(() => Array.from({ length: 5 }, () => sampler.next()));
  for (const batches of epochs) {
    assert.deepEqual(batches.map((b) => b.length), [5, 5, 5, 5, 3]);
    assert.deepEqual(batches.flat().sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  }
  assert.notDeepEqual(epochs[0].flat(), epochs[1].flat());
  assert.notDeepEqual(epochs[0].flat(), Array.from({ length: 23 }, (_, i) => i), "not shuffled");
});

test("padded sampler: state restores mid-epoch and across the epoch boundary", () => {
  for (const steps of [0, 2, 5, 7]) {
    const sampler = new PaddedSampler(23, 5, new Random(6));
    for (let i = 0; i < steps; i++) sampler.next();
    const saved = JSON.parse(JSON.stringify(sampler.state()));
    const expected = Array.from({ length: 8 }, () => sampler.next());
    const resumed = new PaddedSampler(23, 5, new Random(0));
    resumed.setState(saved);
    assert.deepEqual(Array.from({ length: 8 }, () => resumed.next()), expected, `after ${steps} batches`);
  }
  const sampler = new PaddedSampler(23, 5, new Random(6));
  assert.throws(() => sampler.setState({ kind: "padded", epochRng: new Random(1).state(), position: 24, epoch: 0 }), /outside 0..23/);
});

test("sequential sampler: in order, last batch short, wraps, restores", () => {
  const sampler = new SequentialSampler(7, 3);
  assert.deepEqual([sampler.next(), sampler.next(), sampler.next(), sampler.next()], [[0, 1, 2], [3, 4, 5], [6], [0, 1, 2]]);
  const saved = sampler.state();
  const resumed = new SequentialSampler(7, 3);
  resumed.setState(saved);
  assert.deepEqual(resumed.next(), [3, 4, 5]);
  assert.throws(() => new SequentialSampler(0, 3), /at least one/);
  assert.throws(() => new SequentialSampler(5, 0), /batchSize/);
});
