/**
 * The sampling chain. Every check asserts values: which tokens can come out, with what
 * frequency, and that a seed replays. Random logits come from the seeded test Rng, so every
 * run sees the same cases.
 */
import { describe, expect, it } from 'vitest';

import { SAMPLER_DEFAULTS, Sampler, type SamplerOptions } from '../lib/sampler.js';
import { Rng } from './helpers/rng.js';
import { expectErrorCode } from './helpers/errors.js';

const NO_FILTERS = { topK: 0, topP: 1, minP: 0 } as const;

function randomLogits(rng: Rng, n: number, std = 3): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal(0, std);
  return out;
}

/** Ids sorted by logit descending, ties by id ascending. */
function rankIds(logits: ArrayLike<number>): number[] {
  return Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
}

/**
 * The chain written the slow, obvious way (full sort), without the repetition penalty:
 * top-k → softmax(logits / T) → top-p → min-p → renormalize. Returns ids best first.
 */
function naiveDistribution(logits: Float32Array, o: { temperature: number; topK: number; topP: number; minP: number }): Map<number, number> {
  let ids = rankIds(logits).filter((i) => logits[i] !== -Infinity);
  if (o.topK > 0) ids = ids.slice(0, o.topK);
  const max = logits[ids[0]!]!;
  let probs = ids.map((i) => Math.exp((logits[i]! - max) / o.temperature));
  const sum = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / sum);
  if (o.topP < 1) {
    let cum = 0;
    let keep = ids.length;
    for (let i = 0; i < ids.length; i++) {
      cum += probs[i]!;
      if (cum >= o.topP) {
        keep = i + 1;
        break;
      }
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
  }
  if (o.minP > 0) {
    const floor = o.minP * probs[0]!;
    const keep = probs.map((p) => p >= floor);
    ids = ids.filter((_, i) => keep[i]);
    probs = probs.filter((_, i) => keep[i]);
  }
  const total = probs.reduce((a, b) => a + b, 0);
  return new Map(ids.map((id, i) => [id, probs[i]! / total]));
}

/** The ids the sampler could draw, ascending. */
function sortedIds(sampler: Sampler, logits: ArrayLike<number>): number[] {
  return sampler.distribution(Float32Array.from(logits)).ids.sort((a, b) => a - b);
}

function draws(sampler: Sampler, logits: Float32Array, n: number): number[] {
  return Array.from({ length: n }, () => sampler.sample(logits));
}

describe('Sampler options', () => {
  it('resolves the defaults, including a random 32-bit seed', () => {
    const { seed, ...rest } = new Sampler().options;
    expect(rest).toEqual(SAMPLER_DEFAULTS);
    expect(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff).toBe(true);
    const given = new Sampler({ temperature: 0, seed: 7, topK: 0 }).options;
    expect(given).toEqual({ ...SAMPLER_DEFAULTS, temperature: 0, seed: 7, topK: 0 });
    expect(Object.isFrozen(given)).toBe(true);
  });

  const bad: [SamplerOptions, string][] = [
    [{ temperature: -0.1 }, 'temperature'],
    [{ temperature: NaN }, 'temperature'],
    [{ temperature: Infinity }, 'temperature'],
    [{ topK: -1 }, 'topK'],
    [{ topK: 2.5 }, 'topK'],
    [{ topP: 1.01 }, 'topP'],
    [{ topP: NaN }, 'topP'],
    [{ topP: -0.5 }, 'topP'],
    [{ minP: 2 }, 'minP'],
    [{ minP: NaN }, 'minP'],
    [{ repeatPenalty: 0 }, 'repeatPenalty'],
    [{ repeatPenalty: -1 }, 'repeatPenalty'],
    [{ repeatLastN: -1 }, 'repeatLastN'],
    [{ repeatLastN: 1.5 }, 'repeatLastN'],
    [{ seed: -1 }, 'seed'],
    [{ seed: 2 ** 32 }, 'seed'],
    [{ seed: 0.5 }, 'seed'],
    [{ temperature: '0.5' as unknown as number }, 'temperature'],
  ];
  it.each(bad)('rejects %o naming %s', (options, name) => {
    expectErrorCode(() => new Sampler(options), 'ERR_INVALID_ARG', new RegExp(`option ${name} must be`));
  });

  it('rejects bad calls: empty logits, NaN logits, all -Infinity, bad accepted tokens', () => {
    const s = new Sampler({ seed: 1 });
    expectErrorCode(() => s.sample(new Float32Array(0)), 'ERR_INVALID_ARG', /empty/);
    expectErrorCode(() => s.sample(new Float32Array([0, NaN, 1])), 'ERR_INTERNAL', /logits\[1\] is NaN/);
    expectErrorCode(() => s.sample(new Float32Array([-Infinity, -Infinity])), 'ERR_INVALID_ARG', /-Infinity/);
    expectErrorCode(() => new Sampler({ temperature: 0 }).sample(new Float32Array([-Infinity])), 'ERR_INVALID_ARG', /-Infinity/);
    expectErrorCode(() => s.accept(-1), 'ERR_INVALID_ARG', /accept/);
    expectErrorCode(() => s.accept(1.5), 'ERR_INVALID_ARG', /accept/);
  });
});

