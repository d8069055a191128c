/**
 * matmul cases: out[n][rows] = x[n][cols] · Wᵀ for every weight source encoding the engine
 * loads, stored in its natural type or converted at load, over awkward shapes; and the one
 * tolerance table of matmul (shared with the benchmarks, which time the same cases).
 */
import type { CpuKernelTier, WeightDType } from '../../lib/addon-types.js';
import type { BoundTolerance, WeightKind } from '../helpers/op-runner.js';
import { kindBlock, kindName, sumTolerance, vars } from '../helpers/op-runner.js';

/** Natural storage of each source encoding (exact), then the conversions done at load. */
export const MATMUL_WEIGHT_KINDS: readonly WeightKind[] = [
  { source: 'f32', storage: 'f32' },
  { source: 'f16', storage: 'f16' },
  { source: 'bf16', storage: 'bf16' },
  { source: 'q8_0', storage: 'q8_0' },
  { source: 'q4_0', storage: 'int4', group: 32 }, // exact repack: scale d, min -8d
  { source: 'f32', storage: 'q8_0' },
  { source: 'f16', storage: 'q8_0' },
  ...[32, 64, 128].flatMap((group) => [
    { source: 'f32', storage: 'int4', group } as const,
    { source: 'f16', storage: 'int4', group } as const,
  ]),
  { source: 'f32', storage: 'nf4' }, // quantized at load (core/nf4.cc)
  { source: 'bf16', storage: 'nf4' },
];

export const MATMUL_ROWS = [1, 3, 17, 113, 256] as const;
/** Widths per column block: not multiples of the SIMD tiles (96, 288 = 9 blocks of 32, 192 = 3 x 64). */
export function matmulCols(kind: WeightKind): readonly number[] {
  switch (kindBlock(kind)) {
    case 64:
      return kind.storage === 'nf4' ? [64, 192, 320, 4096] : [64, 192, 4096];
    case 128:
      return [128, 384, 4096];
    default:
      return [32, 96, 288, 4096];
  }
}
export const MATMUL_N = [1, 2, 7, 33] as const;

export interface MatmulCase {
  readonly name: string;
  readonly kind: WeightKind;
  readonly rows: number;
  readonly cols: number;
  /** Activation row counts, one step each on the same session. */
  readonly ns: readonly number[];
  /**
   * random: uniform weights and activations.
   * int8-grid: uniform weights; activations k/128 (k integer in -127..127, every 32-block
   *   holding a ±127/128), which the int8-activation tiers quantize exactly: they are then held
   *   to the f32 accumulation bound, where one dropped or repeated product is a failure.
   * position: W[r][c] = r + c/1024 (rowColCode) and one-hot activation rows (row i picks
   *   column (cols - 1 + 37 i) % cols), so out[i][r] names the weight row and column that were
   *   read: a wrong stride or offset is a wrong number. One-hot rows are on the int8 grid too.
   */
  readonly init: 'random' | 'int8-grid' | 'position';
  readonly threads: number;
}

function matmulCase(kind: WeightKind, rows: number, cols: number, ns: readonly number[], init: MatmulCase['init'], threads = 2): MatmulCase {
  const extra = { ...(init !== 'random' ? { init } : {}), ...(threads !== 2 ? { threads } : {}) };
  const name = vars({ w: kindName(kind), rows, cols, n: ns.join(','), ...extra });
  return { name, kind, rows, cols, ns, init, threads };
}

/** The reference tier and the float64 reference are slow on 113+ x 4096: fewer activation rows there. */
const stepsFor = (rows: number, cols: number): readonly number[] => (rows * cols >= 113 * 4096 ? [1, 7] : MATMUL_N);

