/**
 * The GGUF block references against ggml's own bytes (shared testdata/quant: 4 rows × 512
 * values quantized by ggml_quantize_chunk, dequantized by ggml's to_float).
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { Rng } from '../helpers/rng.js';
import { randomNormal } from '../helpers/init.js';
import {
  QK,
  Q4_0_BLOCK_BYTES,
  Q8_0_BLOCK_BYTES,
  dequantBf16,
  dequantF16,
  dequantF32,
  dequantQ4_0,
  dequantQ8_0,
  encodeF16,
  quantizeQ4_0,
  quantizeQ8_0,
} from './quant.js';
import { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from './float16.js';

const DIR = 'testdata/quant';
const FILES = ['input.f32', 'q4_0.quant.bin', 'q4_0.dequant.f32', 'q8_0.quant.bin', 'q8_0.dequant.f32'].map((f) => `${DIR}/${f}`);

function bytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(sharedPath(DIR, name)));
}

/** Indices where two byte arrays differ. */
/** As plain numbers with -0 read as 0 (ggml's d for an all-zero Q4_0 block is -0, like ours). */
function values(a: ArrayLike<number>): number[] {
  return Array.from(a, (v) => v + 0);
}

function diffBytes(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

describeWithShared(FILES, "GGUF Q8_0 / Q4_0 references against ggml's bytes", () => {
  const input = dequantF32(bytes('input.f32'));

  it.each(['q8_0', 'q4_0'] as const)('%s: dequantizing ggml blocks gives ggml values bit for bit', (type) => {
    const quant = bytes(`${type}.quant.bin`);
    const got = type === 'q8_0' ? dequantQ8_0(quant) : dequantQ4_0(quant);
    const want = dequantF32(bytes(`${type}.dequant.f32`));
    expect(got.length).toBe(2048);
    // The products (code × f16 scale) are exact in float32, so float64 must match exactly.
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('q8_0: the quantizer writes the same bytes as ggml', () => {
    expect(diffBytes(quantizeQ8_0(input), bytes('q8_0.quant.bin'))).toEqual([]);
  });

  it('q4_0: the quantizer writes the same bytes as ggml', () => {
    expect(diffBytes(quantizeQ4_0(input), bytes('q4_0.quant.bin'))).toEqual([]);
  });

  it('q4_0: the plain float64 formula (d = max/-8, q = clamp(round(x/d + 8))) agrees on this data', () => {
    // Documents how close the textbook formula is to ggml's float32 arithmetic; they can only
    // differ when x/d + 8 lands within float32 rounding of a .5 tie.
    const ggml = dequantQ4_0(bytes('q4_0.quant.bin'));
    let differ = 0;
    for (let b = 0; b < input.length / QK; b++) {
      const block = input.subarray(b * QK, (b + 1) * QK);
      let max = 0;
      for (const v of block) if (Math.abs(v) > Math.abs(max)) max = v;
      const d = max / -8;
      const dStored = f16ToNumber(numberToF16(d));
      for (let j = 0; j < QK; j++) {
        const q = d === 0 ? 8 : Math.min(15, Math.max(0, Math.round(block[j]! / d + 8)));
        if ((q - 8) * dStored !== ggml[b * QK + j]) differ++;
      }
    }
    expect(differ).toBe(0);
  });
});

describe('Q8_0 / Q4_0 block layout', () => {
  it('round-trips random data within half a step, on awkward block counts', () => {
    const rng = new Rng(7);
    for (const blocks of [1, 3, 17]) {
      const x = randomNormal(rng, blocks * QK, 2);
      const q8 = quantizeQ8_0(x);
      const q4 = quantizeQ4_0(x);
      expect(q8.length).toBe(blocks * Q8_0_BLOCK_BYTES);
      expect(q4.length).toBe(blocks * Q4_0_BLOCK_BYTES);
      const y8 = dequantQ8_0(q8);
      const y4 = dequantQ4_0(q4);
      for (let b = 0; b < blocks; b++) {
        const d8 = f16ToNumber(new DataView(q8.buffer).getUint16(b * Q8_0_BLOCK_BYTES, true));
        const d4 = Math.abs(f16ToNumber(new DataView(q4.buffer).getUint16(b * Q4_0_BLOCK_BYTES, true)));
        for (let j = b * QK; j < (b + 1) * QK; j++) {
          // + the f16 rounding of d, at most 2^-11 relative, times the largest code
          expect(Math.abs(y8[j]! - x[j]!)).toBeLessThanOrEqual(0.5 * d8 + 128 * d8 * 2 ** -11 + 1e-12);
          // Q4_0 is lopsided: the side opposite `max` clamps at +7 steps, so errors reach one step.
          expect(Math.abs(y4[j]! - x[j]!)).toBeLessThanOrEqual(d4 + 8 * d4 * 2 ** -11 + 1e-12);
        }
      }
    }
  });

  it('puts weight j in the low nibble and weight j+16 in the high nibble of byte j', () => {
    // Block: d = -1 (max = 8 at index 0), so w = (code - 8) * -1 and code = 8 - w.
    const x = new Float32Array(QK);
    x[0] = 8;
    x[16] = -7; // code 15, high nibble of byte 0
    x[1] = 3; // code 5, low nibble of byte 1
    const q = quantizeQ4_0(x);
    expect(f16ToNumber(q[0]! | (q[1]! << 8))).toBe(-1);
    expect(q[2]).toBe(0x00 | (15 << 4)); // byte 0: weight 0 → code 0, weight 16 → code 15
    expect(q[3]).toBe(5 | (8 << 4)); // byte 1: weight 1 → 5, weight 17 (0) → 8
    expect(values(dequantQ4_0(q))).toEqual(values(x));
  });

  it('an all-zero block has d = 0 and zero codes', () => {
    const zeros = new Float32Array(QK);
    expect(values(dequantQ8_0(quantizeQ8_0(zeros)))).toEqual(values(zeros));
    expect(values(dequantQ4_0(quantizeQ4_0(zeros)))).toEqual(values(zeros));
    expect(Array.from(quantizeQ4_0(zeros).subarray(2))).toEqual(new Array(16).fill(0x88)); // code 8 = 0
  });

  it('rejects partial blocks', () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(/multiple of 32/);
    expect(() => dequantQ4_0(new Uint8Array(19))).toThrow(/multiple of 18/);
  });
});

describe('f16 / bf16', () => {
  it('decodes the special f16 patterns', () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x3555, 0.333251953125],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    for (const [bits, value] of cases) expect(f16ToNumber(bits)).toBe(value);
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(f16ToNumber(0x7e00)).toBeNaN();
    expect(f16ToNumber(0xfc01)).toBeNaN();
  });

  it('encodes every finite f16 value back to its own bits', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const exp = (bits >> 10) & 0x1f;
      if (exp === 0x1f) continue;
      expect(numberToF16(f16ToNumber(bits))).toBe(bits);
    }
  });

  it('rounds to nearest, ties to even, with overflow and underflow', () => {
    expect(numberToF16(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10 → even (1)
    expect(numberToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even mantissa 2
    expect(numberToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(numberToF16(65519.99)).toBe(0x7bff);
    expect(numberToF16(65520)).toBe(0x7c00); // tie with 65536 → even → Infinity
    expect(numberToF16(-1e9)).toBe(0xfc00);
    expect(numberToF16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal → 0
    expect(numberToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 units → 2
    expect(numberToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
    expect(numberToF16(-0)).toBe(0x8000);
    expect(numberToF16(NaN)).toBe(0x7e00);
    expect(Array.from(dequantF16(encodeF16([1.5, -0.25, 1e-7])))).toEqual([1.5, -0.25, f16ToNumber(numberToF16(1e-7))]);
  });

  it('bf16 is the top half of float32, rounded to nearest even', () => {
    expect(bf16ToNumber(0x3f80)).toBe(1);
    expect(bf16ToNumber(0xc040)).toBe(-3);
    expect(bf16ToNumber(0x7f80)).toBe(Infinity);
    expect(numberToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(numberToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even
    expect(numberToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(numberToBf16(NaN) & 0x7fff).toBe(0x7fc0);
    const raw = new Uint8Array([0x80, 0x3f, 0x40, 0xc0]); // little-endian 0x3f80, 0xc040
    expect(Array.from(dequantBf16(raw))).toEqual([1, -3]);
  });
});
