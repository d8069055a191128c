/**
 * What `llama-cuda doctor` reports: the platform, the NVIDIA driver and GPUs (the driver probe),
 * the native builds in the package and whether each loads, the one the loader chooses and why,
 * and what to do when something is wrong. Gathering only; lib/cli/doctor.ts prints it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { NativeBackendInfo } from './addon-types.js';
import { CUDA_FAMILIES, type DriverProbeResult, REQUIRED_DRIVER_VERSION, compatibleFamilies, formatDriverVersion } from './cuda-archs.js';
import { type LoadAttempt, inspectBuild, listBuilds, loadAddon, probeDriver } from './native.js';
import { packageRoot } from './package-root.cjs';

/** The oldest glibc the prebuilt binaries need (scripts/check-glibc.mjs enforces it). */
export const GLIBC_FLOOR = '2.34';

export interface DoctorBuild {
  readonly path: string;
  readonly kind: 'cpu' | 'cuda';
  readonly family: string | null;
  readonly loads: boolean;
  readonly error: string | null;
  readonly architectures: readonly string[];
  readonly chosen: boolean;
}

export interface DoctorReport {
  readonly platform: { os: string; arch: string; release: string; node: string; napi: string; glibc: string | null };
  readonly package: { root: string; version: string };
  readonly cpu: { model: string; simdTier: string; features: readonly string[]; onlineCpus: number } | null;
  readonly driver: {
    readonly available: boolean;
    readonly cudaVersion: string | null;
    readonly meetsRequirement: boolean | null;
    readonly library: string | null;
    readonly error: string | null;
    readonly probedWith: string | null;
  };
  readonly gpus: readonly { index: number; name: string; computeCapability: string; memoryBytes: number; buildFamily: string | null }[];
  readonly builds: readonly DoctorBuild[];
  readonly chosen: { variant: string; device: string; path: string; reason: string } | null;
  readonly chooseError: string | null;
  readonly attempts: readonly LoadAttempt[];
  readonly advice: readonly string[];
}

function glibcVersion(): string | null {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ?? null;
}

