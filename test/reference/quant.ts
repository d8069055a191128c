/**
 * GGUF weight storage → float64, and float data → GGUF blocks (notes/gguf-formats.md §5).
 * Every dequantizer takes the raw little-endian bytes of whole blocks and returns all values.
 *
 *   Q8_0 block (34 B): f16 d, int8 q[32];            w[j] = q[j] * d
 *   Q4_0 block (18 B): f16 d, u8 qs[16];             w[j] = ((qs[j] & 15) - 8) * d,
 *                                                    w[j + 16] = ((qs[j] >> 4) - 8) * d
 */
import { bf16ToNumber, f16ToNumber, numberToF16 } from './float16.js';

export const QK = 32; // weights per Q4_0 / Q8_0 block
export const Q8_0_BLOCK_BYTES = 34;
export const Q4_0_BLOCK_BYTES = 18;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkMultiple(bytes: Uint8Array, unit: number, what: string): number {
  if (bytes.byteLength % unit !== 0) throw new Error(`${what}: ${bytes.byteLength} bytes is not a multiple of ${unit}`);
  return bytes.byteLength / unit;
}

export function dequantF32(bytes: Uint8Array): Float64Array {
  const n = checkMultiple(bytes, 4, 'f32');
  const v = view(bytes);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
  return out;
}

export function dequantF16(bytes: Uint8Array): Float64Array {
  const n = checkMultiple(bytes, 2, 'f16');
  const v = view(bytes);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f16ToNumber(v.getUint16(2 * i, true));
  return out;
}

export function dequantBf16(bytes: Uint8Array): Float64Array {
  const n = checkMultiple(bytes, 2, 'bf16');
  const v = view(bytes);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = bf16ToNumber(v.getUint16(2 * i, true));
  return out;
}

export function dequantQ8_0(bytes: Uint8Array): Float64Array {
  const blocks = checkMultiple(bytes, Q8_0_BLOCK_BYTES, 'Q8_0');
  const v = view(bytes);
  const out = new Float64Array(blocks * QK);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK_BYTES;
    const d = f16ToNumber(v.getUint16(base, true));
    for (let j = 0; j < QK; j++) out[b * QK + j] = v.getInt8(base + 2 + j) * d;
  }
  return out;
}

export function dequantQ4_0(bytes: Uint8Array): Float64Array {
  const blocks = checkMultiple(bytes, Q4_0_BLOCK_BYTES, 'Q4_0');
  const v = view(bytes);
  const out = new Float64Array(blocks * QK);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q4_0_BLOCK_BYTES;
    const d = f16ToNumber(v.getUint16(base, true));
    for (let j = 0; j < QK / 2; j++) {
      const byte = v.getUint8(base + 2 + j);
      out[b * QK + j] = ((byte & 0x0f) - 8) * d;
      out[b * QK + j + QK / 2] = ((byte >> 4) - 8) * d;
    }
  }
  return out;
}

/** Values → little-endian f16 bytes (round to nearest even). */
export function encodeF16(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(2 * x.length);
  const v = view(out);
  for (let i = 0; i < x.length; i++) v.setUint16(2 * i, numberToF16(x[i] as number), true);
  return out;
}

function checkBlocks(x: ArrayLike<number>, what: string): number {
  if (x.length % QK !== 0) throw new Error(`${what}: ${x.length} values is not a multiple of ${QK}`);
  return x.length / QK;
}

/** C's roundf: to nearest, ties away from zero. */
function roundAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

const f32 = Math.fround;

/*
 * The quantizers reproduce ggml's reference quantizers (quantize_row_q8_0_ref /
 * quantize_row_q4_0_ref) bit for bit, so they do what ggml does in float32: the scale d and
 * its inverse id = 1/d are float32, codes come from float32 products x * id (not x / d), and
 * d is rounded to f16 only when stored. Plain float64 arithmetic differs in rare ties
 * (see quant.test.ts).
 */

/** Q8_0: d = absmax / 127, q = roundf(x * (1/d)). Input should be float32 values. */
export function quantizeQ8_0(x: ArrayLike<number>): Uint8Array {
  const blocks = checkBlocks(x, 'Q8_0');
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const v = view(out);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(f32(x[b * QK + j] as number)));
    const d = f32(amax / 127);
    const id = d !== 0 ? f32(1 / d) : 0;
    const base = b * Q8_0_BLOCK_BYTES;
    v.setUint16(base, numberToF16(d), true);
    for (let j = 0; j < QK; j++) v.setInt8(base + 2 + j, roundAway(f32(f32(x[b * QK + j] as number) * id)));
  }
  return out;
}

/**
 * Q4_0: `max` is the value of largest magnitude (its sign kept; the first one on ties),
 * d = max / -8, q = min(15, trunc(x * (1/d) + 8.5)), so `max` itself maps to code 0 (-8 * d)
 * and the other side reaches at most 7 * |d| (code 15 clamps +8).
 */
export function quantizeQ4_0(x: ArrayLike<number>): Uint8Array {
  const blocks = checkBlocks(x, 'Q4_0');
  const out = new Uint8Array(blocks * Q4_0_BLOCK_BYTES);
  const v = view(out);
  const code = (value: number, id: number): number => Math.min(15, Math.trunc(f32(f32(value * id) + 8.5)));
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const value = f32(x[b * QK + j] as number);
      if (amax < Math.abs(value)) {
        amax = Math.abs(value);
        max = value;
      }
    }
    const d = f32(max / -8);
    const id = d !== 0 ? f32(1 / d) : 0;
    const base = b * Q4_0_BLOCK_BYTES;
    v.setUint16(base, numberToF16(d), true);
    for (let j = 0; j < QK / 2; j++) {
      const lo = code(f32(x[b * QK + j] as number), id);
      const hi = code(f32(x[b * QK + j + QK / 2] as number), id);
      v.setUint8(base + 2 + j, lo | (hi << 4));
    }
  }
  return out;
}
