/**
 * llama-cuda build [--arch sm80|sm86|sm89|sm90a|ptx|all] [--cpu-only] [--jobs N] [--dry-run]
 *
 * Builds the native addon from source, on purpose (the prebuilt binaries in the package are the
 * normal path): the CPU build into <package>/build/Release, and, when nvcc is found, a CUDA build
 * into <package>/cuda/build/Release for the local GPU's architecture family (from the driver
 * probe) or --arch. Both are where the loader looks first. Everything missing (cmake, a C++
 * compiler, cmake-js and node-addon-api, which an installed package does not carry because they
 * are devDependencies, nvcc) is reported with what to install before anything is built.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';

import { CUDA_FAMILIES, type CudaFamily, compatibleFamilies } from '../cuda-archs.js';
import { LlamaCudaError } from '../errors.js';
import { listBuilds, probeDriver } from '../native.js';
import { packageRoot } from '../package-root.cjs';
import { type OptionSpecs, UsageError, helpText, optBool, optInt, optString, parseArgs } from './args.js';

export const buildOptions: OptionSpecs = {
  arch: { type: 'string', value: 'A', description: 'CUDA target: sm80, sm86, sm89, sm90a, ptx or all (default: the local GPU\'s family)' },
  'cpu-only': { type: 'boolean', description: 'build only the CPU addon' },
  jobs: { type: 'number', description: 'parallel compile jobs (default 2)' },
  'dry-run': { type: 'boolean', description: 'check the tools and print the commands without building' },
  help: { type: 'boolean', description: 'show this help' },
};

export const buildUsage = 'usage: llama-cuda build [--arch sm80|sm86|sm89|sm90a|ptx|all] [--cpu-only] [--jobs N] [--dry-run]';

interface Tool {
  readonly name: string;
  readonly found: string | undefined;
  readonly fix: string;
}

function version(cmd: string, args: readonly string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0 || r.error) return undefined;
  return (r.stdout || r.stderr).split('\n').find((l) => l.trim() !== '')?.trim();
}

function resolveFrom(id: string): string | undefined {
  // from the package, then from the project that installed it (where `npm install -D` puts them)
  for (const base of [path.join(packageRoot, 'package.json'), path.join(process.cwd(), 'package.json')]) {
    try {
      return createRequire(base).resolve(id);
    } catch {
      // try the next place
    }
  }
  return undefined;
}

/** The tools a source build needs, each with whether it is here and how to get it. */
export function buildTools(withCuda: boolean): Tool[] {
  const cxx = version(process.env.CXX ?? 'c++', ['--version']) ?? version('g++', ['--version']) ?? version('clang++', ['--version']);
  const tools: Tool[] = [
    { name: 'cmake (>= 3.20)', found: version('cmake', ['--version']), fix: 'install CMake 3.20 or newer (apt install cmake, or pip install cmake)' },
    { name: 'C++17 compiler', found: cxx, fix: 'install g++ or clang++ (apt install build-essential)' },
    {
      name: 'cmake-js',
      found: resolveFrom('cmake-js/bin/cmake-js'),
      fix: 'it is a devDependency, not installed with the package: run `npm install --no-save cmake-js node-addon-api` in your project',
    },
    {
      name: 'node-addon-api',
      found: resolveFrom('node-addon-api/package.json'),
      fix: 'it is a devDependency, not installed with the package: run `npm install --no-save cmake-js node-addon-api` in your project',
    },
  ];
  if (withCuda) {
    tools.push({ name: 'nvcc (CUDA 13)', found: version('nvcc', ['--version']), fix: 'install the CUDA 13 toolkit and put nvcc on PATH, or build the CPU addon only (--cpu-only)' });
  }
  return tools;
}

/** The CUDA family to build: --arch, else the family of the local GPU (undefined when none is seen). */
function localFamily(): { families: CudaFamily[]; why: string } | undefined {
  const probed = probeDriver(listBuilds());
  const gpu = probed?.probe.devices[0];
  if (!probed?.probe.available || gpu === undefined) return undefined;
  const [major, minor] = gpu.computeCapability.split('.').map(Number) as [number, number];
  const best = compatibleFamilies(major, minor)[0];
  if (best === undefined) return { families: [], why: `${gpu.name} has compute capability ${gpu.computeCapability}: the CUDA kernels need 8.0 or newer` };
  return { families: [best.family], why: `${gpu.name} (compute capability ${gpu.computeCapability})` };
}

