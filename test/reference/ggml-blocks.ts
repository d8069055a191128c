/**
 * ggml block types beyond Q4_0/Q8_0 (notes/gguf-formats.md §5, ggml-common.h), written for the
 * tests from the layouts, independently of native/core/ggml_blocks.cc:
 *
 *   - `BlockFields`: a block as the numbers it means (f16 bits of its scales, its integer codes);
 *   - `packBlocks(type, fields)`: the bytes ggml stores for those fields;
 *   - `blockValues(type, fields)`: the float32 values ggml's dequantize_row_* gives, computed
 *     from the fields in ggml's order of operations (every product rounded to float32);
 *   - `dequantBlocks(type, bytes)`: the same values decoded from the bytes (for references over
 *     whole files);
 *   - `randomFields(type, rng, n)`: blocks with random codes and scales;
 *   - `q4kAsInt4(fields)`: the values the engine keeps for Q4_K (int4 with f16 parameters).
 *
 * Layouts (value of weight j; `nib` 4-bit code, `hbit` its fifth bit):
 *   Q4_1  f16 d, f16 m, qs[16]                      nib·d + m
 *   Q5_0  f16 d, u32 qh, qs[16]                     ((nib | hbit<<4) - 16)·d
 *   Q5_1  f16 d, f16 m, u32 qh, qs[16]              (nib | hbit<<4)·d + m
 *   Q4_K  f16 d, f16 dmin, scales[12], qs[128]      (d·sc_k)·q - (dmin·m_k), k = j/32
 *   Q5_K  f16 d, f16 dmin, scales[12], qh[32], qs[128]
 *   Q6_K  ql[128], qh[64], i8 scales[16], f16 d     (d·sc_s)·(q - 32), s = j/16
 *   Q8_K  f32 d, i8 qs[256], i16 bsums[16]          d·q
 */
import type { Rng } from '../helpers/rng.js';
import { f16ToNumber, numberToF16 } from './float16.js';

export type BlockType = 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k';
export const BLOCK_TYPES: readonly BlockType[] = ['q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k', 'q8_k'];

/** Weights and bytes per block. */
export const LAYOUT: Readonly<Record<BlockType, { elems: number; bytes: number }>> = {
  q4_1: { elems: 32, bytes: 20 },
  q5_0: { elems: 32, bytes: 22 },
  q5_1: { elems: 32, bytes: 24 },
  q4_k: { elems: 256, bytes: 144 },
  q5_k: { elems: 256, bytes: 176 },
  q6_k: { elems: 256, bytes: 210 },
  q8_k: { elems: 256, bytes: 292 },
};

/**
 * One block. `d`, `m` (Q4_1/Q5_1 min), `dmin` are f16 bit patterns, except Q8_K's `d`, a
 * float32 value. `codes` are unsigned (0..15, 0..31, 0..63) except Q8_K's (-128..127).
 * `sc` are the K sub-block scales (Q4_K/Q5_K: 8 of 0..63; Q6_K: 16 of -128..127), `mins`
 * the Q4_K/Q5_K sub-block minimums (8 of 0..63).
 */
export interface BlockFields {
  readonly d: number;
  readonly m?: number;
  readonly dmin?: number;
  readonly sc?: readonly number[];
  readonly mins?: readonly number[];
  readonly codes: readonly number[];
}

const fr = Math.fround;

// ---- values from fields ------------------------------------------------------------------------

