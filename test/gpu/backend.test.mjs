// The CUDA build on a real GPU: it loads, sees the device, was compiled for it, and a kernel
// it carries runs and gives the numbers the CPU expects.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { addon as cuda } from './harness.mjs';
import { recordRow } from './results.mjs';

test('the CUDA build sees a GPU and was compiled for it', () => {
  const info = cuda.backendInfo();
  assert.ok(info.variant === 'cuda' || (info.variant === 'simt' && process.env.LLAMA_CUDA_GPU_ADDON), `variant ${info.variant}`);
  assert.equal(info.cuda.computeBackend, true);
  assert.ok(info.cuda.devices.length >= 1, `no device: ${info.cuda.error}`);
  const gpu = info.cuda.devices[0];
  const sm = `sm_${gpu.computeCapability.replace('.', '')}`;
  const compiled = info.cuda.architectures;
  assert.ok(compiled.includes(sm) || compiled.includes(`${sm}a`) || compiled.some((a) => a.startsWith('compute_')) || info.variant === 'simt', `${sm} not in ${compiled}`);
  console.log(`device: ${gpu.name} (${sm}, ${(gpu.totalMemory / 2 ** 30).toFixed(0)} GiB, ${gpu.multiprocessors} SMs); driver ${info.cuda.driverVersion}, runtime ${info.cuda.runtimeVersion}; build ${compiled.join(' ')}`);
});

test('a kernel of the build runs on the device and matches the CPU', () => {
  const info = cuda.backendInfo();
  const why = cuda.cudaProbe(0);
  recordRow({ name: 'check.cuda.probe', device: info.cuda.devices[0]?.name ?? 'none', value: why === '' ? 1 : 0, unit: 'pass', notes: why });
  assert.equal(why, '');
});
