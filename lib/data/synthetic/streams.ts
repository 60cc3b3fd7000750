/**
 * One random stream per image and purpose.
 *
 * Each image draws its scene and its captions from its own generator, seeded from
 * (dataset seed, image id, purpose). So an image does not depend on how many images
 * came before it or on the order they were rendered in, and changing the caption
 * grammar does not change the scenes.
 */
import { Random } from "../random";

/** Mix a seed with keys (an image id, a stream number) into a new 32-bit seed. */
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

const PURPOSES = { scene: 0, captions: 1 } as const;

/** The generator for one image's scene or captions. */
export function imageRandom(seed: number, imageId: number, purpose: keyof typeof PURPOSES): Random {
  return new Random(deriveSeed(seed, imageId, PURPOSES[purpose]));
}