describe('greedy (temperature 0)', () => {
  it('returns the argmax, the lowest id on ties, whatever the filters', () => {
    const s = new Sampler({ temperature: 0, topK: 1, topP: 0.1, minP: 0.9 });
    expect(s.sample(new Float32Array([0.1, 3, -2, 2.9]))).toBe(1);
    expect(s.sample(new Float32Array([1, 5, 5, 5]))).toBe(1);
    expect(s.sample(new Float32Array([-Infinity, -7, -Infinity, -7.5]))).toBe(1);
    expect(s.sample(new Float32Array([Infinity, Infinity]))).toBe(0);
    const rng = new Rng(2);
    for (let c = 0; c < 20; c++) {
      const logits = randomLogits(rng, 32000);
      expect(s.sample(logits)).toBe(rankIds(logits)[0]);
    }
  });
});

describe('filters', () => {
  const rng = new Rng(3);

  it('top-k never returns a token outside the k best, and reaches all k', () => {
    const logits = randomLogits(rng, 1000, 1);
    const best = new Set(rankIds(logits).slice(0, 5));
    const s = new Sampler({ ...NO_FILTERS, topK: 5, temperature: 3, seed: 11 });
    const seen = new Set(draws(s, logits, 4000));
    expect([...seen].every((id) => best.has(id))).toBe(true);
    expect(seen.size).toBe(5);
  });

  it('top-k breaks ties at the boundary by lowest id', () => {
    const s = new Sampler({ ...NO_FILTERS, topK: 2, temperature: 1 });
    expect(sortedIds(s, [1, 3, 3, 3, 5])).toEqual([1, 4]);
    expect(sortedIds(s, [3, 3, 3, 0])).toEqual([0, 1]);
    expect(sortedIds(new Sampler({ topK: 1, seed: 1 }), [-1, 2, 2])).toEqual([1]);
  });

  it('top-p never returns a token outside the nucleus', () => {
    const logits = randomLogits(rng, 1000, 2);
    const nucleus = new Set(naiveDistribution(logits, { temperature: 1, topK: 0, topP: 0.5, minP: 0 }).keys());
    expect(nucleus.size).toBeGreaterThan(2);
    expect(nucleus.size).toBeLessThan(100);
    const s = new Sampler({ ...NO_FILTERS, topP: 0.5, temperature: 1, seed: 12 });
    const seen = new Set(draws(s, logits, 4000));
    expect([...seen].every((id) => nucleus.has(id))).toBe(true);
    expect(seen.size).toBeGreaterThan(2);
  });

  it('min-p never returns a token below minP × the largest probability', () => {
    const logits = randomLogits(rng, 1000, 2);
    const maxLogit = Math.max(...logits);
    const minP = 0.05;
    // p_i / p_max = exp(l_i - l_max) at temperature 1
    const allowed = new Set(rankIds(logits).filter((i) => Math.exp(logits[i]! - maxLogit) >= minP));
    const s = new Sampler({ ...NO_FILTERS, minP, temperature: 1, seed: 13 });
    const seen = new Set(draws(s, logits, 4000));
    expect([...seen].every((id) => allowed.has(id))).toBe(true);
    expect(seen.size).toBeGreaterThan(allowed.size / 2);
  });

  it('never returns a -Infinity token', () => {
    const logits = new Float32Array([-Infinity, 0, -Infinity, 0.5, -Infinity]);
    for (const options of [NO_FILTERS, { topK: 4 }, { topP: 0.999, topK: 0 }]) {
      const seen = new Set(draws(new Sampler({ ...options, temperature: 5, seed: 4 }), logits, 500));
      expect([...seen].sort()).toEqual([1, 3]);
    }
  });

  it('gives +Infinity logits all the probability, shared equally', () => {
    const d = new Sampler({ ...NO_FILTERS, temperature: 1 }).distribution(new Float32Array([Infinity, 5, Infinity]));
    expect(new Map(d.ids.map((id, i) => [id, d.probs[i]]))).toEqual(new Map([[0, 0.5], [1, 0], [2, 0.5]]));
  });

  const combos = [
    { temperature: 1, topK: 0, topP: 1, minP: 0 },
    { temperature: 0.8, topK: 40, topP: 1, minP: 0 },
    { temperature: 0.8, topK: 0, topP: 0.9, minP: 0 },
    { temperature: 1.3, topK: 0, topP: 0.99, minP: 0 },
    { temperature: 0.7, topK: 0, topP: 1, minP: 0.1 },
    { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 },
    { temperature: 2, topK: 500, topP: 0.7, minP: 0.01 },
    { temperature: 1, topK: 0, topP: 0.001, minP: 0 },
    { temperature: 1, topK: 0, topP: 0, minP: 0 },
    { temperature: 1, topK: 100, topP: 0, minP: 0 },
  ];
  it.each(combos)('keeps exactly the naive chain’s tokens and probabilities on a 32000 vocab: %o', (options) => {
    const s = new Sampler(options);
    for (const std of [0.3, 3]) {
      const logits = randomLogits(rng, 32000, std);
      logits[5] = -Infinity;
      const want = naiveDistribution(logits, options);
      const got = s.distribution(logits);
      expect(new Set(got.ids)).toEqual(new Set(want.keys()));
      got.ids.forEach((id, i) => expect(got.probs[i]).toBeCloseTo(want.get(id)!, 12));
    }
  });

  it('handles a flat distribution (all ties) the same way as the naive chain', () => {
    const logits = new Float32Array(1000).fill(0.25);
    const options = { temperature: 1, topK: 0, topP: 0.3, minP: 0 };
    const got = sortedIds(new Sampler(options), logits);
    expect(got).toEqual([...naiveDistribution(logits, options).keys()]);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });
});

