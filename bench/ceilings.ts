/**
 * The denominators: what this machine can do at most, measured on the spot.
 *   memory read bandwidth (GB/s): decode reads every weight once per token, so
 *     max tokens/s = bandwidth / weight bytes
 */
import { loadAddon } from '../lib/native.js';

export interface Ceilings {
  readonly cpu: string;
  readonly threads: number;
  /** Streaming read bandwidth over 1 GiB, all threads, best of 5. */
  readonly readGBps: number;
  readonly copyGBps: number;
}

export function measureCeilings(threads = 0): Ceilings {
  const { addon, info } = loadAddon('cpu');
  const bw = addon.measureMemoryBandwidth(1 << 30, threads, 5);
  return { cpu: info.cpu.model, threads: bw.threads, readGBps: bw.readGBps, copyGBps: bw.copyGBps };
}
