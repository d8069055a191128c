/** swiglu through a one-op graph on every CPU tier, against the float64 reference and the reference tier. */
import type { GraphSpec } from '../../lib/addon-types.js';
import { ELEMENTWISE_CASES, SWIGLU_EXTREME_GATES, SWIGLU_TOLERANCE, type ElementwiseCase } from '../cases/swiglu.cases.js';
import { randomUniform } from '../helpers/init.js';
import { assertWithin, describeTiers, lazy, runGraph, seedOf, sumTolerance } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { swiglu } from '../reference/ops.js';

function swigluGraph(width: number): GraphSpec {
  return {
    weights: [],
    buffers: [
      { name: 'gate', width },
      { name: 'up', width },
      { name: 'out', width },
    ],
    kvCaches: [],
    nodes: [{ op: 'swiglu', out: 'out', a: 'gate', b: 'up' }],
  };
}

function makeData(c: ElementwiseCase): { gate: Float32Array; up: Float32Array; ref: Float64Array } {
  const rng = new Rng(seedOf(c.name));
  const count = c.width * c.rows;
  const gate = randomUniform(rng, count, -12, 12);
  SWIGLU_EXTREME_GATES.forEach((g, i) => {
    if (3 * i < count) gate[3 * i] = g;
  });
  const up = randomUniform(rng, count, -2, 2);
  return { gate, up, ref: swiglu(gate, up) };
}

for (const c of ELEMENTWISE_CASES) {
  const data = lazy(() => makeData(c));
  describeTiers(
    `swiglu ${c.name}`,
    (tier) =>
      runGraph(swigluGraph(c.width), [], tier, [{ pos: 0, inputs: { gate: data().gate, up: data().up }, outputs: ['out'] }], {
        maxTokens: c.rows,
        maxSeqLen: c.rows,
      }),
    (got, tier, referenceTier) => {
      const { referenceTier: refTol } = SWIGLU_TOLERANCE;
      const fastTier = tier === 'cuda-simt' ? SWIGLU_TOLERANCE.cuda : SWIGLU_TOLERANCE.fastTier;
      const what = `swiglu ${c.name} tier=${tier}`;
      const out = got[0]!['out']!;
      const vsFloat64 = tier === 'reference' ? refTol : sumTolerance(fastTier, refTol);
      assertWithin(out, data().ref, vsFloat64, `${what}: vs float64 reference`, { width: c.width });
      if (referenceTier) assertWithin(out, referenceTier[0]!['out']!, fastTier, `${what}: vs reference tier`, { width: c.width });
    },
  );
}
