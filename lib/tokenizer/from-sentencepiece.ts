/**
 * SentencePiece's `tokenizer.model`: a serialized `sentencepiece.ModelProto` (protobuf), read
 * with our own wire-format reader (protobuf.ts). The fields used, from SentencePiece's
 * sentencepiece_model.proto:
 *
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec,
 *                   5 denormalizer_spec; others (self_test_data, extensions) are skipped
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type (enum, default UNIGRAM), 24 treat_whitespace_as_suffix,
 *                   35 byte_fallback, 40 unk_id (0), 41 bos_id (1), 42 eos_id (2), 43 pad_id (-1),
 *                   44 unk_surface (" ⁇ "); the rest only steers training
 *   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix (true),
 *                   4 remove_extra_whitespaces (true), 5 escape_whitespaces (true)
 *
 * Absent fields take the proto's defaults (in parentheses), as protobuf readers do.
 *
 * What the encoder implements, and so what is accepted: a BPE model (Llama 2's); the identity
 * normalizer (no precompiled character map, name "identity" or empty); spaces escaped to `▁`;
 * the dummy prefix on or off; whitespace kept as is (remove_extra_whitespaces off); `▁` as a
 * prefix (treat_whitespace_as_suffix off); byte fallback on with all 256 byte pieces, or off
 * with none; the default `<unk>` surface. Anything else would tokenize differently from
 * SentencePiece, so it is rejected with ERR_UNSUPPORTED naming the setting rather than
 * silently mis-tokenized.
 *
 * SentencePiece itself adds neither BOS nor EOS; Llama's convention (and llama.cpp's default
 * for this vocabulary) is BOS and no EOS, which is what the Vocab gets.
 */
import { LlamaCudaError } from '../errors.js';
import { ProtoReader, WireType } from './protobuf.js';
import { TokenType, Vocab } from './vocab.js';

/** TrainerSpec.ModelType. */
export const SentencePieceModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;
const MODEL_TYPE_NAMES: Readonly<Record<number, string>> = { 1: 'UNIGRAM', 2: 'BPE', 3: 'WORD', 4: 'CHAR' };

/** SentencePiece's default surface of `<unk>` in decoded text (U+2047 between spaces). */
const DEFAULT_UNK_SURFACE = ' \u2047 ';

export interface SentencePieceNormalizerSpec {
  readonly name: string;
  /** Length of precompiled_charsmap in bytes (0: no character mapping). */
  readonly precompiledCharsmapBytes: number;
  readonly addDummyPrefix: boolean;
  readonly removeExtraWhitespaces: boolean;
  readonly escapeWhitespaces: boolean;
}

export interface SentencePieceTrainerSpec {
  /** 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR. */
  readonly modelType: number;
  readonly byteFallback: boolean;
  readonly treatWhitespaceAsSuffix: boolean;
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkPiece: string;
  readonly unkSurface: string;
}

/** The parts of a ModelProto that a tokenizer needs, as read (not yet validated). */
export interface SentencePieceModel {
  readonly pieces: string[];
  readonly scores: Float32Array;
  /** SentencePiece piece types; the same numbers as TokenType (1 normal .. 6 byte). */
  readonly types: Uint8Array;
  readonly trainer: SentencePieceTrainerSpec;
  readonly normalizer: SentencePieceNormalizerSpec;
  /** Present only when the model has a denormalizer_spec. */
  readonly denormalizer?: SentencePieceNormalizerSpec;
}

