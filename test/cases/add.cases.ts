/** add cases: out = a + b over the elementwise shapes, with out separate or aliasing an input. */
import type { BoundTolerance } from '../helpers/op-runner.js';
import { vars } from '../helpers/op-runner.js';
import { ELEMENTWISE_CASES, type ElementwiseCase } from './swiglu.cases.js';

/** Which buffer the sum is written to: a third buffer, or in place over a or b (the residual add). */
export type AddOut = 'separate' | 'a' | 'b';

export interface AddCase extends ElementwiseCase {
  readonly out: AddOut;
}

export const ADD_CASES: readonly AddCase[] = ELEMENTWISE_CASES.flatMap((c) =>
  (['separate', 'a', 'b'] as const).map((out) => ({ ...c, name: `${c.name} ${vars({ out })}`, out })),
);

/**
 * One f32 rounding of the exact sum: half an ulp vs float64 (inputs span 2^-20..2^20, so
 * sums cancel and round at every scale); every tier must equal the reference tier bit for bit,
 * CUDA included (native/cuda/elementwise.cu: one __fadd_rn per value).
 */
export const ADD_TOLERANCE = {
  vsFloat64: { atol: 0, rtol: 2 ** -24 },
  vsReferenceTier: { atol: 0, rtol: 0 },
} as const satisfies Record<string, BoundTolerance>;
