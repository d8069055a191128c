/**
 * `llama-cuda bench --quick --json F` runs the microbenchmarks on tiny shapes and writes the
 * §5 rows to F and the roofline chart beside it (F with .svg). No timing is asserted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { repoRoot } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir();

it('llama-cuda bench --quick --json writes the rows and the roofline SVG', () => {
  const json = tmp('micro.json');
  const r = spawnSync(
    process.execPath,
    [path.join(repoRoot, 'bin', 'llama-cuda.js'), 'bench', '--quick', '--backends', 'cpu', '--ops', 'matmul,rmsnorm,embed', '--dtypes', 'f32,int4', '--time', '5', '--json', json],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/memory bandwidth [\d.]+ GB\/s/);
  expect(r.stdout).toMatch(/matrix rate [\d.]+ GFLOP\/s/);
  expect(r.stdout).toMatch(/^matmul\s+256x256 n=1\s+int4\s+cpu/m);
  const rows = JSON.parse(readFileSync(json, 'utf8')) as { name: string; value: number; ceiling: number | null; ratio: number | null; unit: string }[];
  const names = rows.map((x) => x.name);
  expect(names).toEqual(expect.arrayContaining(['ceiling.cpu.memory-bandwidth', 'ceiling.cpu.matrix-rate', 'matmul.int4.256x256.b1', 'matmul.f32.256x256.b16', 'rmsnorm.f32.256.b1', 'embed.f16.512x256.b16']));
  for (const row of rows.filter((x) => !x.name.startsWith('ceiling.'))) {
    expect(row.value).toBeGreaterThan(0);
    expect(['GB/s', 'GFLOP/s']).toContain(row.unit);
    expect(row.ratio).toBeCloseTo(row.value / row.ceiling!, 12);
  }
  const svgFile = json.replace(/\.json$/, '.svg');
  expect(existsSync(svgFile)).toBe(true);
  const svg = readFileSync(svgFile, 'utf8');
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg).toContain('data-name="matmul.int4.256x256.b1"');
  expect(svg).toMatch(/<path class="roof" data-backend="cpu"/);
});

it('llama-cuda bench rejects an unknown op as bad usage', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'llama-cuda.js'), 'bench', '--ops', 'conv2d'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain('--ops: unknown "conv2d"');
});