function valuesOne(type: BlockType, f: BlockFields, out: Float64Array, at: number): void {
  const d = type === 'q8_k' ? fr(f.d) : f16ToNumber(f.d);
  const n = LAYOUT[type].elems;
  for (let j = 0; j < n; j++) {
    const q = f.codes[j]!;
    let v: number;
    switch (type) {
      case 'q4_1':
      case 'q5_1': v = fr(fr(q * d) + f16ToNumber(f.m!)); break;
      case 'q5_0': v = fr((q - 16) * d); break;
      case 'q4_k':
      case 'q5_k': {
        const k = Math.floor(j / 32);
        const scale = fr(d * f.sc![k]!);
        const min = fr(f16ToNumber(f.dmin!) * f.mins![k]!);
        v = fr(fr(scale * q) - min);
        break;
      }
      case 'q6_k': v = fr(fr(d * f.sc![Math.floor(j / 16)]!) * (q - 32)); break;
      case 'q8_k': v = fr(d * q); break;
    }
    out[at + j] = v;
  }
}

/** ggml's dequantized values of the blocks (float32 numbers). */
export function blockValues(type: BlockType, blocks: readonly BlockFields[]): Float64Array {
  const n = LAYOUT[type].elems;
  const out = new Float64Array(blocks.length * n);
  blocks.forEach((f, b) => valuesOne(type, f, out, b * n));
  return out;
}

// ---- bytes from fields -------------------------------------------------------------------------

/** The 12 scale bytes of Q4_K/Q5_K: 6-bit scales and minimums of 8 sub-blocks. */
function packKScales(sc: readonly number[], mins: readonly number[], out: Uint8Array, at: number): void {
  for (let k = 0; k < 4; k++) {
    out[at + k] = (sc[k]! & 63) | ((sc[k + 4]! >> 4) << 6);
    out[at + k + 4] = (mins[k]! & 63) | ((mins[k + 4]! >> 4) << 6);
    out[at + k + 8] = (sc[k + 4]! & 15) | ((mins[k + 4]! & 15) << 4);
  }
}

/** 32 codes of 4 bits: byte i = code i (low nibble) | code i+16 (high nibble). */
function packNibbles32(codes: readonly number[], out: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++) out[at + i] = (codes[i]! & 15) | ((codes[i + 16]! & 15) << 4);
}

/** Bit j = fifth bit of code j. */
function fifthBits32(codes: readonly number[]): number {
  let qh = 0;
  for (let j = 0; j < 32; j++) qh |= ((codes[j]! >> 4) & 1) << j;
  return qh >>> 0;
}

function packOne(type: BlockType, f: BlockFields, out: Uint8Array, at: number): void {
  const v = new DataView(out.buffer, out.byteOffset + at, LAYOUT[type].bytes);
  const c = f.codes;
  switch (type) {
    case 'q4_1':
      v.setUint16(0, f.d, true);
      v.setUint16(2, f.m!, true);
      packNibbles32(c, out, at + 4);
      break;
    case 'q5_0':
      v.setUint16(0, f.d, true);
      v.setUint32(2, fifthBits32(c), true);
      packNibbles32(c, out, at + 6);
      break;
    case 'q5_1':
      v.setUint16(0, f.d, true);
      v.setUint16(2, f.m!, true);
      v.setUint32(4, fifthBits32(c), true);
      packNibbles32(c, out, at + 8);
      break;
    case 'q4_k':
    case 'q5_k': {
      v.setUint16(0, f.d, true);
      v.setUint16(2, f.dmin!, true);
      packKScales(f.sc!, f.mins!, out, at + 4);
      const qs = at + (type === 'q4_k' ? 16 : 48);
      for (let g = 0; g < 4; g++) {
        for (let l = 0; l < 32; l++) {
          const lo = c[64 * g + l]!;
          const hi = c[64 * g + 32 + l]!;
          out[qs + 32 * g + l] = (lo & 15) | ((hi & 15) << 4);
          if (type === 'q5_k') out[at + 16 + l] = out[at + 16 + l]! | (((lo >> 4) & 1) << (2 * g)) | (((hi >> 4) & 1) << (2 * g + 1));
        }
      }
      break;
    }
    case 'q6_k':
      for (let h = 0; h < 2; h++) {
        const q = c.slice(128 * h, 128 * h + 128);
        for (let l = 0; l < 32; l++) {
          out[at + 64 * h + l] = (q[l]! & 15) | ((q[l + 64]! & 15) << 4);
          out[at + 64 * h + l + 32] = (q[l + 32]! & 15) | ((q[l + 96]! & 15) << 4);
          out[at + 128 + 32 * h + l] = (q[l]! >> 4) | ((q[l + 32]! >> 4) << 2) | ((q[l + 64]! >> 4) << 4) | ((q[l + 96]! >> 4) << 6);
        }
      }
      for (let s = 0; s < 16; s++) v.setInt8(192 + s, f.sc![s]!);
      v.setUint16(208, f.d, true);
      break;
    case 'q8_k':
      v.setFloat32(0, f.d, true);
      for (let j = 0; j < 256; j++) v.setInt8(4 + j, c[j]!);
      for (let s = 0; s < 16; s++) {
        let sum = 0;
        for (let j = 0; j < 16; j++) sum += c[16 * s + j]!;
        v.setInt16(260 + 2 * s, sum, true);
      }
      break;
  }
}

