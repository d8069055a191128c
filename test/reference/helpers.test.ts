/** Self-tests of the test helpers the references are used with (rng, init, assert-close). */
import { describe, expect, it } from 'vitest';

import { assertClose, compareClose } from '../helpers/assert-close.js';
import { arange, randomNormal, randomTokens, randomUniform, rowColCode } from '../helpers/init.js';
import { Rng } from '../helpers/rng.js';

describe('Rng', () => {
  it('repeats for a seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const seqA = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(seqA);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(seqA);
  });

  it('draws uniform values in range and normal values with the right moments', () => {
    const rng = new Rng(1);
    const u = randomUniform(rng, 20000, -2, 3);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    const mean = u.reduce((s, v) => s + v, 0) / u.length;
    expect(mean).toBeCloseTo(0.5, 1);
    const z = randomNormal(rng, 20000, 2, 1);
    const zMean = z.reduce((s, v) => s + v, 0) / z.length;
    const zVar = z.reduce((s, v) => s + (v - zMean) ** 2, 0) / z.length;
    expect(zMean).toBeCloseTo(1, 1);
    expect(Math.abs(zVar - 4)).toBeLessThan(0.15);
    const t = randomTokens(rng, 1000, 7);
    expect(t.every((v) => v >= 0 && v < 7)).toBe(true);
    expect(new Set(t).size).toBe(7);
  });
});

describe('position-encoding initializers', () => {
  it('arange and rowColCode name their indices', () => {
    expect(Array.from(arange(5, { start: 1, step: 0.5 }))).toEqual([1, 1.5, 2, 2.5, 3]);
    expect(Array.from(arange(5, { period: 3 }))).toEqual([0, 1, 2, 0, 1]);
    const m = rowColCode(3, 4);
    expect(m[2 * 4 + 3]).toBe(2 + 3 / 1024);
  });
});

describe('assertClose', () => {
  it('passes within atol + rtol * |ref| and reports the measures', () => {
    const report = assertClose([1.001, 2, NaN, Infinity], [1, 2.002, NaN, Infinity], { atol: 0.001, rtol: 0.001, nmse: 1e-5 }, 'ok case');
    expect(report.faults).toBe(0);
    expect(report.maxAbsError).toBeCloseTo(0.002, 9);
  });

  it('fails with the case, first pairs, worst index and a capped fault list', () => {
    const ref = Array.from({ length: 30 }, (_, i) => i);
    const got = ref.map((v, i) => (i >= 5 ? v + 1 + (i === 17 ? 5 : 0) : v));
    let message = '';
    try {
      assertClose(got, ref, { atol: 0.1, rtol: 0 }, 'case {rows: 30}');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('case {rows: 30}: 25 of 30 elements out of tolerance (atol 0.1, rtol 0)');
    expect(message).toContain('[0] 0.00000000 vs 0.00000000');
    expect(message).toContain('worst: [17] got 23.0000000 ref 17.0000000');
    expect(message.match(/fault \[/g)).toHaveLength(10);
    expect(message).toContain('... 15 more faults');
  });

  it('fails on the NMSE bound alone, on NaN, and on a length mismatch', () => {
    expect(() => assertClose([1.1, 2.1], [1, 2], { atol: 1, rtol: 0, nmse: 1e-6 }, 'nmse')).toThrow(/0 of 2 elements.*nmse/);
    expect(compareClose([NaN], [1], { atol: 1, rtol: 1 }).faults).toBe(1);
    expect(compareClose([1], [Infinity], { atol: 1, rtol: 1 }).faults).toBe(1);
    expect(() => assertClose([1], [1, 2], { atol: 1, rtol: 0 }, 'len')).toThrow(/length 1 != reference length 2/);
  });
});
