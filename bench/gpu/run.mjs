// The GPU benchmark (run by scripts/gpu-run.sh on the GPU machine, after the GPU tests): measures
// the machine's two ceilings, times kernels and whole decode/prefill steps against them, and
// writes <out>/<yyyy-mm-dd>-<device>.json in the results format of design.md §5 together with the
// rows the GPU tests recorded (check.*), ready to commit under bench/results/.
//
//   ceilings   ceiling.copy-bandwidth   GB/s of a large device-to-device copy kernel (read + write)
//              ceiling.mma.bf16         TFLOP/s of a pure-register mma.sync bf16 loop
//   kernels    native-timed with CUDA events, L2 flushed before every run (llm.c), median of 50:
//              matvec.<dtype>.<rows>x<cols> (n = 1: GB/s of weights + activations vs copy bandwidth),
//              matmul.<dtype>.<rows>x<cols>.n512 (TFLOP/s vs mma), attention.decode.{mha,gqa}.ctx4096
//              (GB/s of K/V vs copy), attention.prefill.causal.p512 (TFLOP/s vs mma), rmsnorm, swiglu.
//              An op family whose GPU check (check.op.<op>) did not pass is not timed (style.md: a
//              number is only reported for a kernel that gave the right answer).
//   end to end synthetic Llama-2-7B shape with 2 layers (llama2-7b-2l) in Q4_0 and bf16:
//              e2e.decode.<model>.<type>.b1 (tokens/s generating 128 tokens; ceiling: copy bandwidth /
//              weight bytes read per token), e2e.prefill.<model>.<type>.p512 (tokens/s for a 512-token
//              chunk; ceiling: mma rate / 2 FLOPs per weight per token); stories260K decode with and
//              without CUDA graphs (launch-bound: the graph is the point).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { addon, gpuName, quick, synthModel } from '../../test/gpu/harness.mjs';

// GPU_TEST_QUICK=1: tiny sizes, for a dry run of this script on the SIMT emulator (numbers meaningless)
const size = (full, small) => (quick ? small : full);

