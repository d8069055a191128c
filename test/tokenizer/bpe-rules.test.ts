/**
 * The BPE rules on small hand-made vocabularies, where each rule changes the answer:
 * score order, leftmost ties, byte fallback versus <unk>, user-defined, unused, control and
 * byte pieces, BOS/EOS options and special-token parsing.
 */
import { describe, expect, it } from 'vitest';

import { TokenType, Tokenizer } from '../../lib/tokenizer/index.js';

type Entry = readonly [piece: string, score: number, type?: TokenType];

/** ids 0..2 are <unk> <s> </s>; then, with `bytes`, <0x00>..<0xFF> (ids 3..258); then `entries`. */
function makeTokenizer(entries: readonly Entry[], options: { bytes?: boolean } = {}): Tokenizer {
  const all: Entry[] = [['<unk>', 0, TokenType.UNKNOWN], ['<s>', 0, TokenType.CONTROL], ['</s>', 0, TokenType.CONTROL]];
  if (options.bytes === true) {
    for (let b = 0; b < 256; b++) all.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0, TokenType.BYTE]);
  }
  all.push(...entries);
  return Tokenizer.fromVocab({
    source: 'test vocab',
    pieces: all.map((e) => e[0]),
    scores: all.map((e) => e[1]),
    types: all.map((e) => e[2] ?? TokenType.NORMAL),
    bos: 1,
    eos: 2,
    unk: 0,
    addBos: false,
    addEos: false,
  });
}

/** Encodes and returns pieces, which read better than ids. */
function pieces(tok: Tokenizer, text: string, options = {}): string[] {
  return tok.encode(text, options).map((id) => tok.tokenToPiece(id));
}

describe('BPE merge order', () => {
  it('merges the highest-scoring pair first', () => {
    const tok = makeTokenizer([['▁', -10], ['a', -10], ['b', -10], ['c', -10], ['ab', -2], ['bc', -1]]);
    expect(pieces(tok, 'abc')).toEqual(['▁', 'a', 'bc']);
  });

  it('breaks score ties by taking the leftmost pair', () => {
    const tok = makeTokenizer([['▁', -10], ['a', -10], ['aa', -1]]);
    expect(pieces(tok, 'aaa')).toEqual(['▁', 'aa', 'a']);
    expect(pieces(tok, 'aaaaa')).toEqual(['▁', 'aa', 'aa', 'a']);
  });

  it('builds long pieces through intermediate merges only', () => {
    const tok = makeTokenizer([['▁', -10], ['a', -10], ['b', -10], ['▁a', -1], ['▁ab', -2], ['ab', -3], ['abab', -4]]);
    // ▁a first (best), then ▁a+b, then a+b on the right: ▁ab ab (abab needs ab+ab, never formed)
    expect(pieces(tok, 'abab')).toEqual(['▁ab', 'ab']);
  });

  it('adds the dummy prefix, keeps runs of spaces and treats a literal ▁ as a space', () => {
    const tok = makeTokenizer([['▁', -10], ['a', -10], ['▁▁', -5], ['▁a', -1]]);
    expect(pieces(tok, 'a')).toEqual(['▁a']);
    expect(pieces(tok, ' a')).toEqual(['▁', '▁a']);
    expect(pieces(tok, '  a')).toEqual(['▁▁', '▁a']);
    expect(pieces(tok, '\u2581a')).toEqual(pieces(tok, ' a'));
    expect(tok.encode('')).toEqual([]);
  });

  it('does not add the dummy prefix when the vocabulary says so (add_space_prefix false)', () => {
    const tok = Tokenizer.fromVocab({
      source: 'test', pieces: ['<unk>', '<s>', '</s>', '▁', 'a', '▁a'], scores: [0, 0, 0, -1, -1, -1],
      types: [2, 3, 3, 1, 1, 1], bos: 1, eos: 2, unk: 0, addBos: false, addEos: false, addDummyPrefix: false,
    });
    expect(pieces(tok, 'a a')).toEqual(['a', '▁a']);
    expect(tok.decode(tok.encode('a a'))).toBe('a a'); // and decode keeps the text's own first space
    expect(tok.decode(tok.encode(' a'))).toBe(' a');
  });
});

