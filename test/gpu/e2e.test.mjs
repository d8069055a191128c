// End to end on the GPU: greedy stories260K tokens from the CUDA backend equal the CPU's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { backendInfo, loadModel } from '../../dist/esm/index.js';
import { recordRow } from './results.mjs';

const shared = process.env.LLAMA_CUDA_SHARED;
const bin = join(shared, 'models/stories260K/stories260K.bin');
const tok = join(shared, 'models/stories260K/tok512.bin');

async function greedy(device) {
  const model = await loadModel(bin, { tokenizer: tok, device, kvCacheType: 'f32' });
  try {
    return (await model.complete('Once upon a time', { temperature: 0, maxTokens: 200 })).tokens;
  } finally {
    await model.dispose();
  }
}

const info = backendInfo('auto');
const computeBackend = info.native.cuda.computeBackend;

test('greedy stories260K on CUDA equals the CPU', { skip: computeBackend ? false : `this build has no CUDA compute backend yet (${info.reason})` }, async () => {
  const cpu = await greedy('cpu');
  const gpu = await greedy('cuda');
  const same = cpu.length === gpu.length && cpu.every((t, i) => t === gpu[i]);
  recordRow({ name: 'check.greedy.stories260K', device: info.native.cuda.devices[0]?.name ?? 'none', value: same ? 1 : 0, unit: 'pass', notes: `${cpu.length} tokens` });
  assert.deepEqual(gpu, cpu);
});
