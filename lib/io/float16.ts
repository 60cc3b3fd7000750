/**
 * IEEE 754 half precision (float16) <-> float32, for storing image features compactly.
 *
 * Node 20 has no Float16Array, so a half is kept as its 16 raw bits in a Uint16Array:
 * 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. float16 keeps ~3 significant
 * digits and a range of ±65504, plenty for CNN activations, at half the bytes of float32.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer); // the same 4 bytes seen as bits

/** Rounds one float32 to the nearest float16 (ties to even) and returns its bits. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff; // biased by 127
  let mantissa = x & 0x7fffff;

  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf, or NaN (kept quiet)
  const e = exponent - 127 + 15; // re-bias for float16
  if (e >= 0x1f) return sign | 0x7c00; // too large: Inf
  if (e <= 0) {
    // Subnormal half (or zero): shift the mantissa, with its implicit leading 1, into place.
    if (e < -10) return sign; // smaller than half the smallest subnormal: ±0
    mantissa |= 0x800000;
    const shift = 14 - e; // 13 bits of float32 extra precision + (1 - e) for the subnormal scale
    return sign | roundShift(mantissa, shift);
  }
  // Normal: a mantissa that rounds up to 0x400 carries into the exponent, which is still correct bits.
  return sign | ((e << 10) + roundShift(mantissa, 13));
}

/** `value >> shift`, rounded to nearest with ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** Returns the float32 value of float16 bits (exact: every half is a float32). */
export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // subnormal or zero
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** float32 values → float16 bits. */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]);
  return out;
}

/** float16 bits → float32 values. */
export function fromFloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromHalfBits(bits[i]);
  return out;
}
