/** rmsnorm cases: widths (odd, tiny, Llama 2's 4096) x eps x input magnitude. */
import type { BoundTolerance } from '../helpers/op-runner.js';
import { vars } from '../helpers/op-runner.js';

export interface RmsnormCase {
  readonly name: string;
  readonly dim: number;
  readonly eps: number;
  /** Inputs are uniform in [-magnitude, magnitude]: 1e-4 makes eps dominate the mean square. */
  readonly magnitude: number;
  /** Row counts, one step each. */
  readonly ns: readonly number[];
}

export const RMSNORM_DIMS = [8, 64, 97, 4096] as const;
export const RMSNORM_EPS = [1e-5, 1e-6] as const;
export const RMSNORM_MAGNITUDES = [1, 1e4, 1e-4] as const;
export const RMSNORM_N = [1, 2, 7, 33] as const;

export const RMSNORM_CASES: readonly RmsnormCase[] = RMSNORM_DIMS.flatMap((dim) =>
  RMSNORM_EPS.flatMap((eps) =>
    RMSNORM_MAGNITUDES.map((magnitude) => ({ name: vars({ dim, eps, magnitude, n: RMSNORM_N.join(',') }), dim, eps, magnitude, ns: RMSNORM_N })),
  ),
);

/**
 * Against float64, relative to |ref| only: every output is w_j * s * x_j, so its error is the
 * relative error of the row scale s plus two f32 products, whatever the input magnitude
 * (no atol: a tiny-input case must not pass by being small).
 *   reference tier: s from a double sum, rounded to f32, then two products: ~3 half-ulps.
 *   fast tiers: f32 sum of squares over up to 4096 values (relative ~1e-6 at worst for
 *   positive terms, halved by the square root), as cpu_ops_check.cc's 2e-6, plus the above.
 */
export const RMSNORM_TOLERANCE = {
  referenceTier: { atol: 0, rtol: 4 * 2 ** -24 },
  fastTier: { atol: 0, rtol: 2e-6 + 4 * 2 ** -24 },
  // CUDA (native/cuda/rmsnorm.cu): the sum of squares in f32 as short per-thread chains (at most
  // dim/128 terms) joined by a butterfly tree, IEEE division and square root, then the
  // reference's two products: the error of an f32 sum of positive terms, as the fast tiers'.
  cuda: { atol: 0, rtol: 2e-6 + 4 * 2 ** -24 },
} as const satisfies Record<string, BoundTolerance>;