function buildCases(): MatmulCase[] {
  const cases: MatmulCase[] = [];
  for (const kind of MATMUL_WEIGHT_KINDS) {
    for (const rows of MATMUL_ROWS) {
      for (const cols of matmulCols(kind)) cases.push(matmulCase(kind, rows, cols, stepsFor(rows, cols), 'random'));
    }
    for (const rows of [3, 113]) {
      for (const cols of matmulCols(kind)) cases.push(matmulCase(kind, rows, cols, stepsFor(rows, cols), 'int8-grid'));
    }
    // more activation rows than one SIMD activation block (64): several blocks, a ragged last one
    cases.push(matmulCase(kind, 17, 4096, [77], 'random'));
    // 3 threads on 2 cores: uneven splits of rows and tiles
    cases.push(matmulCase(kind, 113, kindBlock(kind) === 128 ? 384 : 192, [1, 33], 'random', 3));
    cases.push(matmulCase(kind, 113, 384, MATMUL_N, 'position'));
  }
  return cases;
}

export const MATMUL_CASES: readonly MatmulCase[] = buildCases();

/**
 * Tolerance table. A result passes when, for every output,
 *   |got - ref| <= atol + rtol * scale + kSigma * sigma
 * with scale = sum_c |w_c x_c| (a dot product's rounding error grows with the sum of its
 * terms, not with a possibly cancelled result) and sigma the standard deviation of the error
 * of rounding activations to int8 (sigma^2 = sum over 32-blocks b of sum_{c in b} w_c^2 d_b^2 / 12,
 * d_b = absmax_b(x) / 127: each activation moves by at most d_b / 2, uniformly). For the
 * int8-grid and position inits that rounding is exact and sigma = 0.
 * The same numbers as native/tests/cpu_ops_check.cc (the kernel author's check).
 */
export const MATMUL_TOLERANCE = {
  // Reference tier against float64: it dequantizes to the same f32 weights and sums the exact
  // products in double in the same order as test/reference/ops.ts, then rounds once to f32:
  // at most half an ulp, 2^-24 of |out| <= 2^-24 of scale.
  referenceTier: { atol: 0, rtol: 2 ** -24 },
  // Fast tiers against the reference tier, f32 accumulation (generic for every dtype; avx2 and
  // avx512 for f32/f16/bf16): exact products (FMA) summed in f32 in vector lanes and blocks, so
  // the error is a few ulps of partial sums, ~1e-7 of scale times a small growth factor; 2e-6
  // leaves room for cols = 4096. An index bug moves outputs by O(scale) and fails by 10^5.
  f32Accumulation: { atol: 1e-7, rtol: 2e-6 },
  // avx2 / avx512 with q8_0 / int4 weights quantize every activation row to int8 blocks of 32
  // (d = absmax / 127) and use integer dot products: an error of ~1e-2 of the output for random
  // data, a property of the method. 6 sigma: beyond it a Gaussian sum has p ~ 2e-9 per output,
  // and the uniform-sum here has lighter tails; plus the f32 term for the final sums.
  int8Activations: { atol: 1e-7, rtol: 2e-6, kSigma: 6 },
  // CUDA decode matrix-vector kernels (n <= 8, native/cuda/matvec.cu) against the reference tier,
  // f32/f16/bf16 weights: exact dequantization, products accumulated in f32 per lane over a
  // lane's 16-byte chunks, then a shuffle tree (and split-K partials summed in order): the
  // f32-accumulation bound of the fast tiers.
  cudaMatvec: { atol: 1e-7, rtol: 2e-6 },
  // q8_0 / int4 weights: per 16-byte chunk the kernel forms scale * sum(q x) + min * sum(x) (the
  // affine split) instead of sum((q scale + min) x), so its f32 rounding grows with
  // sum(|q scale| + |min|) |x|, not with sum |w x|: for codes spread over 0..15 around min = -8 d
  // that is about 4x scale (E[q + 8] / E|q - 8| = 15.5 / 4): 4 x the f32 bound. (Measured in the
  // emulator: at most 14% of it.)
  cudaMatvecAffine: { atol: 1e-7, rtol: 8e-6 },
  // CUDA prefill (n > 8, native/cuda/matmul.cu), f32 weights: a CUDA-core GEMM of exact f32
  // products accumulated in f32: the f32 bound.
  cudaSimtGemm: { atol: 1e-7, rtol: 2e-6 },
  // CUDA prefill, f16/bf16/q8_0/int4 weights: the tensor-core GEMM rounds the activations (and
  // f16 weights) to bf16, then sums exact products in f32 (q8_0: scale x the tile's sum; int4
  // the affine split, as the matvec). Against float64 on the same rounded inputs: the affine
  // bound above. Against the reference tier: that plus the rounding's effect, bounded per output
  // by shift = sum_c |w_c x_c - w'_c x'_c| (kSigma 1 with sigma = shift in the test).
  // These CUDA entries hold the emulator's arithmetic (round-to-nearest f32, exact mma sums) on
  // random data; on a GPU, test/gpu/ops.test.mjs uses the worst-case bounds of
  // native/tests/cuda_check_matmul.cu (tensor cores do not promise round-to-nearest sums).
  cudaTensorCore: { atol: 1e-7, rtol: 8e-6 },
  cudaTensorCoreVsTier: { atol: 1e-7, rtol: 8e-6 + 2 ** -24, kSigma: 1 },
} as const satisfies Record<string, BoundTolerance>;

