/**
 * The sampling chain: logits of one position → one token id.
 *
 *   repetition penalty → (temperature 0: argmax) → top-k → temperature → softmax → top-p
 *   → min-p → renormalize → draw with a seeded PRNG
 *
 * Built for a 32000-token vocabulary in the decode loop: the logits are copied into buffers
 * the sampler owns (sized on first use, reused after), so a step allocates nothing, and
 * nothing is ever fully sorted: top-k is a partial selection with a k-slot heap; top-p first
 * drops the tokens that cannot be in the nucleus (probability < (1 - p) / (n - 1), as
 * llama2.c does), then finds the nucleus with a sum-steered quickselect. The draw does not
 * need the candidates in order, so they are never sorted. Ties between equal logits go to the
 * lowest id everywhere (argmax, top-k, top-p boundary).
 *
 * Logits may hold -Infinity (masked tokens, never drawn). A NaN logit throws ERR_INTERNAL: it
 * means the model produced invalid numbers, and sampling around it would hide the bug. So do
 * logits that are all -Infinity (nothing to draw).
 */
import { LlamaCudaError } from './errors.js';

export interface SamplerOptions {
  /** Divides the logits; 0 = greedy (argmax, ties → lowest id). Default 0.8. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 or >= vocabulary size = off. Default 40. */
  topK?: number;
  /** Nucleus: keep the smallest set of most likely tokens whose probability sum is >= p; 1 = off. Default 0.95. */
  topP?: number;
  /** Drop tokens whose probability is < minP × the largest probability; 0 = off. Default 0.05. */
  minP?: number;
  /**
   * For tokens among the last `repeatLastN` accepted ones (each counted once): a positive
   * logit is divided by it, a negative one multiplied (llama.cpp / CTRL); 1 = off. Default 1.
   */
  repeatPenalty?: number;
  /** How many of the most recent accepted tokens the penalty looks at; 0 = off. Default 64. */
  repeatLastN?: number;
  /** Unsigned 32-bit integer. The same seed and the same logits give the same tokens. Default: random. */
  seed?: number;
}

export type ResolvedSamplerOptions = Readonly<Required<SamplerOptions>>;

export const SAMPLER_DEFAULTS = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
} as const;

const MAX_REPEAT_LAST_N = 1 << 20;

function invalid(message: string): LlamaCudaError {
  return new LlamaCudaError('ERR_INVALID_ARG', `Sampler: ${message}`);
}

type NumberCheck = { ok: (v: number) => boolean; expected: string };

const CHECKS: Record<keyof SamplerOptions, NumberCheck> = {
  temperature: { ok: (v) => Number.isFinite(v) && v >= 0, expected: 'a finite number >= 0' },
  topK: { ok: (v) => Number.isSafeInteger(v) && v >= 0, expected: 'an integer >= 0' },
  topP: { ok: (v) => v >= 0 && v <= 1, expected: 'a number in [0, 1]' },
  minP: { ok: (v) => v >= 0 && v <= 1, expected: 'a number in [0, 1]' },
  repeatPenalty: { ok: (v) => Number.isFinite(v) && v > 0, expected: 'a finite number > 0' },
  repeatLastN: { ok: (v) => Number.isInteger(v) && v >= 0 && v <= MAX_REPEAT_LAST_N, expected: `an integer in [0, ${MAX_REPEAT_LAST_N}]` },
  seed: { ok: (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff, expected: 'an integer in [0, 4294967295]' },
};

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  return typeof value === 'object' || typeof value === 'function' ? `a ${typeof value}` : String(value);
}

function resolveOption(options: SamplerOptions, name: keyof SamplerOptions, fallback: number): number {
  const value: unknown = options[name];
  if (value === undefined) return fallback;
  const check = CHECKS[name];
  if (typeof value !== 'number' || !check.ok(value)) {
    throw invalid(`option ${name} must be ${check.expected}, got ${describe(value)}`);
  }
  return value;
}