export function packBlocks(type: BlockType, blocks: readonly BlockFields[]): Uint8Array {
  const { bytes } = LAYOUT[type];
  const out = new Uint8Array(blocks.length * bytes);
  blocks.forEach((f, b) => packOne(type, f, out, b * bytes));
  return out;
}

// ---- fields from bytes (the decoder) -----------------------------------------------------------

function kScales(s: Uint8Array, at: number): { sc: number[]; mins: number[] } {
  const sc: number[] = [];
  const mins: number[] = [];
  for (let k = 0; k < 8; k++) {
    if (k < 4) {
      sc.push(s[at + k]! & 63);
      mins.push(s[at + k + 4]! & 63);
    } else {
      sc.push((s[at + k + 4]! & 15) | ((s[at + k - 4]! >> 6) << 4));
      mins.push((s[at + k + 4]! >> 4) | ((s[at + k]! >> 6) << 4));
    }
  }
  return { sc, mins };
}

function unpackOne(type: BlockType, x: Uint8Array, at: number): BlockFields {
  const v = new DataView(x.buffer, x.byteOffset + at, LAYOUT[type].bytes);
  const nib32 = (qsAt: number, qh: number): number[] =>
    Array.from({ length: 32 }, (_, j) => (j < 16 ? x[qsAt + j]! & 15 : x[qsAt + j - 16]! >> 4) | (((qh >>> j) & 1) << 4));
  switch (type) {
    case 'q4_1': return { d: v.getUint16(0, true), m: v.getUint16(2, true), codes: nib32(at + 4, 0) };
    case 'q5_0': return { d: v.getUint16(0, true), codes: nib32(at + 6, v.getUint32(2, true)) };
    case 'q5_1': return { d: v.getUint16(0, true), m: v.getUint16(2, true), codes: nib32(at + 8, v.getUint32(4, true)) };
    case 'q4_k':
    case 'q5_k': {
      const qs = at + (type === 'q4_k' ? 16 : 48);
      const codes = new Array<number>(256);
      for (let g = 0; g < 4; g++) {
        for (let l = 0; l < 32; l++) {
          const byte = x[qs + 32 * g + l]!;
          const hbits = type === 'q5_k' ? x[at + 16 + l]! : 0;
          codes[64 * g + l] = (byte & 15) | (((hbits >> (2 * g)) & 1) << 4);
          codes[64 * g + 32 + l] = (byte >> 4) | (((hbits >> (2 * g + 1)) & 1) << 4);
        }
      }
      return { d: v.getUint16(0, true), dmin: v.getUint16(2, true), ...kScales(x, at + 4), codes };
    }
    case 'q6_k': {
      const codes = new Array<number>(256);
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          const lo0 = x[at + 64 * h + l]!;
          const lo1 = x[at + 64 * h + l + 32]!;
          const hi = x[at + 128 + 32 * h + l]!;
          codes[128 * h + l] = (lo0 & 15) | ((hi & 3) << 4);
          codes[128 * h + l + 32] = (lo1 & 15) | (((hi >> 2) & 3) << 4);
          codes[128 * h + l + 64] = (lo0 >> 4) | (((hi >> 4) & 3) << 4);
          codes[128 * h + l + 96] = (lo1 >> 4) | (((hi >> 6) & 3) << 4);
        }
      }
      return { d: v.getUint16(208, true), sc: Array.from({ length: 16 }, (_, s) => v.getInt8(192 + s)), codes };
    }
    case 'q8_k':
      return { d: v.getFloat32(0, true), codes: Array.from({ length: 256 }, (_, j) => v.getInt8(4 + j)) };
  }
}

