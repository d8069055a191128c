/**
 * rope cases: both pairings, Llama head dims, partial rotation (rope_dim < head_dim), base
 * theta 1e4 (Llama 2) and 1e6 (Code Llama), linear position scaling (freqScale 0.25), and
 * steps at positions up to 4000 (the angle's argument reduction at large positions).
 */
import type { BoundTolerance } from '../helpers/op-runner.js';
import { vars } from '../helpers/op-runner.js';

export type Pairing = 'interleaved' | 'half';

export interface RopeCase {
  readonly name: string;
  readonly pairing: Pairing;
  readonly nHeads: number;
  readonly headDim: number;
  readonly ropeDim: number;
  readonly theta: number;
  readonly freqScale: number;
}

/** Steps of every case: a prefill chunk at 0, a decode row, a chunk ending at position 3999. */
export const ROPE_STEPS: readonly { readonly pos: number; readonly n: number }[] = [
  { pos: 0, n: 7 },
  { pos: 100, n: 1 },
  { pos: 3993, n: 7 },
];
export const ROPE_MAX_POS = 4000;

function ropeCase(pairing: Pairing, nHeads: number, headDim: number, ropeDim: number, theta: number, freqScale: number): RopeCase {
  const name = vars({ pairing, heads: nHeads, head_dim: headDim, rope_dim: ropeDim, theta, freq_scale: freqScale });
  return { name, pairing, nHeads, headDim, ropeDim, theta, freqScale };
}

function buildCases(): RopeCase[] {
  const cases: RopeCase[] = [];
  for (const pairing of ['interleaved', 'half'] as const) {
    for (const headDim of [8, 64, 128]) {
      const nHeads = headDim === 8 ? 8 : 3;
      for (const theta of [10000, 1e6]) {
        for (const freqScale of [1, 0.25]) cases.push(ropeCase(pairing, nHeads, headDim, headDim, theta, freqScale));
      }
    }
    // partial rotation: the dims past rope_dim pass through
    cases.push(ropeCase(pairing, 3, 128, 64, 10000, 1));
    cases.push(ropeCase(pairing, 1, 64, 16, 10000, 0.25));
  }
  return cases;
}

export const ROPE_CASES: readonly RopeCase[] = buildCases();

/**
 * Bounds relative to scale = |x_a| + |x_b| of an output's pair (0 for dims past rope_dim,
 * which must be copied exactly).
 *   vs float64: cos and sin are rounded to f32 (2^-25 absolute each), then two f32 products
 *     and a sum (2^-24 each, relative to at most scale): 2.5 * 2^-24 = 1.5e-7; 2e-7 allowed.
 *   vs reference tier: the same table and arithmetic; a fused multiply-add may round once
 *     instead of twice: 1 ulp (as cpu_ops_check.cc).
 */
export const ROPE_TOLERANCE = {
  vsFloat64: { atol: 0, rtol: 2e-7 },
  vsReferenceTier: { atol: 0, rtol: 2 ** -23 },
  // CUDA (native/cuda/rope.cu): the backend builds the same f32 cos/sin table (in double, as the
  // CPU backend), and the kernel rounds every product and sum separately in the reference's order
  // (__fmul_rn / __fadd_rn, no FMA): bit-identical to the reference tier.
  cudaVsReferenceTier: { atol: 0, rtol: 0 },
} as const satisfies Record<string, BoundTolerance>;
