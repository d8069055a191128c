/** Self-tests of the float64 reference ops: hand-computed cases, identities and layouts. */
import { describe, expect, it } from 'vitest';

import { assertClose } from '../helpers/assert-close.js';
import { arange, randomUniform, rowColCode } from '../helpers/init.js';
import { Rng } from '../helpers/rng.js';
import { add, attention, embed, matmul, rmsnorm, rope, softmax, swiglu } from './ops.js';

const EXACT = { atol: 1e-12, rtol: 1e-12 };

describe('rmsnorm', () => {
  it('scales each row by 1/rms and the weight', () => {
    // rows [3, 4] (rms sqrt(12.5)) and [1, -1] (rms 1), weight [1, 2]
    const got = rmsnorm([3, 4, 1, -1], [1, 2], 0);
    const r = Math.sqrt(12.5);
    assertClose(got, [3 / r, 8 / r, 1, -2], EXACT, 'rmsnorm 2 rows');
  });

  it('adds eps inside the square root', () => {
    assertClose(rmsnorm([0.001], [1], 1e-5), [0.001 / Math.sqrt(1e-6 + 1e-5)], EXACT, 'rmsnorm eps');
  });

  it('rejects a row width that does not divide x', () => {
    expect(() => rmsnorm([1, 2, 3], [1, 1], 0)).toThrow(/multiple/);
  });
});

describe('matmul', () => {
  it('computes x · W^T with W stored [out][in]', () => {
    // x [2][3], W [2][3]
    const got = matmul([1, 2, 3, 4, 5, 6], [1, 0, 0, 0, 1, 1], 2, 3);
    expect(Array.from(got)).toEqual([1, 5, 4, 11]);
  });

  it('reads the right row and column with position-coded weights', () => {
    const rows = 17;
    const cols = 3;
    const w = rowColCode(rows, cols); // W[r][c] = r + c/1024
    for (let c = 0; c < cols; c++) {
      const x = [0, 0, 0];
      x[c] = 1; // picks column c of every row
      const got = matmul(x, w, rows, cols);
      expect(Array.from(got)).toEqual(Array.from({ length: rows }, (_, r) => r + c / 1024));
    }
  });
});

describe('rope', () => {
  const rng = new Rng(11);
  const headDim = 8;
  const x = randomUniform(rng, 3 * 2 * headDim); // 3 rows, 2 heads

  it('is the identity at position 0 and keeps the norm of every pair', () => {
    assertClose(rope(x, [0, 0, 0], headDim, headDim, 10000, 'interleaved'), x, EXACT, 'rope pos 0');
    const got = rope(x, [1, 7, 300], headDim, headDim, 10000, 'interleaved');
    for (let i = 0; i < x.length; i += 2) {
      expect(Math.hypot(got[i]!, got[i + 1]!)).toBeCloseTo(Math.hypot(x[i]!, x[i + 1]!), 12);
    }
  });

  it('turns pair p by pos * theta^(-2p/ropeDim)', () => {
    const unit = new Float64Array(headDim).fill(0);
    unit[0] = 1; // pair 0 (angle = pos)
    unit[2] = 1; // pair 1 (angle = pos / theta^(2/8))
    const pos = 2.5;
    const got = rope(unit, [pos], headDim, headDim, 10000, 'interleaved');
    const a1 = pos * 10000 ** (-2 / 8);
    assertClose(got.subarray(0, 4), [Math.cos(pos), Math.sin(pos), Math.cos(a1), Math.sin(a1)], EXACT, 'rope angles');
  });

  it("'half' pairing is 'interleaved' on a permuted head", () => {
    // interleaved index 2p ↔ half index p, 2p+1 ↔ p + headDim/2
    const perm = (v: ArrayLike<number>, toHalf: boolean): Float64Array => {
      const out = new Float64Array(v.length);
      for (let base = 0; base < v.length; base += headDim) {
        for (let p = 0; p < headDim / 2; p++) {
          const [inter0, inter1, half0, half1] = [base + 2 * p, base + 2 * p + 1, base + p, base + p + headDim / 2];
          if (toHalf) [out[half0], out[half1]] = [v[inter0]!, v[inter1]!];
          else [out[inter0], out[inter1]] = [v[half0]!, v[half1]!];
        }
      }
      return out;
    };
    const positions = [3, 0, 41];
    const viaInterleaved = perm(rope(perm(x, false), positions, headDim, headDim, 10000, 'interleaved'), true);
    assertClose(rope(x, positions, headDim, headDim, 10000, 'half'), viaInterleaved, EXACT, 'half vs permuted interleaved');
  });

  it('scales positions by freqScale and leaves dims past ropeDim alone', () => {
    assertClose(rope(x, [2, 4, 6], headDim, headDim, 500, 'half', 0.5), rope(x, [1, 2, 3], headDim, headDim, 500, 'half'), EXACT, 'freqScale');
    const partial = rope(x, [5, 6, 7], headDim, 4, 10000, 'interleaved');
    for (let i = 0; i < x.length; i++) {
      if (i % headDim >= 4) expect(partial[i]).toBe(x[i]);
    }
    // the rotated part uses ropeDim in the exponent: pair 1 of a 4-wide rope turns by pos / theta^(2/4)
    const unit = new Float64Array(headDim);
    unit[2] = 1;
    const got = rope(unit, [3], headDim, 4, 10000, 'interleaved');
    assertClose(got.subarray(2, 4), [Math.cos(3 / 100), Math.sin(3 / 100)], EXACT, 'ropeDim exponent');
  });
});

