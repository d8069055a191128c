// End to end on the GPU: greedy stories260K tokens from the CUDA backend equal the CPU's; decode
// steps replayed from a captured CUDA graph equal eager ones bit for bit; dispose returns the
// device memory; a synthetic Llama-2-7B-shaped model (2 layers, lib/synth.ts) in Q4_0 and bf16
// generates with finite logits; a KV cache larger than the GPU is ERR_OUT_OF_MEMORY and the
// process carries on. Rows: check.greedy.stories260K, check.graph-replay.stories260K,
// check.dispose.device-memory, check.synth.llama2-7b-2l.<type>, check.oom.kv-cache.
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { test } from 'node:test';

import { loadModel } from '../../dist/esm/index.js';
import { openModelFile } from '../../dist/esm/formats/model-file.js';
import { buildLlamaGraph, LOGITS_BUFFER } from '../../dist/esm/model/transformer.js';
import { planWeights } from '../../dist/esm/model/weights.js';
import { addon, gpuName, quick, synthModel } from './harness.mjs';
import { recordRow } from './results.mjs';

const shared = process.env.LLAMA_CUDA_SHARED;
const bin = join(shared, 'models/stories260K/stories260K.bin');
const tok = join(shared, 'models/stories260K/tok512.bin');
const device = gpuName();
const skip = addon.backendInfo().cuda.devices.length > 0 ? false : 'no CUDA device';

async function greedy(dev) {
  const model = await loadModel(bin, { tokenizer: tok, device: dev, kvCacheType: 'f32' });
  try {
    return (await model.complete('Once upon a time', { temperature: 0, maxTokens: 200 })).tokens;
  } finally {
    await model.dispose();
  }
}

test('greedy stories260K on CUDA equals the CPU', { skip }, async () => {
  const cpu = await greedy('cpu');
  const gpu = await greedy('cuda');
  const same = cpu.length === gpu.length && cpu.every((t, i) => t === gpu[i]);
  recordRow({ name: 'check.greedy.stories260K', device, value: same ? 1 : 0, unit: 'pass', notes: `${cpu.length} greedy tokens, f32 KV cache, CUDA vs CPU` });
  assert.deepEqual(gpu, cpu);
});

test('decode steps replayed from a CUDA graph equal eager steps bit for bit', { skip }, async () => {
  const file = await openModelFile(bin);
  const plan = planWeights(file.config, file.tensors, basename(bin));
  const engine = new addon.Engine(buildLlamaGraph(file.config, plan, { contextLength: 512 }), { device: 'cuda' });
  await engine.load(plan.sources);
  const graphed = engine.createSession({ maxSeqLen: 512, maxTokens: 32, kvType: 'f16' });
  process.env.LLAMA_CUDA_GRAPHS = '0';
  const eager = engine.createSession({ maxSeqLen: 512, maxTokens: 32, kvType: 'f16' });
  delete process.env.LLAMA_CUDA_GRAPHS;
  const vocab = file.config.vocabSize;
  const run = async (s, tokens, pos) => {
    const logits = new Float32Array(vocab);
    await s.run({ pos, tokens: Int32Array.from(tokens), outputs: [{ buffer: LOGITS_BUFFER, data: logits }] });
    return logits;
  };
  let pos = 0;
  let token = 1;
  let same = true;
  for (const tokens of [[1, 403, 407, 261, 378], ...Array(150).fill(null), [5, 6, 7], ...Array(50).fill(null)]) {
    const t = tokens ?? [token];
    const a = await run(graphed, t, pos);
    const b = await run(eager, t, pos);
    same &&= a.every((v, i) => Object.is(v, b[i]));
    token = a.indexOf(Math.max(...a));
    pos += t.length;
  }
  const stats = graphed.stats();
  recordRow({ name: 'check.graph-replay.stories260K', device, value: same && stats.graphCaptures === 1 ? 1 : 0, unit: 'pass', notes: `${stats.graphLaunches} graph launches over ${stats.steps} steps, logits identical to eager steps` });
  await graphed.dispose();
  await eager.dispose();
  await engine.dispose();
  assert.equal(stats.graphCaptures, 1);
  assert.equal(stats.graphLaunches, 199);
  assert.ok(same, 'replayed logits differ from eager ones');
});

test('dispose returns the device memory', { skip }, async () => {
  const round = async () => {
    const model = await loadModel(bin, { tokenizer: tok, device: 'cuda' });
    await model.complete('Once upon a time', { temperature: 0, maxTokens: 20 });
    await model.dispose();
  };
  await round(); // the first use loads kernels and sets up the context
  const before = addon.cudaMemoryInfo().free;
  for (let i = 0; i < 5; i++) await round();
  const after = addon.cudaMemoryInfo().free;
  const lost = before - after;
  recordRow({ name: 'check.dispose.device-memory', device, value: lost <= 2 ** 21 ? 1 : 0, unit: 'pass', notes: `free device memory before ${before}, after 5 load/generate/dispose rounds ${after}` });
  assert.ok(lost <= 2 ** 21, `device memory not returned: ${lost} bytes`);
});

for (const type of ['q4_0', 'bf16']) {
  test(`synthetic Llama-2-7B shape (2 layers, ${type}) generates with finite logits`, { skip: skip || (quick ? 'quick run' : false) }, async () => {
    const model = await loadModel(await synthModel(type), { device: 'cuda', contextLength: 1024, batchSize: 512 });
    try {
      const seq = model.createSequence({ allLogits: true });
      const prompt = model.tokenize('The capital of France is');
      const all = await seq.evaluate(prompt, { allLogits: true });
      let finite = all.every(Number.isFinite);
      for (let i = 0; i < 16; i++) {
        const logits = await seq.evaluate([i + 100]);
        finite &&= logits.every(Number.isFinite);
      }
      const result = await model.complete('Once upon a time', { temperature: 0, maxTokens: 16 });
      recordRow({ name: `check.synth.llama2-7b-2l.${type}`, device, value: finite && result.tokens.length === 16 ? 1 : 0, unit: 'pass', notes: `finite logits for a ${prompt.length}-token prompt and 16 decode steps; ${model.info.weightBytes} weight bytes` });
      assert.ok(finite, 'non-finite logits');
      assert.equal(result.tokens.length, 16);
      await seq.dispose();
    } finally {
      await model.dispose();
    }
  });
}

test('a KV cache larger than the GPU is ERR_OUT_OF_MEMORY and the process carries on', { skip: skip || (quick ? 'quick run' : false) }, async () => {
  // 2 layers x K and V x 4M positions x 4096 x 2 bytes = 128 GiB of f16 cache
  const big = await loadModel(await synthModel('q4_0'), { device: 'cuda', contextLength: 1 << 22, batchSize: 16 });
  let code = 'none';
  try {
    await big.complete('Hello', { maxTokens: 1 });
  } catch (err) {
    code = err.code;
  }
  await big.dispose();
  const small = await loadModel(await synthModel('q4_0'), { device: 'cuda', contextLength: 256 });
  const ok = (await small.complete('Hello', { temperature: 0, maxTokens: 4 })).tokens.length === 4;
  await small.dispose();
  recordRow({ name: 'check.oom.kv-cache', device, value: code === 'ERR_OUT_OF_MEMORY' && ok ? 1 : 0, unit: 'pass', notes: `128 GiB KV cache: ${code}; a 256-position session afterwards generates` });
  assert.equal(code, 'ERR_OUT_OF_MEMORY');
  assert.ok(ok);
});
