/**
 * SentencePiece tokenizer.model: the protobuf wire-format reader, synthetic ModelProtos for every
 * setting that is accepted or rejected, malformed input (truncated, garbled), and the real
 * Llama 2 model against SentencePiece (the parity suite) and against the other vocabulary files.
 */
import { readFileSync } from 'node:fs';

import { beforeAll, describe, expect, it } from 'vitest';

import { LlamaCudaError } from '../../lib/errors.js';
import { parseSentencePieceModel } from '../../lib/tokenizer/from-sentencepiece.js';
import { TokenType, Tokenizer } from '../../lib/tokenizer/index.js';
import { ProtoReader, WireType } from '../../lib/tokenizer/protobuf.js';
import { expectErrorCode } from '../helpers/errors.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { FILES, defineParityTests, ggufTokenizer, llama2cTokenizer, sentencePieceTokenizer } from './load.js';
import { randomInt, seededRandom } from './random.js';

// ---- a protobuf writer for the tests ----

/** A varint; negative numbers as protobuf writes int32: 64-bit two's complement, 10 bytes. */
function varint(value: number | bigint): number[] {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return out;
}
const tag = (field: number, wire: number): number[] => varint(field * 8 + wire);
const vfield = (field: number, value: number | bigint | boolean): number[] => [...tag(field, 0), ...varint(typeof value === 'boolean' ? Number(value) : value)];
const lfield = (field: number, payload: readonly number[]): number[] => [...tag(field, 2), ...varint(payload.length), ...payload];
const sfield = (field: number, s: string): number[] => lfield(field, [...new TextEncoder().encode(s)]);
function ffield(field: number, x: number): number[] {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return [...tag(field, 5), ...b];
}

type Fields = Record<string, number[] | undefined>;
const join = (fields: Fields): number[] => Object.values(fields).flatMap((f) => f ?? []);

const BYTES = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
/** [piece, score, type]; type 1 (normal) is left out of the encoding, as protobuf omits defaults. */
const PIECES: [string, number, number][] = [
  ['<unk>', 0, 2], ['<s>', 0, 3], ['</s>', 0, 3],
  ...BYTES.map((p): [string, number, number] => [p, 0, 6]),
  ['▁', -1, 1], ['h', -2, 1], ['i', -3, 1], ['▁h', -4, 1], ['▁hi', -5, 1],
];
const piece = ([text, score, type]: [string, number, number]): number[] => [...sfield(1, text), ...ffield(2, score), ...(type === 1 ? [] : vfield(3, type))];

const TRAINER: Fields = {
  model_prefix: sfield(2, 'tiny'),
  model_type: vfield(3, 2),
  vocab_size: vfield(4, PIECES.length),
  split_digits: vfield(25, true),
  byte_fallback: vfield(35, true),
  unk_id: vfield(40, 0),
  bos_id: vfield(41, 1),
  eos_id: vfield(42, 2),
  pad_id: vfield(43, -1),
};
const NORMALIZER: Fields = {
  name: sfield(1, 'identity'),
  precompiled_charsmap: lfield(2, []),
  add_dummy_prefix: vfield(3, true),
  remove_extra_whitespaces: vfield(4, false),
  escape_whitespaces: vfield(5, true),
};

interface ModelSpec {
  pieces?: [string, number, number][];
  trainer?: Fields;
  normalizer?: Fields | null;
  /** More top-level fields, appended. */
  extra?: number[];
}

function model(spec: ModelSpec = {}): Uint8Array {
  const bytes = [
    ...(spec.pieces ?? PIECES).flatMap((p) => lfield(1, piece(p))),
    ...lfield(2, join({ ...TRAINER, ...spec.trainer })),
    ...(spec.normalizer === null ? [] : lfield(3, join({ ...NORMALIZER, ...spec.normalizer }))),
    ...(spec.extra ?? []),
  ];
  return new Uint8Array(bytes);
}

const idOf = (p: string): number => PIECES.findIndex(([text]) => text === p);

// ---- the wire-format reader ----

