import { test } from "node:test";
import assert from "node:assert/strict";
import { Random } from "../lib/data/random";

test("xoshiro128** matches the reference sequence from state [1, 2, 3, 4]", () => {
  // First outputs of the reference C implementation (prng.di.unimi.it/xoshiro128starstar.c).
  const rng = Random.fromState({ algorithm: "xoshiro128**", s: [1, 2, 3, 4] });
  assert.deepEqual([rng.uint32(), rng.uint32(), rng.uint32()], [11520, 0, 5927040]);
});

test("same seed → same sequence; different seeds → different sequences", () => {
  const draw = (seed: number) => {
    const rng = new Random(seed);
    return Array.from({ length: 8 }, () => rng.uint32());
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(43), draw(42));
  assert.notDeepEqual(draw(2 ** 40), draw(0), "seeds differing above bit 31 must differ");
});

test("state() / setState() replays the sequence exactly, also through JSON", () => {
  const rng = new Random(7);
  for (let i = 0; i < 100; i++) rng.next();
  const saved = JSON.parse(JSON.stringify(rng.state()));
  const expected = Array.from({ length: 20 }, () => rng.next());
  rng.setState(saved);
  assert.deepEqual(Array.from({ length: 20 }, () => rng.next()), expected);
  const restored = Random.fromState(saved);
  assert.deepEqual(Array.from({ length: 20 }, () => restored.next()), expected);
});

test("setState rejects malformed states", () => {
  const rng = new Random(1);
  assert.throws(() => rng.setState({ algorithm: "xoshiro128**", s: [0, 0, 0, 0] }), /all-zero/);
  assert.throws(() => rng.setState({ algorithm: "xoshiro128**", s: [1, 2, 3] } as never), /4 words/);
  assert.throws(() => rng.setState({ algorithm: "xoshiro128**", s: [1, 2, 3, -1] }), /unsigned/);
  assert.throws(() => new Random(1.5), /integer/);
});

test("next() is uniform on [0, 1) and int(n) covers 0..n-1 evenly", () => {
  const rng = new Random(3);
  const counts = new Array(10).fill(0);
  let min = 1;
  let max = 0;
  for (let i = 0; i < 20000; i++) {
    const x = rng.next();
    min = Math.min(min, x);
    max = Math.max(max, x);
    counts[rng.int(10)]++;
  }
  assert.ok(min >= 0 && max < 1);
  // 2000 expected per bin, sd ≈ 42: ±200 is a 4.7-sigma band.
  for (const c of counts) assert.ok(Math.abs(c - 2000) < 200, `bin count ${c}`);
  assert.throws(() => rng.int(0), /positive integer/);
});

test("shuffle is a permutation; choice picks members; fork gives an independent, reproducible stream", () => {
  const rng = new Random(5);
  const items = Array.from({ length: 50 }, (_, i) => i);
  const shuffled = rng.shuffle([...items]);
  assert.notDeepEqual(shuffled, items);
  assert.deepEqual([...shuffled].sort((a, b) => a - b), items);
  assert.ok(items.includes(rng.choice(items)));
  assert.throws(() => rng.choice([]), /empty/);

  const parent = new Random(9);
  const child = parent.fork();
  const childDraws = Array.from({ length: 5 }, () => child.uint32());
  const parentDraws = Array.from({ length: 5 }, () => parent.uint32());
  assert.notDeepEqual(childDraws, parentDraws);
  const again = new Random(9).fork();
  assert.deepEqual(Array.from({ length: 5 }, () => again.uint32()), childDraws);
});
