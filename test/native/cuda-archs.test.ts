/**
 * The loader's choice of CUDA build (lib/cuda-archs.ts planCudaBuilds, lib/native.ts
 * cudaBuildProblem) as a pure function of the driver probe and the builds present: fake GPUs of
 * every architecture family, old drivers, missing builds, mismatched builds.
 */
import { describe, expect, it } from 'vitest';

import type { NativeBackendInfo } from '../../lib/addon-types.js';
import { type BuildPresent, type DriverProbeResult, CUDA_FAMILIES, planCudaBuilds } from '../../lib/cuda-archs.js';
import { cudaBuildProblem } from '../../lib/native.js';

const ALL: BuildPresent[] = [
  { kind: 'cpu', path: '/pkg/prebuilds/linux-x64/llama-cuda.napi.node' },
  ...CUDA_FAMILIES.map((f): BuildPresent => ({ kind: 'cuda', family: f.family, path: `/pkg/cuda/${f.family}/prebuilds/linux-x64/llama-cuda.napi.node` })),
];

function gpu(cc: string, driverVersion = 13000, name = `GPU ${cc}`): DriverProbeResult {
  return { available: true, driverVersion, devices: [{ name, computeCapability: cc, totalMemory: 80 * 2 ** 30 }], library: 'libcuda.so.1' };
}

const families = (probe: DriverProbeResult | undefined, builds: BuildPresent[] = ALL): (string | undefined)[] =>
  planCudaBuilds(probe, builds).cuda.map((c) => c.build.family);

describe('planCudaBuilds: the build for each compute capability', () => {
  it.each([
    ['8.0', ['sm80']],
    ['8.6', ['sm86', 'sm80']],
    ['8.7', ['sm86', 'sm80']],
    ['8.9', ['sm89', 'sm86', 'sm80']],
    ['9.0', ['sm90a', 'ptx']],
    ['10.0', ['ptx']],
    ['12.0', ['ptx']],
  ])('compute capability %s -> %j', (cc, expected) => {
    expect(families(gpu(cc))).toEqual(expected);
  });

  it('says why each candidate fits, and which target the loaded build must report', () => {
    const plan = planCudaBuilds(gpu('8.9', 13000, 'NVIDIA L4'), ALL);
    expect(plan.gpu).toEqual({ name: 'NVIDIA L4', computeCapability: '8.9' });
    expect(plan.cuda.map((c) => c.expectTarget)).toEqual(['sm_89', 'sm_86', 'sm_80']);
    expect(plan.cuda[0]!.why).toBe('sm_89 SASS, built for compute capability 8.9');
    expect(plan.cuda[1]!.why).toMatch(/sm_86 SASS, which runs on compute capability 8.9 \(same major, lower minor\)/);
    const hopper = planCudaBuilds(gpu('9.0'), ALL);
    expect(hopper.cuda.map((c) => c.expectTarget)).toEqual(['sm_90a', 'compute_90']);
    expect(hopper.cuda[1]!.why).toMatch(/compute_90 PTX, JIT-compiled by the driver/);
  });

  it('a GPU older than Ampere gets no CUDA build, with the reason', () => {
    const plan = planCudaBuilds(gpu('7.5', 13000, 'Tesla T4'), ALL);
    expect(plan.cuda).toEqual([]);
    expect(plan.notes).toEqual(['Tesla T4 has compute capability 7.5; the CUDA builds need 8.0 or newer (Ampere, Ada, Hopper, Blackwell)']);
  });

  it('a driver older than CUDA 13 (r580) gets no CUDA build, with the reason', () => {
    const plan = planCudaBuilds(gpu('9.0', 12080), ALL);
    expect(plan.cuda).toEqual([]);
    expect(plan.notes[0]).toBe('the NVIDIA driver supports CUDA 12.8, but the CUDA builds need CUDA 13.0 (driver r580 or newer)');
  });

  it('no driver: no CUDA build, and the probe error is the reason', () => {
    const plan = planCudaBuilds({ available: false, driverVersion: 0, devices: [], error: 'libcuda.so.1 could not be opened' }, ALL);
    expect(plan.cuda).toEqual([]);
    expect(plan.notes).toEqual(['no usable NVIDIA GPU (libcuda.so.1 could not be opened)']);
  });

  it('falls back to the PTX build when the family build is missing, and notes the missing one', () => {
    const builds = ALL.filter((b) => b.family !== 'sm90a');
    const plan = planCudaBuilds(gpu('9.0'), builds);
    expect(plan.cuda.map((c) => c.build.family)).toEqual(['ptx']);
    expect(plan.notes).toEqual(['no sm90a build in this package']);
  });

  it('an 8.x GPU never falls back to the compute_90 PTX (it cannot JIT onto 8.x)', () => {
    const plan = planCudaBuilds(gpu('8.6'), ALL.filter((b) => b.kind === 'cpu' || b.family === 'ptx' || b.family === 'sm89'));
    expect(plan.cuda).toEqual([]);
    expect(plan.notes).toContain('no CUDA build in this package runs on GPU 8.6 (compute capability 8.6)');
  });

  it('the developer build (cuda/build/Release) comes first when present', () => {
    const dev: BuildPresent = { kind: 'cuda', family: 'dev', path: '/pkg/cuda/build/Release/llama_cuda.node' };
    expect(families(gpu('8.9'), [...ALL, dev])).toEqual(['dev', 'sm89', 'sm86', 'sm80']);
    expect(planCudaBuilds(gpu('8.9'), [...ALL, dev]).cuda[0]!.expectTarget).toBeUndefined();
  });

  it('without a probe (only builds older than it), every CUDA build is tried, developer build and newest family first', () => {
    const dev: BuildPresent = { kind: 'cuda', family: 'dev', path: '/pkg/cuda/build/Release/llama_cuda.node' };
    expect(families(undefined, [...ALL, dev])).toEqual(['dev', 'ptx', 'sm90a', 'sm89', 'sm86', 'sm80']);
  });

  it('uses GPU 0 when there are several', () => {
    const probe: DriverProbeResult = { ...gpu('9.0'), devices: [{ name: 'H100', computeCapability: '9.0', totalMemory: 1 }, { name: 'A100', computeCapability: '8.0', totalMemory: 1 }] };
    expect(families(probe)).toEqual(['sm90a', 'ptx']);
  });
});

