/** rmsnorm through a one-op graph on every CPU tier, against the float64 reference and the reference tier. */
import type { GraphSpec } from '../../lib/addon-types.js';
import { RMSNORM_CASES, RMSNORM_TOLERANCE, type RmsnormCase } from '../cases/rmsnorm.cases.js';
import { f32Source } from '../helpers/graphs.js';
import { randomUniform } from '../helpers/init.js';
import { assertWithin, describeTiers, lazy, runGraph, seedOf, sumTolerance } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { rmsnorm } from '../reference/ops.js';

function rmsnormGraph(c: RmsnormCase): GraphSpec {
  return {
    weights: [{ name: 'w', dtype: 'f32', shape: [1, c.dim] }],
    buffers: [
      { name: 'x', width: c.dim },
      { name: 'out', width: c.dim },
    ],
    kvCaches: [],
    nodes: [{ op: 'rmsnorm', out: 'out', a: 'x', weight: 'w', eps: c.eps }],
  };
}

function makeData(c: RmsnormCase): { w: Float32Array; xs: Float32Array[]; refs: Float64Array[] } {
  const rng = new Rng(seedOf(c.name));
  const w = randomUniform(rng, c.dim, -1.5, 1.5);
  const xs = c.ns.map((n) => randomUniform(rng, n * c.dim, -c.magnitude, c.magnitude));
  // the graph carries eps as f32
  return { w, xs, refs: xs.map((x) => rmsnorm(x, w, Math.fround(c.eps))) };
}

for (const c of RMSNORM_CASES) {
  const data = lazy(() => makeData(c));
  describeTiers(
    `rmsnorm ${c.name}`,
    (tier) =>
      runGraph(
        rmsnormGraph(c),
        [f32Source('w', data().w)],
        tier,
        data().xs.map((x) => ({ pos: 0, inputs: { x }, outputs: ['out'] })),
        { maxTokens: 33, maxSeqLen: 33 },
      ),
    (got, tier, referenceTier) => {
      const d = data();
      const { referenceTier: refTol } = RMSNORM_TOLERANCE;
      const fastTier = tier === 'cuda-simt' ? RMSNORM_TOLERANCE.cuda : RMSNORM_TOLERANCE.fastTier;
      c.ns.forEach((n, j) => {
        const what = `rmsnorm ${c.name} tier=${tier} step n=${n}`;
        const out = got[j]!['out']!;
        assertWithin(out, d.refs[j]!, tier === 'reference' ? refTol : fastTier, `${what}: vs float64 reference`, { width: c.dim });
        if (referenceTier) {
          assertWithin(out, referenceTier[j]!['out']!, sumTolerance(fastTier, refTol), `${what}: vs reference tier`, { width: c.dim });
        }
      });
    },
  );
}
