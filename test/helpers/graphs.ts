/**
 * Small graphs for tests: one op (or a few) through the same Engine/Session path as
 * production (style.md: one-op graphs, not a test-only API).
 */
import type { Addon, CpuKernelTier, GraphSpec, NativeEngine, NativeSession, WeightSource } from '../../lib/addon-types.js';
import { loadAddon } from '../../lib/native.js';

export function cpuAddon(): Addon {
  return loadAddon('cpu').addon;
}

/** Kernel tiers this machine can run (reference and generic always; SIMD when present). */
export function availableTiers(): CpuKernelTier[] {
  return [...cpuAddon().backendInfo().cpu.kernelTiers];
}

export interface Built {
  engine: NativeEngine;
  session: NativeSession;
}

/** Engine + loaded weights + one session. */
export async function buildEngine(
  spec: GraphSpec,
  sources: readonly WeightSource[],
  options: { tier?: CpuKernelTier; threads?: number; maxSeqLen?: number; maxTokens?: number; maxOutputRows?: number; kvType?: 'f32' | 'f16' } = {},
): Promise<Built> {
  const engine = new (cpuAddon().Engine)(spec, { device: 'cpu', cpuKernels: options.tier ?? 'reference', threads: options.threads ?? 2 });
  await engine.load(sources);
  const session = engine.createSession({
    maxSeqLen: options.maxSeqLen ?? 64,
    maxTokens: options.maxTokens ?? 64,
    maxOutputRows: options.maxOutputRows ?? 1,
    kvType: options.kvType ?? 'f32',
  });
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
export function matmulGraph(rows: number, cols: number, dtype: 'f32' | 'f16' | 'bf16' | 'q8_0' | 'int4' = 'f32', group?: number): GraphSpec {
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