describe('randomness', () => {
  const rng = new Rng(5);
  const steps = Array.from({ length: 50 }, () => randomLogits(rng, 300, 1));

  function run(sampler: Sampler): number[] {
    return steps.map((logits) => sampler.sample(logits));
  }

  it('a fixed seed repeats the same sequence, reset() replays it, other seeds differ', () => {
    const options = { temperature: 1.5, topK: 0, topP: 0.98, minP: 0 };
    const a = new Sampler({ ...options, seed: 1234 });
    const first = run(a);
    expect(run(new Sampler({ ...options, seed: 1234 }))).toEqual(first);
    a.reset();
    expect(run(a)).toEqual(first);
    expect(run(new Sampler({ ...options, seed: 1235 }))).not.toEqual(first);
    expect(run(new Sampler({ ...options, seed: 0 }))).not.toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(20); // not stuck on a few tokens
  });

  it('approaches greedy as temperature goes to 0+', () => {
    const logits = new Float32Array([1.0, 2.0, 1.9, 0.5, 1.95]); // argmax 1, runner-up 0.05 below
    let previous = 0;
    for (const temperature of [2, 1, 0.3, 0.1, 0.03]) {
      const d = new Sampler({ ...NO_FILTERS, temperature }).distribution(logits);
      const pTop = d.probs[d.ids.indexOf(1)]!;
      expect(pTop).toBeGreaterThan(previous);
      previous = pTop;
    }
    expect(previous).toBeGreaterThan(0.8);
    const tiny = new Sampler({ ...NO_FILTERS, temperature: 1e-4, seed: 9 });
    expect(new Set(draws(tiny, logits, 1000))).toEqual(new Set([1]));
  });

  function chiSquare(counts: number[], probs: number[], n: number): number {
    return counts.reduce((acc, c, i) => acc + (c - n * probs[i]!) ** 2 / (n * probs[i]!), 0);
  }

  it('draws with the softmax frequencies at temperature 1 without filters (chi-square)', () => {
    const logits = new Float32Array([0, 1, 2, -1, 0.5, 1.5, -0.3, 2.2, 0.1, -2]);
    const max = Math.max(...logits);
    const weights = Array.from(logits, (l) => Math.exp(l - max));
    const sum = weights.reduce((a, b) => a + b, 0);
    const probs = weights.map((w) => w / sum);
    const n = 50000;
    const counts = new Array<number>(logits.length).fill(0);
    const s = new Sampler({ ...NO_FILTERS, temperature: 1, seed: 2024 });
    for (let i = 0; i < n; i++) counts[s.sample(logits)]!++;
    // 9 degrees of freedom: 27.88 is the 0.1% critical value.
    expect(chiSquare(counts, probs, n)).toBeLessThan(27.88);
  });

  it('draws with the renormalized frequencies after top-k and temperature (chi-square)', () => {
    const logits = new Float32Array([0, 1, 2, -1, 0.5, 1.5, -0.3, 2.2, 0.1, -2]);
    const top = [7, 2, 5]; // the 3 largest
    const weights = top.map((i) => Math.exp(logits[i]! / 0.7));
    const sum = weights.reduce((a, b) => a + b, 0);
    const n = 30000;
    const counts = new Map<number, number>();
    const s = new Sampler({ ...NO_FILTERS, topK: 3, temperature: 0.7, seed: 77 });
    for (let i = 0; i < n; i++) {
      const t = s.sample(logits);
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([2, 5, 7]);
    // 2 degrees of freedom: 13.82 is the 0.1% critical value.
    expect(chiSquare(top.map((i) => counts.get(i)!), weights.map((w) => w / sum), n)).toBeLessThan(13.82);
  });
});

describe('repetition penalty', () => {
  it('divides a positive logit of a seen token, so the argmax switches', () => {
    const logits = new Float32Array([2.0, 1.9, 0.5, -1]);
    const s = new Sampler({ temperature: 0, repeatPenalty: 1.1 });
    expect(s.sample(logits)).toBe(0);
    s.accept(0);
    expect(s.sample(logits)).toBe(1); // 2.0 / 1.1 = 1.82 < 1.9
    s.reset();
    expect(s.sample(logits)).toBe(0);
  });

  it('multiplies a negative logit of a seen token', () => {
    const s = new Sampler({ temperature: 0, repeatPenalty: 1.1 });
    s.accept(0);
    expect(s.sample(new Float32Array([-1, -1.05]))).toBe(1); // -1 * 1.1 = -1.1 < -1.05
  });

  it('counts a token once however often it repeats, and only in the last repeatLastN', () => {
    const logits = new Float32Array([2.0, 1.7, 0, 0, 0]);
    const s = new Sampler({ temperature: 0, repeatPenalty: 1.1, repeatLastN: 3 });
    s.accept(0);
    s.accept(0);
    expect(s.sample(logits)).toBe(0); // 2.0 / 1.1 = 1.82 > 1.7 (twice would be 1.65)
    const strong = new Sampler({ temperature: 0, repeatPenalty: 1.5, repeatLastN: 3 });
    strong.accept(0);
    expect(strong.sample(logits)).toBe(1);
    strong.accept(2);
    strong.accept(3);
    expect(strong.sample(logits)).toBe(1); // 0 is still among the last 3
    strong.accept(4);
    expect(strong.sample(logits)).toBe(0); // 0 left the window
  });

  it('lowers the probability of seen tokens, and ignores ids past the vocabulary', () => {
    const logits = new Float32Array([1, 1, 1, 1]);
    const s = new Sampler({ ...NO_FILTERS, temperature: 1, repeatPenalty: 2 });
    s.accept(2);
    s.accept(99);
    const d = s.distribution(logits);
    const p = (id: number): number => d.probs[d.ids.indexOf(id)]!;
    expect(p(2)).toBeCloseTo(Math.exp(0.5) / (3 * Math.exp(1) + Math.exp(0.5)), 12);
    expect(p(0)).toBeGreaterThan(p(2));
  });

  it('is off with repeatLastN 0', () => {
    const s = new Sampler({ temperature: 0, repeatPenalty: 10, repeatLastN: 0 });
    s.accept(0);
    expect(s.sample(new Float32Array([2, 1]))).toBe(0);
  });
});

describe('inputs', () => {
  it('never modifies the logits', () => {
    const rng = new Rng(8);
    const logits = randomLogits(rng, 5000);
    logits[17] = -Infinity;
    const copy = logits.slice();
    for (const options of [{ temperature: 0, repeatPenalty: 1.3 }, { repeatPenalty: 1.3 }, { ...NO_FILTERS, topP: 0.9 }, NO_FILTERS]) {
      const s = new Sampler({ ...options, seed: 3 });
      for (let t = 0; t < 50; t++) s.accept(t * 7);
      for (let i = 0; i < 20; i++) s.sample(logits);
      expect(logits).toEqual(copy);
    }
  });

  it('follows a change of vocabulary size between calls', () => {
    const s = new Sampler({ temperature: 0 });
    expect(s.sample(new Float32Array([0, 1, 2]))).toBe(2);
    expect(s.sample(new Float32Array([5, 1, 2, 3, 4, 9, 0]))).toBe(5);
    expect(s.sample(new Float32Array([7]))).toBe(0);
  });
});
