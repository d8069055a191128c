/**
 * last_row through the engine on every CPU tier and cuda-simt: the last row only, every row when the step
 * asks (up to maxOutputRows), an ERR_INVALID_ARG beyond that; alone and feeding a matmul.
 * Inputs are position codes (x[i][c] = i + c/8192) and the matmul only selects columns, so
 * every tier must give the expected values exactly.
 */
import { describe, expect, it } from 'vitest';

import type { GraphSpec } from '../../lib/addon-types.js';
import { LAST_ROW_CASES, LAST_ROW_HEAD_ROWS, LAST_ROW_MAX_OUTPUT_ROWS, LAST_ROW_OVERFLOW, type LastRowCase } from '../cases/last_row.cases.js';
import { buildEngine, f32Source } from '../helpers/graphs.js';
import { rowColCode } from '../helpers/init.js';
import { assertWithin, describeTiers, runGraph, targets } from '../helpers/op-runner.js';

const EXACT = { atol: 0, rtol: 0 };

/** Head row r picks input column (7 r + 3) % width. */
const headColumn = (r: number, width: number): number => (7 * r + 3) % width;

function lastRowGraph(c: Pick<LastRowCase, 'width' | 'graph'>): GraphSpec {
  const head = c.graph === 'last_row+matmul';
  return {
    weights: head ? [{ name: 'head', dtype: 'f32', shape: [LAST_ROW_HEAD_ROWS, c.width] }] : [],
    buffers: [
      { name: 'x', width: c.width },
      { name: 'y', width: c.width },
      ...(head ? [{ name: 'logits', width: LAST_ROW_HEAD_ROWS }] : []),
    ],
    kvCaches: [],
    nodes: [{ op: 'last_row', out: 'y', a: 'x' }, ...(head ? [{ op: 'matmul', out: 'logits', a: 'y', weight: 'head' } as const] : [])],
  };
}

function headWeight(width: number): Float32Array {
  const w = new Float32Array(LAST_ROW_HEAD_ROWS * width);
  for (let r = 0; r < LAST_ROW_HEAD_ROWS; r++) w[r * width + headColumn(r, width)] = 1;
  return w;
}

/** The kept rows of x, and the head's output on them. */
function expected(c: LastRowCase, x: Float32Array): { y: Float32Array; logits: Float32Array } {
  const kept = c.allRows ? c.n : 1;
  const y = x.slice((c.n - kept) * c.width);
  const logits = new Float32Array(kept * LAST_ROW_HEAD_ROWS);
  for (let i = 0; i < kept; i++) {
    for (let r = 0; r < LAST_ROW_HEAD_ROWS; r++) logits[i * LAST_ROW_HEAD_ROWS + r] = y[i * c.width + headColumn(r, c.width)] as number;
  }
  return { y, logits };
}

for (const c of LAST_ROW_CASES) {
  const x = rowColCode(c.n, c.width, 1, 1 / 8192);
  const head = c.graph === 'last_row+matmul';
  describeTiers(
    c.name,
    (tier) =>
      runGraph(
        lastRowGraph(c),
        head ? [f32Source('head', headWeight(c.width))] : [],
        tier,
        [{ pos: 0, inputs: { x }, outputs: head ? ['y', 'logits'] : ['y'], allRows: c.allRows }],
        { maxTokens: 33, maxSeqLen: 33, maxOutputRows: LAST_ROW_MAX_OUTPUT_ROWS },
      ),
    (got, tier) => {
      const want = expected(c, x);
      const what = `${c.name} tier=${tier}`;
      assertWithin(got[0]!['y']!, want.y, EXACT, `${what}: kept rows`, { width: c.width });
      if (head) assertWithin(got[0]!['logits']!, want.logits, EXACT, `${what}: matmul after last_row`, { width: LAST_ROW_HEAD_ROWS });
    },
  );
}

describe(`last_row: a step asking for more rows than maxOutputRows (${LAST_ROW_OVERFLOW.n} > ${LAST_ROW_OVERFLOW.maxOutputRows})`, () => {
  for (const tier of targets()) {
    it(`tier=${tier} rejects with ERR_INVALID_ARG and still runs the next step`, async () => {
      const { n, width, maxOutputRows } = LAST_ROW_OVERFLOW;
      const spec = lastRowGraph({ width, graph: 'last_row' });
      const { engine, session } = await buildEngine(spec, [], { tier, maxTokens: 8, maxSeqLen: 8, maxOutputRows });
      try {
        const x = rowColCode(n, width, 1, 1 / 8192);
        const y = new Float32Array(n * width);
        const step = { pos: 0, inputs: [{ buffer: 'x', data: x }], outputs: [{ buffer: 'y', data: y }] };
        await expect(session.run({ ...step, allRows: true })).rejects.toMatchObject({
          code: 'ERR_INVALID_ARG',
          message: expect.stringMatching(/maxOutputRows/),
        });
        const fits = await session.run({ ...step, inputs: [{ buffer: 'x', data: x.subarray(0, maxOutputRows * width) }], allRows: true });
        expect(fits.outputRows).toEqual([maxOutputRows]);
        expect(Array.from(y.subarray(0, maxOutputRows * width))).toEqual(Array.from(x.subarray(0, maxOutputRows * width)));
      } finally {
        await session.dispose();
        await engine.dispose();
      }
    });
  }
});
