/**
 * embed through a one-op graph on every CPU tier: the output rows equal the table rows as the
 * engine stores them (source decoded, converted at load where the storage differs), exactly.
 * With the conversion kinds this also checks that the loader's quantizers match their
 * documented arithmetic (test/helpers/op-runner.ts storedValues).
 */
import type { GraphSpec } from '../../lib/addon-types.js';
import { EMBED_CASES, EMBED_TOLERANCE, embedTokens, type EmbedCase } from '../cases/embed.cases.js';
import { randomUniform } from '../helpers/init.js';
import { assertWithin, describeTiers, encodeSource, lazy, memorySource, runGraph, seedOf, storedValues, weightSpec } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { embed } from '../reference/ops.js';

function embedGraph(c: EmbedCase): GraphSpec {
  return {
    weights: [weightSpec('table', c.kind, c.vocab, c.dim)],
    buffers: [{ name: 'x', width: c.dim }],
    kvCaches: [],
    nodes: [{ op: 'embed', out: 'x', weight: 'table' }],
  };
}

function makeData(c: EmbedCase): { bytes: Uint8Array; tokens: Int32Array[]; refs: Float64Array[] } {
  const rng = new Rng(seedOf(c.name));
  const bytes = encodeSource(c.kind.source, randomUniform(rng, c.vocab * c.dim, -2, 2));
  const table = storedValues(c.kind, bytes);
  const tokens = c.ns.map((n) => embedTokens(c.vocab, n, (lo, hi) => rng.int(lo, hi)));
  return { bytes, tokens, refs: tokens.map((t) => embed(table, t, c.dim)) };
}

for (const c of EMBED_CASES) {
  const data = lazy(() => makeData(c));
  describeTiers(
    `embed ${c.name}`,
    (tier) =>
      runGraph(
        embedGraph(c),
        [memorySource('table', c.kind.source, data().bytes)],
        tier,
        data().tokens.map((tokens) => ({ pos: 0, tokens, outputs: ['x'] })),
        { maxTokens: 33, maxSeqLen: 33 },
      ),
    (got, tier, referenceTier) => {
      const d = data();
      c.ns.forEach((n, j) => {
        const what = `embed ${c.name} tier=${tier} step n=${n} tokens=[${Array.from(d.tokens[j]!).join(',')}]`;
        assertWithin(got[j]!['x']!, d.refs[j]!, EMBED_TOLERANCE, `${what}: vs float64 reference`, { width: c.dim });
        if (referenceTier) assertWithin(got[j]!['x']!, referenceTier[j]!['x']!, EMBED_TOLERANCE, `${what}: vs reference tier`, { width: c.dim });
      });
    },
  );
}
