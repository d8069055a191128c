/**
 * add through a one-op graph on every CPU tier, with the sum in a third buffer or written over
 * one of its inputs (out = a, out = b), against the float64 reference and the reference tier.
 */
import type { GraphSpec } from '../../lib/addon-types.js';
import { ADD_CASES, ADD_TOLERANCE, type AddCase } from '../cases/add.cases.js';
import { randomUniform } from '../helpers/init.js';
import { assertWithin, describeTiers, lazy, runGraph, seedOf } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { add } from '../reference/ops.js';

function addGraph(c: AddCase): GraphSpec {
  const out = c.out === 'separate' ? 'out' : c.out;
  return {
    weights: [],
    buffers: [
      { name: 'a', width: c.width },
      { name: 'b', width: c.width },
      ...(c.out === 'separate' ? [{ name: 'out', width: c.width }] : []),
    ],
    kvCaches: [],
    nodes: [{ op: 'add', out, a: 'a', b: 'b' }],
  };
}

/** Uniform values times 2^k, k in [-20, 20]: sums cancel and round at every scale. */
function spread(rng: Rng, n: number): Float32Array {
  const x = randomUniform(rng, n);
  for (let i = 0; i < n; i++) x[i] = (x[i] as number) * 2 ** rng.int(-20, 21);
  return x;
}

function makeData(c: AddCase): { a: Float32Array; b: Float32Array; ref: Float64Array } {
  const rng = new Rng(seedOf(c.name));
  const count = c.width * c.rows;
  const a = spread(rng, count);
  const b = spread(rng, count);
  if (count > 4) {
    b[1] = -(a[1] as number); // exact cancellation
    a[2] = -0;
    b[2] = -0;
  }
  return { a, b, ref: add(a, b) };
}

for (const c of ADD_CASES) {
  const data = lazy(() => makeData(c));
  const outName = c.out === 'separate' ? 'out' : c.out;
  describeTiers(
    `add ${c.name}`,
    (tier) =>
      runGraph(addGraph(c), [], tier, [{ pos: 0, inputs: { a: data().a, b: data().b }, outputs: [outName] }], {
        maxTokens: c.rows,
        maxSeqLen: c.rows,
      }),
    (got, tier, referenceTier) => {
      const what = `add ${c.name} tier=${tier}`;
      const out = got[0]![outName]!;
      assertWithin(out, data().ref, ADD_TOLERANCE.vsFloat64, `${what}: vs float64 reference`, { width: c.width });
      if (referenceTier) {
        assertWithin(out, referenceTier[0]![outName]!, ADD_TOLERANCE.vsReferenceTier, `${what}: vs reference tier`, { width: c.width });
      }
    },
  );
}
