/**
 * matmul through a one-op graph on every CPU tier, for every weight source encoding and
 * storage type (test/cases/matmul.cases.ts), against the float64 matmul of the weights as the
 * engine stores them, and each fast tier against the reference tier.
 */
import { CUDA_MATVEC_MAX_N, MATMUL_CASES, cudaGemmRoundsToBf16, matmulTolerance, type MatmulCase } from '../cases/matmul.cases.js';
import { matmulGraph } from '../helpers/graphs.js';
import { randomUniform, rowColCode } from '../helpers/init.js';
import { assertWithin, describeTiers, encodeSource, lazy, memorySource, runGraph, seedOf, storedValues } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { bf16ToNumber, matmul, numberToBf16 } from '../reference/ops.js';
import { NF4_VALUES } from '../../lib/formats/bnb-nf4.js';
import { nf4Nearest } from '../helpers/op-runner.js';

interface MatmulData {
  readonly bytes: Uint8Array; // the weight in its source encoding
  readonly w: Float64Array; // the stored weights, dequantized: [rows][cols]
  readonly xs: readonly Float32Array[]; // one activation matrix per step: [n][cols]
  readonly refs: readonly Float64Array[]; // float64 x · Wᵀ on the stored weights: [n][rows]
  readonly scales: readonly Float64Array[]; // sum_c |w_c x_c| per output
  readonly sigmas: readonly Float64Array[]; // int8 activation rounding, per output
}

/**
 * What CUDA's tensor-core GEMM computes for a prefill step (n > 8, native/cuda/matmul.cu): the
 * activations rounded to bf16 (and f16 weights too), then exact products summed in f32.
 *   ref    float64 bf16(x) · bf16(W)ᵀ   (the kernel's own arithmetic, held to the f32 bound)
 *   scale  sum_c |w'_c x'_c| of those rounded values
 *   shift  sum_c |w_c x_c - w'_c x'_c|: how far the rounding can move an output from the
 *          unrounded product (the bound against the CPU reference tier)
 */
interface CudaGemmData {
  readonly ref: Float64Array;
  readonly scale: Float64Array;
  readonly shift: Float64Array;
}

const bf16 = (v: number): number => bf16ToNumber(numberToBf16(v));

/**
 * NF4 weights as the tensor-core GEMM sees them: the table value rounded to bf16, times the f32
 * block scale (applied in f32 after the mma). The scale is the block's largest |w| (the absmax
 * element is coded as ±1 exactly) and the level the nearest table value to w / scale.
 */
function nf4GemmWeights(w: Float64Array): Float64Array {
  const out = new Float64Array(w.length);
  for (let b = 0; b < w.length; b += 64) {
    let scale = 0;
    for (let j = 0; j < 64; j++) scale = Math.max(scale, Math.abs(w[b + j] as number));
    for (let j = 0; j < 64; j++) {
      if (scale === 0) continue;
      const t = NF4_VALUES[nf4Nearest((w[b + j] as number) / scale)] as number;
      out[b + j] = bf16(t) * scale;
    }
  }
  return out;
}

function cudaGemmData(c: MatmulCase, w: Float64Array, x: Float32Array): CudaGemmData {
  const n = x.length / c.cols;
  const xb = Float64Array.from(x, bf16);
  const wb = c.kind.storage === 'f16' ? w.map(bf16) : c.kind.storage === 'nf4' ? nf4GemmWeights(w) : w;
  const scale = new Float64Array(n * c.rows);
  const shift = new Float64Array(n * c.rows);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < c.rows; r++) {
      let sc = 0;
      let sh = 0;
      for (let k = 0; k < c.cols; k++) {
        const exact = (w[r * c.cols + k] as number) * (x[i * c.cols + k] as number);
        const rounded = (wb[r * c.cols + k] as number) * (xb[i * c.cols + k] as number);
        sc += Math.abs(rounded);
        sh += Math.abs(exact - rounded);
      }
      scale[i * c.rows + r] = sc;
      shift[i * c.rows + r] = sh;
    }
  }
  return { ref: matmul(xb, wb, c.rows, c.cols), scale, shift };
}

/** Row i one-hot at column (cols - 1 + 37 i) % cols: out[i][r] = W[r][that column]. */
function oneHotRows(n: number, cols: number): Float32Array {
  const x = new Float32Array(n * cols);
  for (let i = 0; i < n; i++) x[i * cols + ((cols - 1 + 37 * i) % cols)] = 1;
  return x;
}

/**
 * Activations k/128, k integer in -127..127, each 32-block holding a ±127/128: d = absmax / 127
 * = 2^-7 exactly, so rounding them to int8 blocks loses nothing.
 */
function int8GridRows(rng: Rng, n: number, cols: number): Float32Array {
  const x = new Float32Array(n * cols);
  for (let i = 0; i < x.length; i++) x[i] = rng.int(-127, 128) / 128;
  for (let b = 0; b < x.length; b += 32) x[b + rng.int(0, 32)] = rng.next() < 0.5 ? -127 / 128 : 127 / 128;
  return x;
}

