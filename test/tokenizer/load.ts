/** Loads the tokenizers the tests compare, from the shared test data. */
import { readFileSync } from 'node:fs';

import { GgufMetadata, readGguf } from '../../lib/formats/gguf.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { sharedPath } from '../helpers/shared-data.js';

export const FILES = {
  tinyRandomGguf: 'models/llama-2-tiny-random/llama-2-tiny-random.gguf',
  vocabGguf: 'testdata/tokenizer/ggml-vocab-llama-spm.gguf',
  llama2Bin: 'models/llama2-tokenizer/tokenizer.bin',
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

