/**
 * The Llama tokenizer: one vocabulary (from GGUF metadata, a SentencePiece tokenizer.model, a
 * Hugging Face tokenizer.json or a llama2.c tokenizer.bin) with SentencePiece-compatible encode
 * and decode. loadTokenizerFile() (load.ts) picks the format of a file by its content.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import type { GgufMetadata } from '../formats/gguf.js';
import { type EncodeOptions, encode } from './bpe.js';
import { type DecodeOptions, StreamingDecoder, decode } from './decode.js';
import { vocabFromGguf } from './from-gguf.js';
import { vocabFromLlama2c } from './from-llama2c.js';
import { vocabFromSentencePiece } from './from-sentencepiece.js';
import { vocabFromTokenizerJson } from './from-tokenizer-json.js';
import { TokenType, Vocab, type VocabSpec } from './vocab.js';

export class Tokenizer {
  readonly vocab: Vocab;

  private constructor(vocab: Vocab) {
    this.vocab = vocab;
  }

  /** From already gathered pieces, scores and types (validated). */
  static fromVocab(spec: VocabSpec): Tokenizer {
    return new Tokenizer(new Vocab(spec));
  }

  /** From a GGUF file's `tokenizer.ggml.*` metadata; the model must be "llama". */
  static fromGguf(meta: GgufMetadata, source?: string): Tokenizer {
    return new Tokenizer(vocabFromGguf(meta, source));
  }

  /** From the bytes of a llama2.c tokenizer.bin; `vocabSize` is the model header's. */
  static fromLlama2c(bytes: Uint8Array, vocabSize: number, source?: string): Tokenizer {
    return new Tokenizer(vocabFromLlama2c(bytes, vocabSize, source));
  }

  /**
   * From the bytes of a SentencePiece `tokenizer.model` (a serialized ModelProto). Only what the
   * encoder reproduces exactly is accepted: a BPE model with the identity normalizer; anything
   * else is ERR_UNSUPPORTED naming the setting.
   */
  static fromSentencePiece(bytes: Uint8Array, source?: string): Tokenizer {
    return new Tokenizer(vocabFromSentencePiece(bytes, source));
  }

  /**
   * From a Hugging Face `tokenizer.json` (its text, or the parsed object) of a Llama-style BPE:
   * merge ranks become piece priorities for the same encoder. See from-tokenizer-json.ts for
   * what is accepted.
   */
  static fromTokenizerJson(json: string | object, source?: string): Tokenizer {
    return new Tokenizer(vocabFromTokenizerJson(json, source));
  }

  static async fromLlama2cFile(file: string, vocabSize: number): Promise<Tokenizer> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw new LlamaCudaError('ERR_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    return Tokenizer.fromLlama2c(bytes, vocabSize, path.basename(file));
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  get bos(): number {
    return this.vocab.bos;
  }

  get eos(): number {
    return this.vocab.eos;
  }

  get unk(): number {
    return this.vocab.unk;
  }

  /** Whether encode() prepends BOS by default. */
  get addBos(): boolean {
    return this.vocab.addBos;
  }

  encode(text: string, options?: EncodeOptions): number[] {
    return encode(this.vocab, text, options);
  }

  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    return decode(this.vocab, ids, options);
  }

  /** A streaming decoder for generated tokens; see StreamingDecoder. */
  createDecoder(options?: DecodeOptions): StreamingDecoder {
    return new StreamingDecoder(this.vocab, options);
  }

  /** The piece of a token as the vocabulary stores it (SentencePiece form: `▁` for a space). */
  tokenToPiece(id: number): string {
    this.vocab.checkId(id);
    return this.vocab.pieces[id] as string;
  }

  /** Control tokens (BOS, EOS, ...) decode to nothing. */
  isControl(id: number): boolean {
    this.vocab.checkId(id);
    return this.vocab.types[id] === TokenType.CONTROL;
  }
}
