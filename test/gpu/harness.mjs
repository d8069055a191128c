// Plain-JS helpers for the GPU tests (node --test, no vitest, no TypeScript: what the GPU machine
// can run): the CUDA build's addon, one-op graphs run on its CUDA backend and on its CPU reference
// tier, seeded random data, weight encodings (through the addon's own ggml quantizers), and a
// tolerance check that prints evidence (the case, the bound, the first pairs, the worst index).
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
/**
 * The CUDA build; LLAMA_CUDA_GPU_ADDON names another (a dry run of these files against the SIMT
 * build on a machine without a GPU, with GPU_TEST_QUICK=1 to keep to small shapes).
 */
export const addonPath = process.env.LLAMA_CUDA_GPU_ADDON ?? new URL('../../cuda/build/Release/llama_cuda.node', import.meta.url).pathname;
export const addon = require(addonPath);
/** Small shapes only (GPU_TEST_QUICK=1): for dry runs on the emulator. */
export const quick = process.env.GPU_TEST_QUICK === '1';

export function gpuName() {
  return addon.backendInfo().cuda.devices[0]?.name ?? 'none';
}

/** mulberry32: a seeded uniform generator. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniform(next, n, lo = -1, hi = 1) {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = lo + (hi - lo) * next();
  return x;
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** Round to bf16 (nearest even), returned as a number. */
export function bf16(x) {
  f32buf[0] = x;
  const u = u32buf[0];
  u32buf[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return f32buf[0];
}

function bytesOf(values) {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** f32 values -> the bytes of a GGUF tensor of `type` (f32, f16, bf16, q8_0, q4_0: ggml's rules). */
export function encode(type, values) {
  if (type === 'f32') return new Uint8Array(bytesOf(values));
  if (type === 'bf16') {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) {
      f32buf[0] = bf16(values[i]);
      out[i] = u32buf[0] >>> 16;
    }
    return bytesOf(out);
  }
  return addon.quantizeRows(bytesOf(values), 'f32', type);
}

/** Builds, loads, runs `steps` on one session, disposes. device 'cuda', or 'cpu' (reference tier). */
export async function runGraph(device, spec, sources, steps, session = {}) {
  const engine = new addon.Engine(spec, device === 'cpu' ? { device: 'cpu', cpuKernels: 'reference' } : { device: 'cuda' });
  const width = (name) => spec.buffers.find((b) => b.name === name).width;
  try {
    await engine.load(sources);
    const s = engine.createSession({ maxSeqLen: 64, maxTokens: 64, maxOutputRows: 1, kvType: 'f32', ...session });
    try {
      const results = [];
      for (const st of steps) {
        const inputs = Object.entries(st.inputs ?? {});
        const rows = st.tokens?.length ?? inputs[0][1].length / width(inputs[0][0]);
        const outs = st.outputs.map((name) => ({ buffer: name, data: new Float32Array(rows * width(name)) }));
        const r = await s.run({
          pos: st.pos,
          ...(st.tokens ? { tokens: st.tokens } : {}),
          inputs: inputs.map(([buffer, data]) => ({ buffer, data })),
          outputs: outs,
          ...(st.allRows !== undefined ? { allRows: st.allRows } : {}),
        });
        const o = {};
        outs.forEach((x, j) => (o[x.buffer] = x.data.subarray(0, r.outputRows[j] * width(x.buffer))));
        results.push(o);
      }
      return results;
    } finally {
      await s.dispose();
    }
  } finally {
    await engine.dispose();
  }
}

/** The values the engine stores for a weight (its rows embedded on the CPU: exact dequantization). */
export async function storedWeights(kind, bytes, rows, cols) {
  const spec = {
    weights: [{ name: 'w', dtype: kind.storage, shape: [rows, cols], ...(kind.storage === 'int4' ? { group: kind.group } : {}) }],
    buffers: [{ name: 'x', width: cols }],
    kvCaches: [],
    nodes: [{ op: 'embed', out: 'x', weight: 'w' }],
  };
  const w = new Float32Array(rows * cols);
  const chunk = 512;
  const steps = [];
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    steps.push({ pos: 0, tokens: Int32Array.from({ length: Math.min(chunk, rows - r0) }, (_, i) => r0 + i), outputs: ['x'] });
  }
  const outs = await runGraph('cpu', spec, [{ weight: 'w', type: kind.source, nbytes: bytes.byteLength, data: bytes }], steps, {
    maxTokens: chunk,
    maxSeqLen: chunk,
  });
  outs.forEach((o, j) => w.set(o.x, j * chunk * cols));
  return w;
}

/**
 * |got - ref| <= atol + rtol * scale[i] (scale defaults to |ref|); throws with evidence: the case,
 * the bound, the first pairs, the worst element, up to 10 faults.
 */
export function assertWithin(got, ref, tol, what, scale) {
  if (got.length !== ref.length) throw new Error(`${what}: ${got.length} values, expected ${ref.length}`);
  let faults = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  const listed = [];
  for (let i = 0; i < ref.length; i++) {
    const g = got[i];
    const r = ref[i];
    if (Number.isNaN(g) && Number.isNaN(r)) continue;
    const bound = tol.atol + tol.rtol * (scale ? scale[i] : Math.abs(r));
    const err = Math.abs(g - r);
    const excess = Number.isNaN(err) ? Infinity : err - bound;
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    if (excess > 0) {
      faults++;
      if (listed.length < 10) listed.push(`  fault [${i}] got ${g} ref ${r} bound ${bound}`);
    }
  }
  if (faults === 0) return;
  const first = Array.from({ length: Math.min(5, ref.length) }, (_, i) => `[${i}] ${got[i]} vs ${ref[i]}`).join(', ');
  throw new Error(
    [
      `${what}: ${faults} of ${ref.length} out of tolerance (|got - ref| <= ${tol.atol} + ${tol.rtol} * ${scale ? 'scale' : '|ref|'})`,
      `  first (got vs ref): ${first}`,
      `  worst [${worst}] got ${got[worst]} ref ${ref[worst]}`,
      ...listed,
    ].join('\n'),
  );
}

/** Where the synthetic models go (gpu-run.sh: the package folder; otherwise a temporary folder). */
export const modelsDir = process.env.GPU_MODELS ?? join(tmpdir(), 'llama-cuda-gpu-models');

/**
 * The synthetic Llama-2-7B-shaped model (2 layers, random weights, Llama 2's vocabulary) of
 * `type` ('q4_0' | 'bf16' | ...), written once into modelsDir by lib/synth.ts.
 */
export async function synthModel(type) {
  const out = join(modelsDir, `llama2-7b-2l-${type}.gguf`);
  if (!existsSync(out)) {
    mkdirSync(modelsDir, { recursive: true });
    const { loadTokenizerFile } = await import('../../dist/esm/index.js');
    const { synthesizeModel } = await import('../../dist/esm/synth.js');
    const tokenizer = await loadTokenizerFile(join(process.env.LLAMA_CUDA_SHARED, 'models/llama2-tokenizer/tokenizer.bin'), 32000);
    await synthesizeModel({ preset: 'llama2-7b', type, layers: 2, out: `${out}.part`, tokenizer });
    const { renameSync } = await import('node:fs');
    renameSync(`${out}.part`, out);
  }
  return out;
}
