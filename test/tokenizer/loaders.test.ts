/**
 * Loading a vocabulary from GGUF metadata and from llama2.c's tokenizer.bin, and the errors
 * for malformed or unsupported data (always a LlamaCudaError with a code and a clear message).
 */
import { readFileSync } from 'node:fs';

import { beforeAll, describe, expect, it } from 'vitest';

import { type GgufEntry, GgufMetadata, GgufValueType } from '../../lib/formats/gguf.js';
import { TokenType, Tokenizer } from '../../lib/tokenizer/index.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { FILES, ggufTokenizer, llama2cTokenizer } from './load.js';
import { expectErrorCode } from '../helpers/errors.js';

// ---- llama2.c tokenizer.bin ----

interface BinEntry {
  score: number;
  piece: string;
  /** Stored length when it should differ from the piece's byte length (malformed files). */
  length?: number;
}

function llama2cBin(maxTokenLength: number, entries: readonly BinEntry[]): Uint8Array {
  const parts: number[] = [];
  const i32 = (v: number): void => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    parts.push(...b);
  };
  i32(maxTokenLength);
  for (const e of entries) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(e.score);
    parts.push(...b);
    const bytes = new TextEncoder().encode(e.piece);
    i32(e.length ?? bytes.length);
    parts.push(...bytes);
  }
  return new Uint8Array(parts);
}

const SMALL_BIN: BinEntry[] = [
  { score: 0, piece: '<unk>' },
  { score: 0, piece: '\n<s>\n' },
  { score: 0, piece: '\n</s>\n' },
  { score: -1, piece: ' ' },
  { score: -2, piece: 'h' },
  { score: -3, piece: 'i' },
  { score: -4, piece: ' h' },
  { score: -5, piece: ' hi' },
];

describe('llama2.c tokenizer.bin', () => {
  it('restores ▁ and the <s> / </s> pieces, and infers token types', () => {
    const tok = Tokenizer.fromLlama2c(llama2cBin(6, SMALL_BIN), SMALL_BIN.length);
    expect([0, 1, 2, 3, 7].map((id) => tok.tokenToPiece(id))).toEqual(['<unk>', '<s>', '</s>', '▁', '▁hi']);
    expect(tok.vocab.types.slice(0, 4)).toEqual(new Uint8Array([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.NORMAL]));
    expect([tok.bos, tok.eos, tok.unk, tok.addBos]).toEqual([1, 2, 0, true]);
    expect(tok.encode('hi hi')).toEqual([1, 7, 7]);
    expect(tok.decode([1, 7, 7, 2])).toBe('hi hi');
  });

  it('fails on every truncation of a valid file', () => {
    const bytes = llama2cBin(6, SMALL_BIN);
    for (let size = 0; size < bytes.length; size++) {
      expectErrorCode(() => Tokenizer.fromLlama2c(bytes.subarray(0, size), SMALL_BIN.length), 'ERR_MODEL_FORMAT', /tokenizer\.bin: not a valid llama2\.c tokenizer file: .*(too short|truncated|past the end)/);
    }
  });

  it('fails on a negative length', () => {
    const bytes = llama2cBin(6, [...SMALL_BIN.slice(0, 4), { score: 0, piece: 'h', length: -5 }, ...SMALL_BIN.slice(5)]);
    expectErrorCode(() => Tokenizer.fromLlama2c(bytes, SMALL_BIN.length), 'ERR_MODEL_FORMAT', /token 4 has a negative length -5/);
  });

  it('fails on a length past the end of the file', () => {
    const bytes = llama2cBin(1000, [...SMALL_BIN.slice(0, 7), { score: 0, piece: ' hi', length: 500 }]);
    expectErrorCode(() => Tokenizer.fromLlama2c(bytes, SMALL_BIN.length), 'ERR_MODEL_FORMAT', /token 7 \(500 bytes at byte \d+\) runs past the end of the file/);
  });

  it('fails on a piece longer than max_token_length', () => {
    expectErrorCode(() => Tokenizer.fromLlama2c(llama2cBin(3, SMALL_BIN), SMALL_BIN.length), 'ERR_MODEL_FORMAT', /token 0 is 5 bytes, longer than max_token_length 3/);
  });

  it('fails when the file holds more pieces than the model vocabulary', () => {
    expectErrorCode(() => Tokenizer.fromLlama2c(llama2cBin(6, SMALL_BIN), 5), 'ERR_MODEL_FORMAT', /bytes are left after 5 tokens: is vocabSize 5/);
  });

  it('rejects a vocabSize that cannot be right', () => {
    for (const n of [0, 2, 2.5, Number.NaN]) expectErrorCode(() => Tokenizer.fromLlama2c(llama2cBin(6, SMALL_BIN), n), 'ERR_INVALID_ARG', /vocabSize/);
  });

  it('reports a missing file as ERR_IO', async () => {
    await expect(Tokenizer.fromLlama2cFile('/nonexistent/tokenizer.bin', 32000)).rejects.toMatchObject({ code: 'ERR_IO' });
  });
});