describe('cudaBuildProblem: a loaded build must agree with the plan and the probe', () => {
  const info = (over: Partial<NativeBackendInfo['cuda']>, variant: NativeBackendInfo['variant'] = 'cuda'): NativeBackendInfo => ({
    variant,
    napiVersion: 8,
    cpu: { model: 'x', arch: 'x86_64', features: [], onlineCpus: 2, kernelTiers: ['reference', 'generic'], defaultTier: 'generic' },
    cuda: {
      compiled: true,
      computeBackend: true,
      architectures: ['sm_89'],
      devices: [{ index: 0, name: 'NVIDIA L4', computeCapability: '8.9', totalMemory: 1, multiprocessors: 58 }],
      ...over,
    },
  });

  it('accepts the build that matches', () => {
    expect(cudaBuildProblem(info({}), 'sm_89', gpu('8.9'))).toBeUndefined();
  });

  it('rejects a build compiled for another target (a mismatched file)', () => {
    expect(cudaBuildProblem(info({ architectures: ['sm_80'] }), 'sm_89', gpu('8.9'))).toBe('it reports code for sm_80, not sm_89: a mismatched build');
  });

  it('rejects the CPU build in a CUDA folder, and a build whose runtime sees no GPU', () => {
    expect(cudaBuildProblem(info({}, 'cpu'), 'sm_89', gpu('8.9'))).toBe('it is the cpu build, not a CUDA build');
    expect(cudaBuildProblem(info({ devices: [], error: 'cudaErrorInsufficientDriver' }), 'sm_89', gpu('8.9'))).toBe('cudaErrorInsufficientDriver');
  });

  it('rejects a build whose runtime sees another GPU than the driver probe', () => {
    expect(cudaBuildProblem(info({}), 'sm_89', gpu('9.0'))).toBe('the CUDA runtime sees compute capability 8.9 where the driver reported 9.0');
  });
});

it('the prebuild script builds the same families with the same CMake architectures', async () => {
  const script = (await import(new URL('../../scripts/prebuild.mjs', import.meta.url).href)) as { CUDA_PREBUILD_FAMILIES: { family: string; cmakeArchitectures: string }[] };
  expect(script.CUDA_PREBUILD_FAMILIES).toEqual(CUDA_FAMILIES.map((f) => ({ family: f.family, cmakeArchitectures: f.cmakeArchitectures })));
});
