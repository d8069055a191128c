/**
 * How the native build is chosen (lib/native.ts), observed from fresh processes so the
 * environment variables apply: LLAMA_CUDA_BACKEND, LLAMA_CUDA_PREBUILD, and the explanation
 * of every choice.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/shared-data.js';

interface Outcome {
  ok: boolean;
  info?: { variant: string; device: string; reason: string; attempts: { variant: string; ok: boolean; reason: string }[] };
  error?: { code: string; message: string };
}

function choose(device: string | undefined, env: Record<string, string> = {}): Outcome {
  const code = `
    import(${JSON.stringify(path.join(repoRoot, 'dist/esm/index.js'))}).then((m) => {
      try { const i = m.backendInfo(${device === undefined ? '' : JSON.stringify(device)}); console.log(JSON.stringify({ ok: true, info: i })); }
      catch (e) { console.log(JSON.stringify({ ok: false, error: { code: e.code, message: e.message } })); }
    });`;
  const clean = { ...process.env };
  delete clean.LLAMA_CUDA_BACKEND;
  delete clean.LLAMA_CUDA_PREBUILD;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...clean, ...env }, timeout: 30_000 });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Outcome;
}

const hasCudaBuild = existsSync(path.join(repoRoot, 'cuda', 'build', 'Release', 'llama_cuda.node'));

describe('choosing the native build', () => {
  it('device cpu loads the CPU build and says so', () => {
    const o = choose('cpu');
    expect(o.ok).toBe(true);
    expect(o.info).toMatchObject({ variant: 'cpu', device: 'cpu', reason: 'device cpu was requested' });
  });

  it('LLAMA_CUDA_BACKEND=cpu overrides auto; an invalid value is a clear error', () => {
    expect(choose(undefined, { LLAMA_CUDA_BACKEND: 'cpu' }).info?.reason).toBe('device cpu was requested');
    const bad = choose(undefined, { LLAMA_CUDA_BACKEND: 'tpu' });
    expect(bad.error).toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/LLAMA_CUDA_BACKEND must be one of auto, cpu, cuda/) });
  });

  it('auto without a usable GPU runs on the CPU and explains why', () => {
    const o = choose('auto');
    expect(o.info?.device).toBe('cpu');
    expect(o.info?.reason).toMatch(/^no usable CUDA: /);
    // the driver probe (in builds made since it exists) skips CUDA builds without loading them;
    // builds older than the probe are loaded and turned down
    if (hasCudaBuild) expect(o.info?.attempts[0]).toMatchObject({ variant: 'cuda', ok: false, reason: expect.stringMatching(/build loaded, but|build not tried: no usable NVIDIA GPU/) });
  });

  it('device cuda without a usable GPU is ERR_UNSUPPORTED listing every attempt', () => {
    const o = choose('cuda');
    expect(o.ok).toBe(false);
    expect(o.error?.code).toBe('ERR_UNSUPPORTED');
    expect(o.error?.message).toMatch(/device 'cuda' was requested but cannot be used:\n  - cuda/);
  });

  it('LLAMA_CUDA_PREBUILD loads exactly that file, and a bad path is ERR_NATIVE_LOAD', () => {
    const file = path.join(repoRoot, 'build', 'Release', 'llama_cuda.node');
    expect(choose('cpu', { LLAMA_CUDA_PREBUILD: file }).info).toMatchObject({ variant: 'cpu', reason: `LLAMA_CUDA_PREBUILD=${file}` });
    expect(choose('cpu', { LLAMA_CUDA_PREBUILD: '/nonexistent/x.node' }).error?.code).toBe('ERR_NATIVE_LOAD');
  });
});