describe('protobuf wire-format reader', () => {
  function reader(bytes: readonly number[]): ProtoReader {
    return new ProtoReader(new Uint8Array(bytes), 'test.bin', 'Test');
  }

  it('reads varints of 1 to 10 bytes, int32 (negative ones are 10 bytes), bools, floats and strings', () => {
    for (const v of [0, 1, 127, 128, 300, 16383, 16384, 2 ** 31 - 1, 2 ** 32, 2 ** 35 + 5, 2 ** 53 - 1]) {
      const r = reader(varint(v));
      expect(r.varint()).toBe(v);
      expect(r.pos).toBe(varint(v).length);
    }
    for (const v of [0, 1, -1, -2, 2 ** 31 - 1, -(2 ** 31), 40, -1000000]) {
      expect(reader(varint(v)).int32()).toBe(v);
    }
    expect(varint(-1)).toHaveLength(10);
    expect([reader([0]).bool(), reader([1]).bool(), reader([0x80, 0x01]).bool()]).toEqual([false, true, true]);
    const f = reader([...ffield(2, -1e9), ...ffield(3, 0.5), ...sfield(4, ''), ...sfield(5, 'ab▁é😀')]);
    const got: unknown[] = [];
    while (f.next()) {
      if (f.wire === WireType.I32) got.push(f.float());
      else got.push(f.string('s'));
    }
    expect(got).toEqual([-1e9, 0.5, '', 'ab▁é😀']);
  });

  it('skips fields of every wire type, nested groups included', () => {
    const fixed64 = [...tag(9, 1), 1, 2, 3, 4, 5, 6, 7, 8];
    const group = [...tag(10, 3), ...vfield(1, 5), ...tag(11, 3), ...sfield(2, 'x'), ...tag(11, 4), ...ffield(3, 1), ...tag(10, 4)];
    const r = reader([...vfield(7, 2 ** 40), ...fixed64, ...group, ...sfield(12, 'skip'), ...ffield(13, 2), ...vfield(1, 42)]);
    const seen: number[] = [];
    while (r.next()) {
      seen.push(r.field);
      if (r.field === 1) expect(r.varint()).toBe(42);
      else r.skip();
    }
    expect(seen).toEqual([7, 9, 10, 12, 13, 1]);
  });

  it.each([
    ['a truncated varint', [0x08, 0x80], /truncated: a varint runs past the end/],
    ['a varint longer than 64 bits', [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], /longer than 64 bits/],
    ['a length past the end', [0x12, 0x05, 0x61], /truncated: field 2 claims 5 bytes but only 1 remain/],
    ['a truncated fixed32', [0x1d, 0x00, 0x00], /truncated: a fixed32 value needs 4 bytes but only 2 remain/],
    ['a truncated fixed64', [0x19, 0x00], /truncated: a fixed64 value needs 8 bytes/],
    ['field number 0', [0x00, 0x00], /field number 0/],
    ['wire type 6', [0x0e], /unknown wire type 6 for field 1/],
    ['wire type 7', [0x0f], /unknown wire type 7 for field 1/],
    ['an end-group without a start', [0x0c], /end-group tag for field 1 without a start-group/],
    ['a mismatched end-group', [0x0b, 0x14], /end-group tag 2 does not match start-group 1/],
    ['an unterminated group', [0x0b, 0x10, 0x01], /group 1 has no end-group tag/],
  ] as const)('rejects %s', (_name, bytes, message) => {
    expectErrorCode(() => {
      const r = reader(bytes);
      while (r.next()) r.skip();
    }, 'ERR_MODEL_FORMAT', message);
  });

  it('names the file, the message and the byte offset in errors, and rejects invalid UTF-8', () => {
    expectErrorCode(() => {
      const r = reader([...vfield(1, 1), 0x12, 0x02, 0xc3, 0x28]);
      while (r.next()) if (r.field === 2) r.string('name'); else r.skip();
    }, 'ERR_MODEL_FORMAT', /^test\.bin: not a valid protobuf message: Test at byte 2: field 2 \(name\) is not valid UTF-8$/);
  });
});

// ---- synthetic SentencePiece models ----

