/**
 * attention (+ kv_append) cases: GQA group sizes 1, 2, 4, 8, MQA (one KV head, also with a
 * group of 6, which no SIMD head group divides), Llama head dims, prefill lengths that are not
 * multiples of 8 or 16, f32 and f16 KV caches. Every case runs a prefill step, decode steps
 * and a second chunk on one session, so the cache carries rows across steps.
 */
import type { BoundTolerance } from '../helpers/op-runner.js';
import { vars } from '../helpers/op-runner.js';

export interface AttentionCase {
  readonly name: string;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly kvType: 'f32' | 'f16';
  /** Steps in order, at consecutive positions from 0: [rows per step]. */
  readonly steps: readonly number[];
  /** random: uniform q, k, v. position: values v[t][c] = t/16 + c/1024 name their cache row and column. */
  readonly init: 'random' | 'position';
  readonly threads: number;
}

export const ATTENTION_HEADS: readonly (readonly [number, number])[] = [
  [3, 3], // group 1
  [4, 2], // group 2
  [8, 2], // group 4
  [16, 2], // group 8
  [8, 1], // MQA
  [6, 1], // MQA, group 6
];
export const ATTENTION_HEAD_DIMS = [8, 64, 128] as const;
export const ATTENTION_PREFILL = [1, 5, 33] as const;

/** Prefill of n, three decode steps, then a chunk of 3 (causal mask at an offset). */
export function attentionSteps(prefill: number): number[] {
  return [prefill, 1, 1, 1, 3];
}

function attentionCase(
  nHeads: number,
  nKvHeads: number,
  headDim: number,
  steps: readonly number[],
  kvType: 'f32' | 'f16',
  init: AttentionCase['init'] = 'random',
  threads = 2,
): AttentionCase {
  const name = vars({
    heads: nHeads,
    kv_heads: nKvHeads,
    head_dim: headDim,
    kv: kvType,
    steps: steps.join('+'),
    ...(init !== 'random' ? { init } : {}),
    ...(threads !== 2 ? { threads } : {}),
  });
  return { name, nHeads, nKvHeads, headDim, kvType, steps, init, threads };
}

function buildCases(): AttentionCase[] {
  const cases: AttentionCase[] = [];
  for (const kvType of ['f32', 'f16'] as const) {
    for (const [nHeads, nKvHeads] of ATTENTION_HEADS) {
      for (const headDim of ATTENTION_HEAD_DIMS) {
        for (const prefill of ATTENTION_PREFILL) cases.push(attentionCase(nHeads, nKvHeads, headDim, attentionSteps(prefill), kvType));
      }
    }
    cases.push(attentionCase(8, 2, 64, attentionSteps(5), kvType, 'position'));
    cases.push(attentionCase(16, 2, 64, attentionSteps(33), kvType, 'random', 3));
    // a longer context (Llama 2 70B's heads): a prompt in four chunks, then decode at 132, 133
    cases.push(attentionCase(32, 8, 128, [33, 33, 33, 33, 1, 1], kvType));
  }
  return cases;
}

export const ATTENTION_CASES: readonly AttentionCase[] = buildCases();

/**
 * The float64 reference reads the K/V values the cache holds (rounded to f16 for an f16 cache,
 * with numberToF16, as kv_append rounds), so both cache types get the same tight bounds.
 *   reference tier vs float64: the same double arithmetic, one rounding of the output to f32.
 *   fast tiers vs reference tier: f32 scores, f32 softmax (exp to ~1e-7) and f32 weighted sums
 *   over up to 40 positions of values in [-1, 1] (as cpu_ops_check.cc).
 */
export const ATTENTION_TOLERANCE = {
  referenceTier: { atol: 1e-9, rtol: 2 ** -24 },
  fastTier: { atol: 1e-6, rtol: 1e-5 },
  // CUDA vs reference tier (native/cuda/attention*.cu, as native/tests/cuda_check_attention.cu):
  // both read the same rounded cache values; the kernels score in f32 (q pre-scaled by
  // log2(e)/sqrt(head_dim), exp2f), rescale an online softmax over 32-row tiles and merge
  // splits, against the reference's double sums: ~1e-6 of max |V| (<= 1 here, <= 8.4 for the
  // position-encoded V), 10x margin. One wrong row moves an output by >= 1e-3.
  cuda: { atol: 1e-5, rtol: 1e-5 },
} as const satisfies Record<string, BoundTolerance>;
