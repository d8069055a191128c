/**
 * Bounded fuzzing of safetensors files: seeded mutations (truncation, flipped bytes in the header
 * and the data, absurd header lengths, and edits of the header's JSON: huge, overlapping and
 * out-of-file offsets, wrong dtypes and shapes, dropped and duplicated entries) of a real file
 * of a small synthetic model (2 layers, width 32). Each mutated file goes through the reader,
 * and a share of them through loadModel as the weights of a Hugging Face folder: each must load
 * (and then give one step of logits, finite unless the mutation itself put non-finite or huge
 * values in the weights) or throw a LlamaCudaError. Never a crash, a hang or a huge allocation:
 * the reader never allocates more than the file, and the engine only what config.json implies.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { LlamaCudaError } from '../../lib/errors.js';
import { type SafetensorsFile, parseSafetensorsHeader } from '../../lib/formats/safetensors.js';
import { loadModel } from '../../lib/index.js';
import { randomWeights, tinyConfig, writeHfFolder, writeTinyTokenizer } from '../helpers/hf-model.js';
import { Rng } from '../helpers/rng.js';
import { useTmpDir } from '../helpers/tmp.js';
import { bf16ToNumber, f16ToNumber } from '../reference/float16.js';

const tmp = useTmpDir();
const READER_CASES = 3000;
const LOAD_CASES = 1000;
const DTYPES = ['F32', 'F16', 'BF16', 'I8', 'U8', 'F64', 'I64', 'F8_E4M3', 'F4', 'BOOL', 'X', '', 7, null];

const cfg = tinyConfig({ dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 32 });

interface Base {
  bytes: Buffer;
  headerLength: number;
}

function headerOf(b: Base): Record<string, Record<string, unknown>> {
  return JSON.parse(b.bytes.subarray(8, 8 + b.headerLength).toString('utf8')) as Record<string, Record<string, unknown>>;
}

function withHeader(header: unknown, data: Uint8Array, rng: Rng): Buffer {
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  if (rng.next() < 0.3) json = Buffer.concat([json, Buffer.alloc(rng.int(0, 9), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(0, xs.length)]!;

/** One seeded mutation of the base file, and what it was (for failure messages). */
function mutate(b: Base, rng: Rng): { bytes: Buffer; what: string } {
  const { bytes, headerLength } = b;
  const dataStart = 8 + headerLength;
  const data = bytes.subarray(dataStart);
  const kind = rng.int(0, 9);
  switch (kind) {
    case 0: {
      const at = rng.int(0, bytes.length);
      return { bytes: bytes.subarray(0, at), what: `truncated at ${at}` };
    }
    case 1: {
      const out = Buffer.from(bytes);
      const n = rng.int(1, 6);
      for (let i = 0; i < n; i++) {
        const at = rng.int(0, dataStart);
        out[at] = out[at]! ^ rng.int(1, 256);
      }
      return { bytes: out, what: `${n} header bytes flipped` };
    }
    case 2: {
      const out = Buffer.from(bytes);
      const n = rng.int(1, 20);
      for (let i = 0; i < n; i++) {
        const at = rng.int(dataStart, out.length);
        out[at] = out[at]! ^ rng.int(1, 256);
      }
      return { bytes: out, what: `${n} data bytes flipped` };
    }
    case 3: {
      const out = Buffer.from(bytes);
      const choices = [0n, 1n, 2n, BigInt(headerLength - 1), BigInt(headerLength + 1), BigInt(bytes.length), BigInt(bytes.length - 8), 1n << 32n, 1n << 53n, 1n << 63n, (1n << 64n) - 1n, BigInt(rng.nextUint32())];
      const v = pick(rng, choices);
      out.writeBigUInt64LE(v);
      return { bytes: out, what: `header length ${v}` };
    }
    case 4:
    case 5:
    case 6: {
      // edit one entry of the JSON header
      const header = headerOf(b);
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      const name = pick(rng, names);
      const e = header[name]!;
      const offsets = e['data_offsets'] as [number, number];
      const shape = e['shape'] as number[];
      const other = header[pick(rng, names)]!['data_offsets'] as [number, number];
      const edits: [string, () => void][] = [
        ['offsets huge', () => (e['data_offsets'] = [offsets[0], pick(rng, [2 ** 31, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 1e300])])],
        ['offsets past the end', () => (e['data_offsets'] = [offsets[0] + data.length, offsets[1] + data.length])],
        ['offsets shifted', () => (e['data_offsets'] = [offsets[0] + rng.int(-8, 9), offsets[1] + rng.int(-8, 9)])],
        ['offsets of another tensor', () => (e['data_offsets'] = [...other])],
        ['offsets reversed', () => (e['data_offsets'] = [offsets[1], offsets[0]])],
        ['offsets negative', () => (e['data_offsets'] = [-offsets[1], offsets[0]])],
        ['offsets not numbers', () => (e['data_offsets'] = pick(rng, [null, 'x', [1], [1, 2, 3], [0.5, 8], {}]))],
        ['dtype', () => (e['dtype'] = pick(rng, DTYPES))],
        ['shape scaled', () => (e['shape'] = shape.map((d) => d * pick(rng, [0, 2, 3, 1024, 2 ** 26])))],
        ['shape swapped', () => (e['shape'] = [...shape].reverse())],
        ['shape negative', () => (e['shape'] = shape.map((d) => -d))],
        ['shape extra dims', () => (e['shape'] = [...shape, pick(rng, [1, 2, 0])])],
        ['shape emptied', () => (e['shape'] = [])],
        ['shape fractional', () => (e['shape'] = shape.map((d) => d / 2))],
        ['entry dropped', () => delete header[name]],
        ['entry renamed', () => {
          header[`${name}.x`] = e;
          delete header[name];
        }],
        ['entry not an object', () => (header[name] = pick(rng, [null, 1, 'x', [] as unknown]) as Record<string, unknown>)],
        ['metadata broken', () => (header['__metadata__'] = pick(rng, [null, [], { a: 1 }, 'x'] as unknown[]) as Record<string, unknown>)],
      ];
      const [what, edit] = pick(rng, edits);
      edit();
      return { bytes: withHeader(header, data, rng), what: `header edit on "${name}": ${what}` };
    }
    case 7: {
      // the same key twice in the JSON text
      const text = bytes.subarray(8, dataStart).toString('utf8').trimEnd();
      const header = headerOf(b);
      const name = pick(rng, Object.keys(header).filter((k) => k !== '__metadata__'));
      const dup = `${text.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(header[name])}}`;
      const json = Buffer.from(dup, 'utf8');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      return { bytes: Buffer.concat([len, json, data]), what: `duplicate key "${name}"` };
    }
    default: {
      const at = rng.int(0, bytes.length);
      const n = rng.int(1, 64);
      const insert = rng.next() < 0.5;
      const junk = Buffer.from(Array.from({ length: n }, () => rng.int(0, 256)));
      return {
        bytes: insert ? Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)]) : Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + n))]),
        what: `${n} bytes ${insert ? 'inserted' : 'deleted'} at ${at}`,
      };
    }
  }
}

