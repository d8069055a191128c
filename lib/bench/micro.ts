/**
 * The microbenchmark runner: each case of cases.ts on each backend present, timed, and held
 * against the roof of the roofline that binds it.
 *
 * CPU: `benchOp` builds the op once on prepared buffers; one timed sample is `run(k)`, k runs
 * back to back in native code (k chosen so a sample lasts about 2 ms, so the N-API call is noise),
 * sampled by tinybench for `timeMs` and at least `minSamples` samples after one warm-up run.
 * CUDA (a real GPU build only; the SIMT emulator is not a speed backend): the addon's cudaBench,
 * CUDA events around each launch with the L2 flushed before it, for the ops it launches.
 *
 * Which roof: arithmetic intensity I = flops / bytes against the ridge point
 * (matrix rate / bandwidth). Below the ridge (or with no arithmetic) the value is GB/s against the
 * bandwidth; above it GFLOP/s against the matrix rate. ratio = value / ceiling.
 */
import { freemem } from 'node:os';

import { Bench } from 'tinybench';

import type { Addon, CudaBenchSpec, OpName, WeightDType } from '../addon-types.js';
import { type MicroCase, SHAPE_PRESETS, type ShapeName, presetCases } from './cases.js';
import { type Ceilings, lastLevelCacheBytes } from './ceilings.js';
import { type MicroRow, fmt, fmtTime, median } from './results.js';

export interface MicroOptions {
  readonly shapes: readonly ShapeName[];
  readonly ops: readonly OpName[];
  readonly dtypes: readonly WeightDType[];
  /** tinybench time budget per case (ms). */
  readonly timeMs: number;
  readonly minSamples: number;
  readonly threads: number;
  /** Only cases whose name contains one of these. */
  readonly filter?: readonly string[];
  readonly log?: (line: string) => void;
}

export interface Skipped {
  readonly name: string;
  readonly backend: string;
  readonly reason: string;
}

export interface BackendRun {
  readonly rows: MicroRow[];
  readonly skipped: Skipped[];
}

export function microCases(opts: Pick<MicroOptions, 'shapes' | 'ops' | 'dtypes' | 'filter'>): MicroCase[] {
  const cases = opts.shapes.flatMap((s) => presetCases(SHAPE_PRESETS[s], opts.ops, opts.dtypes));
  const seen = new Set<string>();
  return cases.filter((c) => {
    if (seen.has(c.name)) return false; // the same op shape in two presets runs once
    seen.add(c.name);
    return opts.filter === undefined || opts.filter.length === 0 || opts.filter.some((f) => c.name.includes(f));
  });
}

/** Seconds of one run of an op: median, spread, and how many samples gave them. */
export interface Timing {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly samples: number;
  /** Runs per sample (a sample times this many back-to-back runs). */
  readonly runsPerSample: number;
}

export function timingOf(seconds: readonly number[]): Timing {
  return { median: median(seconds), min: Math.min(...seconds), max: Math.max(...seconds), samples: seconds.length, runsPerSample: 1 };
}

/** The row of one measured case, held against the roof that binds it. */
export function microRow(c: MicroCase, ceilings: Ceilings, t: Timing, kernel: string): MicroRow {
  const s = t.median;
  const gbps = c.bytes / s / 1e9;
  const gflops = c.flops / s / 1e9;
  const ridge = ceilings.matrixGflops / ceilings.bandwidthGBps; // FLOP per byte
  const intensity = c.flops / c.bytes;
  const bound = c.flops > 0 && intensity >= ridge ? 'compute' : 'memory';
  const value = bound === 'compute' ? gflops : gbps;
  const ceiling = bound === 'compute' ? ceilings.matrixGflops : ceilings.bandwidthGBps;
  const minS = t.min;
  const maxS = t.max;
  const samples = `${t.samples} samples${t.runsPerSample > 1 ? ` of ${t.runsPerSample} runs` : ''}`;
  return {
    name: c.name,
    backend: ceilings.backend,
    device: ceilings.device,
    value,
    unit: bound === 'compute' ? 'GFLOP/s' : 'GB/s',
    ceiling,
    ratio: value / ceiling,
    notes:
      `${kernel}; ${c.shape}; median ${fmtTime(s)} (min ${fmtTime(minS)}, max ${fmtTime(maxS)}, ${samples}); ` +
      `${fmt(gbps)} GB/s, ${fmt(gflops)} GFLOP/s, ${fmt(intensity)} FLOP/B; ` +
      (bound === 'compute' ? `ceiling: ${ceilings.matrixHow}` : `ceiling: ${ceilings.bandwidthHow}`),
    op: c.op,
    shape: c.shape,
    dtype: c.dtype,
    bound,
    measure: { seconds: s, minSeconds: minS, maxSeconds: maxS, bytes: c.bytes, flops: c.flops, gbps, gflops },
  };
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const msg = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' ? `${code}: ${msg}` : msg;
}

const SAMPLE_SECONDS = 2e-3;

