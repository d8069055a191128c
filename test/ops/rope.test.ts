/**
 * rope through a one-op graph (in place on its buffer) on every CPU tier: steps at positions
 * pos..pos+n-1 against the float64 rope at the same positions, and against the reference tier.
 */
import type { GraphSpec } from '../../lib/addon-types.js';
import { ROPE_CASES, ROPE_MAX_POS, ROPE_STEPS, ROPE_TOLERANCE, type RopeCase } from '../cases/rope.cases.js';
import { randomUniform } from '../helpers/init.js';
import { assertWithin, describeTiers, lazy, runGraph, seedOf } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { rope } from '../reference/ops.js';

function ropeGraph(c: RopeCase): GraphSpec {
  return {
    weights: [],
    buffers: [{ name: 'q', width: c.nHeads * c.headDim }],
    kvCaches: [],
    nodes: [
      { op: 'rope', a: 'q', nHeads: c.nHeads, headDim: c.headDim, ropeDim: c.ropeDim, theta: c.theta, freqScale: c.freqScale, pairing: c.pairing },
    ],
  };
}

/** |x_a| + |x_b| of each value's rotation pair; 0 past rope_dim. */
function pairScale(x: Float32Array, c: RopeCase): Float64Array {
  const scale = new Float64Array(x.length);
  const half = c.ropeDim / 2;
  for (let h = 0; h < x.length / c.headDim; h++) {
    for (let p = 0; p < half; p++) {
      const a = h * c.headDim + (c.pairing === 'interleaved' ? 2 * p : p);
      const b = h * c.headDim + (c.pairing === 'interleaved' ? 2 * p + 1 : p + half);
      scale[a] = scale[b] = Math.abs(x[a] as number) + Math.abs(x[b] as number);
    }
  }
  return scale;
}

function makeData(c: RopeCase): { xs: Float32Array[]; refs: Float64Array[]; scales: Float64Array[] } {
  const rng = new Rng(seedOf(c.name));
  const xs = ROPE_STEPS.map((s) => randomUniform(rng, s.n * c.nHeads * c.headDim, -2, 2));
  const refs = ROPE_STEPS.map((s, j) => {
    const positions = Array.from({ length: s.n }, (_, i) => s.pos + i);
    return rope(xs[j]!, positions, c.headDim, c.ropeDim, c.theta, c.pairing, c.freqScale);
  });
  return { xs, refs, scales: xs.map((x) => pairScale(x, c)) };
}

for (const c of ROPE_CASES) {
  const data = lazy(() => makeData(c));
  describeTiers(
    `rope ${c.name}`,
    (tier) =>
      runGraph(
        ropeGraph(c),
        [],
        tier,
        ROPE_STEPS.map((s, j) => ({ pos: s.pos, inputs: { q: data().xs[j]! }, outputs: ['q'] })),
        { maxTokens: 8, maxSeqLen: ROPE_MAX_POS },
      ),
    (got, tier, referenceTier) => {
      const d = data();
      ROPE_STEPS.forEach((s, j) => {
        const what = `rope ${c.name} tier=${tier} step pos=${s.pos} n=${s.n}`;
        const opts = { scale: d.scales[j]!, width: c.headDim };
        assertWithin(got[j]!['q']!, d.refs[j]!, ROPE_TOLERANCE.vsFloat64, `${what}: vs float64 reference`, opts);
        const vsTier = tier === 'cuda-simt' ? ROPE_TOLERANCE.cudaVsReferenceTier : ROPE_TOLERANCE.vsReferenceTier;
        if (referenceTier) assertWithin(got[j]!['q']!, referenceTier[j]!['q']!, vsTier, `${what}: vs reference tier`, opts);
      });
    },
  );
}