/**
 * scale = sum_c |w x| and sigma of rounding x to int8 blocks of 32 (see MATMUL_TOLERANCE);
 * sigma = 0 when x is on the int8 grid.
 */
function errorScales(x: Float32Array, w: Float64Array, rows: number, cols: number, onGrid: boolean): { scale: Float64Array; sigma: Float64Array } {
  const n = x.length / cols;
  const blocks = cols / 32;
  const d2 = new Float64Array(n * blocks); // (absmax / 127)^2 / 12 per activation block
  for (let i = 0; i < n; i++) {
    for (let b = 0; b < blocks; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * cols + 32 * b + j] as number));
      d2[i * blocks + b] = onGrid ? 0 : (amax / 127) ** 2 / 12;
    }
  }
  const scale = new Float64Array(n * rows);
  const sigma = new Float64Array(n * rows);
  const w2 = new Float64Array(blocks);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let b = 0; b < blocks; b++) {
      let s = 0;
      for (let j = 0; j < 32; j++) s += (w[base + 32 * b + j] as number) ** 2;
      w2[b] = s;
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.abs((w[base + c] as number) * (x[i * cols + c] as number));
      let v = 0;
      for (let b = 0; b < blocks; b++) v += (w2[b] as number) * (d2[i * blocks + b] as number);
      scale[i * rows + r] = s;
      sigma[i * rows + r] = Math.sqrt(v);
    }
  }
  return { scale, sigma };
}

function makeData(c: MatmulCase): MatmulData {
  const rng = new Rng(seedOf(c.name));
  const values = c.init === 'position' ? rowColCode(c.rows, c.cols) : randomUniform(rng, c.rows * c.cols);
  const bytes = encodeSource(c.kind.source, values);
  const w = storedValues(c.kind, bytes);
  const xs = c.ns.map((n) => {
    if (c.init === 'position') return oneHotRows(n, c.cols);
    return c.init === 'int8-grid' ? int8GridRows(rng, n, c.cols) : randomUniform(rng, n * c.cols);
  });
  const errs = xs.map((x) => errorScales(x, w, c.rows, c.cols, c.init !== 'random'));
  return {
    bytes,
    w,
    xs,
    refs: xs.map((x) => matmul(x, w, c.rows, c.cols)),
    scales: errs.map((e) => e.scale),
    sigmas: errs.map((e) => e.sigma),
  };
}

for (const c of MATMUL_CASES) {
  const data = lazy(() => makeData(c));
  const gemm = new Map<number, CudaGemmData>();
  const cudaGemm = (j: number): CudaGemmData => {
    let g = gemm.get(j);
    if (g === undefined) {
      g = cudaGemmData(c, data().w, data().xs[j]!);
      gemm.set(j, g);
    }
    return g;
  };
  const maxN = Math.max(...c.ns);
  describeTiers(
    `matmul ${c.name}`,
    (tier) =>
      runGraph(
        matmulGraph(c.rows, c.cols, c.kind.storage, c.kind.group),
        [memorySource('w', c.kind.source, data().bytes)],
        tier,
        data().xs.map((x) => ({ pos: 0, inputs: { x }, outputs: ['out'] })),
        { threads: c.threads, maxTokens: maxN, maxSeqLen: maxN },
      ),
    (got, tier, referenceTier) => {
      const d = data();
      c.ns.forEach((n, j) => {
        const tol = matmulTolerance(tier, c.kind.storage, n);
        const what = `matmul ${c.name} tier=${tier} step n=${n}`;
        const out = got[j]!['out']!;
        if (tier === 'cuda-simt' && n > CUDA_MATVEC_MAX_N && cudaGemmRoundsToBf16(c.kind.storage)) {
          // the bf16 tensor-core GEMM: its own arithmetic against float64, then the CPU reference
          // tier within the rounding's reach (kSigma 1 x shift: a bound, not a probability)
          const g = cudaGemm(j);
          assertWithin(out, g.ref, tol.vsFloat64, `${what}: vs float64 on bf16-rounded inputs`, { scale: g.scale, width: c.rows });
          if (referenceTier && tol.vsReferenceTier) {
            assertWithin(out, referenceTier[j]!['out']!, tol.vsReferenceTier, `${what}: vs reference tier`, { scale: d.scales[j]!, sigma: g.shift, width: c.rows });
          }
          return;
        }
        const bound = { scale: d.scales[j]!, sigma: d.sigmas[j]!, width: c.rows };
        assertWithin(out, d.refs[j]!, tol.vsFloat64, `${what}: vs float64 reference`, bound);
        if (referenceTier && tol.vsReferenceTier) {
          assertWithin(out, referenceTier[j]!['out']!, tol.vsReferenceTier, `${what}: vs reference tier`, bound);
        }
      });
    },
  );
}
