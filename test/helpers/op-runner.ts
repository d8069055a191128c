/**
 * The per-op test suite's runner (test/ops/): one-op graphs through the production
 * Engine/Session path on every CPU kernel tier and on the CUDA backend of the SIMT emulator build
 * ('cuda-simt': the CUDA kernels compiled for the CPU), checked against the float64 references
 * and the CPU reference tier with the tolerance tables of test/cases/ (style.md: one-op graphs,
 * tolerances in one table, evidence in every failure; "cuda-simt vs cpu"). Also the weight
 * encodings those tests load: GGUF source bytes, and the values the engine stores after
 * converting them (native/core/quantize.cc mirrored).
 */
import { describe, it } from 'vitest';

import type { CpuKernelTier, GraphSpec, KvCacheType, LoadableType, WeightDType, WeightSource } from '../../lib/addon-types.js';
import {
  bf16ToNumber,
  dequantBf16,
  dequantF16,
  dequantF32,
  dequantQ4_0,
  dequantQ8_0,
  encodeF16,
  f16ToNumber,
  numberToBf16,
  numberToF16,
  quantizeQ4_0,
  quantizeQ8_0,
} from '../reference/ops.js';
import { NF4_VALUES } from '../../lib/formats/bnb-nf4.js';
import { type Target, availableTiers, buildEngine, simtMissing } from './graphs.js';

export type { Target } from './graphs.js';

// ---- tiers, names, seeds ----------------------------------------------------------------------

/** Computes once, on first use (case data is made inside the tests, not at collection). */
export function lazy<T>(make: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: make() }).v;
}

/** Every kernel tier this machine runs ('auto' is a choice, not a tier); loads the addon on first use. */
export const tiers = lazy((): readonly CpuKernelTier[] => availableTiers().filter((t) => t !== 'auto'));

/** ggml-style case name from its variables: "rows=3 cols=96 w=q8_0". */
export function vars(v: Readonly<Record<string, string | number | boolean>>): string {
  return Object.entries(v)
    .map(([k, x]) => `${k}=${String(x)}`)
    .join(' ');
}

/** A seed from a case name (FNV-1a), so a case's data does not depend on its place in the list. */
export function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function isCi(): boolean {
  return process.env['CI'] === 'true' || process.env['CI'] === '1';
}

let warnedSimt = false;

/**
 * Registers the 'cuda-simt' test of a case: `body` when the SIMT build loads; otherwise a skip
 * with the reason printed once (a failure under CI=true, which builds it); or a skip with
 * `unsupported` when the CUDA kernels do not cover the case.
 */
export function itCudaSimt(name: string, body: () => Promise<void>, unsupported?: string): void {
  const missing = simtMissing();
  if (unsupported !== undefined) {
    it.skip(`${name}: unsupported on CUDA: ${unsupported}`, () => {});
  } else if (missing === undefined) {
    it(name, body);
  } else if (isCi()) {
    it(name, () => {
      throw new Error(missing);
    });
  } else {
    if (!warnedSimt) console.warn(`skipping cuda-simt tests: ${missing}`);
    warnedSimt = true;
    it.skip(`${name}: ${missing}`, () => {});
  }
}

/** Every CPU tier this machine runs, then 'cuda-simt' when the SIMT build is there. */
export function targets(): readonly Target[] {
  return simtMissing() === undefined ? [...tiers(), 'cuda-simt'] : tiers();
}

/**
 * One describe per case, one test per CPU tier and one for 'cuda-simt' (the CUDA backend on the
 * SIMT emulator). A test gets its own output and, for every target but the reference tier, the
 * reference tier's output of the same case (cross-tier check: "cuda-simt vs cpu" for CUDA).
 * `options.cudaUnsupported` skips the CUDA test with that reason (a combination the kernels do
 * not cover by design).
 */
export function describeTiers<T>(
  caseName: string,
  run: (tier: Target) => Promise<T>,
  check: (got: T, tier: Target, referenceTier: T | undefined) => void,
  options: { readonly cudaUnsupported?: string } = {},
): void {
  describe(caseName, () => {
    const outputs = new Map<Target, Promise<T>>();
    const output = (tier: Target): Promise<T> => {
      let p = outputs.get(tier);
      if (p === undefined) {
        p = run(tier);
        outputs.set(tier, p);
      }
      return p;
    };
    for (const tier of tiers()) {
      it(`tier=${tier}`, async () => {
        const got = await output(tier);
        check(got, tier, tier === 'reference' ? undefined : await output('reference'));
      });
    }
    itCudaSimt(
      'cuda-simt',
      async () => {
        const got = await output('cuda-simt');
        check(got, 'cuda-simt', await output('reference'));
      },
      options.cudaUnsupported,
    );
  });
}