/** Parses the protobuf; throws ERR_MODEL_FORMAT on malformed input. */
export function parseSentencePieceModel(bytes: Uint8Array, source = 'tokenizer.model'): SentencePieceModel {
  const pieces: string[] = [];
  let scores = new Float32Array(1024);
  let types = new Uint8Array(1024);
  let trainer: SentencePieceTrainerSpec | undefined;
  let normalizer: SentencePieceNormalizerSpec | undefined;
  let denormalizer: SentencePieceNormalizerSpec | undefined;

  for (const r = new ProtoReader(bytes, source, 'ModelProto'); r.next(); ) {
    switch (r.field) {
      case 1: {
        r.expect(WireType.LEN, 'pieces');
        const id = pieces.length;
        if (id === scores.length) {
          scores = grow(scores, new Float32Array(id * 2));
          types = grow(types, new Uint8Array(id * 2));
        }
        const p = readPiece(r.message(`ModelProto.pieces[${id}]`));
        pieces.push(p.piece);
        scores[id] = p.score;
        types[id] = p.type;
        break;
      }
      case 2:
        r.expect(WireType.LEN, 'trainer_spec');
        trainer = readTrainerSpec(r.message('ModelProto.trainer_spec'));
        break;
      case 3:
        r.expect(WireType.LEN, 'normalizer_spec');
        normalizer = readNormalizerSpec(r.message('ModelProto.normalizer_spec'));
        break;
      case 5:
        r.expect(WireType.LEN, 'denormalizer_spec');
        denormalizer = readNormalizerSpec(r.message('ModelProto.denormalizer_spec'));
        break;
      default:
        r.skip();
    }
  }
  return {
    pieces,
    scores: scores.slice(0, pieces.length),
    types: types.slice(0, pieces.length),
    trainer: trainer ?? readTrainerSpec(undefined),
    normalizer: normalizer ?? readNormalizerSpec(undefined),
    ...(denormalizer !== undefined ? { denormalizer } : {}),
  };
}