describe('characters outside the vocabulary', () => {
  it('become the byte pieces of their UTF-8 encoding when the vocabulary has byte pieces', () => {
    const tok = makeTokenizer([['▁', -1], ['a', -1]], { bytes: true });
    expect(pieces(tok, 'aé🦙')).toEqual(['▁', 'a', '<0xC3>', '<0xA9>', '<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
    expect(tok.decode(tok.encode('aé🦙'))).toBe('aé🦙');
  });

  it('become <unk> without byte pieces, one <unk> per run (SentencePiece)', () => {
    const tok = makeTokenizer([['▁', -1], ['a', -1]]);
    expect(pieces(tok, 'xyaz')).toEqual(['▁', '<unk>', 'a', '<unk>']);
    expect(tok.decode(tok.encode('xyaz'))).toBe(' \u2047 a \u2047 ');
  });

  it('encode lone surrogates as U+FFFD', () => {
    const tok = makeTokenizer([['▁', -1]], { bytes: true });
    expect(pieces(tok, '\ud800')).toEqual(['▁', '<0xEF>', '<0xBF>', '<0xBD>']);
  });
});

describe('piece types', () => {
  it('never produces control pieces by merging, whatever the text', () => {
    const tok = makeTokenizer([['▁', -1], ['<', -1], ['s', -1], ['>', -1], ['/', -1], ['<s', -1], ['▁<', -1]]);
    expect(pieces(tok, '<s>')).toEqual(['▁<', 's', '>']);
    expect(tok.encode('<s></s>')).not.toContain(1);
    expect(tok.encode('<s></s>')).not.toContain(2);
  });

  it('never produces byte pieces from their text', () => {
    const tok = makeTokenizer([['▁', -1], ['<', -1], ['0', -1], ['x', -1], ['4', -1], ['1', -1], ['>', -1], ['<0', -1], ['<0x', -1], ['<0x4', -1], ['<0x41', -1]], { bytes: true });
    expect(pieces(tok, '<0x41>')).toEqual(['▁', '<0x41', '>']); // <0x41> is a piece, but a byte piece
  });

  it('matches user-defined pieces as whole symbols, with no new dummy prefix after them', () => {
    const tok = makeTokenizer([['▁', -1], ['a', -1], ['b', -1], ['<', -1], ['>', -1], ['x', -1], ['<x>', 0, TokenType.USER_DEFINED], ['a<', 5]]);
    // without the user-defined rule, a< (score 5) would merge first
    expect(pieces(tok, 'a<x>b')).toEqual(['▁', 'a', '<x>', 'b']);
  });

  it('undoes merges into unused pieces, as SentencePiece does', () => {
    const tok = makeTokenizer([['▁', -9], ['a', -9], ['b', -9], ['c', -9], ['ab', -1, TokenType.UNUSED], ['abc', -2]]);
    expect(pieces(tok, 'ab')).toEqual(['▁', 'a', 'b']); // "ab" is unused: split back
    expect(pieces(tok, 'abc')).toEqual(['▁', 'abc']); // but it is a step towards "abc"
  });
});

describe('BOS, EOS and special tokens', () => {
  const tok = makeTokenizer([['▁', -9], ['h', -9], ['i', -9], ['▁h', -1], ['▁hi', -2], ['<', -9], ['>', -9], ['s', -9], ['/', -9]]);

  it('adds BOS / EOS as asked, defaulting to the vocabulary flags', () => {
    expect(tok.encode('hi', { addBos: true, addEos: true })).toEqual([1, tok.encode('hi')[0], 2]);
    expect(tok.encode('', { addBos: true })).toEqual([1]);
    expect(tok.encode('hi')).not.toContain(1); // this vocabulary has addBos false
  });

  it('reads <s> in text as text unless parseSpecial is set', () => {
    expect(pieces(tok, '<s>hi</s>')).toEqual(['▁', '<', 's', '>', 'h', 'i', '<', '/', 's', '>']);
    expect(pieces(tok, '<s>hi</s>', { parseSpecial: true })).toEqual(['<s>', '▁hi', '</s>']);
  });

  it('gives each text segment after a special token its own dummy prefix (as llama.cpp)', () => {
    const ids = tok.encode('hi</s>hi<s><s><unk>', { parseSpecial: true });
    expect(ids).toEqual([...tok.encode('hi'), 2, ...tok.encode('hi'), 1, 1, 0]);
  });

  it('rejects a text that is not a string', () => {
    expect(() => tok.encode(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });
});
