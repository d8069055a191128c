/** Special-token parsing with the real Llama 2 vocabulary. */
import { beforeAll, expect, it } from 'vitest';

import type { Tokenizer } from '../../lib/tokenizer/index.js';
import { describeWithShared } from '../helpers/shared-data.js';
import { FILES, ggufTokenizer, readJsonl } from './load.js';

describeWithShared([FILES.vocabGguf, FILES.spCases], 'special tokens (Llama 2 vocab)', () => {
  const spCases = readJsonl<{ text: string; ids: number[] }>(FILES.spCases);
  let tok: Tokenizer;
  let hi: number[];
  beforeAll(async () => {
    tok = await ggufTokenizer(FILES.vocabGguf);
    hi = tok.encode('hi', { addBos: false });
  });

  it('parses <s> and </s> only with parseSpecial', () => {
    expect(hi).toEqual([7251]); // ▁hi
    expect(tok.encode('<s>hi</s>', { addBos: false, parseSpecial: true })).toEqual([1, 7251, 2]);
    const plain = tok.encode('<s>hi</s>', { addBos: false });
    expect(plain).not.toContain(1);
    expect(plain).not.toContain(2);
    expect(plain.slice(0, 3).map((id) => tok.tokenToPiece(id))).toEqual(['▁<', 's', '>']);
    // user text without parseSpecial is exactly what SentencePiece gives
    const reference = spCases.find((c) => c.text === '<s>');
    expect(reference).toBeDefined();
    expect(tok.encode('<s>')).toEqual(reference?.ids);
  });

  it('encodes each segment after a special token as its own text (dummy prefix again)', () => {
    const text = '[INST] Hi there [/INST] Hello!</s><s>[INST] Bye [/INST]';
    const ids = tok.encode(`<s>${text}`, { addBos: false, parseSpecial: true });
    const noBos = { addBos: false } as const;
    expect(ids).toEqual([
      1, ...tok.encode('[INST] Hi there [/INST] Hello!', noBos), 2,
      1, ...tok.encode('[INST] Bye [/INST]', noBos),
    ]);
  });

  it('parses <unk> too, and keeps BOS / EOS options separate from the text', () => {
    expect(tok.encode('a<unk>b', { addBos: false, parseSpecial: true })).toEqual([...tok.encode('a', { addBos: false }), 0, ...tok.encode('b', { addBos: false })]);
    expect(tok.encode('<s>', { parseSpecial: true })).toEqual([1, 1]); // the caller asked for BOS twice
    expect(tok.encode('', { parseSpecial: true, addEos: true })).toEqual([1, 2]);
  });

  it('gives the same ids as without parseSpecial when the text has no special tokens', () => {
    for (const c of spCases) {
      if (c.text.includes('<s>') || c.text.includes('</s>') || c.text.includes('<unk>')) continue;
      expect(tok.encode(c.text, { parseSpecial: true })).toEqual(tok.encode(c.text));
    }
  });
});
