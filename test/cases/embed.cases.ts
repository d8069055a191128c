/**
 * embed cases: out[i] = table[tokens[i]] for every table storage (the weight kinds of matmul:
 * natural storage of each source encoding and the conversions at load), odd widths and
 * vocabularies, token lists with 0, vocab - 1 and repeated ids.
 */
import type { WeightKind } from '../helpers/op-runner.js';
import { kindBlock, kindName, vars } from '../helpers/op-runner.js';
import { MATMUL_WEIGHT_KINDS } from './matmul.cases.js';

export interface EmbedCase {
  readonly name: string;
  readonly kind: WeightKind;
  readonly vocab: number;
  readonly dim: number;
  /** Token counts, one step each. */
  readonly ns: readonly number[];
}

/** Widths per block of the storage: odd where the type allows, a Llama 2 width (4096). */
function embedDims(kind: WeightKind): readonly number[] {
  switch (kindBlock(kind)) {
    case 1:
      return [5, 97, 4096];
    case 32:
      return [32, 96, 4096];
    case 64:
      return [64, 192];
    default:
      return [128, 384];
  }
}

function buildCases(): EmbedCase[] {
  const cases: EmbedCase[] = [];
  for (const kind of MATMUL_WEIGHT_KINDS) {
    for (const dim of embedDims(kind)) {
      const vocab = dim === 4096 ? 19 : 37;
      cases.push({ name: vars({ table: kindName(kind), vocab, dim, n: '1,4,33' }), kind, vocab, dim, ns: [1, 4, 33] });
    }
  }
  // a long table: ids far apart
  const f16: WeightKind = { source: 'f16', storage: 'f16' };
  cases.push({ name: vars({ table: kindName(f16), vocab: 4099, dim: 32, n: '1,4,33' }), kind: f16, vocab: 4099, dim: 32, ns: [1, 4, 33] });
  return cases;
}

export const EMBED_CASES: readonly EmbedCase[] = buildCases();

/**
 * Tokens for a step of n: the last id first, then 0, a repeated id, then random ids, the
 * last one repeated at the end ([vocab - 1] for n = 1).
 */
export function embedTokens(vocab: number, n: number, random: (lo: number, hi: number) => number): Int32Array {
  const t = new Int32Array(n);
  for (let i = 0; i < n; i++) t[i] = random(0, vocab);
  const fixed = [vocab - 1, 0, 3 % vocab, 3 % vocab];
  fixed.slice(0, n).forEach((v, i) => (t[i] = v));
  if (n > fixed.length) t[n - 1] = vocab - 1;
  return t;
}

/**
 * Embedding dequantizes rows: every tier must give the stored values bit for bit, CUDA included
 * (native/cuda/embed.cu: the same dequantization, q * scale + min rounded twice, no FMA).
 */
export const EMBED_TOLERANCE = { atol: 0, rtol: 0 } as const;
