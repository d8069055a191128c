/**
 * Microbenchmark rows: the design.md §5 fields, ratio = value / ceiling, and the roof each op is
 * held against (memory below the ridge point, compute above it). No timings are asserted: the
 * timings here are made up.
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { type MicroCase, SHAPE_PRESETS, presetCases } from '../../lib/bench/cases.js';
import type { Ceilings } from '../../lib/bench/ceilings.js';
import { microCases, microRow, timingOf } from '../../lib/bench/micro.js';
import { median, resultRow, writeResultsJson } from '../../lib/bench/results.js';
import { ceilingRows } from '../../lib/bench/suite.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir();

const ceilings: Ceilings = {
  backend: 'cpu',
  device: 'Test CPU',
  threads: 2,
  bandwidthGBps: 20,
  bandwidthHow: 'test bandwidth',
  matrixGflops: 200, // ridge point: 10 FLOP per byte
  matrixHow: 'test GEMM',
};

function find(cases: readonly MicroCase[], name: string): MicroCase {
  const c = cases.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no case ${name} in ${cases.map((x) => x.name).join(', ')}`);
  return c;
}

describe('microbenchmark rows', () => {
  const cases = presetCases(SHAPE_PRESETS['7b'], ['matmul', 'rmsnorm', 'attention', 'embed'], ['int4', 'f32']);

  it('names and counts a decode matmul as design.md §5 does (matmul.int4.4096x4096.b1)', () => {
    const c = find(cases, 'matmul.int4.4096x4096.b1');
    // int4 g32: half a byte per weight + {scale, min} f16 per 32; x and out in f32
    expect(c.bytes).toBe(4096 * 4096 / 2 + 4096 * (4096 / 32) * 4 + 4 * (4096 + 4096));
    expect(c.flops).toBe(2 * 4096 * 4096);
    expect(c.spec).toMatchObject({ op: 'matmul', dtype: 'int4', rows: 4096, cols: 4096, n: 1 });
  });

  it('holds a memory-bound op against the bandwidth with ratio = value / ceiling', () => {
    const c = find(cases, 'matmul.int4.4096x4096.b1');
    const row = microRow(c, ceilings, timingOf([2e-3, 1e-3, 4e-3]), 'test kernel');
    expect(Object.keys(row)).toEqual(expect.arrayContaining(['name', 'backend', 'device', 'value', 'unit', 'ceiling', 'ratio', 'notes']));
    expect(row).toMatchObject({ name: 'matmul.int4.4096x4096.b1', backend: 'cpu', device: 'Test CPU', unit: 'GB/s', ceiling: 20, bound: 'memory' });
    expect(row.value).toBeCloseTo(c.bytes / 2e-3 / 1e9, 9); // the median, 2 ms
    expect(row.ratio).toBeCloseTo(row.value / 20, 12);
    expect(row.measure.minSeconds).toBe(1e-3);
    expect(row.measure.maxSeconds).toBe(4e-3);
    expect(row.notes).toContain('test bandwidth');
  });

  it('holds a compute-bound op (prefill GEMM) against the matrix rate', () => {
    const c = find(cases, 'matmul.f32.4096x4096.b512');
    expect(c.flops / c.bytes).toBeGreaterThan(10);
    const row = microRow(c, ceilings, timingOf([0.5]), 'test kernel');
    expect(row).toMatchObject({ unit: 'GFLOP/s', ceiling: 200, bound: 'compute' });
    expect(row.value).toBeCloseTo(c.flops / 0.5 / 1e9, 9);
    expect(row.ratio).toBeCloseTo(row.value / 200, 12);
  });

  it('an op without arithmetic (embed) is memory-bound', () => {
    const row = microRow(find(cases, 'embed.f16.32000x4096.b1'), ceilings, timingOf([1e-6]), 'k');
    expect(row.bound).toBe('memory');
    expect(row.measure.gflops).toBe(0);
  });

  it('counts causal prefill attention keys per query row', () => {
    const c = find(cases, 'attention.f16.mha.h32d128.ctx512.b512');
    // row i sees i + 1 keys: 512 * 513 / 2 in all, 4 x 128 + 5 FLOPs per head and key
    expect(c.flops).toBe((512 * 513) / 2 * 32 * (4 * 128 + 5));
  });

  it('writes the rows as a JSON array with the §5 fields; ceilings are rows too', () => {
    const c = find(cases, 'rmsnorm.f32.4096.b1');
    const rows = [...ceilingRows(ceilings), microRow(c, ceilings, timingOf([1e-6, 2e-6, 3e-6]), 'k')];
    const file = tmp('rows.json');
    writeResultsJson(file, rows);
    const back = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>[];
    expect(back).toHaveLength(3);
    for (const r of back) {
      for (const key of ['name', 'backend', 'device', 'value', 'unit', 'ceiling', 'ratio', 'notes']) expect(r).toHaveProperty(key);
      if (r.ceiling !== null) expect(r.ratio).toBeCloseTo((r.value as number) / (r.ceiling as number), 12);
    }
    expect(back.map((r) => r.name)).toEqual(['ceiling.cpu.memory-bandwidth', 'ceiling.cpu.matrix-rate', 'rmsnorm.f32.4096.b1']);
    expect(back[2]!.x).toMatchObject({ op: 'rmsnorm', bound: 'memory', bytes: c.bytes });
  });

  it('resultRow leaves ratio null without a ceiling; median of an even count averages', () => {
    expect(resultRow({ name: 'a', backend: 'cpu', device: 'd', value: 3, unit: 'x', ceiling: null, notes: '' }).ratio).toBeNull();
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('filters cases by name and runs a shape shared by two presets once', () => {
    const picked = microCases({ shapes: ['7b', '13b'], ops: ['matmul'], dtypes: ['q8_0'], filter: ['4096x4096'] });
    expect(picked.length).toBeGreaterThan(0);
    expect(picked.every((c) => c.name.includes('4096x4096'))).toBe(true);
    expect(new Set(picked.map((c) => c.name)).size).toBe(picked.length);
  });
});