const out = process.argv[2] ?? process.env.GPU_OUT;
if (!out) {
  console.error('usage: node bench/gpu/run.mjs OUTPUT_DIR');
  process.exit(2);
}
const info = addon.backendInfo();
const device = gpuName();
const rowsFile = join(out, 'rows.jsonl');
const rows = existsSync(rowsFile) ? readFileSync(rowsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const passed = (name) => rows.some((r) => r.name === name && r.value === 1);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function add(name, value, unit, ceiling, notes) {
  const row = { name, backend: 'cuda', device, value: Number(value.toPrecision(5)), unit, ceiling: ceiling === null ? null : Number(ceiling.toPrecision(5)), ratio: ceiling ? Number((value / ceiling).toPrecision(4)) : null, notes };
  rows.push(row);
  console.log(`${name.padEnd(44)} ${String(row.value).padStart(10)} ${unit.padEnd(9)} ceiling ${String(row.ceiling).padStart(9)} ratio ${String(row.ratio).padStart(6)}  ${notes}`);
}

function write() {
  const date = new Date().toISOString().slice(0, 10);
  const file = join(out, `${date}-${device.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}.json`);
  writeFileSync(file, `${JSON.stringify(rows, null, 2)}\n`);
  console.log(`${rows.length} rows for ${device} -> ${file}`);
}

if (info.cuda.devices.length === 0) {
  console.error(`no CUDA device: ${info.cuda.error ?? 'unknown'}; only the test rows are written`);
  write();
  process.exit(1);
}
console.log(`${device}: ${info.cuda.devices[0].multiprocessors} SMs, ${(info.cuda.devices[0].totalMemory / 2 ** 30).toFixed(0)} GiB; build ${info.cuda.architectures.join(' ')}`);

// ---- ceilings ----------------------------------------------------------------------------------------
const copy = addon.cudaBench({ kind: 'copy', bytes: size(2 ** 31, 2 ** 20), repeats: 10 });
const copyGBps = copy.bytes / Math.min(...copy.ms) / 1e6;
add('ceiling.copy-bandwidth', copyGBps, 'GB/s', null, `best of 10: ${copy.kernel} over 2 GiB (bytes read + written)`);
const mma = addon.cudaBench({ kind: 'mma', iterations: size(16384, 1), blocksPerSm: size(4, 1), repeats: size(5, 1) });
const mmaTflops = mma.flops / Math.min(...mma.ms) / 1e9;
add('ceiling.mma.bf16', mmaTflops, 'TFLOP/s', null, `best of 5: ${mma.kernel}, mma.sync.m16n8k16 bf16 -> f32`);

// ---- kernels -----------------------------------------------------------------------------------------
function timeOp(spec) {
  const r = addon.cudaBench({ kind: 'op', repeats: size(50, 2), ...(quick ? { flushL2: false } : {}), ...spec });
  return { ...r, t: median(r.ms) };
}
const refuse = (family) => console.log(`not timing ${family}: its GPU check (check.op.${family}) did not pass`);

if (passed('check.op.matmul')) {
  for (const dtype of ['int4', 'q8_0', 'bf16', 'f16']) {
    for (const [r, c] of size([[4096, 4096], [11008, 4096], [4096, 11008], [32000, 4096]], [[64, 256]])) {
      const m = timeOp({ op: 'matmul', dtype, rows: r, cols: c, n: 1 });
      add(`matvec.${dtype}.${r}x${c}`, m.bytes / m.t / 1e6, 'GB/s', copyGBps, `median of 50, ${m.t.toFixed(4)} ms; ${m.kernel}; bytes = weights + x + out`);
    }
  }
  for (const dtype of ['bf16', 'f16', 'q8_0', 'int4']) {
    for (const [r, c] of size([[4096, 4096], [11008, 4096], [4096, 11008]], [[64, 256]])) {
      const m = timeOp({ op: 'matmul', dtype, rows: r, cols: c, n: size(512, 16) });
      add(`matmul.${dtype}.${r}x${c}.n512`, m.flops / m.t / 1e9, 'TFLOP/s', mmaTflops, `median of 50, ${m.t.toFixed(3)} ms; ${m.kernel}`);
    }
  }
} else refuse('matmul');

if (passed('check.op.attention')) {
  for (const [name, nHeads, nKvHeads] of [['mha', 32, 32], ['gqa', 64, 8]]) {
    const a = timeOp({ op: 'attention', nHeads: size(nHeads, 8), nKvHeads: size(nKvHeads, name === 'mha' ? 8 : 1), headDim: 128, ctx: size(4096, 64), n: 1, kvType: 'f16' });
    add(`attention.decode.${name}.ctx4096`, a.bytes / a.t / 1e6, 'GB/s', copyGBps, `median of 50, ${a.t.toFixed(4)} ms; ${a.kernel}; bytes = K and V of 4096 positions`);
  }
  const p = timeOp({ op: 'attention', nHeads: size(32, 2), nKvHeads: size(32, 2), headDim: 128, ctx: size(512, 16), n: size(512, 16), kvType: 'f16' });
  add('attention.prefill.causal.p512', p.flops / p.t / 1e9, 'TFLOP/s', mmaTflops, `median of 50, ${p.t.toFixed(3)} ms; ${p.kernel} (CUDA cores; the ceiling is the tensor-core rate)`);
} else refuse('attention');

if (passed('check.op.rmsnorm')) {
  const m = timeOp({ op: 'rmsnorm', n: size(512, 2), cols: 4096 });
  add('rmsnorm.4096.n512', m.bytes / m.t / 1e6, 'GB/s', copyGBps, `median of 50, ${m.t.toFixed(4)} ms; ${m.kernel}`);
} else refuse('rmsnorm');
if (passed('check.op.swiglu')) {
  const m = timeOp({ op: 'swiglu', n: size(512, 2), cols: 11008 });
  add('swiglu.11008.n512', m.bytes / m.t / 1e6, 'GB/s', copyGBps, `median of 50, ${m.t.toFixed(4)} ms; ${m.kernel}`);
} else refuse('swiglu');

// ---- end to end ----------------------------------------------------------------------------------------
const { loadModel } = await import('../../dist/esm/index.js');

async function decodeRate(model, prompt, tokens) {
  await model.complete(prompt, { temperature: 0, maxTokens: 8 }); // warm-up: sessions, graph capture
  const rates = [];
  for (let i = 0; i < 3; i++) {
    const r = await model.complete(prompt, { temperature: 0, maxTokens: tokens });
    rates.push(r.timings.generatedTokens / (r.timings.generateMs / 1000));
  }
  return median(rates);
}

async function prefillRate(model, n) {
  const seq = model.createSequence();
  const tokens = Array.from({ length: n }, (_, i) => 100 + ((i * 7919) % 30000));
  await seq.evaluate(tokens.slice(0, 64)); // warm-up
  const rates = [];
  for (let i = 0; i < 3; i++) {
    seq.truncate(0);
    const t0 = performance.now();
    await seq.evaluate(tokens);
    rates.push(n / ((performance.now() - t0) / 1000));
  }
  await seq.dispose();
  return median(rates);
}

for (const type of ['q4_0', 'bf16']) {
  if (!passed(`check.synth.llama2-7b-2l.${type}`)) {
    console.log(`not timing llama2-7b-2l ${type}: its GPU check did not pass`);
    continue;
  }
  const model = await loadModel(await synthModel(type), { device: 'cuda', contextLength: 2048, batchSize: 512 });
  try {
    const { config } = model;
    const prompt = 'The quick brown fox jumps over the lazy dog because';
    const decode = await decodeRate(model, prompt, 128);
    add(`e2e.decode.llama2-7b-2l.${type}.b1`, decode, 'tokens/s', (copyGBps * 1e9) / model.info.bytesPerToken, `median of 3, 128 greedy tokens after a ${model.tokenize(prompt).length}-token prompt; Llama-2-7B width, 2 layers, ${(model.info.bytesPerToken / 2 ** 20).toFixed(0)} MiB read per token; ceiling = copy bandwidth / bytes per token`);
    const flopsPerToken = 2 * (model.info.parameters - config.vocabSize * config.dim);
    const prefill = await prefillRate(model, 512);
    add(`e2e.prefill.llama2-7b-2l.${type}.p512`, prefill, 'tokens/s', (mmaTflops * 1e12) / flopsPerToken, `median of 3, one 512-token chunk; ceiling = mma rate / ${(flopsPerToken / 1e9).toFixed(2)} GFLOP per token (2 per weight, attention not counted)`);
  } finally {
    await model.dispose();
  }
}

if (passed('check.greedy.stories260K')) {
  const shared = process.env.LLAMA_CUDA_SHARED;
  const opts = { tokenizer: join(shared, 'models/stories260K/tok512.bin'), device: 'cuda', kvCacheType: 'f16' };
  for (const graphs of [true, false]) {
    if (!graphs) process.env.LLAMA_CUDA_GRAPHS = '0';
    const model = await loadModel(join(shared, 'models/stories260K/stories260K.bin'), opts);
    const rate = await decodeRate(model, 'Once upon a time', size(200, 10));
    add(`e2e.decode.stories260K.f32.b1${graphs ? '' : '.no-graphs'}`, rate, 'tokens/s', (copyGBps * 1e9) / model.info.bytesPerToken, `median of 3, 200 greedy tokens, ${graphs ? 'decode steps replayed from a CUDA graph' : 'LLAMA_CUDA_GRAPHS=0: every kernel launched'}; a 1 MiB model: launch-bound, far from the bandwidth ceiling`);
    await model.dispose();
    delete process.env.LLAMA_CUDA_GRAPHS;
  }
}

write();
