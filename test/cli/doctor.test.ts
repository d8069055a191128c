/**
 * `llama-cuda doctor` on this machine, as users run it (bin/llama-cuda.js over dist/): it must
 * name the platform, the driver state, the builds present and the one chosen, and on a machine
 * without an NVIDIA driver explain the CPU choice.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/shared-data.js';

const bin = path.join(repoRoot, 'bin', 'llama-cuda.js');

function doctor(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.LLAMA_CUDA_BACKEND;
  delete env.LLAMA_CUDA_PREBUILD;
  const r = spawnSync(process.execPath, [bin, 'doctor', ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface DoctorJson {
  platform: { os: string; arch: string; node: string; napi: string; glibc: string | null; glibc_floor: string };
  cpu: { model: string; simd_tier: string } | null;
  driver: { available: boolean; library: string | null; error: string | null };
  gpus: { name: string; compute_capability: string }[];
  builds: { path: string; kind: string; family: string | null; loads: boolean; chosen: boolean }[];
  chosen: { variant: string; device: string; path: string; reason: string } | null;
  attempts: { variant: string; ok: boolean; reason: string }[];
  advice: string[];
}

describe('llama-cuda doctor', () => {
  const json = doctor(['--json']);
  const report = JSON.parse(json.stdout) as DoctorJson;

  it('--json prints one object: platform, CPU, driver, builds and the choice', () => {
    expect(json.status).toBe(0);
    expect(report.platform).toMatchObject({ os: process.platform, arch: process.arch, node: process.versions.node, napi: process.versions.napi, glibc_floor: '2.34' });
    expect(report.cpu?.simd_tier).toMatch(/^(avx512|avx2|generic|reference)$/);
    expect(report.builds.some((b) => b.kind === 'cpu' && b.loads)).toBe(true);
    expect(report.builds.filter((b) => b.chosen).map((b) => b.path)).toEqual([report.chosen?.path]);
  });

  it('without an NVIDIA driver, explains that models run on the CPU and why', () => {
    if (report.driver.available) {
      // a GPU machine: the choice is a CUDA build, or advice says what is wrong
      expect(report.chosen?.device === 'cuda' || report.advice.length > 0).toBe(true);
      return;
    }
    expect(report.gpus).toEqual([]);
    expect(report.chosen).toMatchObject({ variant: 'cpu', device: 'cpu' });
    expect(report.chosen?.reason).toMatch(/^no usable CUDA: no usable NVIDIA GPU \(/);
    expect(report.attempts.filter((a) => a.variant === 'cuda').every((a) => !a.ok)).toBe(true);
    expect(report.advice.join('\n')).toMatch(/No NVIDIA driver here .*models run on the CPU .*driver r580 or newer/);
  });

  it('the text report names each part, marks the chosen build and gives advice', () => {
    const r = doctor([]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    for (const label of ['platform:', 'node:', 'cpu:', 'driver:', 'builds:', 'chosen:', 'why:']) expect(r.stdout).toContain(`\n${label}`);
    expect(r.stdout).toMatch(/\n {2}\* cpu +\S+\.node.*: loads\n/);
    if (!report.driver.available) {
      expect(r.stdout).toMatch(/\ndriver: +no NVIDIA driver/);
      expect(r.stdout).toMatch(/\nadvice:\n {2}- No NVIDIA driver here/);
    }
  });

  it('rejects arguments it does not know', () => {
    const r = doctor(['--bogus']);
    expect(r.status).toBe(2);
  });
});
