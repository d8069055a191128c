/**
 * The microbenchmark cases: every graph op at the shapes of real Llama 2 models, decode (1 row)
 * and prefill (128 / 512 rows), each matmul for every weight type, with the bytes each run
 * moves and the floating-point operations it does (the two axes of the roofline).
 *
 * Byte counts are the data an op must touch once: weights + activations read + outputs written
 * (an attention's whole K/V span once, however often a tiled kernel rereads it from cache).
 * FLOPs count multiply and add as one each; exp/division in softmax and SiLU count as one.
 */
import type { OpName, OpBenchSpec, WeightDType } from '../addon-types.js';

export interface ShapePreset {
  readonly name: string;
  readonly dim: number;
  readonly hidden: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly vocab: number;
  /** Prefill row counts timed at this size. */
  readonly prefill: readonly number[];
  /** Context lengths of the decode attention cases. */
  readonly contexts: readonly number[];
}

export const SHAPE_PRESETS = {
  // tiny: quick runs and tests
  tiny: { name: 'tiny', dim: 256, hidden: 768, nHeads: 4, nKvHeads: 2, vocab: 512, prefill: [16], contexts: [64] },
  // TinyLlama 1.1B
  small: { name: 'small', dim: 2048, hidden: 5632, nHeads: 32, nKvHeads: 4, vocab: 32000, prefill: [128], contexts: [512] },
  '7b': { name: '7b', dim: 4096, hidden: 11008, nHeads: 32, nKvHeads: 32, vocab: 32000, prefill: [128, 512], contexts: [512, 4096] },
  '13b': { name: '13b', dim: 5120, hidden: 13824, nHeads: 40, nKvHeads: 40, vocab: 32000, prefill: [128], contexts: [4096] },
  '70b': { name: '70b', dim: 8192, hidden: 28672, nHeads: 64, nKvHeads: 8, vocab: 32000, prefill: [128], contexts: [4096] },
} as const satisfies Record<string, ShapePreset>;

export type ShapeName = keyof typeof SHAPE_PRESETS;
export const ALL_OPS: readonly OpName[] = ['embed', 'rmsnorm', 'matmul', 'rope', 'kv_append', 'attention', 'swiglu', 'add', 'last_row'];
export const MATMUL_DTYPES: readonly WeightDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'int4'];

export interface MicroCase {
  /** Stable row name, e.g. `matmul.int4.4096x4096.b1`. */
  readonly name: string;
  readonly op: OpName;
  /** Human-readable shape, e.g. `11008x4096 n=128`. */
  readonly shape: string;
  readonly dtype: string;
  readonly preset: string;
  readonly spec: OpBenchSpec;
  readonly bytes: number;
  readonly flops: number;
  /** Host bytes the case allocates (to skip what does not fit). */
  readonly allocBytes: number;
}

/** Bytes of a [rows][cols] weight in the engine's storage (native/core/dtype.h). */
export function weightBytes(dtype: WeightDType | 'nf4', rows: number, cols: number, group = 32): number {
  const n = rows * cols;
  switch (dtype) {
    case 'f32':
      return n * 4;
    case 'f16':
    case 'bf16':
      return n * 2;
    case 'q8_0':
      return n + rows * (cols / 32) * 2;
    case 'int4':
      return n / 2 + rows * (cols / group) * 4;
    case 'nf4':
      return n / 2 + rows * (cols / 64) * 4;
  }
}

function matmulCase(preset: string, dtype: WeightDType, rows: number, cols: number, n: number): MicroCase {
  const w = weightBytes(dtype, rows, cols);
  const io = 4 * n * (rows + cols);
  return {
    name: `matmul.${dtype}.${rows}x${cols}.b${n}`,
    op: 'matmul',
    shape: `${rows}x${cols} n=${n}`,
    dtype,
    preset,
    spec: { op: 'matmul', dtype, rows, cols, n },
    bytes: w + io,
    flops: 2 * n * rows * cols,
    allocBytes: w + io,
  };
}

/** Attention FLOPs: query row i sees pos + i + 1 keys; per key QK and PV: 4 x headDim per head (+ softmax ~5). */
function attentionFlops(n: number, ctx: number, nHeads: number, headDim: number): number {
  let keys = 0;
  for (let i = 0; i < n; i++) keys += ctx - n + i + 1;
  return keys * nHeads * (4 * headDim + 5);
}

