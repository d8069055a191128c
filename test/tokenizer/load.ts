/**
 * Loads the tokenizers the tests compare, and the reference cases, from the shared test data;
 * defineParityTests() is the SentencePiece parity suite every Llama 2 vocabulary loader runs.
 */
import { readFileSync } from 'node:fs';

import { beforeAll, expect, it } from 'vitest';

import { GgufMetadata, readGguf } from '../../lib/formats/gguf.js';
import { parseSentencePieceModel } from '../../lib/tokenizer/from-sentencepiece.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { sharedPath } from '../helpers/shared-data.js';
import { type MakeTokenizerJsonOptions, makeTokenizerJson } from './make-tokenizer-json.js';
import { seededRandom, randomText } from './random.js';

export const FILES = {
  tinyRandomGguf: 'models/llama-2-tiny-random/llama-2-tiny-random.gguf',
  vocabGguf: 'testdata/tokenizer/ggml-vocab-llama-spm.gguf',
  llama2Bin: 'models/llama2-tokenizer/tokenizer.bin',
  llama2Model: 'models/llama2-tokenizer/tokenizer.model',
  stories260kGguf: 'models/stories260K/stories260K.gguf',
  tok512Bin: 'models/stories260K/tok512.bin',
  spCases: 'testdata/tokenizer/llama2-sp-cases.jsonl',
  spDecode: 'testdata/tokenizer/llama2-sp-decode.jsonl',
  vectorsInp: 'testdata/tokenizer/ggml-vocab-llama-spm.gguf.inp',
  vectorsOut: 'testdata/tokenizer/ggml-vocab-llama-spm.gguf.out',
  bigText: 'seeds/003_d2b18904cbe7098a.txt',
} as const;

export async function ggufTokenizer(file: string): Promise<Tokenizer> {
  const gguf = await readGguf(sharedPath(file));
  return Tokenizer.fromGguf(new GgufMetadata(gguf.metadata, gguf.path));
}

export function llama2cTokenizer(file: string, vocabSize: number): Promise<Tokenizer> {
  return Tokenizer.fromLlama2cFile(sharedPath(file), vocabSize);
}

/** Parses a JSON Lines file of the shared test data. */
export function readJsonl<T>(file: string): T[] {
  return readFileSync(sharedPath(file), 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as T);
}


/** Real SentencePiece encodings: ids = [1] + sp.encode(text). */
export interface SpCase {
  readonly text: string;
  readonly ids: number[];
}

/** Real SentencePiece decodings: text = sp.decode(ids). */
export interface SpDecodeCase {
  readonly ids: number[];
  readonly pieces: string[];
  readonly text: string;
}

export function readSpCases(): SpCase[] {
  return readJsonl<SpCase>(FILES.spCases);
}

export function readSpDecodeCases(): SpDecodeCase[] {
  return readJsonl<SpDecodeCase>(FILES.spDecode);
}

/** llama.cpp's 46 test vectors for the Llama SPM vocabulary (ids without BOS). */
export function readLlamaVectors(): SpCase[] {
  const inputs = readFileSync(sharedPath(FILES.vectorsInp), 'utf8').split('\n__ggml_vocab_test__\n');
  const outputs = readFileSync(sharedPath(FILES.vectorsOut), 'utf8').split('\n');
  return outputs.slice(0, 46).map((line, i) => ({
    text: inputs[i] as string,
    ids: line.split(' ').filter((x) => x.length > 0).map(Number),
  }));
}

/** Llama 2's SentencePiece tokenizer.model. */
export function sentencePieceTokenizer(): Tokenizer {
  return Tokenizer.fromSentencePiece(readFileSync(sharedPath(FILES.llama2Model)), 'tokenizer.model');
}

const jsonCache = new Map<string, string>();

/** A tokenizer.json converted from Llama 2's tokenizer.model (see make-tokenizer-json.ts). */
export function llama2TokenizerJson(options: MakeTokenizerJsonOptions = {}): string {
  const key = JSON.stringify(options);
  let json = jsonCache.get(key);
  if (json === undefined) {
    json = makeTokenizerJson(parseSentencePieceModel(readFileSync(sharedPath(FILES.llama2Model))), options);
    jsonCache.set(key, json);
  }
  return json;
}

/**
 * The SentencePiece parity suite for a loader of the Llama 2 vocabulary: every case of
 * llama2-sp-cases.jsonl, llama.cpp's 46 vectors, the decode cases, special tokens only when
 * asked, and decode(encode(s)) === s on random strings. Needs FILES.spCases, spDecode,
 * vectorsInp and vectorsOut (besides what `load` reads).
 */
export function defineParityTests(load: () => Tokenizer | Promise<Tokenizer>): void {
  const cases = readSpCases();
  const vectors = readLlamaVectors();
  const decodeCases = readSpDecodeCases();
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await load();
  });

  it('has the Llama 2 vocabulary and all reference cases', () => {
    expect([tok.vocabSize, tok.bos, tok.eos, tok.unk, tok.addBos, tok.vocab.addEos]).toEqual([32000, 1, 2, 0, true, false]);
    expect([cases.length, vectors.length, decodeCases.length]).toEqual([265, 46, 22]);
  });

  it.each(cases.map((c, i) => [i, JSON.stringify(c.text).slice(0, 60), c] as const))('SentencePiece case %i: %s', (_i, _name, c) => {
    expect(tok.encode(c.text)).toEqual(c.ids);
  });

  it.each(vectors.map((v, i) => [i, JSON.stringify(v.text).slice(0, 60), v] as const))('llama.cpp vector %i: %s', (_i, _name, v) => {
    expect(tok.encode(v.text, { addBos: false })).toEqual(v.ids);
  });

  it.each(decodeCases.map((c) => [JSON.stringify(c.ids), c] as const))('decode %s', (_name, c) => {
    expect(c.ids.map((id) => tok.tokenToPiece(id))).toEqual(c.pieces);
    expect(tok.decode(c.ids)).toBe(c.text);
    const decoder = tok.createDecoder();
    expect(c.ids.map((id) => decoder.push(id)).join('') + decoder.flush()).toBe(c.text);
  });

  it('decodes every SentencePiece case back to its text (a literal ▁ is a space)', () => {
    for (const c of cases) expect(tok.decode(c.ids)).toBe(c.text.replaceAll('\u2581', ' '));
  });

  it('recognizes <s>, </s> and <unk> only with parseSpecial', () => {
    const plain = tok.encode('<s>hi</s>', { addBos: false });
    expect(plain.slice(0, 3).map((id) => tok.tokenToPiece(id))).toEqual(['▁<', 's', '>']);
    expect(plain).not.toContain(1);
    expect(plain).not.toContain(2);
    expect(tok.encode('<s>hi</s>', { addBos: false, parseSpecial: true })).toEqual([1, 7251, 2]);
    expect(tok.encode('a<unk>b', { addBos: false, parseSpecial: true })).toEqual([...tok.encode('a', { addBos: false }), 0, ...tok.encode('b', { addBos: false })]);
    expect(tok.encode('<s>')).toEqual(cases.find((c) => c.text === '<s>')?.ids);
  });

  it('decode(encode(s)) === s for 1000 random strings (a literal ▁ comes back as a space)', () => {
    const rng = seededRandom(20241123);
    for (let i = 0; i < 1000; i++) {
      const s = randomText(rng, 12);
      const back = tok.decode(tok.encode(s));
      const expected = s.replaceAll('\u2581', ' ');
      if (back !== expected) expect(back, JSON.stringify(s)).toBe(expected);
    }
  });
}
