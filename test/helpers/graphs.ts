/**
 * Small graphs for tests: one op (or a few) through the same Engine/Session path as
 * production (style.md: one-op graphs, not a test-only API). A graph runs on a CPU kernel tier,
 * or with target 'cuda-simt' on the CUDA backend of the SIMT emulator build (`npm run build:simt`:
 * the CUDA kernels compiled for the CPU).
 */
import type { Addon, CpuKernelTier, GraphSpec, KvCacheType, NativeEngine, NativeSession, WeightDType, WeightSource } from '../../lib/addon-types.js';
import { type AddonChoice, loadAddon, loadSimtAddon, simtBuildPath } from '../../lib/native.js';

export function cpuAddon(): Addon {
  return loadAddon('cpu').addon;
}

/** Where a test graph runs: a CPU kernel tier, or the CUDA backend on the SIMT emulator. */
export type Target = CpuKernelTier | 'cuda-simt';

let simt: { choice?: AddonChoice; missing?: string } | undefined;

function loadSimt(): { choice?: AddonChoice; missing?: string } {
  if (simt === undefined) {
    try {
      // LLAMA_CUDA_SIMT_PREBUILD: another SIMT build than build-simt/ (a helper's own build folder)
      simt = { choice: loadSimtAddon(process.env['LLAMA_CUDA_SIMT_PREBUILD'] || undefined) };
    } catch (err) {
      simt = { missing: (err as Error).message.split('\n')[0] ?? `no SIMT build at ${simtBuildPath()}` };
    }
  }
  return simt;
}

/** The SIMT build as an addon choice (device 'cuda'), or undefined when it is not built. */
export function simtChoice(): AddonChoice | undefined {
  return loadSimt().choice;
}

/** Why the SIMT build cannot be used, or undefined when it can. */
export function simtMissing(): string | undefined {
  return loadSimt().missing;
}

/** The SIMT build's addon; throws with the reason when it is not built. */
export function simtAddon(): Addon {
  const s = loadSimt();
  if (s.choice === undefined) throw new Error(s.missing);
  return s.choice.addon;
}

/** Kernel tiers this machine can run (reference and generic always; SIMD when present). */
export function availableTiers(): CpuKernelTier[] {
  return [...cpuAddon().backendInfo().cpu.kernelTiers];
}

export interface Built {
  engine: NativeEngine;
  session: NativeSession;
}

/** Engine + loaded weights + one session (tier 'cuda-simt': the SIMT build's CUDA backend). */
export async function buildEngine(
  spec: GraphSpec,
  sources: readonly WeightSource[],
  options: { tier?: Target; threads?: number; maxSeqLen?: number; maxTokens?: number; maxOutputRows?: number; kvType?: KvCacheType } = {},
): Promise<Built> {
  const tier = options.tier ?? 'reference';
  const engine =
    tier === 'cuda-simt'
      ? new (simtAddon().Engine)(spec, { device: 'cuda' })
      : new (cpuAddon().Engine)(spec, { device: 'cpu', cpuKernels: tier, threads: options.threads ?? 2 });
  try {
    await engine.load(sources);
  } catch (err) {
    await engine.dispose();
    throw err;
  }
  let session: NativeSession;
  try {
    session = engine.createSession({
      maxSeqLen: options.maxSeqLen ?? 64,
      maxTokens: options.maxTokens ?? 64,
      maxOutputRows: options.maxOutputRows ?? 1,
      kvType: options.kvType ?? 'f32',
    });
  } catch (err) {
    await engine.dispose();
    throw err;
  }
  return { engine, session };
}

/** An f32 weight given from memory. */
export function f32Source(weight: string, values: Float32Array): WeightSource {
  return { weight, type: 'f32', nbytes: values.byteLength, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** out = x + y: the smallest useful graph. */
export function addGraph(width: number): GraphSpec {
  return {
    weights: [],
    buffers: [
      { name: 'x', width },
      { name: 'y', width },
      { name: 'out', width },
    ],
    kvCaches: [],
    nodes: [{ op: 'add', out: 'out', a: 'x', b: 'y' }],
  };
}

/** out = x · Wᵀ for a weight "w" of [rows, cols] in the given storage type. */
export function matmulGraph(rows: number, cols: number, dtype: WeightDType = 'f32', group?: number): GraphSpec {
  return {
    weights: [{ name: 'w', dtype, shape: [rows, cols], ...(group !== undefined ? { group } : {}) }],
    buffers: [
      { name: 'x', width: cols },
      { name: 'out', width: rows },
    ],
    kvCaches: [],
    nodes: [{ op: 'matmul', out: 'out', a: 'x', weight: 'w' }],
  };
}