/** Times every case on the CPU backend. */
export function runCpuMicro(addon: Addon, cases: readonly MicroCase[], ceilings: Ceilings, opts: MicroOptions): BackendRun {
  const rows: MicroRow[] = [];
  const skipped: Skipped[] = [];
  const log = opts.log ?? (() => {});
  // weights and KV caches are read cold, as in a model: rotated over copies of 4x the LLC
  const coldBytes = Math.max(4 * lastLevelCacheBytes(), 64 << 20);
  for (const c of cases) {
    const cold = c.op === 'matmul' || c.op === 'attention' ? coldBytes : 0;
    // leave a fifth of the available memory to everything else on the machine
    const available = freemem() * 0.8;
    if (c.allocBytes + cold > available) {
      const reason = `needs ${((c.allocBytes + cold) / 2 ** 30).toFixed(2)} GiB, ${(available / 2 ** 30).toFixed(2)} GiB available`;
      skipped.push({ name: c.name, backend: 'cpu', reason });
      log(`skip ${c.name} (cpu): ${reason}`);
      continue;
    }
    let handle;
    try {
      handle = addon.benchOp({ ...c.spec, threads: opts.threads, coldBytes: cold });
    } catch (err) {
      const reason = errorText(err);
      skipped.push({ name: c.name, backend: 'cpu', reason });
      log(`skip ${c.name} (cpu): ${reason}`);
      continue;
    }
    try {
      // warm-up, and the size of one run: the fastest of up to 3 (one run when a run is slow)
      let first = handle.run(1);
      for (let i = 0; i < 2 && first < 0.05; i++) first = Math.min(first, handle.run(1));
      const k = Math.max(1, Math.min(1_000_000, Math.round(SAMPLE_SECONDS / Math.max(first, 1e-9))));
      const bench = new Bench({ time: opts.timeMs, iterations: opts.minSamples, warmup: false, throws: true });
      bench.add(c.name, () => {
        handle.run(k);
      });
      const [task] = bench.runSync();
      const result = task?.result;
      if (result === undefined || !('latency' in result)) throw new Error(`tinybench did not complete ${c.name}`);
      // latency samples are in ms per call of k runs
      const per = (ms: number): number => ms / 1e3 / k;
      const timing: Timing = {
        median: per(result.latency.p50),
        min: per(result.latency.min),
        max: per(result.latency.max),
        samples: result.latency.samplesCount,
        runsPerSample: k,
      };
      const row = microRow(c, ceilings, timing, handle.copies > 1 ? `${handle.kernel}, cold: ${handle.copies} copies rotated` : handle.kernel);
      rows.push(row);
      log(rowLine(row));
    } finally {
      handle.dispose();
    }
  }
  return { rows, skipped };
}

function cudaSpec(c: MicroCase, quick: boolean): CudaBenchSpec | undefined {
  const s = c.spec;
  const repeats = quick ? 3 : 20;
  switch (c.op) {
    case 'matmul':
      return { kind: 'op', op: 'matmul', dtype: s.dtype ?? 'f32', rows: s.rows ?? 0, cols: s.cols ?? 0, n: s.n ?? 1, repeats };
    case 'attention':
      return { kind: 'op', op: 'attention', nHeads: s.nHeads ?? 0, nKvHeads: s.nKvHeads ?? 0, headDim: s.headDim ?? 0, ctx: s.ctx ?? 0, n: s.n ?? 1, kvType: 'f16', repeats };
    case 'rmsnorm':
    case 'swiglu':
      return { kind: 'op', op: c.op, cols: s.width ?? 0, n: s.n ?? 1, repeats };
    default:
      return undefined;
  }
}

/** Times the cases cudaBench can launch on the GPU; the others are listed as skipped with the reason. */
export function runCudaMicro(addon: Addon, cases: readonly MicroCase[], ceilings: Ceilings, opts: MicroOptions & { quick?: boolean }): BackendRun {
  const rows: MicroRow[] = [];
  const skipped: Skipped[] = [];
  const log = opts.log ?? (() => {});
  const bench = addon.cudaBench;
  for (const c of cases) {
    const spec = cudaSpec(c, opts.quick === true);
    if (bench === undefined || spec === undefined) {
      const reason = `no native CUDA timing entry for ${c.op} (cudaBench times matmul, attention, rmsnorm, swiglu)`;
      skipped.push({ name: c.name, backend: 'cuda', reason });
      continue;
    }
    try {
      const r = bench(spec);
      const row = microRow(c, ceilings, timingOf(r.ms.map((ms) => ms / 1e3)), r.kernel);
      rows.push(row);
      log(rowLine(row));
    } catch (err) {
      const reason = errorText(err);
      skipped.push({ name: c.name, backend: 'cuda', reason });
      log(`skip ${c.name} (cuda): ${reason}`);
    }
  }
  return { rows, skipped };
}

export function rowLine(r: MicroRow): string {
  return `${r.backend} ${r.name}: ${fmtTime(r.measure.seconds)}, ${fmt(r.value)} ${r.unit} of ${fmt(r.ceiling ?? 0)} (${((r.ratio ?? 0) * 100).toFixed(1)}%)`;
}

/** The terminal table of micro rows. */
export function microTableRows(rows: readonly MicroRow[]): string[][] {
  return rows.map((r) => [
    r.op,
    r.shape,
    r.dtype,
    r.backend,
    fmtTime(r.measure.seconds),
    `${fmtTime(r.measure.minSeconds)}..${fmtTime(r.measure.maxSeconds)}`,
    fmt(r.measure.gbps),
    fmt(r.measure.gflops),
    `${fmt(r.ceiling ?? 0)} ${r.unit}`,
    `${((r.ratio ?? 0) * 100).toFixed(1)}%`,
  ]);
}

export const MICRO_TABLE_HEADER = ['op', 'shape', 'dtype', 'backend', 'median', 'min..max', 'GB/s', 'GFLOP/s', 'ceiling', 'ratio'];
