/**
 * ggml's block types in native code (native/core/ggml_blocks.cc, weight_loader.cc,
 * binding/quantize_binding.cc):
 *
 *   - the decoders give ggml's dequantized values bit for bit: against ggml's own output for
 *     Q4_0, Q8_0, Q4_K and Q6_K (shared/testdata/quant), and for Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
 *     Q6_K and Q8_K on blocks built here from chosen fields (test/reference/ggml-blocks.ts),
 *     with some values worked out by hand;
 *   - the Q8_0 / Q4_0 encoders write ggml's bytes (shared vectors, and the reference quantizers
 *     of test/reference/quant.ts on awkward data);
 *   - the loader stores each type as weights.ts says, exactly where the table in
 *     weight_loader.cc says so, and within the measured bounds elsewhere;
 *   - unsupported types are ERR_UNSUPPORTED errors naming the type and the tensor.
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import type { GraphSpec, WeightDType, WeightSource } from '../../lib/addon-types.js';
import { type TensorInfo } from '../../lib/formats/tensor-info.js';
import type { LlamaConfig } from '../../lib/model/config.js';
import { planWeights } from '../../lib/model/weights.js';
import { expectErrorCode } from '../helpers/errors.js';
import { cpuAddon } from '../helpers/graphs.js';
import { runGraph, storedValues } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { itWithShared, sharedPath } from '../helpers/shared-data.js';
import { f16ToNumber, numberToBf16, numberToF16 } from '../reference/float16.js';
import {
  BLOCK_TYPES,
  type BlockFields,
  type BlockType,
  LAYOUT,
  blockValues,
  dequantBlocks,
  packBlocks,
  q4kAsInt4,
  randomFields,
  unpackBlocks,
} from '../reference/ggml-blocks.js';
import { encodeF16, quantizeQ4_0, quantizeQ8_0 } from '../reference/quant.js';

const QUANT = 'testdata/quant';
const quantFile = (name: string): Uint8Array => new Uint8Array(readFileSync(sharedPath(QUANT, name)));
const f32Bytes = (x: ArrayLike<number>): Uint8Array => new Uint8Array(Float32Array.from(x).buffer);
const asF32 = (bytes: Uint8Array): Float32Array => new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
const decode = (bytes: Uint8Array, type: string): Float32Array => asF32(cpuAddon().quantizeRows(bytes, type as never, 'f32'));

/** Index of the first difference of two arrays (-1 when equal), for evidence in failures. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  // equal numbers (+0 and -0 count as equal: the engine writes q·scale with q = +0), NaN only to NaN
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

function expectSameValues(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const i = firstDiff(got, want);
  expect(i, i < 0 ? what : `${what}: first difference at [${i}]: got ${got[i]} want ${want[i]} (length ${got.length} vs ${want.length})`).toBe(-1);
}

function expectSameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const i = firstDiff(got, want);
  expect(i, i < 0 ? what : `${what}: first differing byte [${i}]: got ${got[i]} want ${want[i]} (length ${got.length} vs ${want.length})`).toBe(-1);
}

// ---- decoders -----------------------------------------------------------------------------------

describe('decoders', () => {
  itWithShared([`${QUANT}/q4_k.quant.bin`], "Q4_0, Q8_0, Q4_K and Q6_K decode to ggml's dequantized values, bit for bit", () => {
    for (const t of ['q4_0', 'q8_0', 'q4_k', 'q6_k']) {
      const got = decode(quantFile(`${t}.quant.bin`), t);
      expect(got.length).toBe(2048);
      expectSameValues(got, asF32(quantFile(`${t}.dequant.f32`)), t);
    }
  });

  for (const type of BLOCK_TYPES) {
    it(`${type}: random blocks decode to the values of their fields, and the reference packer round-trips`, () => {
      const rng = new Rng(0x9e37 + BLOCK_TYPES.indexOf(type));
      const fields = [...randomFields(type, rng, 12, 0.05), ...randomFields(type, rng, 4, 30)];
      const bytes = packBlocks(type, fields);
      expect(bytes.length).toBe(16 * LAYOUT[type].bytes);
      expect(unpackBlocks(type, bytes)).toEqual(fields);
      const want = blockValues(type, fields);
      expectSameValues(decode(bytes, type), want, type);
      expectSameValues(dequantBlocks(type, bytes), want, `${type} reference decoder`);
    });
  }

  // Blocks whose values are worked out by hand below; each pins one part of a layout (nibble
  // order, the fifth-bit positions, the packed 6-bit scales including their high bits, Q6_K's
  // four quarter planes, the place of d).
  const F16 = { half: 0x3800, quarter: 0x3400, one: 0x3c00, minusOne: 0xbc00, onePointFive: 0x3e00 };
  const iota = (n: number, f: (j: number) => number): number[] => Array.from({ length: n }, (_, j) => f(j));
  const handCases: Record<BlockType, { fields: BlockFields; values: Record<number, number> }> = {
    // nib·d + m with d = 0.5, m = -1, code j = j % 16
    q4_1: { fields: { d: F16.half, m: F16.minusOne, codes: iota(32, (j) => j % 16) }, values: { 0: -1, 3: 0.5, 16: -1, 19: 0.5, 31: 6.5 } },
    // (code - 16)·0.25 with code j = j: the fifth bit of weight j is bit j of qh
    q5_0: { fields: { d: F16.quarter, codes: iota(32, (j) => j) }, values: { 0: -4, 15: -0.25, 16: 0, 17: 0.25, 31: 3.75 } },
    // code·1 + 1.5 with code j = 31 - j
    q5_1: { fields: { d: F16.one, m: F16.onePointFive, codes: iota(32, (j) => 31 - j) }, values: { 0: 32.5, 15: 17.5, 16: 16.5, 31: 1.5 } },
    // (1·sc_k)·q - 0.5·m_k, sc_k = 60 - k, m_k = 50 + k (>= 32: the high bits), q = j % 16, k = j / 32
    q4_k: {
      fields: { d: F16.one, dmin: F16.half, sc: iota(8, (k) => 60 - k), mins: iota(8, (k) => 50 + k), codes: iota(256, (j) => j % 16) },
      values: { 0: -25, 1: 35, 33: 59 * 1 - 25.5, 127: 57 * 15 - 26.5, 128: -27, 200: 54 * 8 - 28, 255: 53 * 15 - 28.5 },
    },
    // as Q4_K with 5-bit codes q = j % 32
    q5_k: {
      fields: { d: F16.one, dmin: F16.half, sc: iota(8, (k) => 60 - k), mins: iota(8, (k) => 50 + k), codes: iota(256, (j) => j % 32) },
      values: { 0: -25, 17: 60 * 17 - 25, 31: 60 * 31 - 25, 63: 59 * 31 - 25.5, 191: 55 * 31 - 27.5, 224: -28.5, 255: 53 * 31 - 28.5 },
    },
    // (0.5·sc_s)·(q - 32), sc_s = s - 8, q = j % 64, s = j / 16
    q6_k: {
      fields: { d: F16.half, sc: iota(16, (s) => s - 8), codes: iota(256, (j) => j % 64) },
      values: { 0: 128, 16: 0.5 * -7 * -16, 40: 0.5 * -6 * 8, 64: 0.5 * -4 * -32, 100: 0.5 * -2 * 4, 200: 0.5 * 4 * -24, 255: 0.5 * 7 * 31 },
    },
    // 0.25·q with q = j - 128 (d is f32)
    q8_k: { fields: { d: 0.25, codes: iota(256, (j) => j - 128) }, values: { 0: -32, 128: 0, 255: 31.75 } },
  };
  for (const type of BLOCK_TYPES) {
    it(`${type}: a block's values worked out by hand`, () => {
      const { fields, values } = handCases[type];
      const got = decode(packBlocks(type, [fields]), type);
      for (const [j, v] of Object.entries(values)) expect(got[Number(j)], `${type} weight ${j}`).toBe(v);
    });
  }
});

// ---- encoders -----------------------------------------------------------------------------------

describe('Q8_0 and Q4_0 encoders (ggml reference rules)', () => {
  const quantize = (x: ArrayLike<number>, to: 'q8_0' | 'q4_0'): Uint8Array => cpuAddon().quantizeRows(f32Bytes(x), 'f32', to);

  itWithShared([`${QUANT}/input.f32`], "write ggml's bytes for the shared input", () => {
    const input = quantFile('input.f32');
    for (const t of ['q8_0', 'q4_0'] as const) expectSameBytes(cpuAddon().quantizeRows(input, 'f32', t), quantFile(`${t}.quant.bin`), t);
  });

  /** Blocks that probe each rule: zeros, ties at .5 steps, a negative extreme, equal values, tiny and huge scales. */
  function awkwardBlocks(): Float32Array {
    const rng = new Rng(77);
    const blocks: number[][] = [
      Array(32).fill(0),
      Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5), // Q8_0 ties: x·(127/8) hits .5 steps
      Array.from({ length: 32 }, (_, j) => (j % 2 ? 1 : -1) * (j + 0.5)),
      Array.from({ length: 32 }, (_, j) => (j === 5 ? -3 : 3)), // max magnitude tie: the first one wins
      Array.from({ length: 32 }, (_, j) => (j === 9 ? -8 : j / 4)), // Q4_0: negative extreme → code 0
      Array(32).fill(0.7),
      Array.from({ length: 32 }, () => rng.normal(0, 1e-6)),
      Array.from({ length: 32 }, () => rng.normal(0, 3000)),
      Array.from({ length: 32 }, (_, j) => 127 * (j - 15)), // Q8_0: d = 127·16/127 exactly
    ];
    for (let b = 0; b < 40; b++) blocks.push(Array.from({ length: 32 }, () => rng.normal(0, b % 3 === 0 ? 0.02 : 1)));
    return Float32Array.from(blocks.flat());
  }

  it('match the reference quantizers byte for byte on awkward blocks', () => {
    const x = awkwardBlocks();
    expectSameBytes(quantize(x, 'q8_0'), quantizeQ8_0(x), 'q8_0');
    expectSameBytes(quantize(x, 'q4_0'), quantizeQ4_0(x), 'q4_0');
  });

  it('read f16 and bf16 sources as their values', () => {
    const x = awkwardBlocks().map((v) => f16ToNumber(numberToF16(v)));
    const f16 = encodeF16(x);
    expectSameBytes(cpuAddon().quantizeRows(f16, 'f16', 'q8_0'), quantizeQ8_0(x), 'f16 → q8_0');
    expectSameBytes(cpuAddon().quantizeRows(f16, 'f16', 'q4_0'), quantizeQ4_0(x), 'f16 → q4_0');
    expectSameBytes(cpuAddon().quantizeRows(f32Bytes(x), 'f32', 'f16'), f16, 'f32 → f16');
    const bf = awkwardBlocks();
    const bfBytes = new Uint8Array(Uint16Array.from(bf, numberToBf16).buffer);
    const bfValues = asF32(cpuAddon().quantizeRows(bfBytes, 'bf16', 'f32'));
    expectSameBytes(cpuAddon().quantizeRows(bfBytes, 'bf16', 'q8_0'), quantizeQ8_0(bfValues), 'bf16 → q8_0');
  });

  it('refuse partial blocks and unknown types', () => {
    const q = cpuAddon().quantizeRows;
    expectErrorCode(() => q(new Uint8Array(100), 'f32', 'q8_0'), 'ERR_INVALID_ARG', /do not fill q8_0 blocks of 32/);
    expectErrorCode(() => q(new Uint8Array(150), 'q4_k', 'f32'), 'ERR_INVALID_ARG', /not a whole number of q4_k blocks \(144 bytes each\)/);
    expectErrorCode(() => q(new Uint8Array(64), 'iq2_xxs' as never, 'f32'), 'ERR_UNSUPPORTED', /"iq2_xxs"/);
    expectErrorCode(() => q(new Uint8Array(128), 'f32', 'q4_k' as never), 'ERR_UNSUPPORTED', /target type "q4_k"/);
  });
});

