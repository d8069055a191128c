/**
 * The denominators: what this machine can do at most, measured on the spot by the same run.
 *
 *   memory bandwidth (GB/s)  CPU: the addon's streaming read (a sum over 1 GiB) and memcpy
 *                            (bytes read + written) over all threads, best of 5; the roof is the
 *                            larger. CUDA: a 16-byte device-to-device copy of 2 GiB (read + write).
 *   matrix rate (GFLOP/s)    CPU: our best GEMM, f32 or int8 (q8_0) weights, at 2048x2048 with
 *                            512 rows, best of a few runs. CUDA: mma.sync bf16 on register
 *                            fragments, no memory traffic (native/cuda/bench.cu).
 *
 * The CPU matrix rate is our own kernel's best, not the silicon's peak: a ratio near 1 says an op
 * runs as fast as our best GEMM does, not that the FMA units are saturated.
 */
import { readFileSync } from 'node:fs';

import type { Addon } from '../addon-types.js';

/** The last-level cache of CPU 0 in bytes (Linux sysfs), or 32 MiB when it cannot be read. */
export function lastLevelCacheBytes(): number {
  let best = 0;
  for (let i = 0; i < 8; i++) {
    try {
      const text = readFileSync(`/sys/devices/system/cpu/cpu0/cache/index${i}/size`, 'utf8').trim();
      const m = /^(\d+)([KMG]?)$/.exec(text);
      if (m) best = Math.max(best, Number(m[1]) * ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]!]!);
    } catch {
      break;
    }
  }
  return best > 0 ? best : 32 << 20;
}

export interface Ceilings {
  readonly backend: 'cpu' | 'cuda';
  readonly device: string;
  readonly threads: number;
  /** The memory roof, GB/s, and how it was measured. */
  readonly bandwidthGBps: number;
  readonly bandwidthHow: string;
  /** The compute roof, GFLOP/s, and how it was measured. */
  readonly matrixGflops: number;
  readonly matrixHow: string;
  /** Both CPU bandwidths when measured (read, copy). */
  readonly readGBps?: number;
  readonly copyGBps?: number;
}

export interface CpuCeilingOptions {
  readonly threads?: number;
  /** Bytes of the bandwidth buffers (default 1 GiB). */
  readonly bandwidthBytes?: number;
  /** Square size and rows of the GEMM (default 2048, 512). */
  readonly gemmSize?: number;
  readonly gemmRows?: number;
}

/** Memory read bandwidth only (the end-to-end decode ceiling). */
export function measureBandwidth(addon: Addon, threads = 0, bytes = 1 << 30): { readGBps: number; copyGBps: number; threads: number } {
  const bw = addon.measureMemoryBandwidth(bytes, threads, 5);
  return { readGBps: bw.readGBps, copyGBps: bw.copyGBps, threads: bw.threads };
}

export function measureCpuCeilings(addon: Addon, device: string, opts: CpuCeilingOptions = {}): Ceilings {
  const threads = opts.threads ?? 0;
  const bytes = opts.bandwidthBytes ?? 1 << 30;
  const bw = measureBandwidth(addon, threads, bytes);
  const size = opts.gemmSize ?? 2048;
  const rows = opts.gemmRows ?? 512;
  const flops = 2 * rows * size * size;
  let best = 0;
  let bestHow = '';
  for (const dtype of ['f32', 'q8_0'] as const) {
    const h = addon.benchOp({ op: 'matmul', dtype, rows: size, cols: size, n: rows, threads });
    try {
      h.run(1); // warm-up
      for (let i = 0; i < 3; i++) {
        const rate = flops / h.run(1) / 1e9;
        if (rate > best) {
          best = rate;
          bestHow = `${h.kernel} GEMM ${size}x${size}, ${rows} rows, best of 3`;
        }
      }
    } finally {
      h.dispose();
    }
  }
  const useRead = bw.readGBps >= bw.copyGBps;
  return {
    backend: 'cpu',
    device,
    threads: bw.threads,
    bandwidthGBps: Math.max(bw.readGBps, bw.copyGBps),
    bandwidthHow: `${useRead ? 'streaming read' : 'memcpy (read + write)'} of ${(bytes / 2 ** 30).toFixed(bytes >= 2 ** 30 ? 0 : 2)} GiB, ${bw.threads} threads, best of 5 (read ${bw.readGBps.toFixed(1)}, copy ${bw.copyGBps.toFixed(1)} GB/s)`,
    matrixGflops: best,
    matrixHow: bestHow,
    readGBps: bw.readGBps,
    copyGBps: bw.copyGBps,
  };
}

export function measureCudaCeilings(addon: Addon, device: string, quick = false): Ceilings {
  const bench = addon.cudaBench;
  if (bench === undefined) throw new Error('this build has no cudaBench');
  const bytes = quick ? 256 << 20 : 2 << 30;
  const copy = bench({ kind: 'copy', bytes, repeats: quick ? 3 : 10 });
  const mma = bench({ kind: 'mma', repeats: quick ? 3 : 10 });
  const best = (ms: readonly number[]): number => Math.min(...ms) / 1e3;
  return {
    backend: 'cuda',
    device,
    threads: 0,
    bandwidthGBps: copy.bytes / best(copy.ms) / 1e9,
    bandwidthHow: `device-to-device copy of ${(bytes / 2 ** 30).toFixed(2)} GiB (read + write), best of ${copy.ms.length}`,
    matrixGflops: mma.flops / best(mma.ms) / 1e9,
    matrixHow: `mma.sync m16n8k16 bf16 peak kernel, best of ${mma.ms.length}`,
  };
}
