/** swiglu cases: out = silu(gate) * up over counts 1, 7, 4099 and several rows, with saturating gates. */
import type { BoundTolerance } from '../helpers/op-runner.js';
import { vars } from '../helpers/op-runner.js';

export interface ElementwiseCase {
  readonly name: string;
  readonly width: number;
  /** Rows per step (one step); count = width * rows. */
  readonly rows: number;
}

function elementwiseCase(width: number, rows: number): ElementwiseCase {
  return { name: vars({ count: width * rows, width, rows }), width, rows };
}

/** Shared with add: one row of 1, 7, 4099 values (not a multiple of any vector), and several rows. */
export const ELEMENTWISE_CASES: readonly ElementwiseCase[] = [
  elementwiseCase(1, 1),
  elementwiseCase(7, 1),
  elementwiseCase(4099, 1),
  elementwiseCase(97, 33),
  elementwiseCase(4099, 3),
];

/**
 * Gates: uniform in [-12, 12], with these at positions 0, 3, 6, ... (as far as the count
 * reaches): silu saturates to -0 / g, exp overflows f32 past 88.7, and 0, -0, a tiny value.
 */
export const SWIGLU_EXTREME_GATES = [-100, 100, -88, 89, 0, -0, 1e-30, -30, -1000, 1000] as const;

/**
 * vs float64, relative to |ref|:
 *   reference tier: f32 expf (< 1 ulp), then a sum, a division and a product rounded: ~3.6e-7.
 *     atol 1e-35: where exp(-g) overflows f32 (g < -88.7) the f32 result is -0 while the true
 *     value is ~ -g e^g (below 1e-36): a property of f32, not an error.
 *   fast tiers vs reference tier: a polynomial exp (~1e-7 relative) and the same order of
 *     operations (as cpu_ops_check.cc); vs float64 both added.
 */
export const SWIGLU_TOLERANCE = {
  referenceTier: { atol: 1e-35, rtol: 3 * 2 ** -23 },
  fastTier: { atol: 1e-7, rtol: 2e-6 },
  // CUDA vs reference tier (native/cuda/elementwise.cu): g / (1 + expf(-g)) * up in the
  // reference's order with IEEE division and product; only expf differs (CUDA's: <= 2 ulp, the
  // CPU's std::exp: < 1 ulp), which moves 1 + e by at most 3 ulp relative, then two roundings
  // on each side: 5 ulp of the result, 2^-24 each; atol as the reference tier's (-0 vs ~1e-36).
  cuda: { atol: 1e-35, rtol: 5 * 2 ** -23 },
} as const satisfies Record<string, BoundTolerance>;
