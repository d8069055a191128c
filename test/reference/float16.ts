/**
 * IEEE-754 binary16 ("f16") and bfloat16 ("bf16") conversions, float64 reference versions.
 * Values travel as their 16-bit patterns (numbers 0..0xffff).
 */

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** f16 bits → number: normals, subnormals (mant * 2^-24), ±0, ±Infinity, NaN. */
export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds a non-negative real to an integer, ties to even. Exact for the values used here. */
function roundHalfEven(r: number): number {
  const f = Math.floor(r);
  const frac = r - f;
  if (frac > 0.5) return f + 1;
  if (frac < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * number → f16 bits, rounding to nearest with ties to even, directly from the float64 value
 * (for float32 inputs this equals the hardware f32 → f16 conversion). Overflow gives
 * ±Infinity (|x| >= 65520), NaN gives the quiet NaN 0x7e00 (sign kept).
 */
export function numberToF16(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  if (Number.isNaN(x)) return 0x7e00;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) {
    // Subnormal: units of 2^-24. A result of 1024 is the smallest normal, which the same bits encode.
    return sign | roundHalfEven(a * 2 ** 24);
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let mant = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (mant === 1024) {
    mant = 0;
    e++;
  }
  if (e + 15 >= 0x1f) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | mant;
}

/** bf16 bits → number (the top half of a float32). */
export function bf16ToNumber(bits: number): number {
  U32_SCRATCH[0] = (bits & 0xffff) << 16;
  return F32_SCRATCH[0] as number;
}

/**
 * number → bf16 bits: first rounded to float32 (bf16 weights come from float32 data), then to
 * bf16 with ties to even. NaN gives the quiet NaN 0x7fc0 (sign kept).
 */
export function numberToBf16(x: number): number {
  F32_SCRATCH[0] = x;
  const bits = U32_SCRATCH[0] as number;
  if (Number.isNaN(x)) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}