export async function runBuild(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, buildOptions);
  if (optBool(p, 'help')) {
    process.stdout.write(helpText(buildUsage, buildOptions));
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`build takes no arguments (got ${p.positionals.join(' ')})`);
  const arch = optString(p, 'arch');
  const jobs = optInt(p, 'jobs') ?? 2;
  const cpuOnly = optBool(p, 'cpu-only');
  const dryRun = optBool(p, 'dry-run');
  if (arch !== undefined && arch !== 'all' && !CUDA_FAMILIES.some((f) => f.family === arch)) {
    throw new UsageError(`--arch must be one of ${CUDA_FAMILIES.map((f) => f.family).join(', ')} or all (got ${arch})`);
  }
  if (cpuOnly && arch !== undefined) throw new UsageError('--arch and --cpu-only exclude each other');

  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const nvccHere = version('nvcc', ['--version']) !== undefined;
  let families: CudaFamily[] | 'all' = [];
  if (!cpuOnly) {
    if (arch === 'all') families = 'all';
    else if (arch !== undefined) families = [arch as CudaFamily];
    else if (nvccHere) {
      const local = localFamily();
      if (local === undefined) log('build: no NVIDIA GPU seen here, so no CUDA build (pass --arch sm80|sm86|sm89|sm90a|ptx|all to build one anyway)');
      else {
        log(`build: CUDA for ${local.why}${local.families.length ? `: ${local.families.join(' ')}` : ''}`);
        families = local.families;
      }
    } else {
      log('build: nvcc not found, so only the CPU addon is built (install the CUDA 13 toolkit for a CUDA build)');
    }
  }
  const withCuda = families === 'all' || families.length > 0;
  const tools = buildTools(withCuda);
  for (const t of tools) log(`  ${t.found ? 'found  ' : 'MISSING'} ${t.name}${t.found ? `: ${t.found}` : ` -> ${t.fix}`}`);
  const missing = tools.filter((t) => t.found === undefined);
  if (missing.length > 0) {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `cannot build from source; missing:\n${missing.map((t) => `  - ${t.name}: ${t.fix}`).join('\n')}`);
  }

  const cmakeJs = resolveFrom('cmake-js/bin/cmake-js')!;
  const runs: { label: string; args: string[] }[] = [{ label: 'CPU', args: ['compile', '-d', packageRoot, '--out', path.join(packageRoot, 'build'), '--target', 'llama_cuda', '--parallel', String(jobs)] }];
  if (withCuda) {
    const archs = families === 'all' ? CUDA_FAMILIES.map((f) => f.cmakeArchitectures) : families.map((f) => CUDA_FAMILIES.find((x) => x.family === f)!.cmakeArchitectures);
    runs.push({
      label: `CUDA ${families === 'all' ? 'all' : families.join(' ')}`,
      // configure first: `compile` alone keeps an existing cache's architectures
      args: ['configure', '-d', packageRoot, '--out', path.join(packageRoot, 'cuda', 'build'), '--CDLLAMA_CUDA_CUDA=ON', `--CDCMAKE_CUDA_ARCHITECTURES=${archs.join(';')}`],
    });
    runs.push({ label: 'CUDA', args: ['build', '-d', packageRoot, '--out', path.join(packageRoot, 'cuda', 'build'), '--target', 'llama_cuda', '--parallel', String(jobs)] });
  }
  for (const r of runs) {
    log(`build: ${r.label}: cmake-js ${r.args.join(' ')}`);
    if (dryRun) continue;
    const res = spawnSync(process.execPath, [cmakeJs, ...r.args], { stdio: ['ignore', 'inherit', 'inherit'], cwd: packageRoot });
    if (res.status !== 0) throw new LlamaCudaError('ERR_NATIVE_LOAD', `the ${r.label} build failed (cmake-js exited with ${res.status ?? res.signal}); the compiler output is above`);
  }
  if (!dryRun) log('build: done; `npx llama-cuda doctor` shows which build is used');
  return 0;
}