describe('SentencePiece tokenizer.model (synthetic)', () => {
  it('reads pieces, scores, types and the special ids, and encodes with them', () => {
    const tok = Tokenizer.fromSentencePiece(model());
    expect(tok.vocabSize).toBe(PIECES.length);
    expect([tok.bos, tok.eos, tok.unk, tok.addBos, tok.vocab.addEos, tok.vocab.addDummyPrefix]).toEqual([1, 2, 0, true, false, true]);
    expect(Array.from(tok.vocab.types)).toEqual(PIECES.map(([, , type]) => type));
    expect(Array.from(tok.vocab.scores)).toEqual(PIECES.map(([, score]) => score));
    expect(tok.vocab.pieces).toEqual(PIECES.map(([text]) => text));
    expect(tok.encode('hi hi')).toEqual([1, idOf('▁hi'), idOf('▁hi')]);
    expect(tok.encode('é', { addBos: false })).toEqual([idOf('▁'), idOf('<0xC3>'), idOf('<0xA9>')]);
    expect(tok.decode([1, idOf('▁hi'), idOf('▁hi'), 2])).toBe('hi hi');
    expect(tok.vocab.source).toBe('tokenizer.model');
    expect(Tokenizer.fromSentencePiece(model(), 'my.model').vocab.source).toBe('my.model');
  });

  it('honours add_dummy_prefix = false', () => {
    const tok = Tokenizer.fromSentencePiece(model({ normalizer: { add_dummy_prefix: vfield(3, false) } }));
    expect(tok.vocab.addDummyPrefix).toBe(false);
    expect(tok.encode('hi', { addBos: false })).toEqual([idOf('h'), idOf('i')]);
  });

  it('skips unknown fields in every message and accepts any field order', () => {
    const base = Tokenizer.fromSentencePiece(model());
    const noise = [...vfield(99, 7), ...sfield(100, 'x'), ...ffield(101, 1), ...tag(102, 1), 0, 0, 0, 0, 0, 0, 0, 0, ...tag(103, 3), ...vfield(1, 1), ...tag(103, 4)];
    const noisyPieces = PIECES.flatMap((p) => lfield(1, [...noise, ...piece(p), ...vfield(200, 5)]));
    const bytes = new Uint8Array([
      ...lfield(3, [...noise, ...join(NORMALIZER)]),
      ...lfield(4, sfield(1, 'self test data')),
      ...noisyPieces,
      ...noise,
      ...lfield(2, [...join(TRAINER), ...noise, ...sfield(30, '<ctrl>'), ...vfield(50, true)]),
      ...lfield(5, join(NORMALIZER)), // an identity denormalizer_spec
    ]);
    const tok = Tokenizer.fromSentencePiece(bytes);
    expect(tok.vocab.pieces).toEqual(base.vocab.pieces);
    expect(tok.vocab.scores).toEqual(base.vocab.scores);
    expect(tok.vocab.types).toEqual(base.vocab.types);
  });

  it('takes the proto defaults for absent fields (so a model without trainer_spec is UNIGRAM)', () => {
    expectErrorCode(() => Tokenizer.fromSentencePiece(model({ trainer: { model_type: undefined } })), 'ERR_UNSUPPORTED', /SentencePiece model type UNIGRAM is not supported/);
    expectErrorCode(() => Tokenizer.fromSentencePiece(model({ normalizer: null })), 'ERR_UNSUPPORTED', /normalizer option remove_extra_whitespaces/);
    const defaults = parseSentencePieceModel(new Uint8Array(lfield(1, sfield(1, 'a'))));
    expect(defaults.trainer).toMatchObject({ modelType: 1, byteFallback: false, unkId: 0, bosId: 1, eosId: 2, padId: -1, unkSurface: ' \u2047 ' });
    expect(defaults.normalizer).toEqual({ name: '', precompiledCharsmapBytes: 0, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true });
    expect(Array.from(defaults.types)).toEqual([TokenType.NORMAL]);
  });

  it.each([
    ['a UNIGRAM model', { trainer: { model_type: vfield(3, 1) } }, /SentencePiece model type UNIGRAM is not supported/],
    ['a WORD model', { trainer: { model_type: vfield(3, 3) } }, /model type WORD is not supported/],
    ['a CHAR model', { trainer: { model_type: vfield(3, 4) } }, /model type CHAR is not supported/],
    ['an unknown model type', { trainer: { model_type: vfield(3, 9) } }, /model type \(unknown, 9\) is not supported/],
    ['the nmt_nfkc normalizer', { normalizer: { name: sfield(1, 'nmt_nfkc'), precompiled_charsmap: lfield(2, [1, 2, 3]) } }, /the normalizer "nmt_nfkc" \(a 3-byte character map\) is not supported/],
    ['a named normalizer without a map', { normalizer: { name: sfield(1, 'nfkc_cf') } }, /the normalizer "nfkc_cf" is not supported/],
    ['a character map under the name identity', { normalizer: { precompiled_charsmap: lfield(2, [0]) } }, /the normalizer "identity" \(a 1-byte character map\)/],
    ['remove_extra_whitespaces', { normalizer: { remove_extra_whitespaces: vfield(4, true) } }, /normalizer option remove_extra_whitespaces is not supported/],
    ['escape_whitespaces = false', { normalizer: { escape_whitespaces: vfield(5, false) } }, /escape_whitespaces = false is not supported/],
    ['treat_whitespace_as_suffix', { trainer: { suffix: vfield(24, true) } }, /treat_whitespace_as_suffix is not supported/],
    ['a custom unk_surface', { trainer: { unk_surface: sfield(44, '<?>') } }, /unk_surface "<\?>" \(only the default " ⁇ "\) is not supported/],
    ['a model without BOS', { trainer: { bos_id: vfield(41, -1) } }, /a model without bos token \(bos_id = -1\) is not supported/],
    ['byte pieces with byte_fallback off', { trainer: { byte_fallback: vfield(35, false) } }, /a model with 256 byte pieces but byte_fallback off is not supported/],
    ['a denormalizer with a character map', { extra: lfield(5, [...sfield(1, 'custom'), ...lfield(2, [9, 9])]) }, /the denormalizer "custom" \(a 2-byte character map\) is not supported/],
  ] as const)('rejects %s as unsupported, naming it', (_name, spec, message) => {
    expectErrorCode(() => Tokenizer.fromSentencePiece(model(spec as ModelSpec)), 'ERR_UNSUPPORTED', message);
  });

  it('accepts byte_fallback off without byte pieces (unknown text becomes <unk>)', () => {
    const noBytes = PIECES.filter(([, , type]) => type !== 6);
    const tok = Tokenizer.fromSentencePiece(model({ pieces: noBytes, trainer: { byte_fallback: vfield(35, false) } }));
    expect(tok.vocab.byteFallback).toBe(false);
    expect(tok.encode('hé', { addBos: false }).map((id) => tok.tokenToPiece(id))).toEqual(['▁h', '<unk>']);
  });

  const sevenPieces = PIECES.slice(0, 3).concat(PIECES.slice(259));
  it.each([
    ['unk_id out of range', { trainer: { unk_id: vfield(40, 1000) } }, /trainer_spec\.unk_id 1000 is out of range \(264 pieces\)/],
    ['a negative eos_id', { trainer: { eos_id: vfield(42, -5) } }, /trainer_spec\.eos_id -5 is out of range/],
    ['unk_id naming a normal piece', { trainer: { unk_id: vfield(40, 260) } }, /unk_id 260 is the piece "h" of type 1, not UNKNOWN/],
    ['byte_fallback on without byte pieces', { pieces: sevenPieces }, /byte_fallback is on but the model has no byte pieces/],
    ['a partial set of byte pieces', { pieces: PIECES.filter(([p]) => p !== '<0x41>') }, /255 byte tokens; byte fallback needs all 256, missing <0x41>/],
    ['a piece without text', { extra: lfield(1, ffield(2, -9)) }, /ModelProto\.pieces\[264\] at byte \d+: the piece has no text \(field 1\)/],
    ['an empty piece', { extra: lfield(1, sfield(1, '')) }, /piece 264 is empty/],
    ['an unknown piece type', { extra: lfield(1, [...sfield(1, 'x'), ...vfield(3, 9)]) }, /unknown piece type 9/],
    ['a NaN score', { extra: lfield(1, [...sfield(1, 'x'), ...tag(2, 5), 0, 0, 0xc0, 0x7f]) }, /the piece "x" has a NaN score/],
    ['a duplicate piece', { extra: lfield(1, sfield(1, '▁hi')) }, /the piece "▁hi" appears twice, as tokens 263 and 264/],
    ['a score with the wrong wire type', { extra: lfield(1, [...sfield(1, 'x'), ...vfield(2, 3)]) }, /field 2 \(score\) has wire type varint, expected fixed32/],
    ['pieces with the wrong wire type', { extra: vfield(1, 3) }, /field 1 \(pieces\) has wire type varint, expected length-delimited/],
  ] as const)('rejects %s as a format error', (_name, spec, message) => {
    expectErrorCode(() => Tokenizer.fromSentencePiece(model(spec as ModelSpec)), 'ERR_MODEL_FORMAT', message);
  });

  it('fails with a typed error on every truncation, "truncated" inside a field', () => {
    const bytes = model();
    // top-level field boundaries: a cut there leaves a shorter but well-formed message
    const boundaries = new Set<number>([0]);
    const r = new ProtoReader(bytes, 'x');
    while (r.next()) {
      r.skip();
      boundaries.add(r.pos);
    }
    for (let size = 0; size < bytes.length; size++) {
      let caught: unknown;
      try {
        Tokenizer.fromSentencePiece(bytes.subarray(0, size));
      } catch (err) {
        caught = err;
      }
      expect(caught, `size ${size}`).toBeInstanceOf(LlamaCudaError);
      const e = caught as LlamaCudaError;
      expect(['ERR_MODEL_FORMAT', 'ERR_UNSUPPORTED'], `size ${size}: ${e.message}`).toContain(e.code);
      if (e.code === 'ERR_UNSUPPORTED') {
        expect(boundaries.has(size), `size ${size}: ${e.message}`).toBe(true);
        expect(e.message).toMatch(/UNIGRAM|remove_extra_whitespaces/); // the defaults of a missing spec
      } else {
        expect(e.message, `size ${size}`).toMatch(boundaries.has(size) ? /no pieces|bos_id|out of range|byte|UNKNOWN/ : /truncated/);
      }
    }
    expectErrorCode(() => Tokenizer.fromSentencePiece(bytes.subarray(0, 10)), 'ERR_MODEL_FORMAT', /^tokenizer\.model: not a valid protobuf message: .*truncated/);
  });

  it('never fails with anything but a typed error on garbled input', () => {
    const bytes = model();
    const rng = seededRandom(99);
    let loaded = 0;
    for (let trial = 0; trial < 1500; trial++) {
      const garbled = bytes.slice();
      const flips = randomInt(rng, 1, 4);
      for (let f = 0; f < flips; f++) garbled[randomInt(rng, 0, garbled.length)] = randomInt(rng, 0, 256);
      try {
        Tokenizer.fromSentencePiece(garbled);
        loaded++;
      } catch (err) {
        if (!(err instanceof LlamaCudaError) || (err.code !== 'ERR_MODEL_FORMAT' && err.code !== 'ERR_UNSUPPORTED')) throw err;
      }
    }
    expect(loaded).toBeGreaterThan(0); // a flipped score byte, say, is still a valid model
  });

  it('rejects other formats as not protobuf', () => {
    const text = new TextEncoder().encode('{"model": {"type": "BPE"}}');
    expectErrorCode(() => Tokenizer.fromSentencePiece(text), 'ERR_MODEL_FORMAT', /not a valid protobuf message/);
    expectErrorCode(() => Tokenizer.fromSentencePiece(new TextEncoder().encode('GGUF\x03\x00\x00\x00')), 'ERR_MODEL_FORMAT', /not a valid protobuf message/);
    expectErrorCode(() => Tokenizer.fromSentencePiece(new Uint8Array(0)), 'ERR_MODEL_FORMAT', /has no pieces/);
  });
});

