/**
 * Result rows in the results-file format of design.md §5: a JSON array of
 * `{ name, backend, device, value, unit, ceiling, ratio, notes }`, where `ceiling` is the measured
 * limit the value is held against and `ratio` = value / ceiling. Microbenchmark rows also carry
 * the numbers the roofline chart needs (`x-` fields are extra; readers of the format ignore them).
 */
import { writeFileSync } from 'node:fs';

export interface ResultRow {
  readonly name: string;
  readonly backend: string;
  readonly device: string;
  readonly value: number;
  readonly unit: string;
  readonly ceiling: number | null;
  readonly ratio: number | null;
  readonly notes: string;
}

/** What a microbenchmark measured, besides its headline value. */
export interface MicroMeasure {
  /** Median seconds of one run of the op. */
  readonly seconds: number;
  readonly minSeconds: number;
  readonly maxSeconds: number;
  /** Bytes one run moves (reads + writes) and floating-point operations it does. */
  readonly bytes: number;
  readonly flops: number;
  readonly gbps: number;
  readonly gflops: number;
}

export interface MicroRow extends ResultRow {
  readonly op: string;
  readonly shape: string;
  readonly dtype: string;
  readonly measure: MicroMeasure;
  /** Which roof the value is held against. */
  readonly bound: 'memory' | 'compute';
}

/** A row with ratio = value / ceiling (null without a ceiling). */
export function resultRow(r: Omit<ResultRow, 'ratio'>): ResultRow {
  const ratio = r.ceiling !== null && r.ceiling > 0 ? r.value / r.ceiling : null;
  return { name: r.name, backend: r.backend, device: r.device, value: r.value, unit: r.unit, ceiling: r.ceiling, ratio, notes: r.notes };
}

/** Writes rows as the §5 JSON array (micro rows keep their extra fields under `x`). */
export function writeResultsJson(file: string, rows: readonly ResultRow[]): void {
  const plain = rows.map((r) => {
    const base = resultRow(r);
    if (!isMicroRow(r)) return base;
    return { ...base, x: { op: r.op, shape: r.shape, dtype: r.dtype, bound: r.bound, ...r.measure } };
  });
  writeFileSync(file, `${JSON.stringify(plain, null, 2)}\n`);
}

export function isMicroRow(r: ResultRow): r is MicroRow {
  return 'measure' in r && 'bound' in r;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A number with 3 significant digits (no exponent below 1e6). */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 10) return x.toFixed(2);
  if (a >= 0.01) return x.toFixed(3);
  return x.toPrecision(3);
}

/** Seconds as a readable time: 12.3 us, 4.56 ms, 1.23 s. */
export function fmtTime(s: number): string {
  if (s < 1e-3) return `${fmt(s * 1e6)} us`;
  if (s < 1) return `${fmt(s * 1e3)} ms`;
  return `${fmt(s)} s`;
}

/** A plain text table: header row, then rows, columns padded (numbers right-aligned). */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+0-9.]/.test(r[i] ?? '') || (r[i] ?? '') === '-'));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