// ---- the loader's conversions --------------------------------------------------------------------

/** The values the engine holds for a [rows, cols] weight loaded from `bytes` of `type` (read back with embed). */
async function storedWeight(type: string, bytes: Uint8Array, rows: number, cols: number, dtype: WeightDType, group?: number): Promise<Float32Array> {
  const spec: GraphSpec = {
    weights: [{ name: 'w', dtype, shape: [rows, cols], ...(group !== undefined ? { group } : {}) }],
    buffers: [{ name: 'out', width: cols }],
    kvCaches: [],
    nodes: [{ op: 'embed', out: 'out', weight: 'w' }],
  };
  const source = { weight: 'w', type, nbytes: bytes.byteLength, data: bytes } as WeightSource;
  const tokens = Int32Array.from({ length: rows }, (_, i) => i);
  const [out] = await runGraph(spec, [source], 'reference', [{ pos: 0, tokens, outputs: ['out'] }], { maxTokens: rows, maxSeqLen: rows });
  return out!['out']!;
}

function rms(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(s / a.length);
}

/** Engine storage of each type (lib/model/weights.ts). */
const STORED_AS: Record<BlockType, { dtype: WeightDType; group?: number }> = {
  q4_1: { dtype: 'int4', group: 32 },
  q4_k: { dtype: 'int4', group: 32 },
  q5_0: { dtype: 'q8_0' },
  q5_1: { dtype: 'q8_0' },
  q5_k: { dtype: 'q8_0' },
  q6_k: { dtype: 'q8_0' },
  q8_k: { dtype: 'q8_0' },
};

