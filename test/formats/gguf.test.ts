import { readFileSync, writeFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { LlamaCudaError } from '../../lib/errors.js';
import { GGUF_MAGIC, type GgufEntry, GgufValueType, parseGgufHeader, readGguf } from '../../lib/formats/gguf.js';
import { encodeGgufHeader, writeGguf } from '../../lib/formats/gguf-writer.js';
import { expectErrorCode } from '../helpers/errors.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir();

function entry(type: GgufEntry['type'], value: GgufEntry['value'], arrayType?: GgufEntry['type']): GgufEntry {
  return arrayType === undefined ? { type, value } : { type, value, arrayType };
}

/** A small valid file: a few metadata values of every type and two f32 tensors. */
function smallFile(): { meta: Map<string, GgufEntry>; bytes: Uint8Array } {
  const meta = new Map<string, GgufEntry>([
    ['general.architecture', entry(GgufValueType.STRING, 'llama')],
    ['u8', entry(GgufValueType.UINT8, 200)],
    ['i8', entry(GgufValueType.INT8, -5)],
    ['u16', entry(GgufValueType.UINT16, 60000)],
    ['i16', entry(GgufValueType.INT16, -30000)],
    ['u32', entry(GgufValueType.UINT32, 4000000000)],
    ['i32', entry(GgufValueType.INT32, -2000000000)],
    ['f32', entry(GgufValueType.FLOAT32, 1.5)],
    ['bool', entry(GgufValueType.BOOL, true)],
    ['u64', entry(GgufValueType.UINT64, 2 ** 40)],
    ['i64', entry(GgufValueType.INT64, -(2 ** 40))],
    ['big', entry(GgufValueType.UINT64, 2n ** 63n)],
    ['f64', entry(GgufValueType.FLOAT64, Math.PI)],
    ['strings', entry(GgufValueType.ARRAY, ['a', 'βγ', ''], GgufValueType.STRING)],
    ['floats', entry(GgufValueType.ARRAY, new Float32Array([0.5, -2]), GgufValueType.FLOAT32)],
    ['ints', entry(GgufValueType.ARRAY, new Int32Array([1, -1, 7]), GgufValueType.INT32)],
  ]);
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const b = new Float32Array([7, 8, 9]);
  const tensors = [
    { name: 'a', type: 'f32' as const, shape: [2, 3] },
    { name: 'b', type: 'f32' as const, shape: [3] },
  ];
  const { header, offsets, alignment } = encodeGgufHeader(meta, tensors);
  const bytes = new Uint8Array(header.length + offsets[1]! + b.byteLength);
  bytes.set(header);
  bytes.set(new Uint8Array(a.buffer), header.length + offsets[0]!);
  bytes.set(new Uint8Array(b.buffer), header.length + offsets[1]!);
  expect(alignment).toBe(32);
  return { meta, bytes };
}

function expectFormatError(fn: () => unknown, pattern?: RegExp): void {
  expectErrorCode(fn, 'ERR_MODEL_FORMAT', pattern);
}

describe('GGUF reader and writer', () => {
  it('round-trips every metadata type and the tensor table', () => {
    const { meta, bytes } = smallFile();
    const g = parseGgufHeader(bytes, bytes.length, 'small.gguf');
    expect(g.version).toBe(3);
    for (const [key, e] of meta) {
      const got = g.metadata.get(key);
      expect(got?.type, key).toBe(e.type);
      if (ArrayBuffer.isView(e.value)) expect(Array.from(got!.value as Float32Array)).toEqual(Array.from(e.value as Float32Array));
      else expect(got?.value, key).toEqual(e.value);
    }
    expect(g.tensors.map((t) => [t.name, t.type, t.shape, t.nbytes])).toEqual([
      ['a', 'f32', [2, 3], 24],
      ['b', 'f32', [3], 12],
    ]);
    const a = g.tensors[0]!;
    expect(Array.from(new Float32Array(bytes.slice(a.offset, a.offset + a.nbytes).buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(g.dataOffset % 32).toBe(0);
  });

  it('writes a file that reads back (writeGguf, streamed tensor data)', async () => {
    const file = tmp('written.gguf');
    const meta = new Map<string, GgufEntry>([['general.alignment', entry(GgufValueType.UINT32, 64)]]);
    const data = new Uint8Array(34 * 4).map((_, i) => i % 251);
    await writeGguf(file, meta, [
      { name: 'q', type: 'q8_0', shape: [2, 64], data },
      { name: 'h', type: 'f16', shape: [5], data: async (write) => { await write(new Uint8Array(6)); await write(new Uint8Array(4)); } },
    ]);
    const g = await readGguf(file);
    expect(g.alignment).toBe(64);
    const q = g.tensors[0]!;
    expect(q.offset % 64).toBe(0);
    expect(Array.from(readFileSync(file).subarray(q.offset, q.offset + q.nbytes))).toEqual(Array.from(data));
    expect(g.tensors[1]!.shape).toEqual([5]);
  });

  it('rejects a wrong magic, version 1 and unknown versions', () => {
    const { bytes } = smallFile();
    const bad = bytes.slice();
    bad[0] = 0x48;
    expectFormatError(() => parseGgufHeader(bad, bad.length, 'x.gguf'), /magic/);
    const v1 = bytes.slice();
    new DataView(v1.buffer).setUint32(4, 1, true);
    expectFormatError(() => parseGgufHeader(v1, v1.length, 'x.gguf'), /version 1 is obsolete/);
    const v9 = bytes.slice();
    new DataView(v9.buffer).setUint32(4, 9, true);
    expectFormatError(() => parseGgufHeader(v9, v9.length, 'x.gguf'), /version 9/);
  });

  it('gives a format error for every truncation of a valid file', () => {
    const { bytes } = smallFile();
    for (let len = 0; len < bytes.length; len++) {
      expectFormatError(() => parseGgufHeader(bytes.subarray(0, len), len, 'cut.gguf'));
    }
  });

  it('refuses absurd counts and lengths before allocating', () => {
    const { bytes } = smallFile();
    const patch = (offset: number, value: bigint): Uint8Array => {
      const b = bytes.slice();
      new DataView(b.buffer).setBigUint64(offset, value, true);
      return b;
    };
    expectFormatError(() => parseGgufHeader(patch(8, 2n ** 40n), bytes.length, 'x'), /tensor count/);
    expectFormatError(() => parseGgufHeader(patch(16, 2n ** 62n), bytes.length, 'x'), /metadata count/);
    // the first key's length (right after the counts)
    expectFormatError(() => parseGgufHeader(patch(24, 2n ** 50n), bytes.length, 'x'), /length of metadata key/);
  });

  it('rejects bad tensor entries: out of file, overlap, misaligned, unknown type, bad dims', () => {
    const meta = new Map<string, GgufEntry>();
    const build = (mutate: (view: DataView, tableStart: number) => void): Uint8Array => {
      const tensors = [{ name: 't', type: 'f32' as const, shape: [4, 8] }, { name: 'u', type: 'f32' as const, shape: [8] }];
      const { header } = encodeGgufHeader(meta, tensors);
      const b = new Uint8Array(header.length + 2048);
      b.set(header);
      mutate(new DataView(b.buffer), 24);
      return b;
    };
    // table entry of 't': name (8 + 1), n_dims (4), 2 x i64, type (4), offset (8)
    const tOffset = 24 + 9 + 4 + 16 + 4;
    const uStart = tOffset + 8;
    const uOffset = uStart + 9 + 4 + 8 + 4;
    expectFormatError(() => { const b = build((v) => v.setBigUint64(uOffset, 1n << 20n, true)); parseGgufHeader(b, b.length, 'x'); }, /beyond the end|past the end/);
    expectFormatError(() => { const b = build((v) => v.setBigUint64(uOffset, 96n, true)); parseGgufHeader(b, b.length, 'x'); }, /overlap/);
    expectFormatError(() => { const b = build((v) => v.setBigUint64(uOffset, 130n, true)); parseGgufHeader(b, b.length, 'x'); }, /alignment/);
    expectFormatError(() => { const b = build((v) => v.setUint32(tOffset - 4, 4, true)); parseGgufHeader(b, b.length, 'x'); }, /unknown ggml type id 4/);
    expectFormatError(() => { const b = build((v) => v.setUint32(24 + 9, 7, true)); parseGgufHeader(b, b.length, 'x'); }, /dimensions/);
    expectFormatError(() => { const b = build((v) => v.setBigInt64(24 + 9 + 4, 0n, true)); parseGgufHeader(b, b.length, 'x'); }, /dimension 0 = 0/);
    expectFormatError(() => { const b = build((v) => v.setBigInt64(24 + 9 + 4, 40n, true)); parseGgufHeader(b, b.length, 'x'); }, /overlap/);
    expectFormatError(() => { const b = build((v) => v.setBigInt64(24 + 9 + 4, 4000n, true)); parseGgufHeader(b, b.length, 'x'); }, /past the end/);
  });

  it('rejects duplicate keys, arrays of arrays and a bad alignment', () => {
    const dup = encodeGgufHeader(new Map([['k', entry(GgufValueType.UINT8, 1)], ['k2', entry(GgufValueType.UINT8, 2)]]), []).header.slice();
    // rename k2 -> "k" plus a trailing byte is awkward; instead patch the second key's length to 1
    const view = new DataView(dup.buffer);
    const secondKey = 24 + 8 + 1 + 4 + 1;
    view.setBigUint64(secondKey, 1n, true);
    dup[secondKey + 8] = 'k'.charCodeAt(0);
    // the remaining '2' byte now reads as the first byte of the type: garbage, but the duplicate is caught first
    expectFormatError(() => parseGgufHeader(dup, dup.length, 'x'), /duplicate metadata key "k"/);

    const nested = encodeGgufHeader(new Map([['a', entry(GgufValueType.ARRAY, [], GgufValueType.STRING)]]), []).header.slice();
    new DataView(nested.buffer).setUint32(24 + 8 + 1 + 4, GgufValueType.ARRAY, true);
    expectFormatError(() => parseGgufHeader(nested, nested.length, 'x'), /arrays of arrays/);

    const align = encodeGgufHeader(new Map([['general.alignment', entry(GgufValueType.UINT32, 32)]]), []).header.slice();
    new DataView(align.buffer).setUint32(24 + 8 + 17 + 4, 48, true);
    expectFormatError(() => parseGgufHeader(align, align.length, 'x'), /power of two/);
  });

  it('reports a missing file as ERR_IO', async () => {
    await expect(readGguf(tmp('nope.gguf'))).rejects.toMatchObject({ code: 'ERR_IO' });
  });

  it('magic constant is "GGUF"', () => {
    expect(Buffer.from(new Uint32Array([GGUF_MAGIC]).buffer).toString('ascii')).toBe('GGUF');
  });
});

describeWithShared(
  ['models/stories260K/stories260K.gguf', 'models/llama-2-tiny-random/llama-2-tiny-random.gguf'],
  'GGUF files in ../shared',
  () => {
    it('reads stories260K.gguf as its README describes', async () => {
      const g = await readGguf(sharedPath('models/stories260K/stories260K.gguf'));
      expect(g.version).toBe(3);
      expect(g.tensors.length).toBe(48);
      expect(g.dataOffset).toBe(14176);
      expect(g.metadata.get('llama.context_length')?.value).toBe(128);
      expect(g.metadata.get('llama.attention.head_count_kv')?.value).toBe(4);
      expect((g.metadata.get('tokenizer.ggml.tokens')?.value as string[]).length).toBe(512);
      expect(new Set(g.tensors.map((t) => t.type))).toEqual(new Set(['f32']));
    });

    it('parses a Node Buffer as well as a Uint8Array (typed arrays are copied out, not viewed)', async () => {
      const file = sharedPath('models/stories260K/stories260K.gguf');
      const buffer = readFileSync(file); // may be a view into Node's shared pool
      const fromBuffer = parseGgufHeader(buffer, buffer.length, file);
      const fromFile = await readGguf(file);
      const scores = (g: typeof fromFile): number[] => Array.from(g.metadata.get('tokenizer.ggml.scores')!.value as Float32Array);
      expect(scores(fromBuffer)).toEqual(scores(fromFile));
      expect(scores(fromBuffer).length).toBe(512);
    });

    it('reads llama-2-tiny-random.gguf (F16 matrices, 32000 pieces)', async () => {
      const g = await readGguf(sharedPath('models/llama-2-tiny-random/llama-2-tiny-random.gguf'));
      expect(g.dataOffset).toBe(724416);
      expect(g.tensors.length).toBe(12);
      expect(g.tensors.find((t) => t.name === 'token_embd.weight')).toMatchObject({ type: 'f16', shape: [32000, 8] });
      expect(g.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')?.type).toBe('f32');
    });

    it('copies of a real file with flipped header bytes never crash the reader', async () => {
      const original = readFileSync(sharedPath('models/stories260K/stories260K.gguf'));
      let seed = 12345;
      const rand = (n: number): number => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return seed % n;
      };
      const file = tmp('flipped.gguf');
      for (let trial = 0; trial < 300; trial++) {
        const b = Buffer.from(original);
        for (let k = 0; k < 1 + rand(4); k++) b[rand(14176)] = rand(256); // flip header bytes
        writeFileSync(file, b);
        try {
          await readGguf(file);
        } catch (err) {
          expect(err).toBeInstanceOf(LlamaCudaError);
        }
      }
    });
  },
);
