/**
 * Finds and loads the native addon. Two builds can sit in the package: the CPU build
 * (`prebuilds/` or `build/Release/`) and the CUDA build (`cuda/prebuilds/` or
 * `cuda/build/Release/`); node-gyp-build finds each in its own folder. The choice:
 *
 *   device 'cpu'   the CPU build
 *   device 'cuda'  the CUDA build, which must load, see a GPU and have a CUDA compute backend
 *   device 'auto'  'cuda' when all of that holds, else 'cpu'
 *
 * `LLAMA_CUDA_BACKEND=cpu|cuda|auto` sets the device when the caller leaves it at 'auto' (or
 * unset); `LLAMA_CUDA_PREBUILD=/path/to/file.node` loads exactly that file. Every attempt and
 * why it failed is kept, so errors and `backendInfo()` can explain the choice.
 *
 * A third build, 'simt' (`npm run build:simt` -> build-simt/Release/), runs the CUDA backend and
 * kernels on the SIMT emulator: CUDA semantics on the CPU, slowly, for tests. It is never chosen
 * here; tests load it with loadSimtAddon() (or LLAMA_CUDA_PREBUILD names it).
 */
import * as path from 'node:path';

import type { Addon, NativeBackendInfo, NativeVariant } from './addon-types.js';
import { LlamaCudaError } from './errors.js';
import { nativeRequire } from './native-require.cjs';
import { packageRoot } from './package-root.cjs';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export type Variant = 'cpu' | 'cuda';

export interface LoadAttempt {
  readonly variant: Variant;
  readonly path?: string;
  readonly ok: boolean;
  readonly reason: string;
}

export interface AddonChoice {
  readonly addon: Addon;
  /** Which build was loaded. */
  readonly variant: NativeVariant;
  /** Where models will run. */
  readonly device: Variant;
  readonly path: string;
  /** One sentence: why this build and device. */
  readonly reason: string;
  readonly attempts: readonly LoadAttempt[];
  readonly info: NativeBackendInfo;
}

const DEVICE_VALUES: readonly DeviceRequest[] = ['auto', 'cpu', 'cuda'];

/** The device to use: the caller's, or LLAMA_CUDA_BACKEND when the caller says 'auto' or nothing. */
export function resolveDevice(request: DeviceRequest | undefined): DeviceRequest {
  if (request !== undefined && !DEVICE_VALUES.includes(request)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `device must be one of ${DEVICE_VALUES.join(', ')}, got ${String(request)}`);
  }
  const env = process.env.LLAMA_CUDA_BACKEND?.trim().toLowerCase();
  if ((request === undefined || request === 'auto') && env) {
    if (!DEVICE_VALUES.includes(env as DeviceRequest)) {
      throw new LlamaCudaError('ERR_INVALID_ARG', `LLAMA_CUDA_BACKEND must be one of ${DEVICE_VALUES.join(', ')}, got "${env}"`);
    }
    return env as DeviceRequest;
  }
  return request ?? 'auto';
}

const loaded = new Map<string, Addon>();

function requireAddon(file: string): Addon {
  let addon = loaded.get(file);
  if (addon === undefined) {
    addon = nativeRequire(file) as Addon;
    if (typeof addon.backendInfo !== 'function' || typeof addon.Engine !== 'function') {
      throw new Error(`${file} is not a llama-cuda addon`);
    }
    loaded.set(file, addon);
  }
  return addon;
}

function findBuild(variant: Variant): string {
  const dir = variant === 'cpu' ? packageRoot : path.join(packageRoot, 'cuda');
  const nodeGypBuild = nativeRequire('node-gyp-build') as { path(dir: string): string };
  return nodeGypBuild.path(dir);
}

interface Candidate {
  addon: Addon;
  path: string;
  info: NativeBackendInfo;
}

function tryVariant(variant: Variant, attempts: LoadAttempt[]): Candidate | undefined {
  let file: string;
  try {
    file = findBuild(variant);
  } catch (err) {
    attempts.push({ variant, ok: false, reason: `no ${variant} build found (${firstLine(err)})` });
    return undefined;
  }
  try {
    const addon = requireAddon(file);
    return { addon, path: file, info: addon.backendInfo() };
  } catch (err) {
    attempts.push({ variant, path: file, ok: false, reason: `the ${variant} build failed to load: ${firstLine(err)}` });
    return undefined;
  }
}

/** Why a loaded CUDA build cannot run models here, or undefined when it can. */
function cudaUnusable(info: NativeBackendInfo): string | undefined {
  if (!info.cuda.compiled) return 'the build has no CUDA code';
  if (info.cuda.devices.length === 0) return info.cuda.error ?? 'no CUDA device found';
  if (!info.cuda.computeBackend) {
    const names = info.cuda.devices.map((d) => `${d.name} (sm ${d.computeCapability})`).join(', ');
    return `it sees ${names} but has no CUDA compute backend yet`;
  }
  return undefined;
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0] ?? '';
}

const choices = new Map<DeviceRequest, AddonChoice>();

