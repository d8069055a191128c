/**
 * The vocabulary of a Llama (SentencePiece BPE) tokenizer: pieces in SentencePiece form
 * (U+2581 `▁` stands for a space), their merge scores and token types, the special ids, and the
 * lookup tables that encoding and decoding need. Built once per model and validated here, so
 * the encoder and decoder can trust it.
 */
import { LlamaCudaError } from '../errors.js';
import { PieceMatcher } from './piece-matcher.js';

/** Token types as GGUF stores them (llama.cpp's llama_token_type). */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/** SentencePiece's meta symbol for a space. */
export const SPACE_SYMBOL = '\u2581';

/** What a loader gathers from a file; `Vocab` validates it. */
export interface VocabSpec {
  /** Where the data came from (a file name), used in error messages. */
  readonly source: string;
  readonly pieces: readonly string[];
  readonly scores: ArrayLike<number>;
  /** One TokenType per piece; 0 (GGUF "undefined") is read as NORMAL. */
  readonly types: ArrayLike<number>;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** SentencePiece add_dummy_prefix (llama.cpp add_space_prefix); true for Llama. */
  readonly addDummyPrefix?: boolean;
}

const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/** The byte value of a `<0xXX>` piece, or -1. */
export function bytePieceValue(piece: string): number {
  const m = BYTE_PIECE.exec(piece);
  return m === null ? -1 : parseInt(m[1] as string, 16);
}

