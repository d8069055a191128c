/**
 * decode() against SentencePiece (llama2-sp-decode.jsonl: text = sp.decode(ids)), and the
 * streaming decoder against decode() on those cases, on every encode case, and on random id
 * sequences full of split and broken UTF-8 byte runs.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import type { Tokenizer } from '../../lib/tokenizer/index.js';
import { describeWithShared } from '../helpers/shared-data.js';
import { FILES, llama2cTokenizer, readJsonl } from './load.js';
import { hasLoneSurrogate, pick, randomInt, seededRandom } from './random.js';

interface DecodeCase {
  ids: number[];
  pieces: string[];
  text: string;
}

/** All push() results and the final flush(), in order. */
function streamChunks(tok: Tokenizer, ids: readonly number[], stripLeadingSpace?: boolean): string[] {
  const decoder = tok.createDecoder(stripLeadingSpace === undefined ? {} : { stripLeadingSpace });
  const chunks = ids.map((id) => decoder.push(id));
  chunks.push(decoder.flush());
  return chunks;
}

function utf8Ids(tok: Tokenizer, s: string): number[] {
  return [...new TextEncoder().encode(s)].map((b) => 3 + b); // <0x00> is id 3 in Llama 2
}

// The vocabulary comes from tokenizer.bin: the GGUF reader currently loses the piece "\uFEFF"
// (see reference-cases.test.ts), which one encode case below needs.
describeWithShared([FILES.spDecode, FILES.spCases, FILES.llama2Bin], 'decode (Llama 2 vocab)', () => {
  const cases = readJsonl<DecodeCase>(FILES.spDecode);
  const encodeCases = readJsonl<{ text: string; ids: number[] }>(FILES.spCases);
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await llama2cTokenizer(FILES.llama2Bin, 32000);
  });

  it('has the 22 SentencePiece decode cases', () => {
    expect(cases).toHaveLength(22);
  });

  it.each(cases.map((c) => [JSON.stringify(c.ids), c] as const))('decode %s', (_name, c) => {
    expect(c.ids.map((id) => tok.tokenToPiece(id))).toEqual(c.pieces);
    expect(tok.decode(c.ids)).toBe(c.text);
    expect(streamChunks(tok, c.ids).join('')).toBe(c.text);
  });

  it('decodes every encode case back to its text (BOS dropped, dummy prefix removed)', () => {
    for (const c of encodeCases) {
      // A literal U+2581 is a space to SentencePiece, so it comes back as one.
      const expected = c.text.replaceAll('\u2581', ' ');
      expect(tok.decode(c.ids)).toBe(expected);
      expect(streamChunks(tok, c.ids).join('')).toBe(expected);
    }
  });

  it('removes the leading space once, and only while nothing has been output', () => {
    const hello = 15043; // ▁Hello
    const space = 29871; // ▁
    const newline = 13; // <0x0A>
    expect(tok.decode([space, space, hello])).toBe('  Hello');
    expect(tok.decode([1, hello])).toBe('Hello'); // control tokens output nothing
    expect(tok.decode([newline, hello])).toBe('\n Hello'); // bytes were output first
    expect(tok.decode([0, hello])).toBe(' \u2047  Hello');
    expect(tok.decode([hello], { stripLeadingSpace: false })).toBe(' Hello');
    expect(tok.decode([])).toBe('');
  });

  it('replaces each invalid byte with U+FFFD, as SentencePiece does (not as TextDecoder does)', () => {
    // E3 80 is a truncated 3-byte character: two replacement characters, not one.
    expect(tok.decode(utf8Ids(tok, '\u3042').slice(0, 2))).toBe('\ufffd\ufffd');
    // F0 9F then 'A' (as a byte): two U+FFFD then A.
    expect(tok.decode([3 + 0xf0, 3 + 0x9f, 3 + 0x41])).toBe('\ufffd\ufffdA');
    // overlong, surrogate and out-of-range encodings are invalid byte by byte
    expect(tok.decode([3 + 0xc0, 3 + 0x80])).toBe('\ufffd\ufffd');
    expect(tok.decode([3 + 0xed, 3 + 0xa0, 3 + 0x80])).toBe('\ufffd\ufffd\ufffd');
    expect(tok.decode([3 + 0xf4, 3 + 0x90, 3 + 0x80, 3 + 0x80])).toBe('\ufffd'.repeat(4));
    // a non-byte token ends a byte run: the bytes before it cannot complete a character
    const llama = utf8Ids(tok, '🦙');
    expect(tok.decode([...llama.slice(0, 2), 1, ...llama.slice(2)])).toBe('\ufffd'.repeat(4));
    expect(tok.decode(llama)).toBe('🦙');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([32000])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => tok.decode([-1])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => tok.decode([1.5])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => tok.createDecoder().push(40000)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });

  describe('streaming decoder', () => {
    it('holds a split character until it is complete', () => {
      const decoder = tok.createDecoder();
      const llama = utf8Ids(tok, '🦙');
      expect(llama.map((id) => decoder.push(id))).toEqual(['', '', '', '🦙']);
      expect(decoder.push(15043)).toBe(' Hello'); // not the first output: its space stays
      expect(decoder.flush()).toBe('');
    });

    it('emits U+FFFD as soon as a byte is proven invalid, and holds the rest', () => {
      const decoder = tok.createDecoder();
      expect(decoder.push(3 + 0xe3)).toBe('');
      expect(decoder.push(3 + 0x41)).toBe('\ufffdA');
      expect(decoder.push(3 + 0xe3)).toBe('');
      expect(decoder.push(3 + 0x81)).toBe('');
      expect(decoder.flush()).toBe('\ufffd\ufffd');
    });

    it('strips the leading space only at the start, unless told not to', () => {
      expect(streamChunks(tok, [1, 15043, 3186])).toEqual(['', 'Hello', ' world', '']);
      expect(streamChunks(tok, [15043, 3186], false)).toEqual([' Hello', ' world', '']);
      expect(streamChunks(tok, [29871, 15043])).toEqual(['', ' Hello', '']);
    });

    it('equals decode() on random id sequences with split and invalid byte runs', () => {
      const rng = seededRandom(0x5eed);
      const samples = ['é', 'ção', '東京', '🦙', '👩\u200d💻', '\u0301', '€', '\u{10ffff}', 'a'];
      for (let iter = 0; iter < 3000; iter++) {
        const ids: number[] = [];
        const n = randomInt(rng, 0, 24);
        while (ids.length < n) {
          const r = rng();
          if (r < 0.3) ids.push(...utf8Ids(tok, pick(rng, samples))); // whole character in bytes
          else if (r < 0.45) ids.push(...utf8Ids(tok, pick(rng, samples)).slice(0, randomInt(rng, 1, 4))); // cut short
          else if (r < 0.6) ids.push(3 + randomInt(rng, 0x80, 0x100)); // a lone high byte
          else if (r < 0.7) ids.push(pick(rng, [0, 1, 2])); // unk / bos / eos
          else if (r < 0.8) ids.push(pick(rng, [29871, 259, 15043, 3186, 13])); // spaces, words, newline
          else ids.push(randomInt(rng, 0, 32000)); // anything
        }
        for (const strip of [true, false]) {
          const chunks = streamChunks(tok, ids, strip);
          const whole = tok.decode(ids, { stripLeadingSpace: strip });
          const where = `ids ${JSON.stringify(ids)}, stripLeadingSpace ${strip}`;
          if (chunks.join('') !== whole) expect(chunks.join(''), where).toBe(whole);
          // Every chunk is valid text and a prefix-extension of decode(): so no chunk holds a
          // U+FFFD (or anything else) where decode() has a different character.
          let seen = '';
          for (const chunk of chunks) {
            seen += chunk;
            if (hasLoneSurrogate(chunk) || !whole.startsWith(seen)) expect.fail(`chunk ${JSON.stringify(chunk)} of ${where}`);
          }
        }
      }
    });
  });
});