export function unpackBlocks(type: BlockType, bytes: Uint8Array): BlockFields[] {
  const { bytes: bb } = LAYOUT[type];
  if (bytes.length % bb !== 0) throw new Error(`${type}: ${bytes.length} bytes is not a multiple of ${bb}`);
  return Array.from({ length: bytes.length / bb }, (_, b) => unpackOne(type, bytes, b * bb));
}

/** ggml's values of whole blocks, from their bytes. */
export function dequantBlocks(type: BlockType, bytes: Uint8Array): Float64Array {
  return blockValues(type, unpackBlocks(type, bytes));
}

// ---- what the engine stores ------------------------------------------------------------------

/**
 * Q4_K as the engine stores it (int4, groups of 32; native/core/weight_loader.cc): per sub-block
 * scale = f16(d·sc) and min = f16(-(dmin·m)), the products in float32; value q·scale + min.
 */
export function q4kAsInt4(fields: readonly BlockFields[]): Float64Array {
  const round16 = (x: number): number => f16ToNumber(numberToF16(x));
  const out = new Float64Array(fields.length * 256);
  fields.forEach((f, b) => {
    for (let j = 0; j < 256; j++) {
      const k = Math.floor(j / 32);
      const scale = round16(fr(f16ToNumber(f.d) * f.sc![k]!));
      const min = round16(-fr(f16ToNumber(f.dmin!) * f.mins![k]!));
      out[b * 256 + j] = fr(fr(f.codes[j]! * scale) + min);
    }
  });
  return out;
}

// ---- random blocks -----------------------------------------------------------------------------

/**
 * n random blocks whose values have a spread of about `scale`: uniform codes, f16 scales
 * chosen so the code range spans ±scale (random sub-block scales for the K types).
 */
export function randomFields(type: BlockType, rng: Rng, n: number, scale = 1): BlockFields[] {
  const f16 = (x: number): number => numberToF16(x);
  const ints = (len: number, lo: number, hi: number): number[] => Array.from({ length: len }, () => rng.int(lo, hi));
  return Array.from({ length: n }, () => {
    const s = scale * rng.uniform(0.5, 1.5);
    switch (type) {
      case 'q4_1': return { d: f16((2 * s) / 15), m: f16(-s * rng.uniform(0.8, 1.2)), codes: ints(32, 0, 16) };
      case 'q5_0': return { d: f16(s / 16), codes: ints(32, 0, 32) };
      case 'q5_1': return { d: f16((2 * s) / 31), m: f16(-s * rng.uniform(0.8, 1.2)), codes: ints(32, 0, 32) };
      case 'q4_k':
      case 'q5_k': {
        const levels = type === 'q4_k' ? 15 : 31;
        return { d: f16((2 * s) / levels / 63), dmin: f16(s / 63), sc: ints(8, 1, 64), mins: ints(8, 0, 64), codes: ints(256, 0, levels + 1) };
      }
      case 'q6_k': return { d: f16(s / 32 / 127), sc: ints(16, -128, 128), codes: ints(256, 0, 64) };
      case 'q8_k': return { d: Math.fround(s / 127), codes: ints(256, -128, 128) };
    }
  });
}
