/**
 * A bounded, seeded fuzz test of the whole load path (GGUF parser, config, tokenizer, weight
 * plan, native loader, one forward step) on mutated GGUF files, run in this process so that a
 * native crash fails the run.
 *
 * Bases: two tiny synthetic Llamas written with lib/formats/gguf-writer.ts (every loadable type:
 * f32, f16, bf16, Q8_0, Q4_0; the 512-piece stories260K vocabulary; one with a tied classifier
 * and f16 norms), and stories260K.gguf (its header region). Mutations: truncation, flipped bytes
 * in the header and in the data, every header field (counts, lengths, value and array types,
 * dimensions, tensor types, offsets) set to edge values (0, 1, huge, past the end, another
 * tensor's offset...), and re-encoded files whose metadata values (head counts, lengths, RoPE,
 * vocab arrays, special ids, alignment) or tensor table (shapes, types, names, missing and
 * duplicate tensors) were changed.
 *
 * For each mutant: loadModel(..., { device: 'cpu', contextLength: 16 }) and, when it loads,
 * one evaluate() step. Allowed outcomes: a LlamaCudaError with a known code other than
 * ERR_INTERNAL / ERR_OUT_OF_MEMORY (a refusal must come before any big allocation), or logits
 * (finite whenever the mutation left the weight bytes and tensor table alone). Mutants whose
 * header asks for more than 256 MiB of engine memory are reported, not loaded. Every finding
 * names the mutant (base, index, mutation) so it can be replayed with FUZZ_ONLY=<index>.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

import { beforeAll, expect, it } from 'vitest';

import { ERROR_CODES, LlamaCudaError } from '../../lib/errors.js';
import { type GgufEntry, GgufValueType, parseGgufHeader } from '../../lib/formats/gguf.js';
import type { GgufTensorToWrite } from '../../lib/formats/gguf-writer.js';
import { openModelFile } from '../../lib/formats/model-file.js';
import { BLOCK_LAYOUT, type SourceType, tensorBytes } from '../../lib/formats/tensor-info.js';
import { loadModel } from '../../lib/index.js';
import { estimateMemory } from '../../lib/model/memory.js';
import type { NativeSession } from '../../lib/addon-types.js';
import type { LlamaSequence } from '../../lib/model/sequence.js';
import { buildLlamaGraph } from '../../lib/model/transformer.js';
import { planWeights } from '../../lib/model/weights.js';
import { Rng } from '../helpers/rng.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { ggufImage, tinyLlama, vocabMetadataOf } from '../helpers/tiny-gguf.js';
import { useTmpDir } from '../helpers/tmp.js';

const tmp = useTmpDir('llama-cuda-fuzz-');
const STORIES_GGUF = 'models/stories260K/stories260K.gguf';
const SEED = 20251123;
/** Engine memory a mutant may ask for (weights + one 16-position sequence). */
const CAP = 256 * 2 ** 20;
/** A load or step that takes longer than this is a hang. */
const STEP_TIMEOUT_MS = 10_000;
/** Mutants per base: [tiny A, tiny B, stories260K.gguf]; FUZZ_SCALE=10 runs ten times as many (other seeds' worth). */
const SCALE = Number(process.env['FUZZ_SCALE'] ?? 1) || 1;
const COUNTS = [1700, 900, 400].map((n) => Math.round(n * SCALE));

// ---- a map of every field of a GGUF header --------------------------------------------------

type FieldKind =
  | 'version' | 'tensorCount' | 'kvCount' | 'keyLength' | 'valueType' | 'stringLength' | 'scalar'
  | 'arrayType' | 'arrayCount' | 'nameLength' | 'nDims' | 'dim' | 'tensorType' | 'tensorOffset';

interface Field {
  readonly kind: FieldKind;
  readonly offset: number;
  readonly width: 1 | 2 | 4 | 8;
  /** The key or tensor it belongs to. */
  readonly owner: string;
}

