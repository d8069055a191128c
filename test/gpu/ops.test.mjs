// Every op on the GPU against the CPU backend's reference tier (the same CUDA build runs both), on
// seeded random data of awkward sizes and Llama 2's real ones, with the tolerances of the emulated
// tests (test/cases/*.cases.ts, justified there by each kernel's arithmetic). One row per op family
// (check.op.<op>, value 1 when every case passed) for bench/results; bench/gpu/run.mjs refuses to
// time an op family whose row is not 1.
import { test } from 'node:test';

import { addon, assertWithin, bf16, encode, gpuName, quick, rng, runGraph, storedWeights, uniform } from './harness.mjs';
import { recordRow } from './results.mjs';

const device = gpuName();
const usable = addon.backendInfo().cuda.devices.length > 0;

/** One op family: runs every case as a subtest, records check.op.<family>, fails if any case did. */
function family(name, cases, run) {
  test(`op ${name}`, { skip: usable ? false : 'no CUDA device' }, async (t) => {
    let failed = 0;
    for (const c of cases) {
      await t.test(c.name, async () => {
        try {
          await run(c);
        } catch (err) {
          failed++;
          throw err;
        }
      });
    }
    recordRow({ name: `check.op.${name}`, device, value: failed === 0 ? 1 : 0, unit: 'pass', notes: `${cases.length - failed} of ${cases.length} cases against the CPU reference tier` });
    if (failed > 0) throw new Error(`${failed} of ${cases.length} ${name} cases failed`);
  });
}

const seedOf = (s) => [...s].reduce((h, ch) => Math.imul(h ^ ch.charCodeAt(0), 0x01000193), 0x811c9dc5) >>> 0;
const both = async (...args) => [await runGraph('cuda', ...args), await runGraph('cpu', ...args)];

// ---- matmul ----------------------------------------------------------------------------------------
// Bounds relative to scale = sum |w x| (worst cases, as native/tests/cuda_check_matmul.cu argues
// them for real hardware): decode (n <= 8) matrix-vector kernels, <= 165 f32 roundings per
// output: 1e-5; prefill f32 weights, the CUDA-core GEMM, <= 272 roundings: 2e-5; other weights
// the bf16 tensor-core GEMM: x (and f16 weights) rounded to bf16, at most 2^-8 of |w x| per term
// (bf16's unit roundoff; 2^-7 with f16 weights), plus <= 400 f32 adds inside and between mma
// (not guaranteed round-to-nearest on tensor cores): 2^-14.
const KINDS = [
  { source: 'f32', storage: 'f32' },
  { source: 'f16', storage: 'f16' },
  { source: 'bf16', storage: 'bf16' },
  { source: 'q8_0', storage: 'q8_0' },
  { source: 'q4_0', storage: 'int4', group: 32 },
  { source: 'f32', storage: 'q8_0' },
  { source: 'f16', storage: 'int4', group: 64 },
  { source: 'f32', storage: 'int4', group: 128 },
];
const kindName = (k) => (k.source === k.storage ? k.source : `${k.source}->${k.storage}${k.group ? `g${k.group}` : ''}`);
const SHAPES = [
  [1, 4096],
  [17, 384],
  [113, 1152],
  [4096, 4096],
  [11008, 4096],
  [4096, 11008],
];
const matmulCases = [];
for (const kind of KINDS) {
  for (const [rows, cols] of quick ? SHAPES.slice(0, 3) : SHAPES) {
    if (kind.group && cols % kind.group !== 0) continue;
    const ns = rows * cols > 8e6 ? [1, 8, 9] : [1, 3, 8, 9, 33, 130];
    matmulCases.push({ name: `w=${kindName(kind)} ${rows}x${cols} n=${ns.join(',')}`, kind, rows, cols, ns });
  }
}
family('matmul', matmulCases, async (c) => {
  const next = rng(seedOf(c.name));
  const bytes = encode(c.kind.source, uniform(next, c.rows * c.cols));
  const w = await storedWeights(c.kind, bytes, c.rows, c.cols);
  const xs = c.ns.map((n) => uniform(next, n * c.cols));
  const spec = {
    weights: [{ name: 'w', dtype: c.kind.storage, shape: [c.rows, c.cols], ...(c.kind.group ? { group: c.kind.group } : {}) }],
    buffers: [{ name: 'x', width: c.cols }, { name: 'out', width: c.rows }],
    kvCaches: [],
    nodes: [{ op: 'matmul', out: 'out', a: 'x', weight: 'w' }],
  };
  const maxN = Math.max(...c.ns);
  const [gpu, cpu] = await both(spec, [{ weight: 'w', type: c.kind.source, nbytes: bytes.byteLength, data: bytes }], xs.map((x) => ({ pos: 0, inputs: { x }, outputs: ['out'] })), { maxTokens: maxN, maxSeqLen: maxN });
  c.ns.forEach((n, j) => {
    const x = xs[j];
    const scale = new Float64Array(n * c.rows);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < c.rows; r++) {
        let s = 0;
        for (let k = 0; k < c.cols; k++) s += Math.abs(w[r * c.cols + k] * x[i * c.cols + k]);
        scale[i * c.rows + r] = s;
      }
    }
    let rtol = n <= 8 ? 1e-5 : 2e-5;
    if (n > 8 && c.kind.storage !== 'f32') rtol = (c.kind.storage === 'f16' ? 2 ** -7 : 2 ** -8) + 2 ** -14;
    assertWithin(gpu[j].out, cpu[j].out, { atol: 1e-6, rtol }, `matmul ${c.name} step n=${n}`, scale);
  });
});

