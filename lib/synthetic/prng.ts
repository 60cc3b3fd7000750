/**
 * A small seeded random number generator for the synthetic dataset.
 *
 * mulberry32 is a 32-bit generator with a one-line state update: it is fast, good
 * enough for sampling scenes, and gives the same sequence on every machine, which is
 * what makes the generated dataset byte-identical for a given seed.
 */

/** Random draws from one seeded stream. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** A float in [low, high). */
  uniform(low: number, high: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy of a list (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[];
}

/** The mulberry32 generator: returns a function giving floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Mix a seed with keys (an image id, a stream number) into a new 32-bit seed.
 *
 * Each image gets its own stream, so an image's scene and captions do not depend on
 * how many images came before it or in what order they were rendered.
 */
export function deriveSeed(seed: number, ...keys: number[]): number {
  let h = seed >>> 0;
  for (const key of keys) {
    // murmur3's finaliser: every input bit flips about half of the output bits.
    h = Math.imul(h ^ (key >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A seeded stream of random draws. */
export function createRng(seed: number): Rng {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    uniform: (low, high) => low + (high - low) * next(),
    chance: (p) => next() < p,
    pick: (items) => {
      if (items.length === 0) throw new Error("lib/synthetic/prng.ts: pick() from an empty list");
      return items[int(items.length)];
    },
    shuffle: (items) => {
      const out = items.slice();
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [out[i], out[j]] = [out[j], out[i]];
      }
      return out;
    },
  };
}