function versionLess(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

const SIMD_FEATURES = ['sse4.2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512vnni', 'neon', 'dotprod'];

export function doctorReport(): DoctorReport {
  const rel = (p: string): string => path.relative(packageRoot, p) || p;
  const builds = listBuilds();
  const probed = probeDriver(builds);
  const probe: DriverProbeResult | undefined = probed?.probe;

  let chosen: DoctorReport['chosen'] = null;
  let chooseError: string | null = null;
  let attempts: readonly LoadAttempt[] = [];
  try {
    const c = loadAddon('auto');
    chosen = { variant: c.variant, device: c.device, path: rel(c.path), reason: c.reason };
    attempts = c.attempts;
  } catch (err) {
    chooseError = err instanceof Error ? err.message : String(err);
  }

  let cpuInfo: NativeBackendInfo | undefined;
  const buildRows: DoctorBuild[] = builds.map((b) => {
    const r = inspectBuild(b.path);
    if (r.ok && cpuInfo === undefined) cpuInfo = r.info;
    return {
      path: rel(b.path),
      kind: b.kind,
      family: b.family ?? null,
      loads: r.ok,
      error: r.ok ? null : r.error,
      architectures: r.ok ? (r.info.cuda.architectures ?? []) : [],
      chosen: chosen !== null && rel(b.path) === chosen.path,
    };
  });

  const gpus = (probe?.devices ?? []).map((d, index) => {
    const [major, minor] = d.computeCapability.split('.').map(Number) as [number, number];
    return { index, name: d.name, computeCapability: d.computeCapability, memoryBytes: d.totalMemory, buildFamily: compatibleFamilies(major, minor)[0]?.family ?? null };
  });
  const driverVersion = probe?.driverVersion ?? 0;
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  const report: Omit<DoctorReport, 'advice'> = {
    platform: { os: process.platform, arch: process.arch, release: os.release(), node: process.versions.node, napi: process.versions.napi ?? '?', glibc: glibcVersion() },
    package: { root: packageRoot, version: pkg.version },
    cpu: cpuInfo === undefined ? null : {
      model: cpuInfo.cpu.model,
      simdTier: cpuInfo.cpu.defaultTier,
      features: cpuInfo.cpu.features.filter((f) => SIMD_FEATURES.includes(f)),
      onlineCpus: cpuInfo.cpu.onlineCpus,
    },
    driver: {
      available: probe?.available ?? false,
      cudaVersion: driverVersion > 0 ? formatDriverVersion(driverVersion) : null,
      meetsRequirement: driverVersion > 0 ? driverVersion >= REQUIRED_DRIVER_VERSION : null,
      library: probe?.library ?? null,
      error: probe === undefined ? 'no loaded build has the driver probe (builds made before it): rebuild or reinstall' : (probe.error ?? null),
      probedWith: probed ? rel(probed.via) : null,
    },
    gpus,
    builds: buildRows,
    chosen,
    chooseError,
    attempts: attempts.map((a) => (a.path ? { ...a, path: rel(a.path) } : a)),
  };
  return { ...report, advice: doctorAdvice(report) };
}

/** What to do, in plain words, for what the report found. */
export function doctorAdvice(r: Omit<DoctorReport, 'advice'>): string[] {
  const out: string[] = [];
  const gpu = r.gpus[0];
  const cudaBuilds = r.builds.filter((b) => b.kind === 'cuda');
  if (r.platform.glibc !== null && versionLess(r.platform.glibc, GLIBC_FLOOR)) {
    out.push(`This system's glibc ${r.platform.glibc} is older than ${GLIBC_FLOOR}, which the prebuilt binaries need: build from source with \`npx llama-cuda build\`.`);
  }
  if (!r.builds.some((b) => b.kind === 'cpu' && b.loads)) {
    out.push('No CPU build loads: reinstall llama-cuda (npm install llama-cuda), or build from source with `npx llama-cuda build`.');
  }
  if (r.chosen?.device === 'cuda') {
    out.push(`Models run on ${gpu?.name ?? 'the GPU'} with ${r.chosen.path}. Nothing to do.`);
    return out;
  }
  if (!r.driver.available) {
    if (r.driver.library === null) {
      out.push(
        `No NVIDIA driver here (libcuda.so.1 cannot be opened), so models run on the CPU${r.cpu ? ` (${r.cpu.simdTier} kernels, ${r.cpu.onlineCpus} threads)` : ''}. ` +
          'That is expected on a machine without an NVIDIA GPU. To use a GPU: an NVIDIA GPU of compute capability 8.0 or newer with driver r580 or newer (CUDA 13).',
      );
    } else {
      out.push(`The NVIDIA driver is installed but unusable (${r.driver.error ?? 'unknown error'}): check \`nvidia-smi\`; in a container, pass the GPU through (e.g. docker --gpus all). Models run on the CPU meanwhile.`);
    }
  } else if (r.driver.meetsRequirement === false) {
    out.push(`The NVIDIA driver supports CUDA ${r.driver.cudaVersion}, but the CUDA builds need CUDA 13.0: update the driver to r580 or newer. Models run on the CPU meanwhile.`);
  } else if (gpu !== undefined && gpu.buildFamily === null) {
    out.push(`${gpu.name} has compute capability ${gpu.computeCapability}; llama-cuda's CUDA kernels need 8.0 or newer (Ampere and later). Models run on the CPU.`);
  } else if (gpu !== undefined) {
    const family = gpu.buildFamily!;
    const has = cudaBuilds.some((b) => b.family === family || b.family === 'dev');
    const failed = cudaBuilds.filter((b) => !b.loads);
    if (!has) {
      const info = CUDA_FAMILIES.find((f) => f.family === family);
      out.push(`This package has no ${family} build (${info?.gpus ?? family}) for ${gpu.name}: reinstall llama-cuda, or build one here with \`npx llama-cuda build --arch ${family}\` (needs nvcc, CUDA 13).`);
    }
    for (const b of failed) out.push(`${b.path} failed to load (${b.error ?? '?'}): reinstall llama-cuda or rebuild with \`npx llama-cuda build\`.`);
    const lastCuda = [...r.attempts].reverse().find((a) => a.variant === 'cuda' && !a.ok);
    if (has && failed.length === 0 && lastCuda) out.push(`The CUDA build did not work: ${lastCuda.reason}. Try \`npx llama-cuda build --arch ${family}\`; LLAMA_CUDA_BACKEND=cpu forces the CPU meanwhile.`);
  }
  if (r.chooseError !== null) out.push(`Loading failed: ${r.chooseError.split('\n')[0]}`);
  return out;
}