// ---- attention (+ kv_append) -----------------------------------------------------------------------
// f32 scores, online softmax over tiles, split merge vs the reference's double sums: 1e-5 (as
// native/tests/cuda_check_attention.cu). bf16 caches: the CPU keeps f32 or f16, so k and v are
// given already rounded to bf16 and the CPU holds them exactly in f32.
const attentionCases = [
  { heads: 32, kvHeads: 32, headDim: 128, kv: 'f16', steps: [33, 1, 1, 1, 3] },
  { heads: 64, kvHeads: 8, headDim: 128, kv: 'bf16', steps: [130, 1, 1, 2] },
  { heads: 32, kvHeads: 4, headDim: 64, kv: 'f32', steps: [9, 1, 1, 7] },
  { heads: 6, kvHeads: 1, headDim: 8, kv: 'f16', steps: [5, 1, 1, 3] },
  ...(quick ? [] : [{ heads: 16, kvHeads: 2, headDim: 64, kv: 'f16', steps: [500, 500, 1, 1] }]), // past a decode split
  { heads: 8, kvHeads: 8, headDim: 96, kv: 'bf16', steps: [17, 1] },
].map((c) => ({ ...c, name: `heads=${c.heads}/${c.kvHeads} head_dim=${c.headDim} kv=${c.kv} steps=${c.steps.join('+')}` }));
family('attention', attentionCases, async (c) => {
  const next = rng(seedOf(c.name));
  const qDim = c.heads * c.headDim;
  const kvDim = c.kvHeads * c.headDim;
  const total = c.steps.reduce((a, b) => a + b, 0);
  const spec = {
    weights: [],
    buffers: [{ name: 'q', width: qDim }, { name: 'k', width: kvDim }, { name: 'v', width: kvDim }, { name: 'o', width: qDim }],
    kvCaches: [{ name: 'kv', kvDim }],
    nodes: [
      { op: 'kv_append', a: 'k', b: 'v', kv: 'kv' },
      { op: 'attention', out: 'o', a: 'q', kv: 'kv', nHeads: c.heads, nKvHeads: c.kvHeads, headDim: c.headDim },
    ],
  };
  let pos = 0;
  const steps = c.steps.map((n) => {
    const k = uniform(next, n * kvDim);
    const v = uniform(next, n * kvDim);
    if (c.kv === 'bf16') {
      for (let i = 0; i < k.length; i++) k[i] = bf16(k[i]);
      for (let i = 0; i < v.length; i++) v[i] = bf16(v[i]);
    }
    const st = { pos, inputs: { q: uniform(next, n * qDim, -2, 2), k, v }, outputs: ['o'] };
    pos += n;
    return st;
  });
  const session = { maxSeqLen: total, maxTokens: Math.max(...c.steps) };
  const gpu = await runGraph('cuda', spec, [], steps, { ...session, kvType: c.kv });
  const cpu = await runGraph('cpu', spec, [], steps, { ...session, kvType: c.kv === 'f16' ? 'f16' : 'f32' });
  steps.forEach((s, j) => assertWithin(gpu[j].o, cpu[j].o, { atol: 1e-5, rtol: 1e-5 }, `attention ${c.name} step pos=${s.pos}`));
});

