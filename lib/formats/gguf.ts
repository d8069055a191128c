/**
 * GGUF v2/v3 reader: header, metadata key/values and the tensor table. Tensor bytes are not
 * read here; native code reads them by (file, offset, nbytes). Layout: shared/notes/gguf-formats.md
 * (from ggml's gguf.cpp). Every count, length and offset is checked against the file size
 * before it is trusted, so a hostile file gives an ERR_MODEL_FORMAT error, not a huge allocation.
 */
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { readHead, withFile } from './file-io.js';
import { type SourceType, type TensorInfo, tensorBytes } from './tensor-info.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value type ids (gguf.h). */
export const GgufValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7,
  STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** ggml type ids of tensor data (ggml.h); retired ids are absent. */
export const GGML_TYPE_BY_ID: ReadonlyMap<number, SourceType> = new Map<number, SourceType>([
  [0, 'f32'], [1, 'f16'], [2, 'q4_0'], [3, 'q4_1'], [6, 'q5_0'], [7, 'q5_1'], [8, 'q8_0'], [9, 'q8_1'],
  [10, 'q2_k'], [11, 'q3_k'], [12, 'q4_k'], [13, 'q5_k'], [14, 'q6_k'], [15, 'q8_k'],
  [16, 'iq2_xxs'], [17, 'iq2_xs'], [18, 'iq3_xxs'], [19, 'iq1_s'], [20, 'iq4_nl'], [21, 'iq3_s'],
  [22, 'iq2_s'], [23, 'iq4_xs'], [24, 'i8'], [25, 'i16'], [26, 'i32'], [27, 'i64'], [28, 'f64'],
  [29, 'iq1_m'], [30, 'bf16'], [34, 'tq1_0'], [35, 'tq2_0'],
]);
export const GGML_TYPE_ID: ReadonlyMap<SourceType, number> = new Map([...GGML_TYPE_BY_ID].map(([id, t]) => [t, id]));

export type GgufArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigUint64Array | BigInt64Array
  | boolean[] | string[];

export type GgufValue = number | bigint | boolean | string | GgufArray;

export interface GgufEntry {
  readonly type: GgufValueType;
  /** For arrays: the element type. */
  readonly arrayType?: GgufValueType;
  readonly value: GgufValue;
}

export interface GgufFile {
  readonly path: string;
  readonly version: 2 | 3;
  readonly fileSize: number;
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  readonly metadata: ReadonlyMap<string, GgufEntry>;
  /** In file order; offsets are absolute. */
  readonly tensors: readonly TensorInfo[];
}

const MAX_TENSORS = 1 << 20;
const MAX_DIMS = 4;
const MAX_NAME_BYTES = 1 << 16;

function formatError(file: string, message: string): LlamaCudaError {
  return new LlamaCudaError('ERR_MODEL_FORMAT', `${path.basename(file)}: not a valid GGUF file: ${message}`);
}

/** Thrown inside the parser when the header runs past the bytes read so far. */
class NeedMoreBytes extends Error {}

class Cursor {
  pos = 0;
  private readonly view: DataView;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  private readonly bytes: Uint8Array;
  private readonly fileSize: number;
  private readonly file: string;

  constructor(bytes: Uint8Array, fileSize: number, file: string) {
    this.bytes = bytes;
    this.fileSize = fileSize;
    this.file = file;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes left in the whole file after the cursor. */
  remainingInFile(): number {
    return this.fileSize - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.remainingInFile()) throw formatError(this.file, `truncated while reading ${what} at offset ${this.pos}`);
    if (this.pos + n > this.bytes.length) throw new NeedMoreBytes();
  }