/** Loads the addon for a device request (cached per request). */
export function loadAddon(request?: DeviceRequest): AddonChoice {
  const device = resolveDevice(request);
  const cached = choices.get(device);
  if (cached !== undefined) return cached;
  const choice = chooseAddon(device);
  choices.set(device, choice);
  return choice;
}

function chooseAddon(device: DeviceRequest): AddonChoice {
  const attempts: LoadAttempt[] = [];
  const forced = process.env.LLAMA_CUDA_PREBUILD?.trim();
  if (forced) {
    try {
      const addon = requireAddon(path.resolve(forced));
      const info = addon.backendInfo();
      const cudaProblem = cudaUnusable(info);
      const runOn: Variant = device === 'cpu' || cudaProblem !== undefined ? 'cpu' : 'cuda';
      if (device === 'cuda' && runOn !== 'cuda') {
        throw new LlamaCudaError('ERR_UNSUPPORTED', `LLAMA_CUDA_PREBUILD=${forced} cannot run on CUDA: ${cudaProblem}`);
      }
      return { addon, variant: info.variant, device: runOn, path: forced, reason: `LLAMA_CUDA_PREBUILD=${forced}`, attempts, info };
    } catch (err) {
      if (err instanceof LlamaCudaError) throw err;
      throw new LlamaCudaError('ERR_NATIVE_LOAD', `LLAMA_CUDA_PREBUILD=${forced} could not be loaded: ${firstLine(err)}`, { cause: err });
    }
  }

  let noCuda = 'device cpu was requested';
  let cuda: Candidate | undefined;
  if (device !== 'cpu') {
    cuda = tryVariant('cuda', attempts);
    if (cuda !== undefined) {
      const problem = cudaUnusable(cuda.info);
      if (problem === undefined) {
        const gpu = cuda.info.cuda.devices[0]!;
        const reason = `CUDA build loaded and ${gpu.name} (sm ${gpu.computeCapability}) is usable`;
        attempts.push({ variant: 'cuda', path: cuda.path, ok: true, reason });
        return { addon: cuda.addon, variant: 'cuda', device: 'cuda', path: cuda.path, reason, attempts, info: cuda.info };
      }
      attempts.push({ variant: 'cuda', path: cuda.path, ok: false, reason: `CUDA build loaded, but ${problem}` });
    }
    if (device === 'cuda') {
      throw new LlamaCudaError('ERR_UNSUPPORTED', `device 'cuda' was requested but cannot be used:\n${describeAttempts(attempts)}`);
    }
    noCuda = `no usable CUDA: ${attempts[attempts.length - 1]?.reason ?? 'no CUDA build'}`;
  }

  const cpu = tryVariant('cpu', attempts);
  if (cpu !== undefined) {
    attempts.push({ variant: 'cpu', path: cpu.path, ok: true, reason: `CPU build (${cpu.info.cpu.defaultTier} kernels)` });
    return { addon: cpu.addon, variant: 'cpu', device: 'cpu', path: cpu.path, reason: noCuda, attempts, info: cpu.info };
  }
  // The CUDA build carries the CPU backend too: use it when it is the only build that loads.
  cuda ??= device === 'cpu' ? tryVariant('cuda', attempts) : undefined;
  if (cuda !== undefined) {
    attempts.push({ variant: 'cuda', path: cuda.path, ok: true, reason: 'the CUDA build, running on its CPU backend' });
    return { addon: cuda.addon, variant: 'cuda', device: 'cpu', path: cuda.path, reason: `${noCuda}; no CPU build, so the CUDA build's CPU backend is used`, attempts, info: cuda.info };
  }
  throw new LlamaCudaError(
    'ERR_NATIVE_LOAD',
    `no llama-cuda native build could be loaded; run \`npm run build\`.\n${describeAttempts(attempts)}`,
  );
}

/** Where `npm run build:simt` puts the SIMT emulator build. */
export function simtBuildPath(): string {
  return path.join(packageRoot, 'build-simt', 'Release', 'llama_cuda.node');
}

/**
 * The SIMT emulator build (for tests: device 'cuda' runs the CUDA backend and kernels on the
 * CPU). ERR_NATIVE_LOAD when it is not built or is not the 'simt' variant.
 */
export function loadSimtAddon(file: string = simtBuildPath()): AddonChoice {
  let addon: Addon;
  try {
    addon = requireAddon(file);
  } catch (err) {
    throw new LlamaCudaError('ERR_NATIVE_LOAD', `the SIMT build could not be loaded from ${file} (npm run build:simt): ${firstLine(err)}`, { cause: err });
  }
  const info = addon.backendInfo();
  if (info.variant !== 'simt') throw new LlamaCudaError('ERR_NATIVE_LOAD', `${file} is the ${info.variant} build, not the SIMT build`);
  const reason = 'the SIMT emulator build (CUDA kernels on the CPU), loaded explicitly';
  return { addon, variant: 'simt', device: 'cuda', path: file, reason, attempts: [{ variant: 'cuda', path: file, ok: true, reason }], info };
}

export function describeAttempts(attempts: readonly LoadAttempt[]): string {
  return attempts.map((a) => `  - ${a.variant}${a.path ? ` (${a.path})` : ''}: ${a.reason}`).join('\n');
}