// ---- running steps ----------------------------------------------------------------------------

export interface Step {
  /** Position of the first row. */
  readonly pos: number;
  readonly tokens?: Int32Array;
  readonly inputs?: Readonly<Record<string, Float32Array>>;
  /** Buffers to read back after the step. */
  readonly outputs: readonly string[];
  readonly allRows?: boolean;
}

/** A step's outputs by buffer name, each trimmed to the rows the step produced. */
export type StepOutputs = Record<string, Float32Array>;

export interface RunOptions {
  readonly threads?: number;
  readonly maxSeqLen?: number;
  readonly maxTokens?: number;
  readonly maxOutputRows?: number;
  readonly kvType?: KvCacheType;
}

/** Builds the graph on one target, runs the steps in order on one session, disposes everything. */
export async function runGraph(
  spec: GraphSpec,
  sources: readonly WeightSource[],
  tier: Target,
  steps: readonly Step[],
  options: RunOptions = {},
): Promise<StepOutputs[]> {
  const { engine, session } = await buildEngine(spec, sources, { ...options, tier });
  const width = (name: string): number => {
    const b = spec.buffers.find((x) => x.name === name);
    if (b === undefined) throw new Error(`no buffer "${name}" in the graph`);
    return b.width;
  };
  try {
    const results: StepOutputs[] = [];
    for (const step of steps) {
      const first = Object.entries(step.inputs ?? {})[0];
      const rows = step.tokens?.length ?? (first ? first[1].length / width(first[0]) : 0);
      const outs = step.outputs.map((name) => ({ buffer: name, data: new Float32Array(rows * width(name)) }));
      const r = await session.run({
        pos: step.pos,
        ...(step.tokens !== undefined ? { tokens: step.tokens } : {}),
        inputs: Object.entries(step.inputs ?? {}).map(([buffer, data]) => ({ buffer, data })),
        outputs: outs,
        ...(step.allRows !== undefined ? { allRows: step.allRows } : {}),
      });
      const out: StepOutputs = {};
      outs.forEach((o, j) => {
        out[o.buffer] = o.data.subarray(0, (r.outputRows[j] ?? 0) * width(o.buffer));
      });
      results.push(out);
    }
    return results;
  } finally {
    await session.dispose();
    await engine.dispose();
  }
}

// ---- checking with a per-element bound --------------------------------------------------------

/**
 * |got - ref| <= atol + rtol * scale[i] + kSigma * sigma[i]  (llm.c's t_eff, as
 * native/tests/cpu_ops_check.cc). scale defaults to |ref|; a dot product passes the sum of
 * |terms| instead (its rounding error grows with that, not with a cancelled result).
 */
export interface BoundTolerance {
  readonly atol: number;
  readonly rtol: number;
  /** Multiples of sigma, the standard deviation of a known rounding step (int8 activations). */
  readonly kSigma?: number;
  /** Upper bound on sum((got - ref)^2) / sum(ref^2); omit to check elementwise only. */
  readonly nmse?: number;
}

/** Two tolerances added: the bound for comparing two results that each carry one. */
export function sumTolerance(a: BoundTolerance, b: BoundTolerance): BoundTolerance {
  return { atol: a.atol + b.atol, rtol: a.rtol + b.rtol, kSigma: (a.kSigma ?? 0) + (b.kSigma ?? 0) };
}

export interface BoundOptions {
  readonly scale?: ArrayLike<number>;
  readonly sigma?: ArrayLike<number>;
  /** Row width of the compared matrices: indices are then also shown as (row, column). */
  readonly width?: number;
}

const fmt = (x: number | undefined): string => (x === undefined ? 'undefined' : x.toPrecision(9));

/**
 * Throws with evidence (case, tolerance, first 5 pairs, worst index, up to 10 faults, NMSE)
 * unless every element is within its bound. NaN matches only NaN, an infinity only itself.
 */
