/**
 * The safetensors reader on files built byte by byte here (independent of the writer), the
 * writer's output read back, and every check of the header against the file: each malformed
 * file is ERR_MODEL_FORMAT naming the file and, where there is one, the tensor.
 */
import { readFileSync, writeFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { LlamaCudaError } from '../../lib/errors.js';
import {
  MAX_HEADER_BYTES, parseSafetensorsHeader, readSafetensors, safetensorsTensorInfo, writeSafetensors,
} from '../../lib/formats/safetensors.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir();

/** A safetensors file from a header object (or raw header text) and a data section. */
function build(header: unknown, data: Uint8Array, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function parse(bytes: Uint8Array, name = 'test.safetensors'): ReturnType<typeof parseSafetensorsHeader> {
  return parseSafetensorsHeader(bytes, bytes.length, name);
}

function formatError(bytes: Uint8Array, pattern: RegExp): void {
  let caught: unknown;
  try {
    parse(bytes);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ERR_MODEL_FORMAT matching ${pattern}`).toBeInstanceOf(LlamaCudaError);
  expect(caught).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/^test\.safetensors: not a valid safetensors file: /) });
  expect((caught as Error).message).toMatch(pattern);
}

const f32 = (...v: number[]): Uint8Array => new Uint8Array(Float32Array.from(v).buffer);

describe('reading', () => {
  it('a file built by hand: names, dtypes, shapes, absolute offsets, metadata', () => {
    const header = {
      __metadata__: { format: 'pt', note: 'hand-made' },
      b: { dtype: 'F16', shape: [3], data_offsets: [8, 14] },
      a: { dtype: 'F32', shape: [2, 1], data_offsets: [0, 8] },
      empty: { dtype: 'BF16', shape: [0, 4], data_offsets: [14, 14] },
      q: { dtype: 'I8', shape: [2], data_offsets: [14, 16] },
    };
    const data = new Uint8Array(16).map((_, i) => i);
    const bytes = build(header, data);
    const n = JSON.stringify(header).length;
    const st = parse(bytes);
    expect(st.dataOffset).toBe(8 + n);
    expect(st.metadata).toEqual({ format: 'pt', note: 'hand-made' });
    expect(st.tensors).toEqual([
      { name: 'b', dtype: 'F16', shape: [3], offset: 8 + n + 8, nbytes: 6 },
      { name: 'a', dtype: 'F32', shape: [2, 1], offset: 8 + n, nbytes: 8 },
      { name: 'empty', dtype: 'BF16', shape: [0, 4], offset: 8 + n + 14, nbytes: 0 },
      { name: 'q', dtype: 'I8', shape: [2], offset: 8 + n + 14, nbytes: 2 },
    ]);
    expect(bytes[st.tensors[0]!.offset]).toBe(8);
    // TensorInfo: the library's type, the file's absolute path
    expect(safetensorsTensorInfo(st, st.tensors[1]!, 'renamed')).toEqual({ name: 'renamed', type: 'f32', shape: [2, 1], file: st.path, offset: 8 + n, nbytes: 8 });
    expect(safetensorsTensorInfo(st, st.tensors[3]!).type).toBe('i8');
  });

  it('header padding with spaces, no metadata, scalars, and sub-byte dtypes', () => {
    const st = parse(build(`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"f4":{"dtype":"F4","shape":[4],"data_offsets":[8,10]}}    `, new Uint8Array(10)));
    expect(st.metadata).toEqual({});
    expect(st.tensors.map((t) => [t.name, t.nbytes])).toEqual([['s', 8], ['f4', 2]]);
    expect(() => safetensorsTensorInfo(st, st.tensors[1]!)).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/tensor "f4" has dtype F4, which this version cannot read/) }));
  });

  it('writeSafetensors: read back, data aligned to 8, every byte where the header says', async () => {
    const file = tmp('w.safetensors');
    const tensors = [
      { name: 'x', dtype: 'F32' as const, shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6) },
      { name: 'y', dtype: 'BF16' as const, shape: [5], data: new Uint8Array(10).fill(7) },
      { name: 'z', dtype: 'U8' as const, shape: [0], data: new Uint8Array(0) },
      { name: 'w', dtype: 'F16' as const, shape: [1, 1, 2], data: new Uint8Array([1, 2, 3, 4]) },
    ];
    await writeSafetensors(file, tensors, { format: 'pt' });
    const st = await readSafetensors(file);
    const bytes = readFileSync(file);
    expect(st.dataOffset % 8).toBe(0);
    expect(st.metadata).toEqual({ format: 'pt' });
    expect(st.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(tensors.map((t) => [t.name, t.dtype, t.shape]));
    st.tensors.forEach((t, i) => expect(new Uint8Array(bytes.subarray(t.offset, t.offset + t.nbytes))).toEqual(tensors[i]!.data));
    await expect(writeSafetensors(tmp('bad.safetensors'), [{ name: 'x', dtype: 'F32', shape: [3], data: f32(1) }])).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });

  it('I/O: a missing file is ERR_IO; an empty or 7-byte file ERR_MODEL_FORMAT', async () => {
    await expect(readSafetensors(tmp('missing.safetensors'))).rejects.toMatchObject({ code: 'ERR_IO' });
    writeFileSync(tmp('empty.safetensors'), '');
    await expect(readSafetensors(tmp('empty.safetensors'))).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/empty.safetensors: .*0 bytes, fewer than the 8-byte header length/) });
    writeFileSync(tmp('seven.safetensors'), Buffer.alloc(7));
    await expect(readSafetensors(tmp('seven.safetensors'))).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT' });
  });
});

describe('every malformed header is ERR_MODEL_FORMAT with the reason', () => {
  const one = (entry: unknown, data = f32(1, 2)): Buffer => build({ t: entry }, data);
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  it('header length: beyond the file, absurd, over the limit, too small', () => {
    formatError(build({}, new Uint8Array(0), 100n), /the header length 100 is larger than the 2 bytes after it/);
    formatError(build({}, new Uint8Array(0), 0xffffffffffffffffn), /the header length 18446744073709551615 is larger than/);
    formatError(build({}, new Uint8Array(0), 1n), /the header length 1 is too small/);
    // the limit: claimed by a (pretended) 200 MB file, checked before any header byte is read
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES + 1));
    expect(() => parseSafetensorsHeader(head, 200_000_000, 'big.safetensors')).toThrow(/exceeds the 104857600-byte limit/);
  });

  it('not UTF-8, not JSON, not an object, bad __metadata__', () => {
    const bad = Buffer.concat([Buffer.from('{"'), Buffer.from([0xff, 0xfe]), Buffer.from('":1}')]);
    const raw = Buffer.concat([Buffer.alloc(8), bad]);
    raw.writeBigUInt64LE(BigInt(bad.length));
    formatError(raw, /the header is not valid UTF-8/);
    formatError(build('{"t": {"dtype": "F32",', new Uint8Array(0)), /the header is not valid JSON/);
    formatError(build('[1, 2]', new Uint8Array(0)), /does not start with "\{"/);
    formatError(build('null', new Uint8Array(0)), /does not start with "\{"/);
    formatError(build({ __metadata__: ['x'] }, new Uint8Array(0)), /__metadata__ is not an object/);
    formatError(build({ __metadata__: { n: 1 } }, new Uint8Array(0)), /__metadata__ "n" is not a string/);
    formatError(build({ t: 5 }, new Uint8Array(0)), /tensor "t": its entry is not an object/);
  });

  it('dtypes and shapes', () => {
    formatError(one({ ...ok, dtype: 'F33' }), /tensor "t": unknown dtype "F33"/);
    formatError(one({ ...ok, dtype: undefined }), /tensor "t": unknown dtype undefined/);
    formatError(one({ ...ok, dtype: 'f32' }), /unknown dtype "f32"/);
    formatError(one({ ...ok, shape: [-2] }), /tensor "t": shape \[-2\] has a dimension that is not a non-negative integer/);
    formatError(one({ ...ok, shape: [2.5] }), /shape \[2.5\] has a dimension that is not a non-negative integer/);
    formatError(one({ ...ok, shape: ['2'] }), /has a dimension that is not a non-negative integer/);
    formatError(one({ ...ok, shape: 2 }), /shape 2 is not an array/);
    formatError(one({ ...ok, shape: [2 ** 30, 2 ** 30, 2 ** 30] }), /is too large/);
    formatError(one({ ...ok, shape: [1, 1, 1, 1, 1, 1, 1, 1, 2] }), /shape has 9 dimensions/);
    formatError(one({ ...ok, shape: [3] }), /tensor "t": F32 \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8/);
    formatError(one({ ...ok, dtype: 'F16' }), /F16 \[2\] needs 4 bytes but data_offsets \[0, 8\] hold 8/);
    formatError(build({ t: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, new Uint8Array(2)), /3 elements of F4 are not a whole number of bytes/);
  });

  it('offsets: malformed, reversed, out of the file, overlapping, holes, trailing bytes', () => {
    formatError(one({ ...ok, data_offsets: [0] }), /data_offsets \[0\] is not \[begin, end\]/);
    formatError(one({ ...ok, data_offsets: [8, 0] }), /data_offsets \[8, 0\] are not integers with 0 <= begin <= end/);
    formatError(one({ ...ok, data_offsets: [-8, 0] }), /are not integers/);
    formatError(one({ ...ok, data_offsets: [0, 8.5] }), /are not integers/);
    formatError(one({ ...ok, data_offsets: [0, 2 ** 60] }), /are not integers/); // not a safe integer
    formatError(one({ ...ok, data_offsets: [4, 12] }), /tensor "t": data_offsets \[4, 12\] run past the 8 bytes of data \(truncated\?\)/);
    formatError(one(ok, f32(1)), /run past the 4 bytes of data/);
    const two = (b: unknown): Buffer => build({ a: ok, b }, f32(1, 2, 3, 4));
    formatError(two({ ...ok, data_offsets: [4, 12] }), /tensors "a" and "b" overlap \(data bytes 4..8\)/);
    formatError(two({ ...ok, data_offsets: [0, 8] }), /tensors "a" and "b" overlap/); // the same range twice
    formatError(build({ a: ok, b: { ...ok, shape: [1], data_offsets: [12, 16] } }, f32(1, 2, 3, 4)), /data bytes 8..12 \(before tensor "b"\) belong to no tensor/);
    formatError(one(ok, f32(1, 2, 3)), /4 bytes of data after the last tensor belong to no tensor/);
    // a duplicated key: JSON.parse keeps the last, so the first's bytes are left over
    formatError(build('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)), /data bytes 0..4 \(before tensor "t"\) belong to no tensor/);
  });

  it('the message names the file', () => {
    expect(() => parseSafetensorsHeader(build({ t: 1 }, new Uint8Array(0)), 100, '/some/where/model-00002-of-00003.safetensors')).toThrow(
      /^model-00002-of-00003.safetensors: not a valid safetensors file:/,
    );
  });
});