  u8(what: string): number { this.need(1, what); return this.view.getUint8(this.pos++); }
  i8(what: string): number { this.need(1, what); return this.view.getInt8(this.pos++); }
  u16(what: string): number { this.need(2, what); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16(what: string): number { this.need(2, what); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32(what: string): number { this.need(4, what); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(what: string): number { this.need(4, what); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f32(what: string): number { this.need(4, what); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64(what: string): number { this.need(8, what); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64(what: string): bigint { this.need(8, what); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  i64(what: string): bigint { this.need(8, what); const v = this.view.getBigInt64(this.pos, true); this.pos += 8; return v; }

  /** A u64 that must be a count or size no larger than `max`. */
  size(what: string, max: number): number {
    const v = this.u64(what);
    if (v > BigInt(max)) throw formatError(this.file, `${what} ${v} is larger than possible (at most ${max} here)`);
    return Number(v);
  }

  string(what: string, maxBytes = this.remainingInFile()): string {
    const len = this.size(`length of ${what}`, Math.min(maxBytes, this.remainingInFile()));
    this.need(len, what);
    const s = this.decoder.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  /** Copies n elements of a fixed-size type into an aligned typed array. */
  typed<T>(n: number, elemBytes: number, what: string, make: (buf: ArrayBuffer) => T): T {
    this.need(n * elemBytes, what);
    // Uint8Array.prototype.slice copies even when bytes is a Buffer (whose own slice() is a view)
    const copy = Uint8Array.prototype.slice.call(this.bytes, this.pos, this.pos + n * elemBytes);
    this.pos += n * elemBytes;
    return make(copy.buffer);
  }
}

const SCALAR_BYTES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};

/** 64-bit integers become numbers when exact, bigints otherwise. */
function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readScalar(c: Cursor, type: GgufValueType, what: string, file: string): number | bigint | boolean | string {
  switch (type) {
    case GgufValueType.UINT8: return c.u8(what);
    case GgufValueType.INT8: return c.i8(what);
    case GgufValueType.UINT16: return c.u16(what);
    case GgufValueType.INT16: return c.i16(what);
    case GgufValueType.UINT32: return c.u32(what);
    case GgufValueType.INT32: return c.i32(what);
    case GgufValueType.FLOAT32: return c.f32(what);
    case GgufValueType.BOOL: {
      const b = c.u8(what);
      if (b > 1) throw formatError(file, `${what}: bool value ${b} is not 0 or 1`);
      return b === 1;
    }
    case GgufValueType.STRING: return c.string(what);
    case GgufValueType.UINT64: return narrow(c.u64(what));
    case GgufValueType.INT64: return narrow(c.i64(what));
    case GgufValueType.FLOAT64: return c.f64(what);
    default: throw formatError(file, `${what}: unknown value type ${type}`);
  }
}

function readArray(c: Cursor, what: string, file: string): { arrayType: GgufValueType; value: GgufArray } {
  const arrayType = c.u32(`element type of ${what}`) as GgufValueType;
  if (arrayType === GgufValueType.ARRAY) throw formatError(file, `${what}: arrays of arrays are not allowed`);
  const minBytes = arrayType === GgufValueType.STRING ? 8 : SCALAR_BYTES[arrayType];
  if (minBytes === undefined) throw formatError(file, `${what}: unknown array element type ${arrayType}`);
  const n = c.size(`element count of ${what}`, Math.floor(c.remainingInFile() / minBytes));
  switch (arrayType) {
    case GgufValueType.UINT8: return { arrayType, value: c.typed(n, 1, what, (b) => new Uint8Array(b)) };
    case GgufValueType.INT8: return { arrayType, value: c.typed(n, 1, what, (b) => new Int8Array(b)) };
    case GgufValueType.UINT16: return { arrayType, value: c.typed(n, 2, what, (b) => new Uint16Array(b)) };
    case GgufValueType.INT16: return { arrayType, value: c.typed(n, 2, what, (b) => new Int16Array(b)) };
    case GgufValueType.UINT32: return { arrayType, value: c.typed(n, 4, what, (b) => new Uint32Array(b)) };
    case GgufValueType.INT32: return { arrayType, value: c.typed(n, 4, what, (b) => new Int32Array(b)) };
    case GgufValueType.FLOAT32: return { arrayType, value: c.typed(n, 4, what, (b) => new Float32Array(b)) };
    case GgufValueType.UINT64: return { arrayType, value: c.typed(n, 8, what, (b) => new BigUint64Array(b)) };
    case GgufValueType.INT64: return { arrayType, value: c.typed(n, 8, what, (b) => new BigInt64Array(b)) };
    case GgufValueType.FLOAT64: return { arrayType, value: c.typed(n, 8, what, (b) => new Float64Array(b)) };
    case GgufValueType.BOOL: {
      const out: boolean[] = new Array<boolean>(n);
      for (let i = 0; i < n; i++) out[i] = readScalar(c, arrayType, what, file) as boolean;
      return { arrayType, value: out };
    }
    default: {
      const out: string[] = new Array<string>(n);
      for (let i = 0; i < n; i++) out[i] = c.string(`${what}[${i}]`);
      return { arrayType, value: out };
    }
  }
}

/** Parses a GGUF header from the first bytes of a file of `fileSize` bytes. */
export function parseGgufHeader(bytes: Uint8Array, fileSize: number, file: string): GgufFile {
  const c = new Cursor(bytes, fileSize, file);
  if (fileSize < 4 || (bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) !== GGUF_MAGIC)) {
    throw formatError(file, 'the file does not start with the magic "GGUF"');
  }
  c.pos = 4;
  const version = c.u32('version');
  if (version === 1) throw formatError(file, 'GGUF version 1 is obsolete and not supported (convert it with a current llama.cpp)');
  if (version !== 2 && version !== 3) throw formatError(file, `unsupported GGUF version ${version} (expected 2 or 3)`);
  const nTensors = c.size('tensor count', MAX_TENSORS);
  const nKv = c.size('metadata count', Math.floor(c.remainingInFile() / 13));

  const metadata = new Map<string, GgufEntry>();
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`metadata key #${i}`, MAX_NAME_BYTES);
    if (metadata.has(key)) throw formatError(file, `duplicate metadata key "${key}"`);
    const type = c.u32(`type of "${key}"`) as GgufValueType;
    if (type === GgufValueType.ARRAY) {
      const { arrayType, value } = readArray(c, `"${key}"`, file);
      metadata.set(key, { type, arrayType, value });
    } else {
      metadata.set(key, { type, value: readScalar(c, type, `"${key}"`, file) });
    }
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignEntry = metadata.get('general.alignment');
  if (alignEntry !== undefined) {
    const a = alignEntry.value;
    if (typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) {
      throw formatError(file, `general.alignment ${String(a)} is not a power of two`);
    }
    alignment = a;
  }

  interface Raw { name: string; shape: number[]; type: SourceType; offset: number; nbytes: number }
  const raw: Raw[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`name of tensor #${i}`, MAX_NAME_BYTES);
    if (names.has(name)) throw formatError(file, `duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = c.u32(`dimension count of "${name}"`);
    if (nDims < 1 || nDims > MAX_DIMS) throw formatError(file, `tensor "${name}" has ${nDims} dimensions (1..${MAX_DIMS} allowed)`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = c.i64(`dimension ${d} of "${name}"`);
      if (v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(file, `tensor "${name}" has dimension ${d} = ${v}`);
      ne.push(Number(v));
    }
    const typeId = c.u32(`type of "${name}"`);
    const type = GGML_TYPE_BY_ID.get(typeId);
    if (type === undefined) throw formatError(file, `tensor "${name}" has unknown ggml type id ${typeId}`);
    const offset = c.u64(`offset of "${name}"`);
    if (offset > BigInt(fileSize)) throw formatError(file, `tensor "${name}" starts at ${offset}, beyond the end of the file (${fileSize} bytes): truncated?`);
    const shape = ne.slice().reverse();
    const nbytes = tensorBytes(type, shape);
    if (typeof nbytes === 'string') throw formatError(file, `tensor "${name}" (${type}): ${nbytes}`);
    raw.push({ name, shape, type, offset: Number(offset), nbytes });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors: TensorInfo[] = [];
  const byOffset = raw.slice().sort((a, b) => a.offset - b.offset);
  let prevEnd = 0;
  let prevName = '';
  for (const t of byOffset) {
    if (t.offset % alignment !== 0) throw formatError(file, `tensor "${t.name}" offset ${t.offset} is not a multiple of the alignment ${alignment}`);
    if (t.offset < prevEnd) throw formatError(file, `tensors "${prevName}" and "${t.name}" overlap`);
    const end = dataOffset + t.offset + t.nbytes;
    if (end > fileSize) {
      throw formatError(file, `tensor "${t.name}" (${t.nbytes} bytes at ${dataOffset + t.offset}) runs past the end of the file (${fileSize} bytes): truncated?`);
    }
    prevEnd = t.offset + t.nbytes;
    prevName = t.name;
  }
  for (const t of raw) {
    tensors.push({ name: t.name, type: t.type, shape: t.shape, file: path.resolve(file), offset: dataOffset + t.offset, nbytes: t.nbytes });
  }
  return { path: path.resolve(file), version, fileSize, alignment, dataOffset, metadata, tensors };
}

/** Reads the header of a GGUF file (not its tensor data). */
export async function readGguf(file: string): Promise<GgufFile> {
  return withFile(file, async (handle, size) => {
    // headers are small; read a prefix and grow it only when the parser runs past it
    for (let want = Math.min(size, 4 << 20); ; want = Math.min(size, want * 4)) {
      try {
        return parseGgufHeader(await readHead(handle, want), size, file);
      } catch (err) {
        if (!(err instanceof NeedMoreBytes) || want >= size) throw err;
      }
    }
  });
}

/** Typed accessors for metadata, with errors that name the key. */
export class GgufMetadata {
  private readonly map: ReadonlyMap<string, GgufEntry>;
  private readonly file: string;

  constructor(map: ReadonlyMap<string, GgufEntry>, file: string) {
    this.map = map;
    this.file = file;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  raw(key: string): GgufValue | undefined {
    return this.map.get(key)?.value;
  }

  number(key: string): number | undefined {
    const v = this.map.get(key)?.value;
    if (v === undefined) return undefined;
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') throw formatError(this.file, `metadata "${key}" = ${v} is out of range`);
    throw formatError(this.file, `metadata "${key}" should be a number, found ${describe(v)}`);
  }

  requireNumber(key: string): number {
    const v = this.number(key);
    if (v === undefined) throw formatError(this.file, `missing metadata "${key}"`);
    return v;
  }

  string(key: string): string | undefined {
    const v = this.map.get(key)?.value;
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw formatError(this.file, `metadata "${key}" should be a string, found ${describe(v)}`);
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.map.get(key)?.value;
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw formatError(this.file, `metadata "${key}" should be a bool, found ${describe(v)}`);
    return v;
  }

  stringArray(key: string): string[] | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.arrayType !== GgufValueType.STRING) throw formatError(this.file, `metadata "${key}" should be an array of strings`);
    return e.value as string[];
  }

  /** A numeric array as float64 values (any numeric element type). */
  numberArray(key: string): ArrayLike<number> | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    const v = e.value;
    if (e.type !== GgufValueType.ARRAY || typeof v === 'string' || Array.isArray(v) || v instanceof BigInt64Array || v instanceof BigUint64Array) {
      throw formatError(this.file, `metadata "${key}" should be a numeric array`);
    }
    return v as ArrayLike<number>;
  }
}

function describe(v: GgufValue): string {
  if (typeof v === 'object') return `an array of ${(v as ArrayLike<unknown>).length}`;
  return `${typeof v} ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)}`;
}