const SCALAR_WIDTH: Record<number, 1 | 2 | 4 | 8> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Walks a valid GGUF header (written here, so trusted) and lists its fields; returns the end of the tensor table too. */
function headerFields(bytes: Uint8Array): { fields: Field[]; tableEnd: number; dataOffset: number } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [];
  let pos = 4;
  const field = (kind: FieldKind, width: 1 | 2 | 4 | 8, owner: string): number => {
    fields.push({ kind, offset: pos, width, owner });
    const value = width === 8 ? Number(v.getBigUint64(pos, true)) : width === 4 ? v.getUint32(pos, true) : width === 2 ? v.getUint16(pos, true) : v.getUint8(pos);
    pos += width;
    return value;
  };
  const text = (kind: FieldKind, owner: string): string => {
    const n = field(kind, 8, owner);
    const s = new TextDecoder().decode(bytes.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  field('version', 4, 'header');
  const nTensors = field('tensorCount', 8, 'header');
  const nKv = field('kvCount', 8, 'header');
  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const key = text('keyLength', `key #${i}`);
    const type = field('valueType', 4, key);
    if (type === GgufValueType.ARRAY) {
      const elem = field('arrayType', 4, key);
      const n = field('arrayCount', 8, key);
      if (elem === GgufValueType.STRING) {
        // only the first few strings' lengths are worth mutating; skip the rest
        for (let j = 0; j < n; j++) {
          if (j < 4) text('stringLength', key);
          else pos += 8 + Number(v.getBigUint64(pos, true));
        }
      } else {
        const w = SCALAR_WIDTH[elem]!;
        fields.push({ kind: 'scalar', offset: pos, width: w, owner: key });
        pos += n * w;
      }
    } else if (type === GgufValueType.STRING) {
      text('stringLength', key);
    } else {
      const w = SCALAR_WIDTH[type]!;
      if (key === 'general.alignment') alignment = v.getUint32(pos, true);
      field('scalar', w, key);
    }
  }
  for (let i = 0; i < nTensors; i++) {
    const name = text('nameLength', `tensor #${i}`);
    const nDims = field('nDims', 4, name);
    for (let d = 0; d < nDims; d++) field('dim', 8, name);
    field('tensorType', 4, name);
    field('tensorOffset', 8, name);
  }
  return { fields, tableEnd: pos, dataOffset: Math.ceil(pos / alignment) * alignment };
}

// ---- mutants ------------------------------------------------------------------------------

interface Mutant {
  readonly label: string;
  /** The mutation family, for the tally. */
  readonly kind: string;
  readonly bytes: Uint8Array;
  /** The tensor table and tensor bytes are untouched: a model that loads must give finite logits. */
  readonly weightsIntact: boolean;
}

interface Base {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly fields: readonly Field[];
  readonly tableEnd: number;
  readonly dataOffset: number;
  /** For re-encoded mutations (synthetic bases only). */
  readonly metadata?: ReadonlyMap<string, GgufEntry>;
  readonly tensors?: readonly GgufTensorToWrite[];
}

const U64_EDGES = [0n, 1n, 2n, 3n, 31n, 32n, 33n, 255n, 4096n, 65535n, 1n << 31n, (1n << 32n) - 1n, 1n << 32n, 1n << 40n, 1n << 62n, 1n << 63n, (1n << 64n) - 1n];
const U32_EDGES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 30, 31, 64, 255, 0x7fffffff, 0x80000000, 0xffffffff];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length)]!;
}

function setField(bytes: Uint8Array, f: Field, value: bigint | number): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = BigInt.asUintN(f.width * 8, BigInt(value));
  if (f.width === 8) v.setBigUint64(f.offset, n, true);
  else if (f.width === 4) v.setUint32(f.offset, Number(n), true);
  else if (f.width === 2) v.setUint16(f.offset, Number(n), true);
  else v.setUint8(f.offset, Number(n));
}

function readField(bytes: Uint8Array, f: Field): bigint {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return f.width === 8 ? v.getBigUint64(f.offset, true) : BigInt(f.width === 4 ? v.getUint32(f.offset, true) : f.width === 2 ? v.getUint16(f.offset, true) : v.getUint8(f.offset));
}

