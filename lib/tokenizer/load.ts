/**
 * loadTokenizerFile(): a tokenizer from a file of any supported format, recognized by its
 * content (never by its name):
 *
 *   GGUF              starts with the magic "GGUF"; the tokenizer.ggml.* metadata (only the
 *                     header is read, so a whole model file is fine)
 *   tokenizer.json    a JSON object with a "model" (Hugging Face tokenizers)
 *   tokenizer.model   a protobuf ModelProto (SentencePiece): starts with field 1, the pieces
 *   tokenizer.bin     llama2.c's format, which has no magic and does not store its size: it
 *                     needs `vocabSize`, the model's vocabulary size, and is what is left
 *
 * When nothing fits, the error says what each attempt found.
 */
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { readHead, withFile } from '../formats/file-io.js';
import { GGUF_MAGIC, GgufMetadata, parseGgufHeader, readGguf } from '../formats/gguf.js';
import { Tokenizer } from './tokenizer.js';

/** Larger files are not read whole: no tokenizer file is near this (Llama 2's are < 2 MB). */
const MAX_TOKENIZER_BYTES = 256 << 20;

/** The first byte of a serialized ModelProto: field 1 (pieces), wire type 2 (length-delimited). */
const PROTOBUF_PIECES_TAG = 0x0a;

export type TokenizerFileFormat = 'gguf' | 'tokenizer.json' | 'sentencepiece' | 'llama2c';

/**
 * A tokenizer from `file`. `vocabSize` (the model's vocabulary size) is needed only for a
 * llama2.c tokenizer.bin, which does not store it; the other formats carry their own size
 * (loadModel checks that it matches the model).
 */
export async function loadTokenizerFile(file: string, vocabSize?: number): Promise<Tokenizer> {
  if (typeof file !== 'string' || file === '') throw new LlamaCudaError('ERR_INVALID_ARG', 'loadTokenizerFile(path): path must be a non-empty string');
  if (vocabSize !== undefined && (!Number.isInteger(vocabSize) || vocabSize < 1)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `loadTokenizerFile: vocabSize must be a positive integer, got ${String(vocabSize)}`);
  }
  const name = path.basename(file);
  const head = await withFile(file, async (handle, size) => ({ bytes: await readHead(handle, 4), size }));
  if (head.bytes.length === 4 && new DataView(head.bytes.buffer, head.bytes.byteOffset).getUint32(0, true) === GGUF_MAGIC) {
    const gguf = await readGguf(file);
    return Tokenizer.fromGguf(new GgufMetadata(gguf.metadata, gguf.path), name);
  }
  if (head.size > MAX_TOKENIZER_BYTES) {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `${name} is ${head.size} bytes and not a GGUF file: too large to be a tokenizer file (tokenizer.json, tokenizer.model or tokenizer.bin)`);
  }
  const bytes = await withFile(file, async (handle, size) => {
    const all = new Uint8Array(size);
    const { bytesRead } = await handle.read(all, 0, size, 0);
    return all.subarray(0, bytesRead);
  });
  return tokenizerFromBytes(bytes, name, vocabSize);
}

/** The format of a tokenizer file by its first bytes (llama2c: none of the others). */
export function sniffTokenizerFormat(bytes: Uint8Array): TokenizerFileFormat {
  if (bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) === GGUF_MAGIC) return 'gguf';
  let i = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0; // UTF-8 BOM
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (bytes[i] === 0x7b) return 'tokenizer.json'; // '{'
  if (bytes[0] === PROTOBUF_PIECES_TAG) return 'sentencepiece';
  return 'llama2c';
}

/** Like loadTokenizerFile, for the bytes of a whole file; `source` names it in errors. */
export function tokenizerFromBytes(bytes: Uint8Array, source: string, vocabSize?: number): Tokenizer {
  const format = sniffTokenizerFormat(bytes);
  switch (format) {
    case 'gguf': {
      // a plain Uint8Array view: the GGUF reader copies arrays with slice(), which on a Node
      // Buffer would be a view of the whole pool
      const gguf = parseGgufHeader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.length, source);
      return Tokenizer.fromGguf(new GgufMetadata(gguf.metadata, source), source);
    }
    case 'tokenizer.json': {
      const text = new TextDecoder('utf-8').decode(bytes);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source} starts like JSON but is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json) || !('model' in json)) {
        throw new LlamaCudaError(
          'ERR_MODEL_FORMAT',
          `${source} is JSON but not a Hugging Face tokenizer.json (it has no "model"; tokenizer_config.json and special_tokens_map.json only go with one)`,
        );
      }
      return Tokenizer.fromTokenizerJson(json, source);
    }
    case 'sentencepiece': {
      try {
        return Tokenizer.fromSentencePiece(bytes, source);
      } catch (err) {
        // A llama2.c file whose max_token_length is 10 also starts with 0x0a: try that too.
        if (!(err instanceof LlamaCudaError) || err.code !== 'ERR_MODEL_FORMAT') throw err;
        if (vocabSize === undefined) {
          throw nothingFits(source, [`as a SentencePiece model: ${err.message}`, 'reading it as a llama2.c tokenizer.bin needs the model\'s vocabulary size (vocabSize)'], err);
        }
        try {
          return Tokenizer.fromLlama2c(bytes, vocabSize, source);
        } catch (err2) {
          throw nothingFits(source, [`as a SentencePiece model: ${err.message}`, `as a llama2.c tokenizer.bin: ${(err2 as Error).message}`], err);
        }
      }
    }
    case 'llama2c': {
      if (vocabSize === undefined) {
        throw nothingFits(source, ['it is not GGUF, JSON or a SentencePiece model, and reading it as a llama2.c tokenizer.bin needs the model\'s vocabulary size (vocabSize)']);
      }
      try {
        return Tokenizer.fromLlama2c(bytes, vocabSize, source);
      } catch (err) {
        if (!(err instanceof LlamaCudaError) || err.code !== 'ERR_MODEL_FORMAT') throw err;
        throw nothingFits(source, ['it does not start with the GGUF magic, "{" (tokenizer.json) or a SentencePiece pieces field', `as a llama2.c tokenizer.bin: ${err.message}`], err);
      }
    }
  }
}

function nothingFits(source: string, attempts: string[], cause?: unknown): LlamaCudaError {
  return new LlamaCudaError(
    'ERR_MODEL_FORMAT',
    `${source} is not a tokenizer file this library reads (GGUF, tokenizer.json, SentencePiece tokenizer.model, llama2.c tokenizer.bin): ${attempts.join('; ')}`,
    cause === undefined ? undefined : { cause },
  );
}