/** Tiers whose q8_0 / int4 matmul rounds activations to int8 (native/cpu/simd/quant_matmul.h). */
const INT8_ACTIVATION_TIERS: readonly CpuKernelTier[] = ['avx2', 'avx512'];

export interface MatmulTolerances {
  /** got vs the float64 reference on the stored (dequantized) weights. */
  readonly vsFloat64: BoundTolerance;
  /** got vs the reference tier's output (undefined for the reference tier itself). */
  readonly vsReferenceTier?: BoundTolerance;
}

/** Activation rows up to which CUDA runs the matrix-vector kernels (native/cuda/matmul.cu). */
export const CUDA_MATVEC_MAX_N = 8;

/** Whether CUDA's prefill GEMM for this storage rounds activations to bf16 (all but f32 weights). */
export function cudaGemmRoundsToBf16(storage: WeightDType): boolean {
  return storage !== 'f32';
}

export function matmulTolerance(tier: CpuKernelTier | 'cuda-simt', storage: WeightDType, n: number): MatmulTolerances {
  if (tier === 'reference') return { vsFloat64: MATMUL_TOLERANCE.referenceTier };
  if (tier === 'cuda-simt') {
    const quant = storage === 'q8_0' || storage === 'int4';
    if (n > CUDA_MATVEC_MAX_N && cudaGemmRoundsToBf16(storage)) {
      // vsFloat64 is against the float64 product of the bf16-rounded inputs (see matmul.test.ts)
      return { vsFloat64: sumTolerance(MATMUL_TOLERANCE.cudaTensorCore, MATMUL_TOLERANCE.referenceTier), vsReferenceTier: MATMUL_TOLERANCE.cudaTensorCoreVsTier };
    }
    const fast = n > CUDA_MATVEC_MAX_N ? MATMUL_TOLERANCE.cudaSimtGemm : quant ? MATMUL_TOLERANCE.cudaMatvecAffine : MATMUL_TOLERANCE.cudaMatvec;
    return { vsFloat64: sumTolerance(fast, MATMUL_TOLERANCE.referenceTier), vsReferenceTier: fast };
  }
  const quantized = (storage === 'q8_0' || storage === 'int4') && INT8_ACTIVATION_TIERS.includes(tier);
  const fast = quantized ? MATMUL_TOLERANCE.int8Activations : MATMUL_TOLERANCE.f32Accumulation;
  return { vsFloat64: sumTolerance(fast, MATMUL_TOLERANCE.referenceTier), vsReferenceTier: fast };
}