/** `<0xXX>` for a byte value. */
export function bytePiece(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/**
 * The type of a piece in a file that stores no types (llama2.c tokenizer.bin, old GGUF files),
 * by the rules llama.cpp's llama2.c converter uses: unk / bos / eos by id, empty pieces are
 * control, `<0xXX>` pieces are bytes, the rest normal.
 */
export function inferTokenType(id: number, piece: string, special: { unk: number; bos: number; eos: number }): TokenType {
  if (id === special.unk) return TokenType.UNKNOWN;
  if (id === special.bos || id === special.eos || piece.length === 0) return TokenType.CONTROL;
  if (bytePieceValue(piece) >= 0) return TokenType.BYTE;
  return TokenType.NORMAL;
}

/** Whether every `▁` in `piece` belongs to its leading run of `▁`. */
function spacesOnlyLead(piece: string): boolean {
  let i = 0;
  while (i < piece.length && piece[i] === SPACE_SYMBOL) i++;
  return piece.indexOf(SPACE_SYMBOL, i) === -1;
}

function formatError(source: string, message: string): LlamaCudaError {
  return new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: invalid tokenizer vocabulary: ${message}`);
}

export class Vocab {
  readonly source: string;
  readonly pieces: readonly string[];
  readonly scores: Float32Array;
  readonly types: Uint8Array;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addDummyPrefix: boolean;
  /** Id of the piece `<0xXX>` for each byte value; all -1 when there is no byte fallback. */
  readonly byteIds: Int32Array;
  /** For each id, the byte value of a BYTE piece, or -1. */
  readonly byteValues: Int16Array;
  /** True when the vocabulary has all 256 byte pieces (SentencePiece byte_fallback). */
  readonly byteFallback: boolean;
  /** Pieces that BPE merges may produce (normal, user-defined and unused ones) → id. */
  readonly mergeable: ReadonlyMap<string, number>;
  /** Longest mergeable piece, in UTF-16 units: longer pairs need no lookup. */
  readonly maxMergeableLength: number;
  /**
   * True when `▁` occurs in mergeable pieces only in a leading run (`▁the`, `▁▁▁`, never
   * `a▁`), as in every SentencePiece vocabulary trained with whitespace splitting. No merge can
   * then cross the boundary between a non-`▁` character and a following `▁`, so the encoder
   * may run BPE on each word separately (same result, much smaller queues).
   */
  readonly wordsAreIndependent: boolean;
  /** User-defined pieces: SentencePiece always matches them as whole symbols. */
  readonly userDefinedMatcher: PieceMatcher;
  /** Control, unknown and user-defined pieces: what `parseSpecial` recognizes in text. */
  readonly specialMatcher: PieceMatcher;

  constructor(spec: VocabSpec) {
    const { source, pieces } = spec;
    const n = pieces.length;
    if (n === 0) throw formatError(source, 'it has no tokens');
    if (spec.scores.length !== n) throw formatError(source, `${n} tokens but ${spec.scores.length} scores`);
    if (spec.types.length !== n) throw formatError(source, `${n} tokens but ${spec.types.length} token types`);
    for (const [name, id] of [['bos', spec.bos], ['eos', spec.eos], ['unknown', spec.unk]] as const) {
      if (!Number.isInteger(id) || id < 0 || id >= n) throw formatError(source, `${name} token id ${id} is out of range (vocabulary of ${n})`);
    }

    const scores = new Float32Array(n);
    const types = new Uint8Array(n);
    const byteIds = new Int32Array(256).fill(-1);
    const byteValues = new Int16Array(n).fill(-1);
    const mergeable = new Map<string, number>();
    const encodable = new Map<string, number>(); // mergeable + byte pieces, for the duplicate check
    const userDefined: [string, number][] = [];
    const special: [string, number][] = [];
    let maxMergeableLength = 0;
    let wordsAreIndependent = true;
    let nBytes = 0;

    for (let id = 0; id < n; id++) {
      const piece = pieces[id] as string;
      if (typeof piece !== 'string') throw formatError(source, `token ${id} is not a string`);
      const score = spec.scores[id] as number;
      if (Number.isNaN(score)) throw formatError(source, `token ${id} (${JSON.stringify(piece)}) has a NaN score`);
      scores[id] = score;
      const rawType = spec.types[id] as number;
      const type = rawType === 0 ? TokenType.NORMAL : rawType;
      if (!Number.isInteger(type) || type < TokenType.NORMAL || type > TokenType.BYTE) {
        throw formatError(source, `token ${id} (${JSON.stringify(piece)}) has unknown token type ${rawType}`);
      }
      types[id] = type;

      if (type === TokenType.BYTE || type === TokenType.NORMAL || type === TokenType.USER_DEFINED || type === TokenType.UNUSED) {
        const prev = encodable.get(piece);
        if (prev !== undefined) throw formatError(source, `the piece ${JSON.stringify(piece)} appears twice, as tokens ${prev} and ${id}`);
        encodable.set(piece, id);
      }
      if (type === TokenType.BYTE) {
        const byte = bytePieceValue(piece);
        if (byte < 0) throw formatError(source, `byte token ${id} is ${JSON.stringify(piece)}, not of the form <0xXX>`);
        byteIds[byte] = id;
        byteValues[id] = byte;
        nBytes++;
      } else if (type === TokenType.NORMAL || type === TokenType.USER_DEFINED || type === TokenType.UNUSED) {
        mergeable.set(piece, id);
        if (piece.length > maxMergeableLength) maxMergeableLength = piece.length;
        if (wordsAreIndependent && piece.length > 1 && !spacesOnlyLead(piece)) wordsAreIndependent = false;
        if (type === TokenType.USER_DEFINED) userDefined.push([piece, id]);
      }
      if (type === TokenType.CONTROL || type === TokenType.UNKNOWN || type === TokenType.USER_DEFINED) special.push([piece, id]);
    }

    // Byte fallback needs every byte; a partial set would make some text unencodable.
    if (nBytes > 0 && nBytes < 256) {
      const missing: string[] = [];
      for (let b = 0; b < 256; b++) if (byteIds[b] === -1) missing.push(bytePiece(b));
      throw formatError(source, `it has ${nBytes} byte tokens; byte fallback needs all 256, missing ${missing.slice(0, 8).join(' ')}${missing.length > 8 ? ' ...' : ''}`);
    }

    this.source = source;
    this.pieces = pieces;
    this.scores = scores;
    this.types = types;
    this.bos = spec.bos;
    this.eos = spec.eos;
    this.unk = spec.unk;
    this.addBos = spec.addBos;
    this.addEos = spec.addEos;
    this.addDummyPrefix = spec.addDummyPrefix ?? true;
    this.byteIds = byteIds;
    this.byteValues = byteValues;
    this.byteFallback = nBytes === 256;
    this.mergeable = mergeable;
    this.maxMergeableLength = maxMergeableLength;
    this.wordsAreIndependent = wordsAreIndependent;
    this.userDefinedMatcher = new PieceMatcher(userDefined);
    this.specialMatcher = new PieceMatcher(special);
  }

  get size(): number {
    return this.pieces.length;
  }

  /** Throws ERR_INVALID_ARG unless `id` is a token id of this vocabulary. */
  checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
      throw new LlamaCudaError('ERR_INVALID_ARG', `token id ${String(id)} is out of range (vocabulary of ${this.pieces.length})`);
    }
  }
}