export function resolveSamplerOptions(options: SamplerOptions = {}): ResolvedSamplerOptions {
  if (typeof options !== 'object' || options === null) throw invalid(`options must be an object, got ${String(options)}`);
  return Object.freeze({
    temperature: resolveOption(options, 'temperature', SAMPLER_DEFAULTS.temperature),
    topK: resolveOption(options, 'topK', SAMPLER_DEFAULTS.topK),
    topP: resolveOption(options, 'topP', SAMPLER_DEFAULTS.topP),
    minP: resolveOption(options, 'minP', SAMPLER_DEFAULTS.minP),
    repeatPenalty: resolveOption(options, 'repeatPenalty', SAMPLER_DEFAULTS.repeatPenalty),
    repeatLastN: resolveOption(options, 'repeatLastN', SAMPLER_DEFAULTS.repeatLastN),
    seed: resolveOption(options, 'seed', Math.floor(Math.random() * 0x100000000)),
  });
}

/**
 * xoshiro128** (Blackman & Vigna): 128-bit state, 32-bit outputs, all in int32 arithmetic.
 * Seeded by running splitmix32 over the 32-bit seed, so nearby seeds give unrelated streams.
 */
class Xoshiro128 {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    this.reseed(seed);
  }

  reseed(seed: number): void {
    let x = seed | 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return z ^ (z >>> 15);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the one forbidden state
  }

  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() * 2 ** -32;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Sampler {
  readonly options: ResolvedSamplerOptions;
  private readonly rng: Xoshiro128;
  // Accepted tokens, a ring buffer of the last repeatLastN.
  private readonly history: Int32Array;
  private historyLength = 0;
  private historyNext = 0;
  // Step buffers, sized to the vocabulary on first use.
  private vocabSize = 0;
  private work = new Float64Array(0); // penalized logits [vocab]
  private seen = new Uint8Array(0); // penalty dedup marks [vocab]
  // Candidates: ids[i] with value vals[i] (a logit, then an unnormalized probability).
  private ids = new Int32Array(0);
  private vals = new Float64Array(0);

  constructor(options?: SamplerOptions) {
    this.options = resolveSamplerOptions(options);
    this.rng = new Xoshiro128(this.options.seed);
    this.history = new Int32Array(this.options.repeatLastN);
  }

  /** Picks the next token. `logits` [vocab] is read, never modified. */
  sample(logits: Float32Array): number {
    this.load(logits);
    if (this.options.temperature === 0) return this.argmax();
    return this.draw(this.filter());
  }

  /** Records a token (prompt or generated) for the repetition penalty. */
  accept(token: number): void {
    if (!Number.isInteger(token) || token < 0) throw invalid(`accept(): token must be an integer >= 0, got ${token}`);
    const n = this.history.length;
    if (n === 0) return;
    this.history[this.historyNext] = token;
    this.historyNext = (this.historyNext + 1) % n;
    this.historyLength = Math.min(this.historyLength + 1, n);
  }

  /** Forgets the accepted tokens and restarts the random stream from the seed. */
  reset(): void {
    this.historyLength = 0;
    this.historyNext = 0;
    this.rng.reseed(this.options.seed);
  }

  /**
   * The final distribution that `sample` would draw from: ids with probabilities summing to
   * 1, in no particular order. Neither draws nor records anything.
   * @internal for tests
   */
  distribution(logits: Float32Array): { ids: number[]; probs: number[] } {
    this.load(logits);
    if (this.options.temperature === 0) return { ids: [this.argmax()], probs: [1] };
    const n = this.filter();
    let total = 0;
    for (let i = 0; i < n; i++) total += this.vals[i] as number;
    return { ids: Array.from(this.ids.subarray(0, n)), probs: Array.from(this.vals.subarray(0, n), (p) => p / total) };
  }

  // Copies the logits into `work`, checks them and applies the repetition penalty.
  private load(logits: Float32Array): void {
    const n = logits.length;
    if (n === 0) throw invalid('logits are empty');
    if (n !== this.vocabSize) {
      this.vocabSize = n;
      this.work = new Float64Array(n);
      this.seen = new Uint8Array(n);
      this.ids = new Int32Array(n);
      this.vals = new Float64Array(n);
    }
    const work = this.work;
    for (let i = 0; i < n; i++) {
      const v = logits[i] as number;
      if (v !== v) throw new LlamaCudaError('ERR_INTERNAL', `Sampler: logits[${i}] is NaN (the model produced invalid values)`);
      work[i] = v;
    }
    const penalty = this.options.repeatPenalty;
    if (penalty === 1 || this.historyLength === 0) return;
    const seen = this.seen;
    for (let j = 0; j < this.historyLength; j++) {
      const t = this.history[j] as number;
      if (t >= n || seen[t] === 1) continue; // ids past the vocabulary are ignored; each token once
      seen[t] = 1;
      const v = work[t] as number;
      work[t] = v > 0 ? v / penalty : v * penalty;
    }
    for (let j = 0; j < this.historyLength; j++) {
      const t = this.history[j] as number;
      if (t < n) seen[t] = 0;
    }
  }

  private argmax(): number {
    const work = this.work;
    let best = 0;
    for (let i = 1; i < this.vocabSize; i++) if ((work[i] as number) > (work[best] as number)) best = i;
    if (work[best] === -Infinity) throw noCandidates();
    return best;
  }

  // Fills ids/vals[0..n) with the surviving candidates and their unnormalized probabilities
  // (the most likely has 1), and returns n.
  private filter(): number {
    const { topK, topP, minP, temperature } = this.options;
    const ids = this.ids;
    const vals = this.vals;
    let n: number;
    if (topK > 0 && topK < this.vocabSize) {
      n = this.selectTopK(topK);
    } else {
      n = 0;
      const work = this.work;
      for (let i = 0; i < this.vocabSize; i++) {
        const v = work[i] as number;
        if (v === -Infinity) continue;
        ids[n] = i;
        vals[n] = v;
        n++;
      }
    }
    if (n === 0) throw noCandidates();

    // Temperature and softmax: p = exp((logit - max) / T), so the most likely token has p = 1.
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, vals[i] as number);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const v = vals[i] as number;
      // +Infinity logits (if any) share all of the probability.
      const p = max === Infinity ? (v === Infinity ? 1 : 0) : Math.exp((v - max) / temperature);
      vals[i] = p;
      total += p;
    }

    if (topP < 1) {
      if (n > 1) n = this.dropOutsideNucleus(n, (total * (1 - topP)) / (n - 1));
      n = this.selectNucleus(n, topP * total);
    }

    if (minP > 0) {
      // The largest probability is 1, and it always survives (minP <= 1); order is kept.
      let kept = 0;
      for (let i = 0; i < n; i++) {
        if ((vals[i] as number) >= minP) {
          ids[kept] = ids[i] as number;
          vals[kept] = vals[i] as number;
          kept++;
        }
      }
      n = kept;
    }
    return n;
  }

  // Inverse-CDF draw over the candidates (renormalizing by their sum).
  private draw(n: number): number {
    const vals = this.vals;
    let total = 0;
    for (let i = 0; i < n; i++) total += vals[i] as number;
    const r = this.rng.nextFloat() * total;
    let cum = 0;
    for (let i = 0; i < n; i++) {
      cum += vals[i] as number;
      if (r < cum) return this.ids[i] as number;
    }
    // Rounding left r at the very top: the last candidate with any probability.
    for (let i = n - 1; i > 0; i--) if ((vals[i] as number) > 0) return this.ids[i] as number;
    return this.ids[0] as number;
  }

  /**
   * Keeps candidates with probability >= cutoff = total (1 - p) / (n - 1), plus the most likely
   * one. What is dropped sums to less than (n - 1) × cutoff = (1 - p) × total, so what is kept
   * sums to more than p × total and holds the whole nucleus.
   */
  private dropOutsideNucleus(n: number, cutoff: number): number {
    const ids = this.ids;
    const vals = this.vals;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const p = vals[i] as number;
      if (p >= cutoff || p === 1) {
        ids[kept] = ids[i] as number;
        vals[kept] = p;
        kept++;
      }
    }
    return kept;
  }

  /** The k best logits of `work` into ids/vals[0..k), in heap order; returns how many (fewer if -Infinity). */
  private selectTopK(k: number): number {
    const work = this.work;
    const ids = this.ids;
    const vals = this.vals;
    let size = 0;
    // Min-heap on (logit, -id): the root is the worst of the k kept so far.
    for (let i = 0; i < this.vocabSize; i++) {
      const v = work[i] as number;
      if (v === -Infinity) continue;
      if (size < k) {
        ids[size] = i;
        vals[size] = v;
        this.siftUp(size);
        size++;
      } else if (v > (vals[0] as number)) {
        // Equal to the root is not better: the newcomer has the higher id.
        ids[0] = i;
        vals[0] = v;
        this.siftDown(0, size);
      }
    }
    return size;
  }

  /**
   * Top-p without sorting: reorders ids/vals[0..n) so that [0, m) holds the m most likely
   * candidates, for the smallest m whose probabilities sum to >= target, and returns m.
   * A quickselect steered by sums (expected O(n)): after each partition around a pivot, the
   * nucleus ends either among the better part, at the pivot, or past it.
   */
  private selectNucleus(n: number, target: number): number {
    let lo = 0; // [0, lo) is inside the nucleus
    let hi = n; // [hi, n) is outside
    let need = target; // what [lo, hi) still has to contribute (<= 0 only for p = 0: the best alone)
    let pick = 0x2545f491; // pivot positions: a fixed LCG, so equal inputs give equal outputs
    while (hi - lo > 1) {
      pick = (Math.imul(pick, 1664525) + 1013904223) | 0;
      const p = this.partition(lo, hi, lo + ((pick >>> 0) % (hi - lo)));
      let better = 0;
      for (let i = lo; i < p; i++) better += this.vals[i] as number;
      if (p > lo && better >= need) {
        hi = p;
      } else if (better + (this.vals[p] as number) >= need) {
        return p + 1;
      } else {
        need -= better + (this.vals[p] as number);
        lo = p + 1;
      }
    }
    return hi - lo === 1 ? lo + 1 : hi; // hi: rounding never reached target, keep what is left
  }

  // Lomuto partition of [lo, hi) around slot `pivot`: better ones first; returns the pivot's new slot.
  private partition(lo: number, hi: number, pivot: number): number {
    const last = hi - 1;
    this.swap(pivot, last);
    let store = lo;
    for (let i = lo; i < last; i++) {
      if (this.worse(last, i)) this.swap(i, store++);
    }
    this.swap(store, last);
    return store;
  }

  // Slot a ranks below slot b: smaller value, or the same value and a larger id.
  private worse(a: number, b: number): boolean {
    const va = this.vals[a] as number;
    const vb = this.vals[b] as number;
    return va < vb || (va === vb && (this.ids[a] as number) > (this.ids[b] as number));
  }

  private swap(a: number, b: number): void {
    const ids = this.ids;
    const vals = this.vals;
    const id = ids[a] as number;
    ids[a] = ids[b] as number;
    ids[b] = id;
    const v = vals[a] as number;
    vals[a] = vals[b] as number;
    vals[b] = v;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.worse(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number, size: number): void {
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) return;
      const right = left + 1;
      const child = right < size && this.worse(right, left) ? right : left;
      if (!this.worse(child, i)) return;
      this.swap(i, child);
      i = child;
    }
  }
}

function noCandidates(): LlamaCudaError {
  return new LlamaCudaError('ERR_INVALID_ARG', 'Sampler: every logit is -Infinity, so no token can be sampled');
}