/** Every case of one preset, for the ops and matmul dtypes asked. */
export function presetCases(p: ShapePreset, ops: readonly OpName[], dtypes: readonly WeightDType[]): MicroCase[] {
  const out: MicroCase[] = [];
  const headDim = p.dim / p.nHeads;
  const kvDim = p.nKvHeads * headDim;
  const rowsList = [1, ...p.prefill];
  const maxRows = Math.max(...rowsList);
  const want = (op: OpName): boolean => ops.includes(op);
  const f32 = (count: number): number => 4 * count;

  if (want('matmul')) {
    // wq/wo (dim x dim), w1/w3 (hidden x dim), w2 (dim x hidden); decode and every prefill size
    const mats: [number, number][] = [
      [p.dim, p.dim],
      [p.hidden, p.dim],
      [p.dim, p.hidden],
    ];
    for (const dtype of dtypes) {
      for (const [rows, cols] of mats) {
        for (const n of rowsList) {
          // the largest prefill size only for the square matrix: the shape changes little
          if (n === maxRows && n > 128 && rows !== cols) continue;
          out.push(matmulCase(p.name, dtype, rows, cols, n));
        }
      }
    }
    // GQA: the key/value projection (kv_dim x dim) where it differs from the square one, decode only
    if (kvDim !== p.dim) for (const dtype of dtypes) out.push(matmulCase(p.name, dtype, kvDim, p.dim, 1));
  }
  for (const n of [1, maxRows]) {
    if (want('embed')) {
      const table = weightBytes('f16', p.vocab, p.dim);
      out.push({
        name: `embed.f16.${p.vocab}x${p.dim}.b${n}`,
        op: 'embed',
        shape: `${p.vocab}x${p.dim} n=${n}`,
        dtype: 'f16',
        preset: p.name,
        spec: { op: 'embed', dtype: 'f16', rows: p.vocab, cols: p.dim, n },
        bytes: n * p.dim * 2 + f32(n * p.dim),
        flops: 0,
        allocBytes: table + f32(n * p.dim),
      });
    }
    if (want('rmsnorm')) {
      out.push(elementwise(p.name, 'rmsnorm', p.dim, n, f32(2 * n * p.dim + p.dim), 4 * n * p.dim));
    }
    if (want('swiglu')) out.push(elementwise(p.name, 'swiglu', p.hidden, n, f32(3 * n * p.hidden), 5 * n * p.hidden));
    if (want('add')) out.push(elementwise(p.name, 'add', p.dim, n, f32(3 * n * p.dim), n * p.dim));
    if (want('last_row') && n > 1) out.push(elementwise(p.name, 'last_row', p.dim, n, f32(2 * p.dim), 0));
    if (want('rope')) {
      const qDim = p.nHeads * headDim;
      out.push({
        name: `rope.f32.${p.nHeads}x${headDim}.b${n}`,
        op: 'rope',
        shape: `${p.nHeads} heads x ${headDim} n=${n}`,
        dtype: 'f32',
        preset: p.name,
        spec: { op: 'rope', nHeads: p.nHeads, headDim, n },
        // x read and written, the cos/sin table read
        bytes: f32(2 * n * qDim + n * qDim),
        flops: 3 * n * qDim,
        allocBytes: f32(3 * n * qDim),
      });
    }
    if (want('kv_append')) {
      const ctx = Math.max(n, p.contexts[0]!);
      out.push({
        name: `kv_append.f16.${kvDim}.b${n}`,
        op: 'kv_append',
        shape: `kv_dim ${kvDim} n=${n}`,
        dtype: 'f16',
        preset: p.name,
        spec: { op: 'kv_append', nHeads: p.nKvHeads, nKvHeads: p.nKvHeads, headDim, n, ctx, kvType: 'f16' },
        bytes: f32(2 * n * kvDim) + 2 * 2 * n * kvDim,
        flops: 0,
        allocBytes: f32(2 * n * kvDim) + 2 * 2 * ctx * kvDim,
      });
    }
  }
  if (want('attention')) {
    const qDim = p.nHeads * headDim;
    const gqa = p.nKvHeads === p.nHeads ? 'mha' : `gqa${p.nHeads / p.nKvHeads}`;
    const attn = (n: number, ctx: number): MicroCase => ({
      name: `attention.f16.${gqa}.h${p.nHeads}d${headDim}.ctx${ctx}.b${n}`,
      op: 'attention',
      shape: `${p.nHeads}/${p.nKvHeads} heads x ${headDim} ctx=${ctx} n=${n}`,
      dtype: 'f16',
      preset: p.name,
      spec: { op: 'attention', nHeads: p.nHeads, nKvHeads: p.nKvHeads, headDim, n, ctx, kvType: 'f16' },
      bytes: 2 * 2 * ctx * kvDim + f32(2 * n * qDim),
      flops: attentionFlops(n, ctx, p.nHeads, headDim),
      allocBytes: 2 * 2 * ctx * kvDim + f32(2 * n * qDim),
    });
    for (const ctx of p.contexts) out.push(attn(1, ctx));
    out.push(attn(maxRows, maxRows)); // causal prefill of a whole prompt
  }
  return out;
}

function elementwise(preset: string, op: 'rmsnorm' | 'swiglu' | 'add' | 'last_row', width: number, n: number, bytes: number, flops: number): MicroCase {
  return {
    name: `${op}.f32.${width}.b${n}`,
    op,
    shape: `${width} n=${n}`,
    dtype: 'f32',
    preset,
    spec: { op, width, n },
    bytes,
    flops,
    allocBytes: 4 * 3 * n * width,
  };
}