/** The Vocab of a SentencePiece model, checked to be one the encoder reproduces exactly. */
export function vocabFromSentencePiece(bytes: Uint8Array, source = 'tokenizer.model'): Vocab {
  const model = parseSentencePieceModel(bytes, source);
  const { trainer, normalizer, pieces, types } = model;
  const unsupported = (what: string): LlamaCudaError =>
    new LlamaCudaError('ERR_UNSUPPORTED', `${source}: ${what} is not supported (the Llama tokenizer is a SentencePiece BPE model with the identity normalizer)`);

  const n = pieces.length;
  if (n === 0) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: the SentencePiece model has no pieces`);
  if (trainer.modelType !== SentencePieceModelType.BPE) {
    const name = MODEL_TYPE_NAMES[trainer.modelType] ?? `(unknown, ${trainer.modelType})`;
    throw unsupported(`SentencePiece model type ${name}`);
  }
  checkNormalizer(normalizer, 'normalizer', unsupported);
  if (normalizer.removeExtraWhitespaces) throw unsupported('normalizer option remove_extra_whitespaces');
  if (!normalizer.escapeWhitespaces) throw unsupported('normalizer option escape_whitespaces = false');
  if (model.denormalizer !== undefined) checkNormalizer(model.denormalizer, 'denormalizer', unsupported);
  if (trainer.treatWhitespaceAsSuffix) throw unsupported('trainer option treat_whitespace_as_suffix');
  if (trainer.unkSurface !== DEFAULT_UNK_SURFACE) throw unsupported(`unk_surface ${JSON.stringify(trainer.unkSurface)} (only the default " \u2047 ")`);

  const ids: [string, number][] = [['unk_id', trainer.unkId], ['bos_id', trainer.bosId], ['eos_id', trainer.eosId]];
  for (const [name, id] of ids) {
    if (id === -1) throw unsupported(`a model without ${name.slice(0, 3)} token (${name} = -1)`);
    if (id < 0 || id >= n) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: trainer_spec.${name} ${id} is out of range (${n} pieces)`);
  }
  if (types[trainer.unkId] !== TokenType.UNKNOWN) {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: unk_id ${trainer.unkId} is the piece ${JSON.stringify(pieces[trainer.unkId])} of type ${types[trainer.unkId]}, not UNKNOWN (2)`);
  }
  let nBytes = 0;
  for (let id = 0; id < n; id++) {
    if (types[id] === TokenType.BYTE) nBytes++;
    if ((pieces[id] as string).length === 0) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: piece ${id} is empty`);
  }
  // The Vocab enables byte fallback exactly when all 256 byte pieces exist; the trainer flag must agree.
  if (trainer.byteFallback && nBytes === 0) {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: byte_fallback is on but the model has no byte pieces`);
  }
  if (!trainer.byteFallback && nBytes > 0) throw unsupported(`a model with ${nBytes} byte pieces but byte_fallback off`);

  return new Vocab({
    source,
    pieces,
    scores: model.scores,
    types,
    bos: trainer.bosId,
    eos: trainer.eosId,
    unk: trainer.unkId,
    addBos: true,
    addEos: false,
    addDummyPrefix: normalizer.addDummyPrefix,
  });
}

function checkNormalizer(spec: SentencePieceNormalizerSpec, which: string, unsupported: (what: string) => LlamaCudaError): void {
  if (spec.precompiledCharsmapBytes > 0 || (spec.name !== 'identity' && spec.name !== '')) {
    throw unsupported(`the ${which} "${spec.name}"${spec.precompiledCharsmapBytes > 0 ? ` (a ${spec.precompiledCharsmapBytes}-byte character map)` : ''}`);
  }
}

function grow<T extends Float32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

function readPiece(r: ProtoReader): { piece: string; score: number; type: number } {
  let piece: string | undefined;
  let score = 0;
  let type: number = TokenType.NORMAL;
  while (r.next()) {
    switch (r.field) {
      case 1:
        r.expect(WireType.LEN, 'piece');
        piece = r.string('piece');
        break;
      case 2:
        r.expect(WireType.I32, 'score');
        score = r.float();
        break;
      case 3:
        r.expect(WireType.VARINT, 'type');
        type = r.int32();
        if (type < TokenType.NORMAL || type > TokenType.BYTE) throw r.error(`unknown piece type ${type}`);
        break;
      default:
        r.skip();
    }
  }
  if (piece === undefined) throw r.error('the piece has no text (field 1)', r.pos);
  if (Number.isNaN(score)) throw r.error(`the piece ${JSON.stringify(piece)} has a NaN score`, r.pos);
  return { piece, score, type };
}

function readTrainerSpec(r: ProtoReader | undefined): SentencePieceTrainerSpec {
  const spec = {
    modelType: SentencePieceModelType.UNIGRAM as number,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: '<unk>',
    unkSurface: DEFAULT_UNK_SURFACE,
  };
  while (r?.next() === true) {
    switch (r.field) {
      case 3: r.expect(WireType.VARINT, 'model_type'); spec.modelType = r.int32(); break;
      case 24: r.expect(WireType.VARINT, 'treat_whitespace_as_suffix'); spec.treatWhitespaceAsSuffix = r.bool(); break;
      case 35: r.expect(WireType.VARINT, 'byte_fallback'); spec.byteFallback = r.bool(); break;
      case 40: r.expect(WireType.VARINT, 'unk_id'); spec.unkId = r.int32(); break;
      case 41: r.expect(WireType.VARINT, 'bos_id'); spec.bosId = r.int32(); break;
      case 42: r.expect(WireType.VARINT, 'eos_id'); spec.eosId = r.int32(); break;
      case 43: r.expect(WireType.VARINT, 'pad_id'); spec.padId = r.int32(); break;
      case 44: r.expect(WireType.LEN, 'unk_surface'); spec.unkSurface = r.string('unk_surface'); break;
      case 45: r.expect(WireType.LEN, 'unk_piece'); spec.unkPiece = r.string('unk_piece'); break;
      default: r.skip();
    }
  }
  return spec;
}

function readNormalizerSpec(r: ProtoReader | undefined): SentencePieceNormalizerSpec {
  const spec = { name: '', precompiledCharsmapBytes: 0, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true };
  while (r?.next() === true) {
    switch (r.field) {
      case 1: r.expect(WireType.LEN, 'name'); spec.name = r.string('name'); break;
      case 2: r.expect(WireType.LEN, 'precompiled_charsmap'); spec.precompiledCharsmapBytes = r.bytesField().length; break;
      case 3: r.expect(WireType.VARINT, 'add_dummy_prefix'); spec.addDummyPrefix = r.bool(); break;
      case 4: r.expect(WireType.VARINT, 'remove_extra_whitespaces'); spec.removeExtraWhitespaces = r.bool(); break;
      case 5: r.expect(WireType.VARINT, 'escape_whitespaces'); spec.escapeWhitespaces = r.bool(); break;
      default: r.skip();
    }
  }
  return spec;
}