export function assertWithin(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: BoundTolerance,
  what: string,
  opts: BoundOptions = {},
): void {
  if (got.length !== ref.length) throw new Error(`${what}: length ${got.length} != reference length ${ref.length}`);
  const kSigma = tol.kSigma ?? 0;
  const bound = (i: number): number => {
    const scale = opts.scale ? (opts.scale[i] as number) : Math.abs(ref[i] as number);
    const sigma = opts.sigma && kSigma > 0 ? kSigma * (opts.sigma[i] as number) : 0;
    return tol.atol + tol.rtol * scale + sigma;
  };
  const faultsAt: number[] = [];
  let faults = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  let errSq = 0;
  let refSq = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i] as number;
    const r = ref[i] as number;
    if ((Number.isNaN(g) && Number.isNaN(r)) || (!Number.isFinite(r) && g === r)) continue;
    const err = Math.abs(g - r);
    const excess = Number.isFinite(r) && !Number.isNaN(err) ? err - bound(i) : Infinity;
    if (excess > 0) {
      faults++;
      if (faultsAt.length < 10) faultsAt.push(i);
    }
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    errSq += err * err;
    if (Number.isFinite(r)) refSq += r * r;
  }
  const nmse = refSq > 0 ? errSq / refSq : errSq / Math.max(ref.length, 1);
  const nmseBad = tol.nmse !== undefined && !(nmse <= tol.nmse);
  if (faults === 0 && !nmseBad) return;
  const tolText =
    `|got - ref| <= ${tol.atol} + ${tol.rtol} * ${opts.scale ? 'scale' : '|ref|'}` +
    (kSigma > 0 ? ` + ${kSigma} * sigma` : '') +
    (tol.nmse !== undefined ? `, nmse <= ${tol.nmse}` : '');
  const at = (i: number): string => (opts.width ? `[${i}] (row ${Math.floor(i / opts.width)}, col ${i % opts.width})` : `[${i}]`);
  const lines = [`${what}: ${faults} of ${ref.length} elements out of tolerance (${tolText}); nmse ${nmse.toExponential(3)}`];
  const first: string[] = [];
  for (let i = 0; i < Math.min(5, ref.length); i++) first.push(`[${i}] ${fmt(got[i])} vs ${fmt(ref[i])}`);
  lines.push(`  first (got vs ref): ${first.join(', ')}`);
  if (worst >= 0) {
    const diff = Math.abs((got[worst] as number) - (ref[worst] as number));
    lines.push(`  worst: ${at(worst)} got ${fmt(got[worst])} ref ${fmt(ref[worst])} |diff| ${fmt(diff)} bound ${fmt(bound(worst))}`);
  }
  for (const i of faultsAt) lines.push(`  fault ${at(i)} got ${fmt(got[i])} ref ${fmt(ref[i])} bound ${fmt(bound(i))}`);
  if (faults > faultsAt.length) lines.push(`  ... ${faults - faultsAt.length} more faults`);
  throw new Error(lines.join('\n'));
}

// ---- weight encodings -------------------------------------------------------------------------

/** A weight as a test loads it: the source encoding in the file, the storage type in the engine. */
export interface WeightKind {
  readonly source: LoadableType;
  readonly storage: WeightDType;
  /** int4 group size. */
  readonly group?: number;
}

/** "f16" when source and storage agree, "f32->int4g64" for a conversion at load. */
export function kindName(k: WeightKind): string {
  const storage = k.storage === 'int4' ? `int4g${k.group ?? 32}` : k.storage;
  return k.source === k.storage ? k.source : `${k.source}->${storage}`;
}

/** Columns must be a multiple of this for the source blocks and the storage groups. */
export function kindBlock(k: WeightKind): number {
  const src = k.source === 'q8_0' || k.source === 'q4_0' ? 32 : 1;
  const dst = k.storage === 'q8_0' ? 32 : k.storage === 'int4' ? (k.group ?? 32) : k.storage === 'nf4' ? 64 : 1;
  return Math.max(src, dst);
}

function encodeBf16(x: Float32Array): Uint8Array {
  const out = new Uint8Array(2 * x.length);
  const v = new DataView(out.buffer);
  for (let i = 0; i < x.length; i++) v.setUint16(2 * i, numberToBf16(x[i] as number), true);
  return out;
}

/** Float32 values → the little-endian bytes of a GGUF tensor of that type (reference quantizers). */
export function encodeSource(type: LoadableType, values: Float32Array): Uint8Array {
  switch (type) {
    case 'f32':
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case 'f16':
      return encodeF16(values);
    case 'bf16':
      return encodeBf16(values);
    case 'q8_0':
      return quantizeQ8_0(values);
    case 'q4_0':
      return quantizeQ4_0(values);
  }
}

/** The values a source's bytes mean (reference dequantizers). */
export function decodeSource(type: LoadableType, bytes: Uint8Array): Float64Array {
  switch (type) {
    case 'f32':
      return dequantF32(bytes);
    case 'f16':
      return dequantF16(bytes);
    case 'bf16':
      return dequantBf16(bytes);
    case 'q8_0':
      return dequantQ8_0(bytes);
    case 'q4_0':
      return dequantQ4_0(bytes);
  }
}

const f32 = Math.fround;