// ---- rope --------------------------------------------------------------------------------------------
// The same f32 cos/sin table and the reference's rounding order: bit-identical.
const ropeCases = [];
for (const pairing of ['interleaved', 'half']) {
  for (const [heads, headDim, ropeDim] of [[32, 128, 128], [8, 64, 64], [3, 128, 64], [5, 8, 8], [2, 96, 32]]) {
    ropeCases.push({ name: `${pairing} heads=${heads} head_dim=${headDim} rope_dim=${ropeDim}`, pairing, heads, headDim, ropeDim });
  }
}
family('rope', ropeCases, async (c) => {
  const next = rng(seedOf(c.name));
  const width = c.heads * c.headDim;
  const spec = {
    weights: [],
    buffers: [{ name: 'q', width }],
    kvCaches: [],
    nodes: [{ op: 'rope', a: 'q', nHeads: c.heads, headDim: c.headDim, ropeDim: c.ropeDim, theta: 10000, freqScale: 1, pairing: c.pairing }],
  };
  const steps = [{ pos: 0, n: 7 }, { pos: 100, n: 1 }, { pos: 3993, n: 7 }].map((s) => ({ pos: s.pos, inputs: { q: uniform(next, s.n * width, -2, 2) }, outputs: ['q'] }));
  const [gpu, cpu] = await both(spec, [], steps, { maxSeqLen: 4000, maxTokens: 8 });
  steps.forEach((s, j) => assertWithin(gpu[j].q, cpu[j].q, { atol: 0, rtol: 0 }, `rope ${c.name} pos=${s.pos}`));
});

// ---- rmsnorm ----------------------------------------------------------------------------------------
const rmsnormCases = [64, 97, 4096, 5120, 8192].map((dim) => ({ name: `dim=${dim}`, dim }));
family('rmsnorm', rmsnormCases, async (c) => {
  const next = rng(seedOf(c.name));
  const w = uniform(next, c.dim, -1.5, 1.5);
  const spec = {
    weights: [{ name: 'w', dtype: 'f32', shape: [1, c.dim] }],
    buffers: [{ name: 'x', width: c.dim }, { name: 'out', width: c.dim }],
    kvCaches: [],
    nodes: [{ op: 'rmsnorm', out: 'out', a: 'x', weight: 'w', eps: 1e-5 }],
  };
  const steps = [1, 7, 33].map((n) => ({ pos: 0, inputs: { x: uniform(next, n * c.dim, -3, 3) }, outputs: ['out'] }));
  const bytes = encode('f32', w);
  const [gpu, cpu] = await both(spec, [{ weight: 'w', type: 'f32', nbytes: bytes.byteLength, data: bytes }], steps);
  steps.forEach((_, j) => assertWithin(gpu[j].out, cpu[j].out, { atol: 0, rtol: 2e-6 + 4 * 2 ** -24 }, `rmsnorm ${c.name} step ${j}`));
});

