/**
 * The 512-piece vocabulary of stories260K, from llama2.c's tok512.bin and from the GGUF made
 * from it: both must give the same ids, and the ids llama2.c gives.
 */
import { beforeAll, expect, it } from 'vitest';

import type { Tokenizer } from '../../lib/tokenizer/index.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { Llama2cReferenceEncoder } from './llama2c-reference.js';
import { FILES, ggufTokenizer, llama2cTokenizer } from './load.js';

const PROMPTS = [
  'Once upon a time',
  'Lily and Tom went to the park.',
  'One day, a little girl named Lily found a needle in her room.',
  'The cat sat on the mat. "Hello!" said the dog.',
  '  two leading spaces, and\ttabs\nand newlines\n',
  'Zebra? Xylophone! 1234567890',
  'ünïcødé and 🦙 need byte fallback here',
  '',
];

describeWithShared([FILES.tok512Bin, FILES.stories260kGguf], 'stories260K vocabulary (tok512.bin and stories260K.gguf)', () => {
  let fromBin: Tokenizer;
  let fromGguf: Tokenizer;
  beforeAll(async () => {
    fromBin = await llama2cTokenizer(FILES.tok512Bin, 512);
    fromGguf = await ggufTokenizer(FILES.stories260kGguf);
  });

  it('has 512 pieces with the Llama special ids', () => {
    for (const tok of [fromBin, fromGguf]) {
      expect(tok.vocabSize).toBe(512);
      expect([tok.unk, tok.bos, tok.eos]).toEqual([0, 1, 2]);
      expect(tok.addBos).toBe(true); // the GGUF has no add_bos_token key: the default
      expect(tok.isControl(1) && tok.isControl(2) && !tok.isControl(0)).toBe(true);
      expect(tok.tokenToPiece(1)).toBe('<s>');
      expect(tok.tokenToPiece(3)).toBe('<0x00>');
    }
    for (let id = 0; id < 512; id++) expect(fromBin.tokenToPiece(id)).toBe(fromGguf.tokenToPiece(id));
  });

  it('gives the ids llama2.c gives for known prompts', () => {
    // run.c with tok512.bin; these ids are the prompt tokens of llama2.c's stories260K runs
    expect(fromBin.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(fromBin.encode('Once upon a time, there was a little dragon')).toEqual([
      1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 279, 420, 412, 428, 289,
    ]);
  });

  it.each(PROMPTS.map((p) => [JSON.stringify(p), p] as const))('both loaders and the reference agree: %s', (_name, prompt) => {
    const reference = new Llama2cReferenceEncoder(sharedPath(FILES.tok512Bin), 512);
    const ids = fromBin.encode(prompt);
    expect(fromGguf.encode(prompt)).toEqual(ids);
    expect(ids).toEqual(reference.encode(prompt));
    expect(fromBin.decode(ids)).toBe(prompt);
    expect(fromGguf.decode(ids)).toBe(prompt);
  });
});
