/**
 * A small reader for the protobuf wire format (https://protobuf.dev/programming-guides/encoding/),
 * enough to read SentencePiece's `tokenizer.model` without a protobuf library: tags, varints,
 * length-delimited fields (strings, bytes, sub-messages), fixed32 / fixed64 values, and skipping
 * of fields the caller does not know (groups included).
 *
 * Every length and every read is checked against the end of the enclosing message before it is
 * trusted, so truncated or garbled input gives an ERR_MODEL_FORMAT error naming the byte offset,
 * never a read past the buffer or a huge allocation.
 */
import { LlamaCudaError } from '../errors.js';

/** Wire types (the low 3 bits of a tag). */
export const WireType = {
  VARINT: 0,
  I64: 1,
  LEN: 2,
  SGROUP: 3,
  EGROUP: 4,
  I32: 5,
} as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

const WIRE_NAMES = ['varint', 'fixed64', 'length-delimited', 'start-group', 'end-group', 'fixed32'];

/** Nested groups deeper than this are treated as garbage (protobuf's own limit is 100). */
const MAX_GROUP_DEPTH = 100;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads the fields of one message, bytes[start..end). Use as:
 *
 *   for (const r = new ProtoReader(bytes, 'tokenizer.model'); r.next(); ) {
 *     switch (r.field) { case 1: r.expect(WireType.LEN); ...; default: r.skip(); }
 *   }
 */
export class ProtoReader {
  /** Field number of the current field (after next() returned true). */
  field = 0;
  /** Wire type of the current field. */
  wire: number = WireType.VARINT;
  /** Offset of the next byte to read. */
  pos: number;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly end: number;
  /** Where the current field's tag started, for error messages. */
  private tagPos = 0;
  /** The file name and the path of the message being read ("ModelProto.pieces[3]"), for errors. */
  readonly source: string;
  readonly what: string;

  constructor(bytes: Uint8Array, source: string, what = 'message', start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.source = source;
    this.what = what;
    this.pos = start;
    this.end = end;
  }

  /** An ERR_MODEL_FORMAT error naming the file, the message and the byte offset. */
  error(message: string, at = this.tagPos): LlamaCudaError {
    return new LlamaCudaError('ERR_MODEL_FORMAT', `${this.source}: not a valid protobuf message: ${this.what} at byte ${at}: ${message}`);
  }

  /** Reads the next tag; false at the end of the message. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    this.tagPos = this.pos;
    const tag = this.varint('a field tag');
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw this.error('field number 0 (not a protobuf message, or garbled)');
    if (field > 0x1fffffff) throw this.error(`field number ${field} is out of range`);
    if (wire > WireType.I32) throw this.error(`unknown wire type ${wire} for field ${field}`);
    if (wire === WireType.EGROUP) throw this.error(`end-group tag for field ${field} without a start-group`);
    this.field = field;
    this.wire = wire;
    return true;
  }

  /** Throws unless the current field has wire type `wire`. */
  expect(wire: WireType, name: string): void {
    if (this.wire !== wire) {
      throw this.error(`field ${this.field} (${name}) has wire type ${WIRE_NAMES[this.wire] ?? this.wire}, expected ${WIRE_NAMES[wire]}`);
    }
  }