/** nearbyint under the default rounding mode: to nearest, ties to even. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Re-quantization at load, as native/core/quantize.cc does it in float32 (every step rounded
 * with Math.fround in the same order), returning the dequantized values the engine keeps:
 *   q8_0: per 32: d = f16(absmax / 127), q = clamp(nearbyint(x * f32(1/d)), -127, 127), w = q d
 *   int4: per group: scale = f16((max - min) / 15), m = f16(min),
 *         q = clamp(nearbyint((x - m) * f32(1/scale)), 0, 15), w = q scale + m
 */
function requantize(x: Float64Array, storage: 'q8_0' | 'int4', group: number): Float64Array {
  const out = new Float64Array(x.length);
  const g = storage === 'q8_0' ? 32 : group;
  for (let b = 0; b < x.length; b += g) {
    if (storage === 'q8_0') {
      let amax = 0;
      for (let j = 0; j < g; j++) amax = Math.max(amax, Math.abs(x[b + j] as number));
      const d = f16ToNumber(numberToF16(f32(amax / 127)));
      const inv = d !== 0 ? f32(1 / d) : 0;
      for (let j = 0; j < g; j++) {
        const q = Math.min(127, Math.max(-127, roundEven(f32((x[b + j] as number) * inv))));
        out[b + j] = f32(q * d);
      }
    } else {
      let lo = x[b] as number;
      let hi = x[b] as number;
      for (let j = 1; j < g; j++) {
        lo = Math.min(lo, x[b + j] as number);
        hi = Math.max(hi, x[b + j] as number);
      }
      const scale = f16ToNumber(numberToF16(f32(f32(hi - lo) / 15)));
      const min = f16ToNumber(numberToF16(lo));
      const inv = scale !== 0 ? f32(1 / scale) : 0;
      for (let j = 0; j < g; j++) {
        const q = Math.min(15, Math.max(0, roundEven(f32(f32((x[b + j] as number) - min) * inv))));
        out[b + j] = f32(f32(q * scale) + min);
      }
    }
  }
  return out;
}

/**
 * The weight values the engine holds after loading `bytes` (source encoding) into the kind's
 * storage, dequantized. Exact paths (same type, q8_0 → q8_0, q4_0 → int4 group 32) keep the
 * source's numbers; every other pair decodes to f32 and encodes again (weight_loader.cc).
 */
export function storedValues(kind: WeightKind, bytes: Uint8Array): Float64Array {
  const x = decodeSource(kind.source, bytes);
  const exact = kind.source === kind.storage || (kind.source === 'q4_0' && kind.storage === 'int4' && kind.group === 32);
  if (exact) return x;
  switch (kind.storage) {
    case 'f32':
      return x.map(f32);
    case 'f16':
      return x.map((v) => f16ToNumber(numberToF16(f32(v))));
    case 'bf16':
      return x.map((v) => bf16ToNumber(numberToBf16(v)));
    case 'q8_0':
      return requantize(x, 'q8_0', 32);
    case 'int4':
      return requantize(x, 'int4', kind.group ?? 32);
    case 'nf4':
      return requantizeNf4(x);
  }
}

/**
 * NF4 at load, as native/core/nf4.cc does it in float32: per 64-block absmax = max |x| (the f32
 * scale), code = the nearest NF4 level to x * f32(1 / absmax) (above the midpoint of levels k and
 * k + 1 takes k + 1), w = f32(level * absmax); a block of zeros stays zero.
 */
export function requantizeNf4(x: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += 64) {
    let amax = 0;
    for (let j = 0; j < 64; j++) amax = Math.max(amax, Math.abs(f32(x[b + j] as number)));
    const inv = amax !== 0 ? f32(1 / amax) : 0;
    for (let j = 0; j < 64; j++) out[b + j] = amax !== 0 ? f32((NF4_VALUES[nf4Nearest(f32(f32(x[b + j] as number) * inv))] as number) * amax) : 0;
  }
  return out;
}

/** The NF4 code nearest to v (midpoints in float32, as core/nf4.cc). */
export function nf4Nearest(v: number): number {
  let code = 0;
  for (let k = 0; k < 15; k++) if (v > f32(0.5 * f32((NF4_VALUES[k] as number) + (NF4_VALUES[k + 1] as number)))) code = k + 1;
  return code;
}

/** The graph's weight declaration for a kind. */
export function weightSpec(name: string, kind: WeightKind, rows: number, cols: number): GraphSpec['weights'][number] {
  return { name, dtype: kind.storage, shape: [rows, cols], ...(kind.storage === 'int4' ? { group: kind.group ?? 32 } : {}) };
}

/** An in-memory source of `bytes` for weight `name`. */
export function memorySource(name: string, type: LoadableType, bytes: Uint8Array): WeightSource {
  return { weight: name, type, nbytes: bytes.byteLength, data: bytes };
}
