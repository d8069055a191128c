/**
 * safetensors (Hugging Face): an unsigned 64-bit little-endian header length N, N bytes of
 * UTF-8 JSON, then the data section:
 *
 *   { "__metadata__": { "key": "value", ... },                       optional, strings only
 *     "<name>": { "dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end] }, ... }
 *
 * Offsets are relative to the first byte after the header; shapes are outer-first, row-major
 * (as TensorInfo). Nothing in the header is trusted: its length is checked against the file
 * before it is read, every tensor's byte range against the data section and against its dtype x
 * shape, and the ranges must tile the data section exactly (no overlaps, no holes, nothing
 * after the last tensor), as the reference implementation requires. That also defeats duplicate
 * JSON keys, which JSON.parse would silently collapse: the dropped range leaves a hole.
 */
import { open } from 'node:fs/promises';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { readHead, withFile } from './file-io.js';
import type { SourceType, TensorInfo } from './tensor-info.js';

/** Bits per element of every dtype safetensors defines. */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16,
  I32: 32, U32: 32, F32: 32,
  I64: 64, U64: 64, F64: 64,
  F4: 4, F6_E2M3: 6, F6_E3M2: 6,
} as const;

export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPE_BITS;

/** The library's name for the dtypes it has one for (TensorInfo types). */
const SOURCE_TYPE: Partial<Record<SafetensorsDType, SourceType>> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64', I8: 'i8', I16: 'i16', I32: 'i32', I64: 'i64',
};

/** The largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const LENGTH_BYTES = 8;

export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  /** Outer-first. */
  readonly shape: readonly number[];
  /** Absolute offset in the file. */
  readonly offset: number;
  readonly nbytes: number;
}

export interface SafetensorsFile {
  /** Absolute path. */
  readonly path: string;
  /** In header order. */
  readonly tensors: readonly SafetensorsTensor[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Absolute offset of the data section (8 + header length). */
  readonly dataOffset: number;
}

function fail(file: string, msg: string): never {
  throw new LlamaCudaError('ERR_MODEL_FORMAT', `${path.basename(file)}: not a valid safetensors file: ${msg}`);
}

function isDType(v: unknown): v is SafetensorsDType {
  return typeof v === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_BITS, v);
}

/**
 * The header length a file starts with (the first 8 bytes), checked against the file size.
 * Returns the length as a number no larger than the file.
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (first8.length < LENGTH_BYTES || fileSize < LENGTH_BYTES) fail(file, `the file has ${fileSize} bytes, fewer than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, LENGTH_BYTES).getBigUint64(0, true);
  if (n > BigInt(fileSize - LENGTH_BYTES)) {
    fail(file, `the header length ${n} is larger than the ${fileSize - LENGTH_BYTES} bytes after it (truncated, or not safetensors)`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) fail(file, `the header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) fail(file, `the header length ${n} is too small for a JSON object`);
  return Number(n);
}

/**
 * Parses and checks a header. `head` holds at least the first 8 + N bytes of a file of
 * `fileSize` bytes; `file` names it in errors and in the result.
 */