// ---- GGUF metadata ----

function str(value: string): GgufEntry {
  return { type: GgufValueType.STRING, value };
}
function u32(value: number): GgufEntry {
  return { type: GgufValueType.UINT32, value };
}
function bool(value: boolean): GgufEntry {
  return { type: GgufValueType.BOOL, value };
}
function strings(value: string[]): GgufEntry {
  return { type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value };
}
function f32s(value: number[]): GgufEntry {
  return { type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: new Float32Array(value) };
}
function i32s(value: number[]): GgufEntry {
  return { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: new Int32Array(value) };
}

const BYTE_PIECES = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
const PIECES = ['<unk>', '<s>', '</s>', ...BYTE_PIECES, '▁', 'h', 'i', '▁h', '▁hi'];
const TYPES = [2, 3, 3, ...BYTE_PIECES.map(() => 6), 1, 1, 1, 1, 1];
const SCORES = PIECES.map((_, i) => (i < 259 ? 0 : -i));

/** Synthetic tokenizer metadata; `changes` replace (or, with undefined, remove) keys. */
function meta(changes: Record<string, GgufEntry | undefined> = {}): GgufMetadata {
  const map = new Map<string, GgufEntry>([
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', strings(PIECES)],
    ['tokenizer.ggml.scores', f32s(SCORES)],
    ['tokenizer.ggml.token_type', i32s(TYPES)],
    ['tokenizer.ggml.bos_token_id', u32(1)],
    ['tokenizer.ggml.eos_token_id', u32(2)],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
  ]);
  for (const [key, entry] of Object.entries(changes)) {
    if (entry === undefined) map.delete(key);
    else map.set(key, entry);
  }
  return new GgufMetadata(map, 'synthetic.gguf');
}

describe('GGUF metadata', () => {
  it('loads a minimal vocabulary with llama.cpp defaults for absent keys', () => {
    const tok = Tokenizer.fromGguf(meta());
    expect(tok.vocabSize).toBe(PIECES.length);
    expect([tok.bos, tok.eos, tok.unk, tok.addBos, tok.vocab.addEos]).toEqual([1, 2, 0, true, false]);
    expect(tok.encode('hi é', { addBos: false }).map((id) => tok.tokenToPiece(id))).toEqual(['▁hi', '▁', '<0xC3>', '<0xA9>']);
    const noIds = Tokenizer.fromGguf(meta({ 'tokenizer.ggml.bos_token_id': undefined, 'tokenizer.ggml.eos_token_id': undefined, 'tokenizer.ggml.unknown_token_id': undefined }));
    expect([noIds.bos, noIds.eos, noIds.unk]).toEqual([1, 2, 0]);
  });

  it('honours add_bos_token / add_eos_token', () => {
    const tok = Tokenizer.fromGguf(meta({ 'tokenizer.ggml.add_bos_token': bool(false), 'tokenizer.ggml.add_eos_token': bool(true) }));
    expect(tok.encode('hi')).toEqual([PIECES.indexOf('▁hi'), 2]);
  });

  it('infers token types when token_type is absent', () => {
    const tok = Tokenizer.fromGguf(meta({ 'tokenizer.ggml.token_type': undefined }));
    expect(Array.from(tok.vocab.types)).toEqual(TYPES);
  });

  it('rejects a tokenizer model other than "llama" as unsupported, naming it', () => {
    expectErrorCode(() => Tokenizer.fromGguf(meta({ 'tokenizer.ggml.model': str('gpt2') })), 'ERR_UNSUPPORTED', /tokenizer model "gpt2" is not supported/);
  });

  it.each([
    ['no tokenizer.ggml.model', { 'tokenizer.ggml.model': undefined }, /"tokenizer\.ggml\.model" is missing/],
    ['no tokens', { 'tokenizer.ggml.tokens': undefined }, /missing "tokenizer\.ggml\.tokens"/],
    ['no scores', { 'tokenizer.ggml.scores': undefined }, /missing "tokenizer\.ggml\.scores"/],
    ['fewer scores than tokens', { 'tokenizer.ggml.scores': f32s(SCORES.slice(1)) }, /264 tokens but 263 scores/],
    ['more token types than tokens', { 'tokenizer.ggml.token_type': i32s([...TYPES, 1]) }, /264 tokens but 265 token types/],
    ['bos out of range', { 'tokenizer.ggml.bos_token_id': u32(264) }, /bos token id 264 is out of range \(vocabulary of 264\)/],
    ['an unknown token type', { 'tokenizer.ggml.token_type': i32s([...TYPES.slice(0, 260), 9, 1, 1, 1]) }, /token 260 \("h"\) has unknown token type 9/],
    ['a NaN score', { 'tokenizer.ggml.scores': f32s([...SCORES.slice(0, 261), Number.NaN, ...SCORES.slice(262)]) }, /token 261 \("i"\) has a NaN score/],
    ['a duplicate byte piece', { 'tokenizer.ggml.tokens': strings([...PIECES.slice(0, 4), '<0x00>', ...PIECES.slice(5)]) }, /the piece "<0x00>" appears twice, as tokens 3 and 4/],
    ['a byte piece of the wrong form', { 'tokenizer.ggml.tokens': strings([...PIECES.slice(0, 13), '<0x0a>', ...PIECES.slice(14)]) }, /byte token 13 is "<0x0a>", not of the form <0xXX>/],
    ['missing byte pieces', { 'tokenizer.ggml.token_type': i32s([...TYPES.slice(0, 13), 1, ...TYPES.slice(14)]) }, /255 byte tokens; byte fallback needs all 256, missing <0x0A>/],
    ['a duplicate normal piece', { 'tokenizer.ggml.tokens': strings([...PIECES.slice(0, 263), '▁h']) }, /the piece "▁h" appears twice, as tokens 262 and 263/],
    ['tokens that are not strings', { 'tokenizer.ggml.tokens': f32s([1, 2, 3]) }, /should be an array of strings/],
  ] as const)('rejects %s', (_name, changes, message) => {
    expectErrorCode(() => Tokenizer.fromGguf(meta(changes)), 'ERR_MODEL_FORMAT', message);
  });
});

