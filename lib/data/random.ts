/**
 * A small seeded pseudo-random number generator: xoshiro128** (Blackman & Vigna), seeded
 * through splitmix32.
 *
 * Why not Math.random? Training must be repeatable (same seed → same batches, crops and
 * flips) and resumable: a checkpoint stores `rng.state()` and `setState` continues the
 * exact same sequence. Math.random can neither be seeded nor saved.
 *
 * The whole state is four 32-bit words, so it serialises as a short JSON array.
 */

/** The saved state of a {@link Random}: plain JSON, safe to put in a checkpoint. */
export interface RandomState {
  algorithm: "xoshiro128**";
  /** The four 32-bit state words, as unsigned integers. */
  s: [number, number, number, number];
}

const TWO_POW_32 = 4294967296;

/** Rotate a 32-bit word left by k bits. */
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * splitmix32: turns one 32-bit value into a well-mixed 32-bit value. Used to expand a seed
 * into a full state, so that close seeds (1, 2, 3) still give unrelated sequences.
 */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** Seeded generator with the few draws that data loading needs. */
export class Random {
  private s = new Uint32Array(4);

  /** @param seed any integer; equal seeds give equal sequences. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`Random: seed must be an integer, got ${seed}`);
    // Fold the high bits in too, so seeds that differ only above bit 31 still differ.
    let x = (seed >>> 0) ^ splitmix32(Math.floor(seed / TWO_POW_32) >>> 0);
    for (let i = 0; i < 4; i++) {
      x = splitmix32(x);
      this.s[i] = x;
    }
  }

  /** A generator that continues from a saved state. */
  static fromState(state: RandomState): Random {
    const rng = new Random(0);
    rng.setState(state);
    return rng;
  }

  /** The next 32-bit unsigned integer (one step of xoshiro128**). */
  uint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A float uniform in [0, 1), with 32 bits of randomness. */
  next(): number {
    return this.uint32() / TWO_POW_32;
  }

  /**
   * An integer uniform in [0, n). The bias of `floor(next() * n)` is below n / 2^32,
   * negligible for the sizes used here (up to a few hundred thousand captions).
   */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Random.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** One element, uniformly. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Random.choice: empty array");
    return items[this.int(items.length)];
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /**
   * A new, independent generator, seeded from this one's next four draws (so forking
   * advances this generator). Use it to give each consumer (sampler, each image's crop)
   * its own stream, so that one consumer drawing more never shifts another's draws.
   */
  fork(): Random {
    const child = new Random(0);
    for (let i = 0; i < 4; i++) child.s[i] = splitmix32(this.uint32());
    if (child.s.every((w) => w === 0)) child.s[0] = 1; // the all-zero state is a fixed point
    return child;
  }

  /** The current state; `setState` on it replays the same sequence from here. */
  state(): RandomState {
    return { algorithm: "xoshiro128**", s: [this.s[0], this.s[1], this.s[2], this.s[3]] };
  }

  /** Restores a state saved by {@link state}. */
  setState(state: RandomState): void {
    const words = state?.s;
    if (state?.algorithm !== "xoshiro128**" || !Array.isArray(words) || words.length !== 4) {
      throw new Error(`Random.setState: expected { algorithm: "xoshiro128**", s: [4 words] }, got ${JSON.stringify(state)}`);
    }
    if (!words.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)) {
      throw new Error(`Random.setState: state words must be 32-bit unsigned integers, got ${JSON.stringify(words)}`);
    }
    if (words.every((w) => w === 0)) throw new Error("Random.setState: the all-zero state is invalid for xoshiro128**");
    this.s.set(words);
  }
}
