/**
 * loadModel() on broken files: a clear ERR_* error, never a crash, and nothing left behind.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

import { expect, it } from 'vitest';

import { loadModel } from '../../lib/index.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir();
const GGUF = 'models/stories260K/stories260K.gguf';
const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';

async function loadError(file: string, options: Parameters<typeof loadModel>[1] = {}): Promise<{ code: string; message: string }> {
  try {
    const m = await loadModel(file, { device: 'cpu', ...options });
    await m.dispose();
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error(`${file} loaded`);
}

describeWithShared([GGUF, BIN, TOK], 'loadModel on broken files', () => {
  const gguf = (): Buffer => readFileSync(sharedPath(GGUF));

  it('a GGUF cut inside its tensor data', async () => {
    const f = tmp('cut.gguf');
    writeFileSync(f, gguf().subarray(0, 600_000));
    const e = await loadError(f);
    expect(e.code).toBe('ERR_MODEL_FORMAT');
    expect(e.message).toMatch(/(runs past|beyond) the end of the file .*truncated/);
  });

  it('a GGUF cut inside its header', async () => {
    const f = tmp('cut-header.gguf');
    writeFileSync(f, gguf().subarray(0, 5000));
    expect(await loadError(f)).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/truncated while reading/) });
  });

  it('a GGUF whose tensor grew after the header was written (absurd dimension)', async () => {
    const b = gguf();
    const f = tmp('absurd.gguf');
    // the first tensor's first dimension: find "token_embd.weight" in the header and patch ne[0]
    const at = b.indexOf('token_embd.weight') + 'token_embd.weight'.length + 4;
    const copy = Buffer.from(b);
    copy.writeBigInt64LE(1n << 40n, at);
    writeFileSync(f, copy);
    const e = await loadError(f);
    expect(e.code).toBe('ERR_MODEL_FORMAT');
  });

  it('a GGUF whose metadata disagrees with its tensors', async () => {
    const b = Buffer.from(gguf());
    const key = Buffer.from('llama.embedding_length');
    const at = b.indexOf(key) + key.length + 4; // skip the value type
    b.writeUInt32LE(128, at);
    const f = tmp('inconsistent.gguf');
    writeFileSync(f, b);
    expect(await loadError(f)).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/tensor "token_embd.weight" has shape \[512, 64\], expected \[512, 128\]/) });
  });

  it('a truncated llama2.c checkpoint', async () => {
    const f = tmp('cut.bin');
    writeFileSync(f, readFileSync(sharedPath(BIN)).subarray(0, 500_000));
    expect(await loadError(f, { tokenizer: sharedPath(TOK) })).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/truncated/) });
  });

  it('a tokenizer whose vocabulary does not match the model', async () => {
    const e = await loadError(sharedPath(BIN), { tokenizer: sharedPath('models/llama2-tokenizer/tokenizer.bin') });
    expect(e.code).toBe('ERR_MODEL_FORMAT');
  });
});

it('random bytes, an empty file, a folder and a missing file', async () => {
  const random = tmp('random.bin');
  writeFileSync(random, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)));
  expect(await loadError(random)).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/not a model file this library reads: it does not start with the GGUF magic/) });
  const empty = tmp('empty.gguf');
  writeFileSync(empty, '');
  expect(await loadError(empty)).toMatchObject({ code: 'ERR_MODEL_FORMAT' });
  const dir = tmp('folder');
  mkdirSync(dir);
  expect(await loadError(dir)).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/is a folder without config.json/) });
  expect(await loadError(tmp('missing.gguf'))).toMatchObject({ code: 'ERR_IO' });
  await expect(loadModel('', { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  await expect(loadModel(random, { device: 'cpu', batchSize: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/batchSize/) });
});