/** An edge value for a header field, given the file it sits in. */
function edgeValue(rng: Rng, base: Base, f: Field, current: bigint): { value: bigint; what: string } {
  const size = BigInt(base.bytes.length);
  const data = BigInt(base.dataOffset);
  const near = [current + 1n, current - 1n, current * 2n, current / 2n, current + 32n];
  switch (f.kind) {
    case 'tensorOffset': {
      const others = base.fields.filter((g) => g.kind === 'tensorOffset').map((g) => readField(base.bytes, g));
      const choices: [bigint, string][] = [
        [pick(rng, others), 'another tensor\'s offset'],
        [current + 32n, '+32 (overlaps the next)'],
        [current - 32n, '-32 (overlaps the previous)'],
        [current + 1n, 'misaligned'],
        [size - data, 'at the end of the file'],
        [size - data - 32n, '32 bytes before the end'],
        [size, 'the file size'],
        [pick(rng, U64_EDGES), 'edge'],
      ];
      const [value, what] = pick(rng, choices);
      return { value: BigInt.asUintN(64, value), what };
    }
    case 'dim':
      return { value: BigInt.asUintN(64, pick(rng, [...near, 0n, -1n, 1n, 32n, 1n << 31n, 1n << 40n, 1n << 62n, -(1n << 63n)])), what: 'dim' };
    case 'tensorType':
    case 'valueType':
    case 'arrayType':
    case 'version':
    case 'nDims':
      return { value: BigInt(pick(rng, U32_EDGES)), what: 'edge' };
    case 'scalar':
      return { value: BigInt.asUintN(f.width * 8, pick(rng, [...near, 0n, 1n, 2n, 3n, 7n, 512n, 513n, -1n, 1n << 31n, 0x7f800000n, 0x7fc00000n, 0xff800000n])), what: 'value' };
    default:
      return { value: BigInt.asUintN(64, pick(rng, [...near, ...U64_EDGES, size, size - data])), what: 'count/length' };
  }
}

function flipBytes(rng: Rng, bytes: Uint8Array, lo: number, hi: number, n: number): string[] {
  const where: string[] = [];
  for (let i = 0; i < n; i++) {
    const at = rng.int(lo, hi);
    const how = rng.int(0, 3);
    if (how === 0) bytes[at] = bytes[at]! ^ (1 << rng.int(0, 8));
    else if (how === 1) bytes[at] = rng.int(0, 256);
    else bytes[at] = pick(rng, [0, 0xff, 0x7f, 0x80]);
    where.push(`@${at}`);
  }
  return where;
}