describe('attention', () => {
  const headDim = 4;

  it('returns the only value at position 0', () => {
    const v = [1, 2, 3, 4];
    expect(Array.from(attention([0.3, -1, 2, 5], [9, 9, 9, 9], v, 0, 1, 1, headDim))).toEqual(v);
  });

  it('averages the visible values when all scores are equal, causally per row', () => {
    // zero keys → uniform weights; V[t] = t (every element); rows at positions 2, 3
    const len = 6;
    const k = new Float64Array(len * headDim);
    const v = new Float64Array(len * headDim).map((_, i) => Math.floor(i / headDim));
    const q = randomUniform(new Rng(3), 2 * headDim);
    const got = attention(q, k, v, 2, 1, 1, headDim);
    assertClose(got, [...new Array(headDim).fill(1), ...new Array(headDim).fill(1.5)], EXACT, 'uniform causal mean');
  });

  it('maps query head h to KV head floor(h / (nHeads / nKvHeads))', () => {
    // one position: output = V of the KV head; V codes its column
    const nHeads = 8;
    const nKvHeads = 2;
    const v = arange(nKvHeads * headDim);
    const k = new Float64Array(nKvHeads * headDim);
    const q = new Float64Array(nHeads * headDim).fill(1);
    const got = attention(q, k, v, 0, nHeads, nKvHeads, headDim);
    for (let h = 0; h < nHeads; h++) {
      const kv = Math.floor(h / 4);
      expect(Array.from(got.subarray(h * headDim, (h + 1) * headDim))).toEqual(Array.from(v.subarray(kv * headDim, (kv + 1) * headDim)));
    }
  });

  it('matches the softmax formula and gives each row the same answer as a one-row call', () => {
    const rng = new Rng(5);
    const [nHeads, nKvHeads, pos, n, len] = [4, 2, 3, 3, 7];
    const kvDim = nKvHeads * headDim;
    const q = randomUniform(rng, n * nHeads * headDim);
    const k = randomUniform(rng, len * kvDim);
    const v = randomUniform(rng, len * kvDim);
    const all = attention(q, k, v, pos, nHeads, nKvHeads, headDim);
    for (let i = 0; i < n; i++) {
      const row = attention(q.subarray(i * nHeads * headDim, (i + 1) * nHeads * headDim), k, v, pos + i, nHeads, nKvHeads, headDim);
      assertClose(all.subarray(i * nHeads * headDim, (i + 1) * nHeads * headDim), row, EXACT, `row ${i}`);
    }
    // head 3 of row 0 by the formula: kv head 1, keys 0..pos
    const h = 3;
    const kvOff = 1 * headDim;
    const scores = Array.from({ length: pos + 1 }, (_, t) => {
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += q[h * headDim + d]! * k[t * kvDim + kvOff + d]!;
      return dot / Math.sqrt(headDim);
    });
    const p = softmax(scores);
    const want = Array.from({ length: headDim }, (_, d) => p.reduce((acc, w, t) => acc + w * v[t * kvDim + kvOff + d]!, 0));
    assertClose(all.subarray(h * headDim, (h + 1) * headDim), want, EXACT, 'formula');
  });

  it('rejects a cache shorter than pos + rows', () => {
    expect(() => attention(new Float64Array(8), new Float64Array(4), new Float64Array(4), 1, 2, 1, headDim)).toThrow(/cached positions/);
  });
});

describe('swiglu, add, embed, softmax', () => {
  it('swiglu = g * sigmoid(g) * up', () => {
    assertClose(swiglu([0, 1, -2, 30], [5, 2, 3, 1]), [0, 2 / (1 + Math.exp(-1)), (3 * -2) / (1 + Math.exp(2)), 30 / (1 + Math.exp(-30))], EXACT, 'swiglu');
  });

  it('add is elementwise', () => {
    expect(Array.from(add([1, 2, 3], [0.5, -2, 10]))).toEqual([1.5, 0, 13]);
  });

  it('embed copies table rows', () => {
    const table = rowColCode(5, 3);
    expect(Array.from(embed(table, [4, 0, 4], 3))).toEqual([4, 4 + 1 / 1024, 4 + 2 / 1024, 0, 1 / 1024, 2 / 1024, 4, 4 + 1 / 1024, 4 + 2 / 1024]);
    expect(() => embed(table, [5], 3)).toThrow(/outside/);
  });

  it('softmax sums to 1 and survives large logits', () => {
    const p = softmax([1000, 1000, -Infinity]);
    expect(Array.from(p)).toEqual([0.5, 0.5, 0]);
  });
});