export function parseSafetensorsHeader(head: Uint8Array, fileSize: number, file: string): SafetensorsFile {
  const n = safetensorsHeaderLength(head, fileSize, file);
  if (head.length < LENGTH_BYTES + n) fail(file, `only ${head.length} bytes given for a header of ${n}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(head.subarray(LENGTH_BYTES, LENGTH_BYTES + n));
  } catch {
    fail(file, 'the header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(file, `the header does not start with "{" (it starts ${JSON.stringify(text.slice(0, 16))})`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(file, `the header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(file, 'the header is not a JSON object');

  const dataOffset = LENGTH_BYTES + n;
  const dataBytes = fileSize - dataOffset;
  const metadata: Record<string, string> = {};
  const tensors: (SafetensorsTensor & { begin: number; end: number })[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, `__metadata__ "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const bad: (msg: string) => never = (msg) => fail(file, `tensor "${name}": ${msg}`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad('its entry is not an object');
    const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDType(dtype)) bad(`unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape)) bad(`shape ${JSON.stringify(shape)} is not an array`);
    if (shape.length > 8) bad(`shape has ${shape.length} dimensions`);
    let elements = 1;
    for (const dim of shape as unknown[]) {
      if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) bad(`shape [${(shape as unknown[]).join(', ')}] has a dimension that is not a non-negative integer`);
      elements *= dim as number;
      if (!Number.isSafeInteger(elements)) bad(`shape [${(shape as unknown[]).join(', ')}] is too large`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2) bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    const [begin, end] = offsets as unknown[];
    if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin) {
      bad(`data_offsets [${String(begin)}, ${String(end)}] are not integers with 0 <= begin <= end`);
    }
    if (end > dataBytes) bad(`data_offsets [${begin}, ${end}] run past the ${dataBytes} bytes of data (truncated?)`);
    const bits = elements * SAFETENSORS_DTYPE_BITS[dtype];
    if (!Number.isSafeInteger(bits) || bits % 8 !== 0) bad(`${elements} elements of ${dtype} are not a whole number of bytes`);
    if (bits / 8 !== end - begin) bad(`${dtype} [${(shape as number[]).join(', ')}] needs ${bits / 8} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    tensors.push({ name, dtype, shape: [...(shape as number[])], offset: dataOffset + begin, nbytes: end - begin, begin, end });
  }

  // The ranges, sorted, must tile [0, dataBytes) exactly.
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let last: string | undefined;
  for (const t of sorted) {
    if (t.begin < covered) fail(file, `tensors "${last}" and "${t.name}" overlap (data bytes ${t.begin}..${covered})`);
    if (t.begin > covered) fail(file, `data bytes ${covered}..${t.begin} (before tensor "${t.name}") belong to no tensor`);
    covered = t.end;
    last = t.name;
  }
  if (covered !== dataBytes) fail(file, `${dataBytes - covered} bytes of data after the last tensor belong to no tensor (the header describes ${covered} of ${dataBytes})`);

  return {
    path: path.resolve(file),
    tensors: tensors.map(({ begin: _b, end: _e, ...t }) => t),
    metadata,
    dataOffset,
  };
}

/** Reads and checks the header of a safetensors file (the data is not read). */
export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  return withFile(file, async (handle, size) => {
    const first8 = await readHead(handle, LENGTH_BYTES);
    const n = safetensorsHeaderLength(first8, size, file);
    const head = await readHead(handle, LENGTH_BYTES + n);
    return parseSafetensorsHeader(head, size, file);
  });
}

/** The library's type for a dtype, or undefined where it has none (U8, BOOL, F8_*, ...). */
export function sourceTypeOf(dtype: SafetensorsDType): SourceType | undefined {
  return SOURCE_TYPE[dtype];
}

/**
 * A tensor as a TensorInfo, under `name` (default: its own). Dtypes the library has no type for
 * are ERR_UNSUPPORTED naming the tensor.
 */
export function safetensorsTensorInfo(st: SafetensorsFile, t: SafetensorsTensor, name: string = t.name): TensorInfo {
  const type = SOURCE_TYPE[t.dtype];
  if (type === undefined) {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${path.basename(st.path)}: tensor "${t.name}" has dtype ${t.dtype}, which this version cannot read`);
  }
  return { name, type, shape: t.shape, file: st.path, offset: t.offset, nbytes: t.nbytes };
}

export interface SafetensorsTensorToWrite {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Exactly the tensor's bytes, little-endian. */
  readonly data: Uint8Array;
}

/**
 * Writes a safetensors file: tensors laid out in the order given, the header padded with
 * spaces to a multiple of 8 bytes (as the reference writer does, so data stays aligned).
 */
export async function writeSafetensors(
  file: string,
  tensors: readonly SafetensorsTensorToWrite[],
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bits = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BITS[t.dtype];
    if (bits / 8 !== t.data.byteLength) {
      throw new LlamaCudaError('ERR_INVALID_ARG', `writeSafetensors: tensor "${t.name}" ${t.dtype} [${t.shape.join(', ')}] needs ${bits / 8} bytes, got ${t.data.byteLength}`);
    }
    if (Object.hasOwn(header, t.name) || t.name === '__metadata__') throw new LlamaCudaError('ERR_INVALID_ARG', `writeSafetensors: duplicate tensor name "${t.name}"`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const length = Buffer.alloc(LENGTH_BYTES);
  length.writeBigUInt64LE(BigInt(json.length));
  const handle = await open(file, 'w');
  try {
    await handle.write(length);
    await handle.write(json);
    for (const t of tensors) if (t.data.byteLength > 0) await handle.write(t.data);
  } finally {
    await handle.close();
  }
}
