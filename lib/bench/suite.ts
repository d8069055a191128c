/**
 * The microbenchmark suite end to end (what `llama-cuda bench` and `npm run bench` run): pick the
 * backends present, measure their ceilings, time every case, print the table, write the JSON
 * rows and the roofline SVG beside them.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

import type { OpName, WeightDType } from '../addon-types.js';
import { loadAddon } from '../native.js';
import type { ShapeName } from './cases.js';
import { type Ceilings, measureCpuCeilings, measureCudaCeilings } from './ceilings.js';
import { type MicroOptions, MICRO_TABLE_HEADER, type Skipped, microCases, microTableRows, runCpuMicro, runCudaMicro } from './micro.js';
import { type MicroRow, type ResultRow, fmt, resultRow, textTable, writeResultsJson } from './results.js';
import { rooflineSvg } from './roofline-svg.js';

export type BenchBackend = 'cpu' | 'cuda';

export interface SuiteOptions extends MicroOptions {
  /** Backends to run; undefined: the CPU and, where usable, CUDA. */
  readonly backends?: readonly BenchBackend[];
  readonly quick?: boolean;
  /** Where to write the §5 rows; the SVG goes beside it (same name, .svg). */
  readonly json?: string;
  readonly out?: (text: string) => void;
}

export interface SuiteReport {
  readonly rows: MicroRow[];
  readonly ceilingRows: ResultRow[];
  readonly ceilings: Ceilings[];
  readonly skipped: Skipped[];
  readonly seconds: number;
  readonly svgFile?: string;
}

export function svgPathFor(json: string): string {
  return json.toLowerCase().endsWith('.json') ? `${json.slice(0, -5)}.svg` : `${json}.svg`;
}

export function cpuDeviceName(fallback: string): string {
  return cpus()[0]?.model.trim() || fallback;
}

/** The ceilings as rows of their own (`ceiling.<backend>.memory-bandwidth`, `.matrix-rate`). */
export function ceilingRows(c: Ceilings): ResultRow[] {
  return [
    resultRow({ name: `ceiling.${c.backend}.memory-bandwidth`, backend: c.backend, device: c.device, value: c.bandwidthGBps, unit: 'GB/s', ceiling: null, notes: c.bandwidthHow }),
    resultRow({ name: `ceiling.${c.backend}.matrix-rate`, backend: c.backend, device: c.device, value: c.matrixGflops, unit: 'GFLOP/s', ceiling: null, notes: c.matrixHow }),
  ];
}

export async function runMicroSuite(opts: SuiteOptions): Promise<SuiteReport> {
  const print = opts.out ?? ((t: string) => process.stdout.write(t));
  const t0 = performance.now();
  const cases = microCases(opts);
  const rows: MicroRow[] = [];
  const skipped: Skipped[] = [];
  const ceilings: Ceilings[] = [];
  const wanted = opts.backends ?? ['cpu', 'cuda'];
  const explicit = opts.backends !== undefined;

  if (wanted.includes('cpu')) {
    const { addon, info } = loadAddon('cpu');
    const device = cpuDeviceName(info.cpu.model);
    const c = measureCpuCeilings(addon, device, {
      threads: opts.threads,
      ...(opts.quick ? { bandwidthBytes: 256 << 20, gemmSize: 512, gemmRows: 128 } : {}),
    });
    ceilings.push(c);
    print(`cpu: ${device}, ${c.threads} threads, ${info.cpu.defaultTier} kernels\n  memory bandwidth ${fmt(c.bandwidthGBps)} GB/s: ${c.bandwidthHow}\n  matrix rate ${fmt(c.matrixGflops)} GFLOP/s: ${c.matrixHow}\n`);
    print(`timing ${cases.length} cases on the cpu...\n`);
    const r = runCpuMicro(addon, cases, c, opts);
    rows.push(...r.rows);
    skipped.push(...r.skipped);
  }
  if (wanted.includes('cuda')) {
    const why = cudaUnusableReason();
    if (why !== undefined) {
      const line = `cuda: not timed: ${why}`;
      if (explicit) print(`${line}\n`);
      else print(`${line} (CPU only)\n`);
    } else {
      const { addon, info } = loadAddon('cuda');
      const device = info.cuda.devices[0]?.name ?? 'CUDA device';
      const c = measureCudaCeilings(addon, device, opts.quick === true);
      ceilings.push(c);
      print(`cuda: ${device}\n  memory bandwidth ${fmt(c.bandwidthGBps)} GB/s: ${c.bandwidthHow}\n  matrix rate ${fmt(c.matrixGflops)} GFLOP/s: ${c.matrixHow}\n`);
      const r = runCudaMicro(addon, cases, c, { ...opts, quick: opts.quick === true });
      rows.push(...r.rows);
      skipped.push(...r.skipped);
    }
  }

  print(`\n${textTable(MICRO_TABLE_HEADER, microTableRows(rows))}\n`);
  if (skipped.length > 0) {
    print(`\nskipped (${skipped.length}):\n${skipped.map((s) => `  ${s.backend} ${s.name}: ${s.reason}`).join('\n')}\n`);
  }
  const seconds = (performance.now() - t0) / 1e3;
  const ceilingList = ceilings.flatMap(ceilingRows);
  let svgFile: string | undefined;
  if (opts.json !== undefined) {
    writeResultsJson(opts.json, [...ceilingList, ...rows]);
    svgFile = svgPathFor(opts.json);
    const title = `llama-cuda roofline: ${ceilings.map((c) => `${c.backend} ${c.device}`).join(' / ')}`;
    writeFileSync(svgFile, rooflineSvg(rows, ceilings, { title }));
    print(`\nwrote ${opts.json} (${rows.length + ceilingList.length} rows) and ${svgFile}\n`);
  }
  print(`${rows.length} cases timed, ${skipped.length} skipped, in ${seconds.toFixed(1)} s\n`);
  return { rows, ceilingRows: ceilingList, ceilings, skipped, seconds, ...(svgFile !== undefined ? { svgFile } : {}) };
}

/** Why CUDA cannot be timed here, or undefined when a real GPU build is usable. */
export function cudaUnusableReason(): string | undefined {
  try {
    const choice = loadAddon('cuda');
    if (choice.variant === 'simt') return 'the loaded build is the SIMT emulator (CUDA semantics on the CPU, not a speed backend)';
    if (choice.device !== 'cuda') return choice.reason;
    if (choice.addon.cudaBench === undefined) return 'the CUDA build has no cudaBench entry';
    return undefined;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).split('\n')[0];
  }
}

export type { ShapeName, OpName, WeightDType };