/** Metadata edits: [description, apply to a copy of the map]. */
function metadataEdits(rng: Rng, meta: ReadonlyMap<string, GgufEntry>): [string, Map<string, GgufEntry>] {
  const m = new Map(meta);
  const numericKeys = [
    'llama.context_length', 'llama.embedding_length', 'llama.block_count', 'llama.feed_forward_length',
    'llama.attention.head_count', 'llama.attention.head_count_kv', 'llama.rope.dimension_count',
    'llama.vocab_size', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id',
    'general.alignment',
  ];
  const floatKeys = ['llama.rope.freq_base', 'llama.attention.layer_norm_rms_epsilon', 'llama.rope.scaling.factor'];
  const u32 = (value: number): GgufEntry => ({ type: GgufValueType.UINT32, value });
  const kind = rng.int(0, 12);
  if (kind <= 3) {
    const key = pick(rng, numericKeys);
    const value = pick(rng, [0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 33, 48, 64, 96, 128, 511, 512, 513, 1000, 4096, 65536, 1 << 24, 0x7fffffff, 0xffffffff]);
    m.set(key, u32(value));
    return [`${key} = ${value}`, m];
  }
  if (kind === 4) {
    const key = pick(rng, [...numericKeys, ...floatKeys]);
    const entry = pick<[string, GgufEntry]>(rng, [
      ['a string', { type: GgufValueType.STRING, value: '12' }],
      ['a float', { type: GgufValueType.FLOAT32, value: 8.5 }],
      ['NaN', { type: GgufValueType.FLOAT32, value: NaN }],
      ['-1 (i32)', { type: GgufValueType.INT32, value: -1 }],
      ['2^53+1 (u64)', { type: GgufValueType.UINT64, value: 2n ** 53n + 1n }],
      ['a bool', { type: GgufValueType.BOOL, value: true }],
      ['an array', { type: GgufValueType.ARRAY, arrayType: GgufValueType.UINT32, value: new Uint32Array([32, 32]) }],
    ]);
    m.set(key, entry[1]);
    return [`${key} = ${entry[0]}`, m];
  }
  if (kind === 5) {
    const key = pick(rng, floatKeys);
    const value = pick(rng, [0, -1, 1, 1e-45, 0.5, 0.999, 1.5, 1e6, 1e30, Infinity, -Infinity, NaN]);
    m.set(key, { type: GgufValueType.FLOAT32, value });
    return [`${key} = ${value}`, m];
  }
  if (kind === 6) {
    const key = pick(rng, [...numericKeys, ...floatKeys, 'general.architecture', 'tokenizer.ggml.model', 'tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']);
    m.delete(key);
    return [`without ${key}`, m];
  }
  if (kind === 7) {
    const key = pick(rng, ['general.architecture', 'tokenizer.ggml.model', 'llama.rope.scaling.type']);
    const value = pick(rng, ['', 'gpt2', 'llama ', 'LLAMA', 'yarn', 'dynamic', 'linear', 'none', 'llama3', '\u0000', 'x'.repeat(300)]);
    m.set(key, { type: GgufValueType.STRING, value });
    return [`${key} = ${JSON.stringify(value.slice(0, 12))}`, m];
  }
  // vocabulary arrays
  const tokens = meta.get('tokenizer.ggml.tokens')!.value as string[];
  const scores = meta.get('tokenizer.ggml.scores')!.value as Float32Array;
  const types = meta.get('tokenizer.ggml.token_type')!.value as Int32Array;
  const which = rng.int(0, 10);
  const strings = (value: string[]): GgufEntry => ({ type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value });
  switch (which) {
    case 0: m.set('tokenizer.ggml.tokens', strings(tokens.slice(0, -1))); return ['tokens: one fewer', m];
    case 1: m.set('tokenizer.ggml.tokens', strings([...tokens, 'extra'])); return ['tokens: one more', m];
    case 2: { const t = tokens.slice(); t[rng.int(0, t.length)] = t[rng.int(0, t.length)]!; m.set('tokenizer.ggml.tokens', strings(t)); return ['tokens: a duplicate piece', m]; }
    case 3: { const t = tokens.slice(); t[rng.int(0, t.length)] = ''; m.set('tokenizer.ggml.tokens', strings(t)); return ['tokens: an empty piece', m]; }
    case 4: { const t = tokens.slice(); t[rng.int(3, 259)] = '<0xZZ>'; m.set('tokenizer.ggml.tokens', strings(t)); return ['tokens: a bad byte piece', m]; }
    case 5: m.set('tokenizer.ggml.scores', { type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: scores.slice(0, rng.int(0, scores.length)) }); return ['scores: short', m];
    case 6: { const s = scores.slice(); s[rng.int(0, s.length)] = pick(rng, [NaN, Infinity, -Infinity]); m.set('tokenizer.ggml.scores', { type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: s }); return ['scores: non-finite', m]; }
    case 7: { const t = types.slice(); t[rng.int(0, t.length)] = pick(rng, [0, 1, 2, 3, 4, 5, 6, 7, -1, 255]); m.set('tokenizer.ggml.token_type', { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: t }); return ['token types: one changed', m]; }
    case 8: m.set('tokenizer.ggml.token_type', { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: types.slice(0, rng.int(0, types.length)) }); return ['token types: short', m];
    default: m.set('tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, arrayType: GgufValueType.UINT32, value: new Uint32Array(tokens.length) }); return ['tokens: numbers', m];
  }
}

const LOADABLE_AND_NOT: readonly SourceType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q4_k', 'q6_k', 'i8', 'f64', 'iq2_xxs'];

/** Bytes for a tensor of this type and shape: the old bytes cut or extended with random ones. */
function resized(rng: Rng, old: Uint8Array, type: SourceType, shape: readonly number[]): Uint8Array | undefined {
  const n = tensorBytes(type, shape);
  if (typeof n === 'string' || n > 8 << 20) return undefined;
  const out = new Uint8Array(n);
  out.set(old.subarray(0, Math.min(n, old.length)));
  for (let i = old.length; i < n; i++) out[i] = rng.int(0, 256);
  return out;
}

/** Tensor table edits (re-encoded): [description, tensors] or undefined when the edit cannot be encoded. */
function tableEdit(rng: Rng, tensors: readonly GgufTensorToWrite[]): [string, GgufTensorToWrite[]] | undefined {
  const t = tensors.slice();
  const i = rng.int(0, t.length);
  const x = t[i]!;
  const data = x.data as Uint8Array;
  switch (rng.int(0, 7)) {
    case 0: { // shape change
      const shape = x.shape.slice();
      const d = rng.int(0, shape.length);
      const how = rng.int(0, 5);
      if (how === 0) shape.reverse();
      else if (how === 1) shape[d] = shape[d]! * 2;
      else if (how === 2) shape[d] = Math.max(1, Math.floor(shape[d]! / 2));
      else if (how === 3) shape[d] = shape[d]! + pick(rng, [-32, -1, 1, 32]);
      else shape.push(1);
      if (shape.some((s) => s < 1)) return undefined;
      const bytes = resized(rng, data, x.type, shape);
      if (bytes === undefined) return undefined;
      t[i] = { ...x, shape, data: bytes };
      return [`${x.name}: shape [${shape.join(', ')}]`, t];
    }
    case 1: { // type change, data resized to match
      const type = pick(rng, LOADABLE_AND_NOT);
      if (x.shape[x.shape.length - 1]! % BLOCK_LAYOUT[type].elems !== 0) return undefined;
      const bytes = resized(rng, data, type, x.shape);
      if (bytes === undefined) return undefined;
      t[i] = { ...x, type, data: bytes };
      return [`${x.name}: type ${type}`, t];
    }
    case 2:
      t.splice(i, 1);
      return [`without ${x.name}`, t];
    case 3:
      t.push({ ...x });
      return [`${x.name} twice`, t];
    case 4: {
      const name = pick(rng, ['', 'blk.0.attn_q.weight', 'blk.99.attn_q.weight', 'output.weight', 'token_embd.weight', `${x.name}\u0000`]);
      t[i] = { ...x, name };
      return [`${x.name} renamed ${JSON.stringify(name)}`, t];
    }
    case 5: {
      const j = rng.int(0, t.length);
      [t[i], t[j]] = [t[j]!, t[i]!];
      return [`${x.name} and ${t[i]!.name} swapped in the table`, t];
    }
    default: {
      // the same name and shape but another tensor's bytes where the size agrees: a consistent file with wrong weights
      const same = t.filter((y) => y !== x && tensorBytes(y.type, y.shape) === data.length && y.type === x.type);
      if (same.length === 0) return undefined;
      t[i] = { ...x, data: pick(rng, same).data };
      return [`${x.name} with another tensor's bytes`, t];
    }
  }
}

function* mutantsOf(base: Base, count: number, seed: number): Generator<Mutant> {
  const rng = new Rng(seed);
  const size = base.bytes.length;
  const headerFieldsOnly = base.fields;
  for (let k = 0; k < count; k++) {
    const kind = rng.int(0, base.metadata === undefined ? 4 : 6);
    const label = `${base.name} #${k}`;
    if (kind === 0) {
      // truncation, half of them inside the header
      const at = rng.int(0, 2) === 0 ? rng.int(0, base.tableEnd + 64) : rng.int(0, size);
      yield { label: `${label}: cut at ${at} of ${size}`, kind: 'truncate', bytes: base.bytes.slice(0, at), weightsIntact: false };
    } else if (kind === 1) {
      const bytes = base.bytes.slice();
      const where = flipBytes(rng, bytes, 0, base.tableEnd, rng.int(1, 5));
      yield { label: `${label}: header bytes changed ${where.join(' ')}`, kind: 'header-bytes', bytes, weightsIntact: false };
    } else if (kind === 2) {
      // tensor data flips: the file stays well formed, the weights may become NaN / Inf
      const bytes = base.bytes.slice();
      const where = flipBytes(rng, bytes, base.dataOffset, size, rng.int(1, 9));
      yield { label: `${label}: data bytes changed ${where.join(' ')}`, kind: 'data-bytes', bytes, weightsIntact: false };
    } else if (kind === 3) {
      const bytes = base.bytes.slice();
      const descr: string[] = [];
      for (let n = rng.int(1, 3); n > 0; n--) {
        const f = pick(rng, headerFieldsOnly);
        const { value, what } = edgeValue(rng, base, f, readField(bytes, f));
        setField(bytes, f, value);
        descr.push(`${f.kind} of ${f.owner} @${f.offset} = ${value} (${what})`);
      }
      yield { label: `${label}: ${descr.join('; ')}`, kind: 'fields', bytes, weightsIntact: false };
    } else if (kind === 4) {
      const [what, meta] = metadataEdits(rng, base.metadata!);
      let bytes: Uint8Array;
      try {
        bytes = ggufImage(meta, base.tensors!);
      } catch {
        // the writer cannot lay out this file (general.alignment 0): not a file to test
        k--;
        continue;
      }
      yield { label: `${label}: metadata ${what}`, kind: 'metadata', bytes, weightsIntact: true };
    } else {
      const edit = tableEdit(rng, base.tensors!);
      if (edit === undefined) {
        k--;
        continue;
      }
      yield { label: `${label}: table ${edit[0]}`, kind: 'table', bytes: ggufImage(base.metadata!, edit[1]), weightsIntact: false };
    }
  }
}

// ---- running one mutant ---------------------------------------------------------------------

const ACCEPTED = new Set<string>(ERROR_CODES.filter((c) => c !== 'ERR_INTERNAL' && c !== 'ERR_OUT_OF_MEMORY'));

interface Tally {
  /** Per mutation family: mutants, and how many loaded. */
  kinds: Map<string, { mutants: number; loaded: number }>;
  loaded: number;
  finite: number;
  nonFinite: number;
  codes: Map<string, number>;
  findings: string[];
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`HANG: ${what} took more than ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const DEBUG = process.env['FUZZ_DEBUG'];

function judgeError(err: unknown, label: string, stage: string, tally: Tally): void {
  if (DEBUG !== undefined && label.includes(DEBUG)) console.log(`${label} -> ${stage}: ${(err as Error).message}`);
  if (err instanceof LlamaCudaError && ACCEPTED.has(err.code)) {
    tally.codes.set(err.code, (tally.codes.get(err.code) ?? 0) + 1);
    return;
  }
  const what = err instanceof LlamaCudaError ? `${err.code}: ${err.message}` : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  tally.findings.push(`${label} -> ${stage}: ${what}`);
}

/** What the engine would allocate for this file, or undefined when it does not get that far. */
async function plannedBytes(file: string): Promise<number | undefined> {
  try {
    const mf = await openModelFile(file);
    const plan = planWeights(mf.config, mf.tensors, 'fuzz');
    const graph = buildLlamaGraph(mf.config, plan, { contextLength: 16 });
    return estimateMemory(mf.config, graph, { contextLength: 16, batchSize: 16 }, 1).cpu.total;
  } catch {
    return undefined;
  }
}

async function runMutant(m: Mutant, file: string, tally: Tally): Promise<void> {
  writeFileSync(file, m.bytes);
  const kind = tally.kinds.get(m.kind) ?? { mutants: 0, loaded: 0 };
  tally.kinds.set(m.kind, kind);
  kind.mutants++;
  const planned = await plannedBytes(file);
  if (planned !== undefined && planned > CAP) {
    tally.findings.push(`${m.label} -> BIG: a consistent header that asks for ${planned} bytes (not loaded)`);
    return;
  }
  let model;
  try {
    model = await withTimeout(loadModel(file, { device: 'cpu', contextLength: 16, threads: 1 }), `${m.label} load`);
  } catch (err) {
    judgeError(err, m.label, 'load', tally);
    return;
  }
  tally.loaded++;
  kind.loaded++;
  try {
    // the tokenizer of a mutated vocabulary must encode and decode without trouble too
    const ids = model.tokenize('Once upon a time, 123 \u00e9 \u{1f999} <s>[INST] x');
    model.detokenize(ids);
    const seq = model.createSequence();
    const token = Math.min(model.tokenizer.bos, model.config.vocabSize - 1);
    const logits = await withTimeout(seq.evaluate([token, token === 0 ? 0 : token - 1]), `${m.label} evaluate`);
    const finite = logits !== undefined && logits.length === model.config.vocabSize && logits.every((x) => Number.isFinite(x));
    if (finite) tally.finite++;
    else {
      tally.nonFinite++;
      if (m.weightsIntact) tally.findings.push(`${m.label} -> non-finite logits though the weights are intact`);
    }
    const used = model.info.weightBytes + (seq as unknown as { session: NativeSession }).session.memoryInfo().bytes;
    if (used > CAP) tally.findings.push(`${m.label} -> BIG: loaded and took ${used} bytes`);
    await seq.dispose();
  } catch (err) {
    judgeError(err, m.label, 'evaluate', tally);
  } finally {
    await model.dispose();
  }
}

describeWithShared([STORIES_GGUF], 'GGUF fuzz: mutated files load cleanly or fail with a LlamaCudaError', () => {
  const bases: Base[] = [];
  beforeAll(async () => {
    const vocab = await vocabMetadataOf(sharedPath(STORIES_GGUF));
    const a = tinyLlama(vocab, { dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, contextLength: 64, seed: 1 });
    const b = tinyLlama(vocab, {
      dim: 64, hiddenDim: 96, nLayers: 1, nHeads: 8, nKvHeads: 8, contextLength: 32, seed: 2, output: false,
      types: { embedding: 'f16', q: 'q4_0', k: 'f32', v: 'bf16', o: 'q8_0', gate: 'q8_0', up: 'f16', down: 'q4_0', norm: 'f16' },
    });
    for (const [name, t] of [['tinyA', a], ['tinyB', b]] as const) {
      const bytes = ggufImage(t.metadata, t.tensors);
      bases.push({ name, bytes, ...headerFields(bytes), metadata: t.metadata, tensors: t.tensors });
    }
    const stories = new Uint8Array(await readFile(sharedPath(STORIES_GGUF)));
    bases.push({ name: 'stories260K.gguf', bytes: stories, ...headerFields(stories) });
    // the map agrees with the library's parser
    for (const base of bases) {
      expect(base.dataOffset).toBe(parseGgufHeader(base.bytes, base.bytes.length, base.name).dataOffset);
    }
  });

  it('every base loads and gives finite logits', async () => {
    for (const base of bases) {
      const tally: Tally = { kinds: new Map(), loaded: 0, finite: 0, nonFinite: 0, codes: new Map(), findings: [] };
      await runMutant({ label: base.name, kind: 'base', bytes: base.bytes, weightsIntact: true }, tmp(`${base.name}.gguf`), tally);
      expect(tally).toMatchObject({ loaded: 1, finite: 1, findings: [] });
    }
  });

  it('odd but consistent shapes load and give finite logits', async () => {
    // head dims 2..34, GQA groups 1..8, MQA, FFN widths of 1 and 17, columns that are not a
    // multiple of 32 (float types only there), partial RoPE, tied and untied classifiers
    const vocab = await vocabMetadataOf(sharedPath(STORIES_GGUF));
    const rng = new Rng(SEED + 99);
    const tally: Tally = { kinds: new Map(), loaded: 0, finite: 0, nonFinite: 0, codes: new Map(), findings: [] };
    const file = tmp('shape.gguf');
    const n = 60;
    for (let k = 0; k < n; k++) {
      const headDim = pick(rng, [2, 4, 6, 8, 10, 16, 34]);
      const nKvHeads = pick(rng, [1, 2, 3]);
      const nHeads = nKvHeads * pick(rng, [1, 2, 3, 4, 8]);
      const dim = nHeads * headDim;
      const hiddenDim = pick(rng, [1, 3, 17, 32, 64, 100]);
      const floats: SourceType[] = ['f32', 'f16', 'bf16'];
      const typeFor = (cols: number): SourceType => pick(rng, cols % 32 === 0 ? [...floats, 'q8_0', 'q4_0'] : floats);
      const types = {
        embedding: typeFor(dim), q: typeFor(dim), k: typeFor(dim), v: typeFor(dim), o: typeFor(dim),
        gate: typeFor(dim), up: typeFor(dim), down: typeFor(hiddenDim), output: typeFor(dim), norm: pick(rng, floats),
      };
      const t = tinyLlama(vocab, { dim, hiddenDim, nLayers: rng.int(1, 4), nHeads, nKvHeads, contextLength: 16, types, output: rng.int(0, 2) === 0, seed: k });
      const ropeDim = 2 * rng.int(1, headDim / 2 + 1);
      t.metadata.set('llama.rope.dimension_count', { type: GgufValueType.UINT32, value: ropeDim });
      const label = `shape #${k}: dim ${dim} = ${nHeads} heads x ${headDim} (${nKvHeads} kv), hidden ${hiddenDim}, rope ${ropeDim}, ${JSON.stringify(types)}`;
      await runMutant({ label, kind: 'shape', bytes: ggufImage(t.metadata, t.tensors), weightsIntact: true }, file, tally);
      if (tally.loaded !== k + 1 && tally.findings.length === 0) tally.findings.push(`${label} -> refused: ${JSON.stringify(Object.fromEntries(tally.codes))}`);
    }
    expect(tally.findings).toEqual([]);
    expect(tally).toMatchObject({ loaded: n, finite: n });
  });

  // A file's llama.context_length used to size the KV cache unchecked: a 40 KB file with 2^22
  // made the first sequence reserve ~670 MB. The default context is now capped (at 4096).
  it('a tiny file with context_length 2^22 is refused, or sized down, before a big allocation', async () => {
    const vocab = await vocabMetadataOf(sharedPath(STORIES_GGUF));
    const t = tinyLlama(vocab, { contextLength: 1 << 22 });
    const file = tmp('huge-context.gguf');
    writeFileSync(file, ggufImage(t.metadata, t.tensors));
    let model;
    try {
      model = await loadModel(file, { device: 'cpu', threads: 1 });
    } catch (err) {
      expect(err).toBeInstanceOf(LlamaCudaError); // a refusal is fine
      return;
    }
    try {
      let bytes = 0;
      try {
        const seq = model.createSequence();
        bytes = (seq as unknown as { session: NativeSession }).session.memoryInfo().bytes;
      } catch (err) {
        expect(err).toBeInstanceOf(LlamaCudaError);
        return;
      }
      expect(bytes).toBeLessThanOrEqual(CAP);
    } finally {
      await model.dispose();
    }
  });

  it(`${COUNTS.reduce((a, b) => a + b, 0)} seeded mutants: no crash, hang, big allocation or unexpected error`, async () => {
    const only = process.env['FUZZ_ONLY'];
    const tally: Tally = { kinds: new Map(), loaded: 0, finite: 0, nonFinite: 0, codes: new Map(), findings: [] };
    const file = tmp('mutant.gguf');
    let total = 0;
    for (const [i, base] of bases.entries()) {
      for (const m of mutantsOf(base, COUNTS[i]!, SEED + i)) {
        if (only !== undefined && !m.label.startsWith(`${base.name} #${only}:`)) continue;
        total++;
        await runMutant(m, file, tally);
      }
    }
    const codes = Object.fromEntries([...tally.codes].sort());
    const kinds = [...tally.kinds].map(([k, v]) => `${k} ${v.loaded}/${v.mutants}`).join(', ');
    console.log(`gguf fuzz: ${total} mutants; ${tally.loaded} loaded (${tally.finite} finite logits, ${tally.nonFinite} non-finite); refused: ${JSON.stringify(codes)}; loaded per family: ${kinds}; findings: ${tally.findings.length}`);
    expect(tally.findings.slice(0, 20), `${tally.findings.length} findings`).toEqual([]);
    if (only === undefined) {
      expect(total).toBe(COUNTS.reduce((a, b) => a + b, 0));
      // the mutations reach every stage: refusals of several kinds, and loads that ran
      expect(tally.loaded).toBeGreaterThan(200);
      expect(tally.codes.get('ERR_MODEL_FORMAT') ?? 0).toBeGreaterThan(500);
      expect(tally.codes.get('ERR_UNSUPPORTED') ?? 0).toBeGreaterThan(5);
    }
  }, 120_000 * SCALE);
});
