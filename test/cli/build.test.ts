/**
 * `llama-cuda build` (building from source on purpose): what it would run, and what it says when
 * tools are missing. --dry-run only: the real build is what `npm run build:native` does.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { repoRoot } from '../helpers/shared-data.js';

const bin = path.join(repoRoot, 'bin', 'llama-cuda.js');

function build(args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'build', ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

it('--dry-run --cpu-only lists the tools and the cmake-js command, and builds nothing', () => {
  const r = build(['--dry-run', '--cpu-only']);
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/found {3}cmake \(>= 3\.20\)/);
  expect(r.stderr).toMatch(/found {3}cmake-js: /);
  expect(r.stderr).toContain(`build: CPU: cmake-js compile -d ${repoRoot} --out ${path.join(repoRoot, 'build')} --target llama_cuda`);
});

it('--arch sm89 adds a CUDA build for that family into cuda/build', () => {
  const r = build(['--dry-run', '--arch', 'sm89']);
  if (spawnSync('nvcc', ['--version']).status !== 0) {
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/MISSING nvcc \(CUDA 13\) -> install the CUDA 13 toolkit/);
    return;
  }
  expect(r.status).toBe(0);
  expect(r.stderr).toContain(`--out ${path.join(repoRoot, 'cuda', 'build')} --CDLLAMA_CUDA_CUDA=ON --CDCMAKE_CUDA_ARCHITECTURES=89-real`);
});

it('names every missing tool and how to get it, and fails with ERR_UNSUPPORTED', () => {
  const r = build(['--dry-run', '--cpu-only'], { ...process.env, PATH: '/nonexistent', CXX: 'no-such-compiler' });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/MISSING cmake \(>= 3\.20\) -> install CMake 3\.20 or newer/);
  expect(r.stderr).toMatch(/MISSING C\+\+17 compiler -> install g\+\+ or clang\+\+/);
  expect(r.stderr).toMatch(/error \[ERR_UNSUPPORTED\]: cannot build from source; missing:/);
});

it('rejects an unknown --arch', () => {
  const r = build(['--dry-run', '--arch', 'sm75']);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/--arch must be one of sm80, sm86, sm89, sm90a, ptx or all/);
});