describe('loading into engine storage', () => {
  const rows = 3;
  const cols = 512;
  for (const type of BLOCK_TYPES) {
    it(`${type} → ${STORED_AS[type].dtype}${STORED_AS[type].group ? ` g${STORED_AS[type].group}` : ''}`, async () => {
      const rng = new Rng(0x51ed + BLOCK_TYPES.indexOf(type));
      const fields = randomFields(type, rng, (rows * cols) / LAYOUT[type].elems, 0.05);
      const bytes = packBlocks(type, fields);
      const ggml = blockValues(type, fields);
      const { dtype, group } = STORED_AS[type];
      const got = await storedWeight(type, bytes, rows, cols, dtype, group);
      if (type === 'q4_1' || type === 'q5_0') {
        expectSameValues(got, ggml, `${type} is stored exactly`);
      } else if (type === 'q4_k') {
        expectSameValues(got, q4kAsInt4(fields), 'q4_k: f16-rounded sub-block parameters');
        // each parameter is off by at most half an f16 ulp (2^-11 relative): |err| <= 2^-11 (|scale·q| + |min|)
        fields.forEach((f, b) => {
          for (let j = 0; j < 256; j++) {
            const k = Math.floor(j / 32);
            const bound = 2 ** -11 * (Math.abs(f16ToNumber(f.d) * f.sc![k]! * f.codes[j]!) + Math.abs(f16ToNumber(f.dmin!) * f.mins![k]!));
            const err = Math.abs(got[b * 256 + j]! - ggml[b * 256 + j]!);
            if (err > bound * (1 + 1e-6) + 2 ** -24 * Math.abs(ggml[b * 256 + j]!)) expect.fail(`q4_k weight ${b * 256 + j}: error ${err} > bound ${bound}`);
          }
        });
      } else {
        // re-quantized into Q8_0 from ggml's exact values, as quantize.cc does
        expectSameValues(got, storedValues({ source: 'f32', storage: 'q8_0' }, f32Bytes(ggml)), `${type} re-quantized to q8_0`);
      }
    });
  }

  itWithShared([`${QUANT}/q4_k.quant.bin`], "on ggml's Q4_K and Q6_K blocks the storage error is small next to the quantization error", async () => {
    const input = asF32(quantFile('input.f32'));
    // Q4_K → int4 g32, measured here: max |stored - ggml| / (|d·sc·q| + |dmin·m|) = 4.6e-4 (the
    // bound is 2^-11 = 4.9e-4, half an f16 ulp on each parameter); max |stored - ggml| over the
    // sub-block's largest |w| = 8.3e-4; the rms of (stored - ggml) is 0.8% of the rms error of
    // Q4_K itself against the original values (0.0015 vs 0.186), so its variance adds 0.007%.
    const q4k = quantFile('q4_k.quant.bin');
    const q4kValues = asF32(quantFile('q4_k.dequant.f32'));
    const q4kStored = await storedWeight('q4_k', q4k, 4, 512, 'int4', 32);
    expectSameValues(q4kStored, q4kAsInt4(unpackBlocks('q4_k', q4k)), 'q4_k storage mirror');
    expect(rms(q4kStored, q4kValues)).toBeLessThan(0.012 * rms(q4kValues, input));
    // Q6_K → Q8_0, measured: the added rms error is 0.29 of Q6_K's own (0.0136 vs 0.0467), so
    // the total error against the original values grows by 3.6% (variance adds 0.29^2 = 8%)
    const q6kValues = asF32(quantFile('q6_k.dequant.f32'));
    const q6kStored = await storedWeight('q6_k', quantFile('q6_k.quant.bin'), 4, 512, 'q8_0');
    expect(rms(q6kStored, q6kValues)).toBeLessThan(0.32 * rms(q6kValues, input));
    expect(rms(q6kStored, input)).toBeLessThan(1.045 * rms(q6kValues, input));
  });

  it('on Gaussian weights quantized by ggml\'s rules, Q5_1 and Q8_K gain little from re-quantizing into Q8_0', () => {
    const fr = Math.fround;
    const rng = new Rng(5);
    const x = Float32Array.from({ length: 256 * 64 }, () => rng.normal(0, 1));
    // Q5_1 as quantize_row_q5_1_ref: per 32, d = (max - min)/31, q = trunc((x - min)·(1/d) + 0.5)
    const q51: BlockFields[] = [];
    for (let b = 0; b < x.length / 32; b++) {
      const blk = x.subarray(32 * b, 32 * b + 32);
      const min = Math.min(...blk);
      const d = fr((Math.max(...blk) - min) / 31);
      const id = d !== 0 ? fr(1 / d) : 0;
      q51.push({ d: numberToF16(d), m: numberToF16(min), codes: Array.from(blk, (v) => Math.trunc(fr(fr(fr(v - min) * id) + 0.5))) });
    }
    // Q8_K as quantize_row_q8_K: per 256, iscale = -128/max (max: largest magnitude, signed), q = min(127, round(iscale·x)), d = 1/iscale
    const q8k: BlockFields[] = [];
    for (let b = 0; b < x.length / 256; b++) {
      const blk = x.subarray(256 * b, 256 * b + 256);
      const max = blk.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
      const iscale = fr(-128 / max);
      q8k.push({ d: fr(1 / iscale), codes: Array.from(blk, (v) => Math.min(127, Math.round(fr(iscale * v)))) });
    }
    const added = (type: BlockType, fields: BlockFields[]): number => {
      const values = blockValues(type, fields);
      const stored = storedValues({ source: 'f32', storage: 'q8_0' }, f32Bytes(values));
      return rms(stored, values) / rms(values, x);
    };
    // measured: Q5_1 0.14 (Q8_0's step is ~8x finer); Q8_K 0.75 (the same int8 precision, so
    // the total stays at int8 level: 1.25x Q8_K's own error, which is 1/16 of Q5_1's)
    expect(added('q5_1', q51)).toBeLessThan(0.16);
    expect(added('q8_k', q8k)).toBeLessThan(0.8);
  });

  it('refuses Q4_K into int4 groups other than 32, and rows that do not fill 256-blocks', async () => {
    const bytes = packBlocks('q4_k', randomFields('q4_k', new Rng(1), 2, 1));
    await expect(storedWeight('q4_k', bytes, 1, 512, 'int4', 64)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/q4_k repacks into int4 only with groups of 32/) });
    await expect(storedWeight('q4_k', bytes, 4, 128, 'int4', 32)).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/128 columns do not fit q4_k blocks of 256/) });
  });
});

