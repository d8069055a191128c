/**
 * GGUF v3 writer: metadata and tensors, tensor data streamed to the file (a producer callback
 * can write a tensor in chunks, so multi-GB synthetic models never sit in memory). Layout as
 * read by gguf.ts (shared/notes/gguf-formats.md): tensors packed in table order, each padded to
 * the alignment.
 */
import { open, rename, rm, stat } from 'node:fs/promises';

import { LlamaCudaError } from '../errors.js';
import { GGML_TYPE_ID, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, type GgufEntry, GgufValueType } from './gguf.js';
import { type SourceType, tensorBytes } from './tensor-info.js';

export interface GgufTensorToWrite {
  readonly name: string;
  readonly type: SourceType;
  /** Outer-first shape (written reversed, as GGUF's ne). */
  readonly shape: readonly number[];
  /** The bytes, or a producer that writes exactly nbytes through `write`. */
  readonly data: Uint8Array | ((write: (chunk: Uint8Array) => Promise<void>) => Promise<void>);
}

/** Grows a byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.view.setInt8(this.length, v); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.view.setInt16(this.length, v, true); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.view.setFloat64(this.length, v, true); this.length += 8; }
  u64(v: number | bigint): void { this.reserve(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  i64(v: number | bigint): void { this.reserve(8); this.view.setBigInt64(this.length, BigInt(v), true); this.length += 8; }
  bytes(b: Uint8Array): void { this.reserve(b.length); this.buf.set(b, this.length); this.length += b.length; }
  string(s: string): void {
    const b = this.encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(w: ByteWriter, type: GgufValueType, v: unknown, key: string): void {
  const bad = (): never => {
    throw new LlamaCudaError('ERR_INVALID_ARG', `metadata "${key}": value ${String(v)} does not fit type ${type}`);
  };
  switch (type) {
    case GgufValueType.UINT8: w.u8(Number(v)); break;
    case GgufValueType.INT8: w.i8(Number(v)); break;
    case GgufValueType.UINT16: w.u16(Number(v)); break;
    case GgufValueType.INT16: w.i16(Number(v)); break;
    case GgufValueType.UINT32: w.u32(Number(v)); break;
    case GgufValueType.INT32: w.i32(Number(v)); break;
    case GgufValueType.FLOAT32: w.f32(Number(v)); break;
    case GgufValueType.BOOL: w.u8(v ? 1 : 0); break;
    case GgufValueType.STRING: if (typeof v !== 'string') bad(); w.string(v as string); break;
    case GgufValueType.UINT64: w.u64(v as number | bigint); break;
    case GgufValueType.INT64: w.i64(v as number | bigint); break;
    case GgufValueType.FLOAT64: w.f64(Number(v)); break;
    default: bad();
  }
}

/** Encodes the header (magic .. tensor table .. padding) and returns it with each tensor's data offset and size. */
export function encodeGgufHeader(
  metadata: ReadonlyMap<string, GgufEntry>,
  tensors: readonly Omit<GgufTensorToWrite, 'data'>[],
): { header: Uint8Array; offsets: number[]; sizes: number[]; alignment: number } {
  const alignValue = metadata.get('general.alignment')?.value;
  const alignment = alignValue === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(alignValue);
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `general.alignment ${String(alignValue)} is not a power of two`);
  }
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, e] of metadata) {
    w.string(key);
    w.u32(e.type);
    if (e.type === GgufValueType.ARRAY) {
      const items = e.value as ArrayLike<unknown>;
      w.u32(e.arrayType!);
      w.u64(items.length);
      for (let i = 0; i < items.length; i++) writeScalar(w, e.arrayType!, items[i], key);
    } else {
      writeScalar(w, e.type, e.value, key);
    }
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const size = tensorBytes(t.type, t.shape);
    if (typeof size === 'string') throw new LlamaCudaError('ERR_INVALID_ARG', `tensor "${t.name}": ${size}`);
    w.string(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.i64(t.shape[d]!);
    w.u32(GGML_TYPE_ID.get(t.type)!);
    w.u64(offset);
    offsets.push(offset);
    sizes.push(size);
    offset += Math.ceil(size / alignment) * alignment;
  }
  w.pad(alignment);
  return { header: w.result(), offsets, sizes, alignment };
}

export async function writeGguf(
  file: string,
  metadata: ReadonlyMap<string, GgufEntry>,
  tensors: readonly GgufTensorToWrite[],
): Promise<void> {
  const { header, sizes, alignment } = encodeGgufHeader(metadata, tensors);
  const handle = await open(file, 'w');
  try {
    let position = 0;
    const write = async (chunk: Uint8Array): Promise<void> => {
      await handle.write(chunk, 0, chunk.length, position);
      position += chunk.length;
    };
    await write(header);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const start = position;
      if (t.data instanceof Uint8Array) await write(t.data);
      else await t.data(write);
      if (position - start !== sizes[i]) {
        throw new LlamaCudaError('ERR_INVALID_ARG', `tensor "${t.name}": wrote ${position - start} bytes, expected ${sizes[i]}`);
      }
      const pad = (alignment - (position % alignment)) % alignment;
      if (pad > 0 && i < tensors.length - 1) await write(new Uint8Array(pad));
    }
  } finally {
    await handle.close();
  }
}

/**
 * writeGguf into `<output>.partial-<pid>`, renamed to `output` once complete, so a failed or
 * interrupted write never leaves a truncated model under the real name (the partial file is
 * removed). Errors other than LlamaCudaError become ERR_IO. Returns the file's size in bytes.
 */
export async function writeGgufAtomically(
  output: string,
  metadata: ReadonlyMap<string, GgufEntry>,
  tensors: readonly GgufTensorToWrite[],
): Promise<number> {
  const partial = `${output}.partial-${process.pid}`;
  try {
    await writeGguf(partial, metadata, tensors);
    await rename(partial, output);
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof LlamaCudaError) throw err;
    throw new LlamaCudaError('ERR_IO', `cannot write ${output}: ${(err as Error).message}`, { cause: err });
  }
  return (await stat(output)).size;
}