// ---- embed ------------------------------------------------------------------------------------------
// Llama 2's vocabulary x width (row offsets past 2^27 bytes) for two kinds; small tables for all
const embedShapes = (kind) => [[37, (96 * (kind.group ?? 32)) / 32], ...(!quick && (kind.source === 'q4_0' || kind.source === 'bf16') ? [[32000, 4096]] : [])];
const embedCases = KINDS.flatMap((kind) => embedShapes(kind).map(([vocab, dim]) => ({ name: `table=${kindName(kind)} ${vocab}x${dim}`, kind, vocab, dim })));
family('embed', embedCases, async (c) => {
  const next = rng(seedOf(c.name));
  const bytes = encode(c.kind.source, uniform(next, c.vocab * c.dim, -2, 2));
  const spec = {
    weights: [{ name: 't', dtype: c.kind.storage, shape: [c.vocab, c.dim], ...(c.kind.group ? { group: c.kind.group } : {}) }],
    buffers: [{ name: 'x', width: c.dim }],
    kvCaches: [],
    nodes: [{ op: 'embed', out: 'x', weight: 't' }],
  };
  const steps = [1, 4, 33].map((n) => ({ pos: 0, tokens: Int32Array.from({ length: n }, (_, i) => (i === 0 ? c.vocab - 1 : Math.floor(next() * c.vocab))), outputs: ['x'] }));
  const [gpu, cpu] = await both(spec, [{ weight: 't', type: c.kind.source, nbytes: bytes.byteLength, data: bytes }], steps);
  steps.forEach((_, j) => assertWithin(gpu[j].x, cpu[j].x, { atol: 0, rtol: 0 }, `embed ${c.name} step ${j}`));
});

// ---- swiglu, add, last_row --------------------------------------------------------------------------
const elementwiseCases = [[1, 1], [7, 1], [4099, 3], ...(quick ? [] : [[11008, 33], [4096, 130]])].map(([width, rows]) => ({ name: `${rows}x${width}`, width, rows }));
family('swiglu', elementwiseCases, async (c) => {
  const next = rng(seedOf(c.name));
  const spec = { weights: [], buffers: [{ name: 'g', width: c.width }, { name: 'u', width: c.width }, { name: 'o', width: c.width }], kvCaches: [], nodes: [{ op: 'swiglu', out: 'o', a: 'g', b: 'u' }] };
  const g = uniform(next, c.width * c.rows, -12, 12);
  [-100, 100, -88, 89, 0, -0, 1e-30].forEach((v, i) => i < g.length && (g[i] = v));
  const steps = [{ pos: 0, inputs: { g, u: uniform(next, c.width * c.rows, -2, 2) }, outputs: ['o'] }];
  const [gpu, cpu] = await both(spec, [], steps, { maxTokens: c.rows, maxSeqLen: c.rows });
  assertWithin(gpu[0].o, cpu[0].o, { atol: 1e-35, rtol: 5 * 2 ** -23 }, `swiglu ${c.name}`);
});
family('add', elementwiseCases, async (c) => {
  const next = rng(seedOf(c.name));
  const spec = { weights: [], buffers: [{ name: 'a', width: c.width }, { name: 'b', width: c.width }], kvCaches: [], nodes: [{ op: 'add', out: 'a', a: 'a', b: 'b' }] };
  const steps = [{ pos: 0, inputs: { a: uniform(next, c.width * c.rows, -1e3, 1e3), b: uniform(next, c.width * c.rows) }, outputs: ['a'] }];
  const [gpu, cpu] = await both(spec, [], steps, { maxTokens: c.rows, maxSeqLen: c.rows });
  assertWithin(gpu[0].a, cpu[0].a, { atol: 0, rtol: 0 }, `add ${c.name}`);
});
const lastRowCases = [[97, 5, false], [4096, 33, true], [32000, 7, false]].map(([width, n, allRows]) => ({ name: `width=${width} n=${n} all_rows=${allRows}`, width, n, allRows }));
family('last_row', lastRowCases, async (c) => {
  const next = rng(seedOf(c.name));
  const spec = { weights: [], buffers: [{ name: 'x', width: c.width }, { name: 'y', width: c.width }], kvCaches: [], nodes: [{ op: 'last_row', out: 'y', a: 'x' }] };
  const x = uniform(next, c.n * c.width);
  const steps = [{ pos: 0, inputs: { x }, outputs: ['y'], allRows: c.allRows }];
  const [gpu] = await both(spec, [], steps, { maxTokens: 33, maxSeqLen: 33, maxOutputRows: 33 });
  const want = x.subarray((c.allRows ? 0 : c.n - 1) * c.width);
  assertWithin(gpu[0].y, want, { atol: 0, rtol: 0 }, `last_row ${c.name}`);
});
