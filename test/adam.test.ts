/**
 * Adam written out (lib/model/adam.ts) and Adam on parts of the weights (lib/train/sharded-adam.ts)
 * against tf.train.adam itself: the same bits, whatever the parts, with and without clipping, and
 * the optimizer's state (step count, βᵏ, moments) carried as applyGradients carries it
 * (lib/train/adam-state.ts).
 */
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { adamUpdate, type AdamBlock } from "../lib/model/adam";
import { clipByGlobalNorm } from "../lib/model/train-step";
import { layoutOf, readShared, writeShared } from "../lib/runtime/shared-tensors";
import { adamConstants, adamMoments, countUpdate, isAdam, setAdamMoments } from "../lib/train/adam-state";
import { adamBuffers, applyPart, clipScale, sumPart } from "../lib/train/sharded-adam";
import { shardRanges } from "../lib/train/data-parallel";

before(async () => {
  await initBackend({ log: () => {} });
});

const SHAPES = [[7, 5], [5], [3, 4, 2]];

function randomTensors(seed: number, scale = 1): tf.Tensor[] {
  return SHAPES.map((shape, i) => tf.randomNormal(shape, 0, scale, "float32", seed + i));
}

function assertSameBits(actual: tf.Tensor[], expected: tf.Tensor[], what: string): void {
  actual.forEach((t, i) => assert.deepEqual(Array.from(t.dataSync()), Array.from(expected[i].dataSync()), `${what}: tensor ${i}`));
}

/** Equal within `tolerance` (the clipping's norm is summed in another order: its last bit may differ). */
function assertClose(actual: tf.Tensor[], expected: tf.Tensor[], tolerance: number, what: string): void {
  actual.forEach((t, i) => {
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(t, expected[i]))).dataSync()[0]);
    assert.ok(diff <= tolerance, `${what}: tensor ${i} differs by ${diff}`);
  });
}

test("adamUpdate gives tf.train.adam's bits over several updates", () => {
  const variables = randomTensors(1).map((t) => tf.variable(t));
  const optimizer = tf.train.adam(0.01);
  let block: AdamBlock[] = variables.map((v) => ({ weights: tf.clone(v as tf.Tensor), firstMoment: tf.zerosLike(v), secondMoment: tf.zerosLike(v) }));
  for (let step = 0; step < 4; step++) {
    const grads = randomTensors(10 * step + 2);
    const constants = adamConstants(optimizer);
    const next = block.map((b, i) => adamUpdate(b, grads[i], constants));
    (optimizer as tf.Optimizer).applyGradients(Object.fromEntries(variables.map((v, i) => [v.name, grads[i]])));
    assertSameBits(next.map((b) => b.weights), variables, `weights after update ${step + 1}`);
    tf.dispose([...grads, ...block.flatMap((b) => [b.weights, b.firstMoment, b.secondMoment])]);
    block = next;
  }
});

for (const clipNorm of [undefined, 0.5]) {
  const what = clipNorm === undefined ? "one thread's bits (no clipping)" : "one thread's numbers to float rounding (clipped)";
  const assertSame = (actual: tf.Tensor[], expected: tf.Tensor[], label: string) =>
    clipNorm === undefined ? assertSameBits(actual, expected, label) : assertClose(actual, expected, 1e-6, label);
  test(`three threads' parts of the update give ${what}`, async () => {
    const start = randomTensors(20);
    const reference = start.map((t) => tf.variable(tf.clone(t)));
    const sharded = start.map((t) => tf.variable(tf.clone(t)));
    const optimizer = tf.train.adam(0.01);
    const shardedOptimizer = tf.train.adam(0.01);
    const layout = layoutOf(sharded);
    const buffers = adamBuffers(layout, 3);
    let current = 0;
    for (let step = 0; step < 3; step++) {
      const shards = [0, 1, 2].map((k) => randomTensors(100 * step + 10 * k, 0.3)); // three shards' gradients
      // One thread: the shards summed in order, clipped, tf.train.adam.
      const summed = Object.fromEntries(reference.map((v, i) => [v.name, tf.add(tf.add(shards[0][i], shards[1][i]), shards[2][i])]));
      const clipped = clipNorm === undefined ? summed : clipByGlobalNorm(summed, clipNorm);
      (optimizer as tf.Optimizer).applyGradients(clipped);
      // Three parts of the flat weights, as data-parallel.ts runs them.
      shards.forEach((grads, k) => writeShared(buffers.grads[k], layout, grads));
      writeShared(buffers.weights, layout, sharded);
      const parts = shardRanges(layout.length, 3);
      const scale = clipScale(parts.map((part) => sumPart(buffers, part)), clipNorm);
      const constants = adamConstants(shardedOptimizer);
      parts.forEach((part) => applyPart(buffers, { part, scale, constants, current }));
      sharded.forEach((v, i) => v.assign(readShared(buffers.weights, layout, i)));
      current = 1 - current;
      countUpdate(shardedOptimizer);
      assertSame(sharded, reference, `weights after step ${step + 1}`);
      tf.dispose([...shards.flat(), ...Object.values(summed), ...(clipped === summed ? [] : Object.values(clipped))]);
    }
    // The moments, copied into the optimizer as a checkpoint would save them, are tf.train.adam's.
    const [first, second] = buffers.moments[current].map((b) => sharded.map((_, i) => readShared(b, layout, i)));
    await setAdamMoments(shardedOptimizer, sharded.map((v) => v.name), first, second);
    const expected = await adamMoments(optimizer);
    const actual = await adamMoments(shardedOptimizer);
    assertSame(actual.first, expected.first, "first moments");
    assertSame(actual.second, expected.second, "second moments");
    assert.equal(shardedOptimizer.iterations, optimizer.iterations);
    assert.deepEqual(adamConstants(shardedOptimizer), adamConstants(optimizer), "βᵏ carried as running float32 products");
  });
}

test("isAdam tells tf.train.adam from the other optimizers (instanceof does not)", () => {
  assert.ok(isAdam(tf.train.adam(0.1)));
  assert.ok(!isAdam(tf.train.sgd(1)) && !isAdam(tf.train.adagrad(0.1)));
  assert.ok(tf.train.sgd(1) instanceof tf.AdamOptimizer, "tfjs's Symbol.hasInstance, which isAdam works around");
});

test("a gradient that is not finite stops the update with a clear message", () => {
  assert.throws(() => clipScale([1, NaN], 5), /gradient norm is NaN: training diverged/);
  assert.equal(clipScale([9, 16], 10), 1, "a norm of 5 under the clip norm 10 is not scaled");
  assert.equal(clipScale([9, 16], 1), 1 / 5);
  assert.equal(clipScale([1e12], undefined), 1, "no clip norm: no scaling");
});