describeWithShared([FILES.tinyRandomGguf, FILES.vocabGguf, FILES.llama2Bin], 'the Llama 2 vocabulary from real files', () => {
  let fromGguf: Tokenizer;
  let fromBin: Tokenizer;
  beforeAll(async () => {
    fromGguf = await ggufTokenizer(FILES.tinyRandomGguf);
    fromBin = await llama2cTokenizer(FILES.llama2Bin, 32000);
  });

  it('has the Llama 2 special tokens and flags', () => {
    for (const tok of [fromGguf, fromBin]) {
      expect([tok.vocabSize, tok.bos, tok.eos, tok.unk, tok.addBos]).toEqual([32000, 1, 2, 0, true]);
      expect([tok.isControl(0), tok.isControl(1), tok.isControl(2), tok.isControl(3), tok.isControl(29871)]).toEqual([false, true, true, false, false]);
      expect([0, 1, 2, 3, 13, 258, 259, 29871, 15043].map((id) => tok.tokenToPiece(id))).toEqual(['<unk>', '<s>', '</s>', '<0x00>', '<0x0A>', '<0xFF>', '▁▁', '▁', '▁Hello']);
    }
  });

  it('is the same vocabulary from GGUF and from tokenizer.bin (pieces, scores, types)', () => {
    for (let id = 0; id < 32000; id++) {
      if (fromGguf.tokenToPiece(id) !== fromBin.tokenToPiece(id)) expect(fromGguf.tokenToPiece(id), `piece ${id}`).toBe(fromBin.tokenToPiece(id));
    }
    expect(fromGguf.vocab.scores).toEqual(fromBin.vocab.scores);
    expect(fromGguf.vocab.types).toEqual(fromBin.vocab.types);
    expect(fromBin.tokenToPiece(30143)).toBe('\ufeff');
    expect(fromGguf.tokenToPiece(30143)).toBe('\ufeff'); // a piece that is a lone BOM survives the GGUF reader
  });

  it('rejects a truncated copy of the real tokenizer.bin', () => {
    const bytes = readFileSync(sharedPath(FILES.llama2Bin));
    expectErrorCode(() => Tokenizer.fromLlama2c(bytes.subarray(0, 100_000), 32000), 'ERR_MODEL_FORMAT', /truncated|runs past the end/);
    expectErrorCode(() => Tokenizer.fromLlama2c(bytes, 32001), 'ERR_MODEL_FORMAT', /truncated: the file ends at byte 433869 inside the entry of token 32000/);
    expectErrorCode(() => Tokenizer.fromLlama2c(bytes, 512), 'ERR_MODEL_FORMAT', /is vocabSize 512 the model's vocabulary size/);
  });

  it('rejects out-of-range ids in tokenToPiece and isControl', () => {
    expectErrorCode(() => fromBin.tokenToPiece(32000), 'ERR_INVALID_ARG', /token id 32000 is out of range/);
    expectErrorCode(() => fromBin.isControl(-1), 'ERR_INVALID_ARG', /token id -1 is out of range/);
  });
});