/** The reader's result must describe only bytes inside the file, without overlaps. */
function checkInvariants(st: SafetensorsFile, size: number): void {
  let end = st.dataOffset;
  const sorted = [...st.tensors].sort((a, b) => a.offset - b.offset);
  for (const t of sorted) {
    expect(t.offset).toBeGreaterThanOrEqual(end);
    expect(t.offset + t.nbytes).toBeLessThanOrEqual(size);
    end = t.offset + t.nbytes;
  }
  expect(end).toBe(size);
}

/** Whether every value the file's float tensors hold is finite and of a sane size. */
function weightsSane(bytes: Buffer, st: SafetensorsFile): boolean {
  for (const t of st.tensors) {
    const b = bytes.subarray(t.offset, t.offset + t.nbytes);
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n = t.dtype === 'F32' ? t.nbytes / 4 : t.nbytes / 2;
    for (let i = 0; i < n; i++) {
      const v = t.dtype === 'F32' ? view.getFloat32(4 * i, true) : t.dtype === 'F16' ? f16ToNumber(view.getUint16(2 * i, true)) : bf16ToNumber(view.getUint16(2 * i, true));
      if (!Number.isFinite(v) || Math.abs(v) > 1e4) return false;
    }
  }
  return true;
}

describe('safetensors fuzz', () => {
  const bases: Base[] = [];
  let folder: string;
  let tokenizer: string;

  beforeAll(async () => {
    const weights = randomWeights(cfg, 11);
    // one f32 model, one mixed f16 / bf16 (the reader sees both dtypes)
    for (const dtype of ['F32', 'BF16'] as const) {
      const dir = tmp(`base-${dtype}`);
      await writeHfFolder(dir, cfg, weights, { dtype });
      const bytes = readFileSync(path.join(dir, 'model.safetensors'));
      bases.push({ bytes, headerLength: Number(bytes.readBigUInt64LE(0)) });
    }
    folder = tmp('base-F32');
    tokenizer = tmp('tokenizer.bin');
    writeTinyTokenizer(tokenizer, cfg.vocabSize);
  });

  it(`${READER_CASES} mutated files through the reader: a valid description of the file, or ERR_MODEL_FORMAT`, () => {
    const rng = new Rng(20261123);
    const outcomes = { parsed: 0, rejected: 0 };
    for (let i = 0; i < READER_CASES; i++) {
      const base = bases[i % bases.length]!;
      const { bytes, what } = mutate(base, rng);
      let st: SafetensorsFile | undefined;
      try {
        st = parseSafetensorsHeader(bytes, bytes.length, 'fuzz.safetensors');
      } catch (err) {
        if (!(err instanceof LlamaCudaError) || err.code !== 'ERR_MODEL_FORMAT') throw new Error(`case ${i} (${what}): ${String(err)}`, { cause: err });
        outcomes.rejected++;
        continue;
      }
      checkInvariants(st, bytes.length);
      outcomes.parsed++;
    }
    // both outcomes happen: the mutations reach past the first check
    console.log(`safetensors fuzz, reader: ${JSON.stringify(outcomes)}`);
    expect(outcomes.parsed).toBeGreaterThan(READER_CASES / 10);
    expect(outcomes.rejected).toBeGreaterThan(READER_CASES / 3);
  });

  it(`${LOAD_CASES} mutated model files through loadModel: loads and runs a step, or a LlamaCudaError`, async () => {
    const rng = new Rng(7);
    const file = path.join(folder, 'model.safetensors');
    const outcomes = { ran: 0, nonFinite: 0, rejected: {} as Record<string, number> };
    for (let i = 0; i < LOAD_CASES; i++) {
      const { bytes, what } = mutate(bases[0]!, rng);
      writeFileSync(file, bytes);
      let model;
      try {
        model = await loadModel(folder, { device: 'cpu', tokenizer, kvCacheType: 'f32', threads: 1, contextLength: 8, batchSize: 4 });
      } catch (err) {
        if (!(err instanceof LlamaCudaError)) throw new Error(`case ${i} (${what}): not a LlamaCudaError: ${String(err)}`, { cause: err });
        outcomes.rejected[err.code] = (outcomes.rejected[err.code] ?? 0) + 1;
        continue;
      }
      try {
        const seq = model.createSequence();
        const logits = (await seq.evaluate([1, 42]))!;
        await seq.dispose();
        expect(logits.length).toBe(cfg.vocabSize);
        if (!logits.every(Number.isFinite)) {
          // only a mutation that wrote non-finite or huge weights may do that
          expect(weightsSane(bytes, parseSafetensorsHeader(bytes, bytes.length, 'fuzz')), `case ${i} (${what}): non-finite logits from sane weights`).toBe(false);
          outcomes.nonFinite++;
        }
        outcomes.ran++;
      } finally {
        await model.dispose();
      }
    }
    console.log(`safetensors fuzz, loadModel: ${JSON.stringify(outcomes)}`);
    expect(outcomes.ran).toBeGreaterThan(LOAD_CASES / 10);
    expect(Object.keys(outcomes.rejected)).toContain('ERR_MODEL_FORMAT');
  });
});
