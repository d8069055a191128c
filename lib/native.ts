/**
 * Finds and loads the native addon. The package can hold:
 *
 *   prebuilds/<platform>-<arch>/*.node, build/Release/   the CPU build
 *   cuda/<family>/prebuilds/<platform>-<arch>/*.node       CUDA builds per GPU family (sm80, sm86,
 *                                                          sm89, sm90a, ptx; lib/cuda-archs.ts)
 *   cuda/build/Release/ (or cuda/prebuilds/)               the developer CUDA build, every arch
 *
 * The choice, for device 'auto' or 'cuda': the driver probe (cudaDriverProbe(), in every build,
 * asked through the CPU build first) gives the driver version and each GPU's compute capability;
 * planCudaBuilds picks the builds that can run on GPU 0, best first (the developer build, the
 * family built for it, a compatible SASS family, the PTX build). Each is loaded, must agree with
 * the probe (a CUDA build with the compute backend, compiled for the expected target, seeing the
 * same GPU) and run a test kernel; the first that does wins. Otherwise the CPU build (device
 * 'auto'), or ERR_UNSUPPORTED (device 'cuda'). Every build passed over and why is kept in
 * `attempts`, so errors, `backendInfo()` and `llama-cuda doctor` can explain the choice; a build
 * that fails to load is an attempt, never a crash.
 *
 * `LLAMA_CUDA_BACKEND=cpu|cuda|auto` sets the device when the caller leaves it at 'auto' (or
 * unset); `LLAMA_CUDA_PREBUILD=/path/to/file.node` loads exactly that file.
 *
 * A further build, 'simt' (`npm run build:simt` -> build-simt/Release/), runs the CUDA backend and
 * kernels on the SIMT emulator: CUDA semantics on the CPU, slowly, for tests. It is never chosen
 * here; tests load it with loadSimtAddon() (or LLAMA_CUDA_PREBUILD names it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Addon, NativeBackendInfo, NativeVariant } from './addon-types.js';
import { type BuildPresent, CUDA_FAMILIES, type DriverProbeResult, formatDriverVersion, planCudaBuilds } from './cuda-archs.js';
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

/** Every native build in the package, in the order the loader prefers them within each kind. */
export function listBuilds(root: string = packageRoot): BuildPresent[] {
  const tuple = `${process.platform}-${process.arch}`;
  const nodeFiles = (dir: string): string[] => {
    try {
      // prefer Node-API tagged prebuilds (llama-cuda.napi.node), then any .node
      return fs.readdirSync(dir).filter((f) => f.endsWith('.node')).sort((a, b) => Number(b.includes('.napi.')) - Number(a.includes('.napi.'))).map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  };
  // node-gyp-build's own pick (tags, libc) among the prebuilds, when it finds one
  const nodeGypBuild = nativeRequire('node-gyp-build') as { path(dir: string): string };
  const picked = (dir: string): string[] => {
    try {
      return [nodeGypBuild.path(dir)];
    } catch {
      return [];
    }
  };
  // a local build (build/Release) before the prebuilds, as node-gyp-build looks
  const inDir = (dir: string): string[] => [
    ...new Set([...nodeFiles(path.join(dir, 'build', 'Release')), ...picked(dir), ...nodeFiles(path.join(dir, 'prebuilds', tuple))]),
  ];
  const builds: BuildPresent[] = inDir(root).map((p) => ({ kind: 'cpu', path: p }));
  for (const p of inDir(path.join(root, 'cuda'))) builds.push({ kind: 'cuda', family: 'dev', path: p });
  for (const f of CUDA_FAMILIES) {
    for (const p of inDir(path.join(root, 'cuda', f.family))) builds.push({ kind: 'cuda', family: f.family, path: p });
  }
  return builds;
}

interface Candidate {
  addon: Addon;
  path: string;
  info: NativeBackendInfo;
}

const loadErrors = new Map<string, string>();

function tryLoad(file: string): Candidate | string {
  const known = loadErrors.get(file);
  if (known !== undefined) return known;
  try {
    const addon = requireAddon(file);
    return { addon, path: file, info: addon.backendInfo() };
  } catch (err) {
    const why = firstLine(err);
    loadErrors.set(file, why);
    return why;
  }
}

/** Loads one build (cached) and says whether it loaded, with its backendInfo() or the error. */
export function inspectBuild(file: string): { ok: true; info: NativeBackendInfo } | { ok: false; error: string } {
  const c = tryLoad(file);
  return typeof c === 'string' ? { ok: false, error: c } : { ok: true, info: c.info };
}

/** The driver probe, asked through the first build that loads and has it (the CPU build first). */
export function probeDriver(builds: readonly BuildPresent[]): { probe: DriverProbeResult; via: string } | undefined {
  for (const b of builds) {
    const c = tryLoad(b.path);
    if (typeof c === 'string' || typeof c.addon.cudaDriverProbe !== 'function') continue;
    try {
      return { probe: c.addon.cudaDriverProbe(), via: b.path };
    } catch {
      // a probe that throws is treated as a build without one
    }
  }
  return undefined;
}

/**
 * Why a loaded CUDA build cannot run models here, or undefined when it can: it must be a CUDA
 * build with the compute backend, compiled for the target the plan expects, and see the GPU the
 * driver probe saw.
 */
export function cudaBuildProblem(info: NativeBackendInfo, expectTarget?: string, probe?: DriverProbeResult): string | undefined {
  if (info.variant !== 'cuda') return `it is the ${info.variant} build, not a CUDA build`;
  const generic = cudaUnusable(info);
  if (generic !== undefined) return generic;
  const archs = info.cuda.architectures ?? [];
  if (expectTarget !== undefined && !archs.includes(expectTarget)) {
    return `it reports code for ${archs.join(' ') || 'no architecture'}, not ${expectTarget}: a mismatched build`;
  }
  const want = probe?.devices[0]?.computeCapability;
  const got = info.cuda.devices[0]?.computeCapability;
  if (want !== undefined && got !== want) return `the CUDA runtime sees compute capability ${got ?? 'none'} where the driver reported ${want}`;
  return undefined;
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

function buildLabel(b: BuildPresent): string {
  return b.kind === 'cpu' ? 'CPU build' : b.family === 'dev' ? 'CUDA developer build' : `CUDA ${b.family} build`;
}

/** Tries the CUDA candidates of the plan in order; the first that loads, agrees and runs a kernel wins. */
function tryCuda(device: DeviceRequest, builds: readonly BuildPresent[], attempts: LoadAttempt[]): AddonChoice | { summary: string } {
  const probed = probeDriver(builds);
  const plan = planCudaBuilds(probed?.probe, builds);
  const planned = new Set(plan.cuda.map((c) => c.build.path));
  const skipped = builds.filter((b) => b.kind === 'cuda' && !planned.has(b.path));
  const notes = plan.notes.join('; ');
  for (const b of skipped) {
    const why = plan.cuda.length === 0 ? (probed?.probe.available === false ? 'no usable NVIDIA GPU' : notes) : `not for this GPU (${plan.gpu?.name ?? 'the GPU'} is compute capability ${plan.gpu?.computeCapability ?? '?'})`;
    attempts.push({ variant: 'cuda', path: b.path, ok: false, reason: `${buildLabel(b)} not tried: ${why}` });
  }
  let last = plan.cuda.length === 0 ? notes || 'no CUDA build in this package' : '';
  if (!builds.some((b) => b.kind === 'cuda')) {
    last = plan.cuda.length === 0 && plan.notes.length > 0 ? `${notes}; and no CUDA build in this package` : 'no CUDA build in this package';
    attempts.push({ variant: 'cuda', ok: false, reason: last });
  }
  for (const c of plan.cuda) {
    const label = buildLabel(c.build);
    const loaded = tryLoad(c.build.path);
    let problem: string | undefined;
    if (typeof loaded === 'string') {
      problem = `${label} failed to load: ${loaded}`;
    } else {
      const p = cudaBuildProblem(loaded.info, c.expectTarget, probed?.probe);
      if (p !== undefined) {
        problem = `${label} loaded, but ${p}`;
      } else {
        // a kernel must run and give the right numbers: catches a build without code for this GPU
        let ran: string;
        try {
          ran = loaded.addon.cudaProbe(0);
        } catch (err) {
          ran = firstLine(err);
        }
        if (ran !== '') problem = `${label} loaded, but its test kernel failed on this GPU: ${ran}`;
      }
    }
    if (problem !== undefined || typeof loaded === 'string') {
      last = problem ?? '';
      attempts.push({ variant: 'cuda', path: c.build.path, ok: false, reason: last });
      continue;
    }
    const gpu = loaded.info.cuda.devices[0]!;
    const driver = probed?.probe.driverVersion ? `, driver CUDA ${formatDriverVersion(probed.probe.driverVersion)}` : '';
    const reason = `${label}: ${c.why}; ${gpu.name} (sm ${gpu.computeCapability}${driver})`;
    attempts.push({ variant: 'cuda', path: c.build.path, ok: true, reason });
    return { addon: loaded.addon, variant: 'cuda', device: 'cuda', path: c.build.path, reason, attempts, info: loaded.info };
  }
  if (device === 'cuda') {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `device 'cuda' was requested but cannot be used:\n${describeAttempts(attempts)}`);
  }
  return { summary: last };
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

  const builds = listBuilds();
  let noCuda = 'device cpu was requested';
  if (device !== 'cpu') {
    const cuda = tryCuda(device, builds, attempts);
    if ('addon' in cuda) return cuda;
    noCuda = `no usable CUDA: ${cuda.summary}`;
  }

  for (const b of builds.filter((x) => x.kind === 'cpu')) {
    const cpu = tryLoad(b.path);
    if (typeof cpu === 'string') {
      attempts.push({ variant: 'cpu', path: b.path, ok: false, reason: `the cpu build failed to load: ${cpu}` });
      continue;
    }
    attempts.push({ variant: 'cpu', path: cpu.path, ok: true, reason: `CPU build (${cpu.info.cpu.defaultTier} kernels)` });
    return { addon: cpu.addon, variant: cpu.info.variant, device: 'cpu', path: cpu.path, reason: noCuda, attempts, info: cpu.info };
  }
  if (!builds.some((x) => x.kind === 'cpu')) attempts.push({ variant: 'cpu', ok: false, reason: 'no cpu build found in build/Release or prebuilds/' });
  // A CUDA build carries the CPU backend too: use it when it is the only kind that loads.
  for (const b of builds.filter((x) => x.kind === 'cuda')) {
    const cuda = tryLoad(b.path);
    if (typeof cuda === 'string') continue;
    attempts.push({ variant: 'cuda', path: cuda.path, ok: true, reason: 'the CUDA build, running on its CPU backend' });
    return { addon: cuda.addon, variant: cuda.info.variant, device: 'cpu', path: cuda.path, reason: `${noCuda}; no CPU build, so the CUDA build's CPU backend is used`, attempts, info: cuda.info };
  }
  throw new LlamaCudaError(
    'ERR_NATIVE_LOAD',
    `no llama-cuda native build could be loaded; reinstall llama-cuda, or build from source with \`npx llama-cuda build\`.\n${describeAttempts(attempts)}`,
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