// ---- unsupported types ---------------------------------------------------------------------------

describe('unsupported types', () => {
  const config: LlamaConfig = {
    dim: 256, hiddenDim: 512, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 64, vocabSize: 32, contextLength: 64,
    ropeTheta: 10000, ropeDim: 64, ropeFreqScale: 1, ropePairing: 'interleaved', normEps: 1e-5,
  };
  const tensor = (name: string, shape: number[], type: TensorInfo['type'] = 'f32'): TensorInfo => ({ name, type, shape, file: '/x', offset: 0, nbytes: 0 });
  const tensors = (override: Record<string, TensorInfo['type']>): TensorInfo[] => {
    const t = (name: string, shape: number[]): TensorInfo => tensor(name, shape, override[name] ?? (shape.length === 1 ? 'f32' : 'q4_k'));
    return [
      t('token_embd.weight', [32, 256]), t('output_norm.weight', [256]),
      t('blk.0.attn_norm.weight', [256]), t('blk.0.ffn_norm.weight', [256]),
      ...['attn_q', 'attn_k', 'attn_v', 'attn_output'].map((n) => t(`blk.0.${n}.weight`, [256, 256])),
      t('blk.0.ffn_gate.weight', [512, 256]), t('blk.0.ffn_up.weight', [512, 256]), t('blk.0.ffn_down.weight', [256, 512]),
    ];
  };

  it('every new type plans into its storage', () => {
    for (const type of BLOCK_TYPES) {
      const plan = planWeights(config, tensors({ 'blk.0.attn_v.weight': type }), 'm.gguf');
      const v = plan.specs.find((s) => s.name === 'blk.0.attn_v.weight')!;
      expect({ dtype: v.dtype, ...(v.group !== undefined ? { group: v.group } : {}) }, type).toEqual(STORED_AS[type]);
    }
  });

  for (const type of ['q2_k', 'q3_k', 'iq2_xxs', 'iq4_nl', 'tq1_0', 'q8_1', 'i8'] as const) {
    it(`${type.toUpperCase()} is ERR_UNSUPPORTED naming the type and the tensor`, () => {
      expectErrorCode(() => planWeights(config, tensors({ 'blk.0.ffn_up.weight': type }), 'm.gguf'), 'ERR_UNSUPPORTED', new RegExp(`tensor "blk\\.0\\.ffn_up\\.weight" has type ${type.toUpperCase()}`));
    });
  }

  it('the native loader refuses an unknown type name before any work', () => {
    const e = new (cpuAddon().Engine)({ weights: [{ name: 'w', dtype: 'f32', shape: [1, 256] }], buffers: [{ name: 'o', width: 256 }], kvCaches: [], nodes: [{ op: 'embed', out: 'o', weight: 'w' }] });
    expectErrorCode(() => e.load([{ weight: 'w', type: 'q3_k' as never, nbytes: 110, data: new Uint8Array(110) }]), 'ERR_UNSUPPORTED', /"q3_k"/);
    return e.dispose();
  });
});
