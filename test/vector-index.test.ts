/**
 * VectorIndex: cosine top-k against a brute-force float64 ranking on random vectors, JSON round
 * trips and argument errors.
 */
import { describe, expect, it } from 'vitest';

import { VectorIndex } from '../lib/index.js';
import { Rng } from './helpers/rng.js';

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] as number) * (b[i] as number);
    aa += (a[i] as number) ** 2;
    bb += (b[i] as number) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('VectorIndex', () => {
  it('top-k equals a brute-force cosine ranking (awkward sizes, unnormalized vectors)', () => {
    const rng = new Rng(7);
    for (const [n, dim] of [[1, 3], [17, 5], [113, 64], [1000, 37]] as const) {
      const index = new VectorIndex<{ n: number }>(dim);
      const vectors: number[][] = [];
      for (let i = 0; i < n; i++) {
        const v = Array.from({ length: dim }, () => rng.normal() * (1 + 10 * rng.next()));
        vectors.push(v);
        index.add(`v${i}`, v, { n: i });
      }
      expect(index.size).toBe(n);
      for (let q = 0; q < 5; q++) {
        const query = Array.from({ length: dim }, () => rng.normal());
        const brute = vectors.map((v, i) => ({ i, s: cosine(v, query) })).sort((a, b) => b.s - a.s);
        for (const k of [1, 5, n + 3]) {
          const hits = index.search(Float32Array.from(query), k);
          expect(hits).toHaveLength(Math.min(k, n));
          hits.forEach((h, j) => {
            expect(h.id).toBe(`v${brute[j]!.i}`);
            expect(h.payload).toEqual({ n: brute[j]!.i });
            expect(h.score).toBeCloseTo(brute[j]!.s, 5);
          });
        }
      }
    }
  });

  it('a stored vector finds itself first with score 1; toJSON/fromJSON keeps the results', () => {
    const rng = new Rng(3);
    const index = new VectorIndex<string>(8);
    for (let i = 0; i < 50; i++) index.add(`id${i}`, Array.from({ length: 8 }, () => rng.uniform(-1, 1)), `payload ${i}`);
    const probe = index.toJSON().entries[17]!.vector;
    const [top] = index.search(probe, 1);
    expect(top!.id).toBe('id17');
    expect(top!.score).toBeCloseTo(1, 6);
    const copy = VectorIndex.fromJSON<string>(JSON.parse(JSON.stringify(index)));
    expect(copy.size).toBe(50);
    expect(copy.search(probe, 10)).toEqual(index.search(probe, 10));
  });

  it('rejects wrong sizes, duplicate ids, zero and non-finite vectors', () => {
    const index = new VectorIndex(3);
    index.add('a', [1, 0, 0], null);
    expect(() => index.add('a', [0, 1, 0], null)).toThrow(/already/);
    expect(() => index.add('b', [1, 0], null)).toThrow(/3 values/);
    expect(() => index.add('c', [0, 0, 0], null)).toThrow(/zeros/);
    expect(() => index.add('d', [0, Number.NaN, 0], null)).toThrow(/non-finite/);
    expect(() => index.search([1, 2, 3], -1)).toThrow(/k must/);
    expect(() => new VectorIndex(0)).toThrow(/dim/);
    expect(index.search([0, 1, 0], 0)).toEqual([]);
  });
});
