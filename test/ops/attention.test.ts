/**
 * kv_append then attention, through one graph on every CPU tier: a prefill step, decode steps
 * and a second chunk on one session. The float64 reference keeps its own K/V arrays (rounded
 * to f16 for an f16 cache) and attends over rows 0..pos+i for query row i.
 */
import type { GraphSpec } from '../../lib/addon-types.js';
import { ATTENTION_CASES, ATTENTION_TOLERANCE, type AttentionCase } from '../cases/attention.cases.js';
import { randomUniform } from '../helpers/init.js';
import { assertWithin, describeTiers, lazy, runGraph, seedOf, sumTolerance } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { attention, f16ToNumber, numberToF16 } from '../reference/ops.js';

function attentionGraph(c: AttentionCase): GraphSpec {
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  return {
    weights: [],
    buffers: [
      { name: 'q', width: qDim },
      { name: 'k', width: kvDim },
      { name: 'v', width: kvDim },
      { name: 'o', width: qDim },
    ],
    kvCaches: [{ name: 'kv', kvDim }],
    nodes: [
      { op: 'kv_append', a: 'k', b: 'v', kv: 'kv' },
      { op: 'attention', out: 'o', a: 'q', kv: 'kv', nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim },
    ],
  };
}

/** Cache rows pos..pos+n-1 of v[t][c] = t/16 + c/1024: a value names its cache row and column. */
function positionRows(pos: number, n: number, kvDim: number): Float32Array {
  return Float32Array.from({ length: n * kvDim }, (_, i) => (pos + Math.floor(i / kvDim)) / 16 + (i % kvDim) / 1024);
}

interface StepData {
  readonly pos: number;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly ref: Float64Array;
}

function makeData(c: AttentionCase): StepData[] {
  const rng = new Rng(seedOf(c.name));
  const kvDim = c.nKvHeads * c.headDim;
  const total = c.steps.reduce((a, b) => a + b, 0);
  const cached = (x: number): number => (c.kvType === 'f16' ? f16ToNumber(numberToF16(x)) : x);
  const kCache = new Float64Array(total * kvDim); // what the engine's cache holds
  const vCache = new Float64Array(total * kvDim);
  const steps: StepData[] = [];
  let pos = 0;
  for (const n of c.steps) {
    const q = randomUniform(rng, n * c.nHeads * c.headDim, -2, 2);
    const k = randomUniform(rng, n * kvDim);
    const v = c.init === 'position' ? positionRows(pos, n, kvDim) : randomUniform(rng, n * kvDim);
    for (let i = 0; i < n * kvDim; i++) {
      kCache[pos * kvDim + i] = cached(k[i] as number);
      vCache[pos * kvDim + i] = cached(v[i] as number);
    }
    const seen = (pos + n) * kvDim;
    const ref = attention(q, kCache.subarray(0, seen), vCache.subarray(0, seen), pos, c.nHeads, c.nKvHeads, c.headDim);
    steps.push({ pos, q, k, v, ref });
    pos += n;
  }
  return steps;
}

for (const c of ATTENTION_CASES) {
  const data = lazy(() => makeData(c));
  const total = c.steps.reduce((a, b) => a + b, 0);
  describeTiers(
    `attention ${c.name}`,
    (tier) =>
      runGraph(
        attentionGraph(c),
        [],
        tier,
        data().map((s) => ({ pos: s.pos, inputs: { q: s.q, k: s.k, v: s.v }, outputs: ['o'] })),
        // the cache is exactly as long as the steps: the last one fills it
        { threads: c.threads, maxSeqLen: total, maxTokens: Math.max(...c.steps), kvType: c.kvType },
      ),
    (got, tier, referenceTier) => {
      const { referenceTier: refTol } = ATTENTION_TOLERANCE;
      const fastTier = tier === 'cuda-simt' ? ATTENTION_TOLERANCE.cuda : ATTENTION_TOLERANCE.fastTier;
      data().forEach((s, j) => {
        const what = `attention ${c.name} tier=${tier} step pos=${s.pos} n=${c.steps[j]}`;
        const out = got[j]!['o']!;
        const vsFloat64 = tier === 'reference' ? refTol : sumTolerance(fastTier, refTol);
        assertWithin(out, s.ref, vsFloat64, `${what}: vs float64 reference`, { width: c.headDim });
        if (referenceTier) assertWithin(out, referenceTier[j]!['o']!, fastTier, `${what}: vs reference tier`, { width: c.headDim });
      });
    },
  );
}
