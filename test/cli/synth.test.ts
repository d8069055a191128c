/**
 * `llama-cuda synth` writes a model of a real shape that loads and generates (the issue's
 * check: `synth --preset llama2-7b --type q4_0 --layers 2`).
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import * as path from 'node:path';

import { expect } from 'vitest';

import { loadModel } from '../../lib/index.js';
import { itWithShared, repoRoot, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir();

itWithShared(['models/llama2-tokenizer/tokenizer.bin'], 'synth --preset llama2-7b --type q4_0 --layers 2 loads and generates', async () => {
  const out = tmp('llama2-7b-2l.q4_0.gguf');
  const r = spawnSync(
    process.execPath,
    [path.join(repoRoot, 'bin', 'llama-cuda.js'), 'synth', '--preset', 'llama2-7b', '--type', 'q4_0', '--layers', '2', '--out', out, '--tokenizer', sharedPath('models/llama2-tokenizer/tokenizer.bin')],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(r.stderr).toMatch(/wrote .*llama2-7b shape, 2 layers, q4_0/);
  expect(r.status).toBe(0);
  // 7B shapes: embedding and classifier 32000 x 4096, 2 layers of 4 x 4096^2 + 3 x 4096 x 11008, all Q4_0 (18 bytes / 32)
  const q4 = (n: number): number => (n / 32) * 18;
  const weights = 2 * q4(32000 * 4096) + 2 * (4 * q4(4096 * 4096) + 3 * q4(4096 * 11008)) + 5 * 4096 * 4;
  expect(statSync(out).size).toBeGreaterThan(weights);
  expect(statSync(out).size).toBeLessThan(weights + 2 ** 20 + 32000 * 64); // + header and vocabulary
  const model = await loadModel(out, { device: 'cpu', contextLength: 64 });
  try {
    expect(model.config).toMatchObject({ dim: 4096, hiddenDim: 11008, nLayers: 2, nHeads: 32, nKvHeads: 32, vocabSize: 32000 });
    const seq = model.createSequence();
    const logits = (await seq.evaluate(model.tokenize('Once upon a time')))!;
    expect(logits.every(Number.isFinite)).toBe(true);
    const result = await model.complete('Once upon a time', { temperature: 0, maxTokens: 4 });
    // random weights: 4 tokens, unless one of them happens to be EOS
    expect(result.finishReason === 'maxTokens' ? result.tokens.length === 4 : result.finishReason === 'eos').toBe(true);
    await seq.dispose();
  } finally {
    await model.dispose();
  }
});
