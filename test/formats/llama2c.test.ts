import { readFileSync, writeFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { LlamaCudaError } from '../../lib/errors.js';
import { parseLlama2cHeader, readLlama2c } from '../../lib/formats/llama2c.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir();

function header(values: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(values).buffer);
}

/** Bytes a version-0 file with this header must have. */
function expectedSize(dim: number, hidden: number, layers: number, heads: number, kvHeads: number, vocab: number, seq: number): number {
  const kv = (dim / heads) * kvHeads;
  const floats =
    Math.abs(vocab) * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * dim * hidden) + dim + seq * (dim / heads) +
    (vocab < 0 ? Math.abs(vocab) * dim : 0);
  return 28 + floats * 4;
}

describe('llama2.c checkpoint header', () => {
  it('lays out tensors of a tiny unshared-classifier model and checks the exact size', () => {
    const h = [16, 24, 2, 4, 2, -10, 8];
    const size = expectedSize(16, 24, 2, 4, 2, -10, 8);
    const f = parseLlama2cHeader(header(h), size, 'tiny.bin');
    expect(f.sharedClassifier).toBe(false);
    expect(f.config).toMatchObject({ dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 4, vocabSize: 10, contextLength: 8 });
    expect(f.tensors.length).toBe(1 + 9 * 2 + 1 + 1);
    const out = f.tensors[f.tensors.length - 1]!;
    expect(out.name).toBe('output.weight');
    expect(out.offset + out.nbytes).toBe(size);
    const wk = f.tensors.find((t) => t.name === 'blk.1.attn_k.weight')!;
    expect(wk.shape).toEqual([8, 16]);
  });

  it('rejects truncated and oversized files with the sizes in the message', () => {
    const h = header([16, 24, 2, 4, 2, 10, 8]);
    const size = expectedSize(16, 24, 2, 4, 2, 10, 8);
    expect(() => parseLlama2cHeader(h, size - 1, 'cut.bin')).toThrow(/implies \d+ bytes but the file has \d+: truncated/);
    expect(() => parseLlama2cHeader(h, size + 4, 'long.bin')).toThrow(/implies/);
    expect(() => parseLlama2cHeader(h.subarray(0, 20), 20, 'tiny.bin')).toThrow(/fewer than a header/);
  });

  it('rejects absurd or inconsistent headers as ERR_MODEL_FORMAT', () => {
    for (const h of [
      [0, 24, 2, 4, 2, 10, 8],
      [16, 24, 2, 5, 2, 10, 8], // dim not a multiple of heads
      [16, 24, 2, 4, 3, 10, 8], // heads not a multiple of kv heads
      [16, -24, 2, 4, 2, 10, 8],
      [1 << 30, 24, 2, 4, 2, 10, 8],
      [16, 24, 2, 4, 2, 0, 8],
      [16, 24, 2, 4, 2, 10, -8],
    ]) {
      let err: unknown;
      try {
        parseLlama2cHeader(header(h), 1 << 20, 'bad.bin');
      } catch (e) {
        err = e;
      }
      expect(err, `header ${h.join(',')}`).toBeInstanceOf(LlamaCudaError);
      expect((err as LlamaCudaError).code).toBe('ERR_MODEL_FORMAT');
    }
  });

  it('names newer llama2.c export versions as unsupported', () => {
    const h = header([0x616b3432, 2, 16, 24, 2, 4, 2]);
    expect(() => parseLlama2cHeader(h, 1000, 'v2.bin')).toThrow(/export version 2 is not supported/);
  });
});

describeWithShared(['models/stories260K/stories260K.bin'], 'stories260K.bin', () => {
  it('has the config of its README', async () => {
    const f = await readLlama2c(sharedPath('models/stories260K/stories260K.bin'));
    expect(f.config).toMatchObject({
      dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, vocabSize: 512, contextLength: 512,
      ropeTheta: 10000, normEps: 1e-5, ropePairing: 'interleaved',
    });
    expect(f.sharedClassifier).toBe(true);
    expect(f.tensors.length).toBe(1 + 9 * 5 + 1);
  });

  it('a truncated copy fails with a clear message', async () => {
    const bytes = readFileSync(sharedPath('models/stories260K/stories260K.bin'));
    const file = tmp('cut.bin');
    writeFileSync(file, bytes.subarray(0, bytes.length - 1000));
    await expect(readLlama2c(file)).rejects.toThrow(/truncated/);
  });
});
