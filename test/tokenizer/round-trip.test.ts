/**
 * Properties on random and real text: decode(encode(s)) gives s back, and the fast encoder
 * agrees with an O(n^2) run.c-style reference encoder.
 */
import { readFileSync } from 'node:fs';

import { beforeAll, expect, it } from 'vitest';

import type { Tokenizer } from '../../lib/tokenizer/index.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { Llama2cReferenceEncoder } from './llama2c-reference.js';
import { FILES, llama2cTokenizer } from './load.js';
import { randomText, seededRandom } from './random.js';

const SEEDS = ['seeds/001_12a455d2b7133c96.txt', 'seeds/004_fd8cec9f21d47731.txt'];

// tokenizer.bin rather than a GGUF file: see the U+FEFF note in reference-cases.test.ts.
describeWithShared([FILES.llama2Bin, FILES.bigText, ...SEEDS], 'round trips and a reference encoder (Llama 2 vocab)', () => {
  let tok: Tokenizer;
  let reference: Llama2cReferenceEncoder;
  beforeAll(async () => {
    tok = await llama2cTokenizer(FILES.llama2Bin, 32000);
    reference = new Llama2cReferenceEncoder(sharedPath(FILES.llama2Bin), 32000);
  });

  // The encoder's dummy prefix is the `▁` that decode() removes from the first piece, so the
  // round trip is exact, leading spaces and newlines included. The one thing it cannot keep is
  // a literal U+2581, which SentencePiece reads as a space.
  it('decode(encode(s)) === s for 2000 random strings', () => {
    const rng = seededRandom(20240601);
    for (let i = 0; i < 2000; i++) {
      const s = randomText(rng, 12);
      const ids = tok.encode(s, { addBos: false });
      const back = tok.decode(ids);
      const expected = s.replaceAll('\u2581', ' ');
      if (back !== expected) expect(back, JSON.stringify(s)).toBe(expected);
      if (tok.decode(tok.encode(s)) !== expected) expect.fail(`with BOS: ${JSON.stringify(s)}`);
    }
  });

  it('matches the run.c-style reference encoder on random strings', () => {
    const rng = seededRandom(7);
    for (let i = 0; i < 500; i++) {
      const s = randomText(rng, 10).replaceAll('\u2581', ''); // run.c differs on a literal ▁ by design
      const got = tok.encode(s);
      const want = reference.encode(s);
      if (got.join() !== want.join()) expect(got, JSON.stringify(s)).toEqual(want);
    }
  });

  it('matches the reference encoder on every line of two seed documents', () => {
    let lines = 0;
    for (const file of SEEDS) {
      for (const line of readFileSync(sharedPath(file), 'utf8').split('\n')) {
        const s = line.replaceAll('\u2581', '');
        if (tok.encode(s).join() !== reference.encode(s).join()) expect(tok.encode(s), JSON.stringify(s)).toEqual(reference.encode(s));
        lines++;
      }
    }
    expect(lines).toBeGreaterThan(20);
  });

  it('round-trips the 290 KB seed document', () => {
    const text = readFileSync(sharedPath(FILES.bigText), 'utf8');
    const ids = tok.encode(text, { addBos: false });
    expect(ids.length).toBeGreaterThan(50_000);
    expect(tok.decode(ids)).toBe(text.replaceAll('\u2581', ' '));
    // piecewise decoding of the stream gives the same text
    const decoder = tok.createDecoder();
    let streamed = '';
    for (const id of ids) streamed += decoder.push(id);
    expect(streamed + decoder.flush()).toBe(text.replaceAll('\u2581', ' '));
  });
});