// ---- the real Llama 2 tokenizer.model ----

const PARITY_FILES = [FILES.llama2Model, FILES.spCases, FILES.spDecode, FILES.vectorsInp, FILES.vectorsOut];

describeWithShared(PARITY_FILES, 'SentencePiece parity, vocab from the Llama 2 tokenizer.model', () => {
  defineParityTests(sentencePieceTokenizer);
});

describeWithShared([FILES.llama2Model, FILES.vocabGguf, FILES.tinyRandomGguf, FILES.llama2Bin], 'the Llama 2 tokenizer.model and the other vocabulary files', () => {
  let bytes: Uint8Array;
  let fromModel: Tokenizer;
  beforeAll(() => {
    bytes = readFileSync(sharedPath(FILES.llama2Model));
    fromModel = sentencePieceTokenizer();
  });

  it('has the settings of Llama 2', () => {
    const m = parseSentencePieceModel(bytes);
    expect(m.trainer).toEqual({ modelType: 2, byteFallback: true, treatWhitespaceAsSuffix: false, unkId: 0, bosId: 1, eosId: 2, padId: -1, unkPiece: '<unk>', unkSurface: ' \u2047 ' });
    expect(m.normalizer).toEqual({ name: 'identity', precompiledCharsmapBytes: 0, addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true });
    expect(m.denormalizer).toBeUndefined();
    const counts = new Map<number, number>();
    for (const t of m.types) counts.set(t, (counts.get(t) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ 1: 31741, 2: 1, 3: 2, 6: 256 });
  });

  it('is the same vocabulary as both GGUF files and tokenizer.bin (pieces, scores, types)', async () => {
    for (const other of [await ggufTokenizer(FILES.vocabGguf), await ggufTokenizer(FILES.tinyRandomGguf), await llama2cTokenizer(FILES.llama2Bin, 32000)]) {
      expect(other.vocab.pieces.length).toBe(32000);
      for (let id = 0; id < 32000; id++) {
        if (other.vocab.pieces[id] !== fromModel.vocab.pieces[id]) expect(other.vocab.pieces[id], `${other.vocab.source} piece ${id}`).toBe(fromModel.vocab.pieces[id]);
      }
      expect(other.vocab.scores).toEqual(fromModel.vocab.scores);
      expect(other.vocab.types).toEqual(fromModel.vocab.types);
    }
  });

  it('fails with a typed error on truncated copies', () => {
    const rng = seededRandom(5);
    const sizes = [0, 1, 2, 100, bytes.length - 1, bytes.length - 2, ...Array.from({ length: 30 }, () => randomInt(rng, 0, bytes.length))];
    for (const size of sizes) {
      let caught: unknown;
      try {
        Tokenizer.fromSentencePiece(bytes.subarray(0, size));
      } catch (err) {
        caught = err;
      }
      expect(caught, `size ${size}`).toBeInstanceOf(LlamaCudaError);
      expect(['ERR_MODEL_FORMAT', 'ERR_UNSUPPORTED']).toContain((caught as LlamaCudaError).code);
    }
    expectErrorCode(() => Tokenizer.fromSentencePiece(bytes.subarray(0, bytes.length - 1)), 'ERR_MODEL_FORMAT', /truncated/);
  });

  it('fails only with typed errors on garbled copies', () => {
    const rng = seededRandom(11);
    for (let trial = 0; trial < 40; trial++) {
      const garbled = bytes.slice();
      garbled[randomInt(rng, 0, 4000)] = randomInt(rng, 0, 256); // near the start: pieces and their framing
      garbled[randomInt(rng, bytes.length - 300, bytes.length)] = randomInt(rng, 0, 256); // the specs at the end
      try {
        Tokenizer.fromSentencePiece(garbled);
      } catch (err) {
        if (!(err instanceof LlamaCudaError) || (err.code !== 'ERR_MODEL_FORMAT' && err.code !== 'ERR_UNSUPPORTED')) throw err;
      }
    }
  });
});