  /**
   * A varint as a JS number. Values above 2^53 lose precision (no field read here needs them);
   * at most 10 bytes, and the 10th may only hold the 64th bit.
   */
  varint(what = 'a varint'): number {
    const { bytes, end } = this;
    let pos = this.pos;
    // fast path: one byte
    if (pos < end) {
      const b = bytes[pos] as number;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    let lo = 0; // bits 0..27 (4 bytes × 7)
    let hi = 0; // bits 28..63
    let shift = 0;
    for (let i = 0; ; i++) {
      if (pos >= end) throw this.error(`truncated: ${what} runs past the end of the ${this.what} (${end} bytes)`, this.pos);
      const b = bytes[pos++] as number;
      if (i === 9 && b > 1) throw this.error(`${what} is longer than 64 bits`, this.pos);
      if (i < 4) lo += (b & 0x7f) * 2 ** shift;
      else hi += (b & 0x7f) * 2 ** (shift - 28);
      if (b < 0x80) break;
      shift += 7;
    }
    this.pos = pos;
    return hi * 2 ** 28 + lo;
  }

  /** A varint read as protobuf int32: the low 32 bits, two's complement (-1 is ten bytes). */
  int32(): number {
    const start = this.pos;
    const v = this.varint();
    if (v < 0x80000000) return v;
    // The low 32 bits of v: exact when v < 2^53; a negative int32 is sign-extended to 64 bits,
    // which is ≥ 2^63 and no longer exact, so read the low bytes again.
    if (v < 2 ** 53) return v % 2 ** 32 | 0;
    let low = 0;
    for (let i = 0, p = start; i < 5; i++, p++) low += ((this.bytes[p] as number) & 0x7f) * 2 ** (7 * i);
    return low % 2 ** 32 | 0;
  }

  /** A varint read as bool (any non-zero value is true, as protobuf parsers accept). */
  bool(): boolean {
    return this.varint() !== 0;
  }

  /** A fixed32 float (little-endian IEEE 754). */
  float(): number {
    const v = this.view.getFloat32(this.need(4, 'a fixed32 value'), true);
    this.pos += 4;
    return v;
  }

  /** The payload of a length-delimited field, as a view (no copy). */
  bytesField(): Uint8Array {
    const start = this.lengthDelimited();
    return this.bytes.subarray(start, this.pos);
  }

  /** A length-delimited field as UTF-8 text (invalid UTF-8 is an error, as in protobuf). */
  string(name: string): string {
    const start = this.lengthDelimited();
    const end = this.pos;
    // Fast path for short ASCII strings, which most pieces are (TextDecoder costs a call each).
    if (end - start <= 32) {
      let s = '';
      let p = start;
      for (; p < end; p++) {
        const b = this.bytes[p] as number;
        if (b >= 0x80) break;
        s += String.fromCharCode(b);
      }
      if (p === end) return s;
    }
    try {
      return utf8.decode(this.bytes.subarray(start, end));
    } catch {
      throw this.error(`field ${this.field} (${name}) is not valid UTF-8`);
    }
  }

  /** A reader over the sub-message in the current length-delimited field. */
  message(what: string): ProtoReader {
    const start = this.lengthDelimited();
    return new ProtoReader(this.bytes, this.source, what, start, this.pos);
  }

  /** Skips the current field's value, whatever its wire type. */
  skip(): void {
    this.skipValue(this.wire, this.field, 0);
  }

  private skipValue(wire: number, field: number, depth: number): void {
    switch (wire) {
      case WireType.VARINT:
        this.varint();
        return;
      case WireType.I64:
        this.pos = this.need(8, 'a fixed64 value') + 8;
        return;
      case WireType.LEN:
        this.lengthDelimited();
        return;
      case WireType.I32:
        this.pos = this.need(4, 'a fixed32 value') + 4;
        return;
      case WireType.SGROUP: {
        if (depth >= MAX_GROUP_DEPTH) throw this.error(`groups nested deeper than ${MAX_GROUP_DEPTH}`);
        for (;;) {
          if (this.pos >= this.end) throw this.error(`truncated: group ${field} has no end-group tag`);
          const at = this.pos;
          const tag = this.varint('a field tag');
          const f = Math.floor(tag / 8);
          const w = tag % 8;
          if (f === 0 || w > WireType.I32) throw this.error(`invalid tag ${tag} inside group ${field}`, at);
          if (w === WireType.EGROUP) {
            if (f !== field) throw this.error(`end-group tag ${f} does not match start-group ${field}`, at);
            return;
          }
          this.skipValue(w, f, depth + 1);
        }
      }
      default:
        throw this.error(`unknown wire type ${wire}`);
    }
  }

  /** Reads a length prefix, checks the payload fits, moves past it; returns the payload start. */
  private lengthDelimited(): number {
    const len = this.varint('a length');
    const start = this.pos;
    if (len > this.end - start) {
      throw this.error(`truncated: field ${this.field} claims ${len} bytes but only ${this.end - start} remain in the ${this.what}`);
    }
    this.pos = start + len;
    return start;
  }

  /** Checks that `n` bytes remain; returns the current position. */
  private need(n: number, what: string): number {
    if (this.end - this.pos < n) throw this.error(`truncated: ${what} needs ${n} bytes but only ${this.end - this.pos} remain`, this.pos);
    return this.pos;
  }
}
