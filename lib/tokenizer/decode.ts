/**
 * Token ids back to text, as SentencePiece decodes them:
 *  - control tokens (`<s>`, `</s>`) produce nothing; unknown tokens produce " ⁇ ";
 *  - `▁` becomes a space;
 *  - consecutive byte tokens (`<0xXX>`) are joined and decoded as UTF-8, each byte that does
 *    not begin a valid complete character becoming U+FFFD (any non-byte token ends a run);
 *  - the dummy-prefix space is removed once: while nothing has been output yet, the first
 *    piece that starts with `▁` loses it ([29871] → "", [29871, 15043] → " Hello").
 *
 * `createDecoder` does the same incrementally for streaming generation: `push(id)` returns only
 * complete characters (bytes of a partial UTF-8 character are held until they complete it or
 * prove invalid), and `flush()` releases what is held. The concatenation of every push() and a
 * final flush() equals decode() of the same ids with the same `stripLeadingSpace`.
 */
import { decodeUtf8Lossy, decodeUtf8Prefix } from './utf8.js';
import { SPACE_SYMBOL, TokenType, type Vocab } from './vocab.js';

export interface DecodeOptions {
  /**
   * Remove the leading space of the first piece (the dummy prefix the encoder added). Default:
   * the vocabulary's add_dummy_prefix (true for Llama 2). Use true at the start of a text and
   * false when continuing after earlier text (llama2.c strips it only right after BOS).
   */
  readonly stripLeadingSpace?: boolean;
}

/** SentencePiece's default surface for `<unk>`. */
export const UNKNOWN_SURFACE = ' \u2047 ';

/** How each id decodes, precomputed once per vocabulary. */
interface DecodeTable {
  /** Text of each non-byte piece ('' for control tokens). */
  readonly surfaces: readonly string[];
  /** 1 where the piece starts with `▁` and is a text piece (the strippable dummy prefix). */
  readonly leadingSpace: Uint8Array;
}

const tables = new WeakMap<Vocab, DecodeTable>();

function decodeTable(vocab: Vocab): DecodeTable {
  let table = tables.get(vocab);
  if (table !== undefined) return table;
  const surfaces: string[] = new Array<string>(vocab.size);
  const leadingSpace = new Uint8Array(vocab.size);
  for (let id = 0; id < vocab.size; id++) {
    const piece = vocab.pieces[id] as string;
    const type = vocab.types[id];
    if (type === TokenType.CONTROL || type === TokenType.BYTE) surfaces[id] = '';
    else if (type === TokenType.UNKNOWN) surfaces[id] = UNKNOWN_SURFACE;
    else {
      surfaces[id] = piece.replaceAll(SPACE_SYMBOL, ' ');
      if (piece.startsWith(SPACE_SYMBOL)) leadingSpace[id] = 1;
    }
  }
  table = { surfaces, leadingSpace };
  tables.set(vocab, table);
  return table;
}

export function decode(vocab: Vocab, ids: ArrayLike<number>, options: DecodeOptions = {}): string {
  const { surfaces, leadingSpace } = decodeTable(vocab);
  let text = '';
  let expectPrefix = options.stripLeadingSpace ?? vocab.addDummyPrefix;
  const bytes: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    vocab.checkId(id);
    const byte = vocab.byteValues[id] as number;
    if (byte >= 0) {
      bytes.push(byte);
      continue;
    }
    if (bytes.length > 0) {
      text += decodeUtf8Lossy(bytes);
      bytes.length = 0;
    }
    if (text.length > 0) expectPrefix = false;
    const surface = surfaces[id] as string;
    if (expectPrefix && leadingSpace[id] === 1) {
      text += surface.slice(1);
      expectPrefix = false;
    } else {
      text += surface;
    }
  }
  if (bytes.length > 0) text += decodeUtf8Lossy(bytes);
  return text;
}

/** Incremental decoder; see the file comment. */
export class StreamingDecoder {
  private readonly vocab: Vocab;
  private readonly table: DecodeTable;
  /** Bytes of an incomplete but so far valid UTF-8 character (at most 3). */
  private pending: number[] = [];
  private expectPrefix: boolean;
  private emittedAny = false;

  constructor(vocab: Vocab, options: DecodeOptions = {}) {
    this.vocab = vocab;
    this.table = decodeTable(vocab);
    this.expectPrefix = options.stripLeadingSpace ?? vocab.addDummyPrefix;
  }

  /** Adds one token; returns the text it completes (possibly ''). */
  push(id: number): string {
    this.vocab.checkId(id);
    const byte = this.vocab.byteValues[id] as number;
    if (byte >= 0) {
      this.pending.push(byte);
      return this.note(this.drain());
    }
    // A non-byte token ends the byte run: what is held can no longer complete.
    let out = this.flushPending();
    if (this.emittedAny || out.length > 0) this.expectPrefix = false;
    const surface = this.table.surfaces[id] as string;
    if (this.expectPrefix && this.table.leadingSpace[id] === 1) {
      out += surface.slice(1);
      this.expectPrefix = false;
    } else {
      out += surface;
    }
    return this.note(out);
  }

  /** Releases held bytes (each as U+FFFD, since they did not complete a character). */
  flush(): string {
    return this.note(this.flushPending());
  }

  private note(text: string): string {
    if (text.length > 0) this.emittedAny = true;
    return text;
  }

  private flushPending(): string {
    if (this.pending.length === 0) return '';
    const text = decodeUtf8Lossy(this.pending);
    this.pending = [];
    return text;
  }

  /** Emits the complete characters at the front of `pending`, and U+FFFD for bytes proven invalid. */
  private drain(): string {
    const { text, consumed } = decodeUtf8Prefix(this.pending, true);
    if (consumed > 0) this.pending = this.pending.slice(consumed);
    return text;
  }
}

export function createDecoder(vocab: Vocab, options: DecodeOptions = {}): StreamingDecoder {
  return new StreamingDecoder(vocab, options);
}
