/**
 * The vocabulary stored in GGUF metadata (`tokenizer.ggml.*`, as llama.cpp writes it for
 * Llama / SentencePiece models). Defaults for absent keys are llama.cpp's for this model type.
 */
import { LlamaCudaError } from '../errors.js';
import type { GgufMetadata } from '../formats/gguf.js';
import { Vocab, inferTokenType } from './vocab.js';

const KEY = {
  model: 'tokenizer.ggml.model',
  tokens: 'tokenizer.ggml.tokens',
  scores: 'tokenizer.ggml.scores',
  types: 'tokenizer.ggml.token_type',
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  addBos: 'tokenizer.ggml.add_bos_token',
  addEos: 'tokenizer.ggml.add_eos_token',
  addSpacePrefix: 'tokenizer.ggml.add_space_prefix',
} as const;

/** `source` names the file in error messages. */
export function vocabFromGguf(meta: GgufMetadata, source = 'GGUF metadata'): Vocab {
  const model = meta.string(KEY.model);
  if (model === undefined) {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: no tokenizer (the key "${KEY.model}" is missing)`);
  }
  if (model !== 'llama') {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${source}: tokenizer model "${model}" is not supported (only "llama", SentencePiece BPE)`);
  }
  const pieces = meta.stringArray(KEY.tokens);
  if (pieces === undefined) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: missing "${KEY.tokens}"`);
  const scores = meta.numberArray(KEY.scores);
  if (scores === undefined) {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: missing "${KEY.scores}" (a SentencePiece BPE vocabulary needs its merge scores)`);
  }
  const bos = meta.number(KEY.bos) ?? 1;
  const eos = meta.number(KEY.eos) ?? 2;
  const unk = meta.number(KEY.unk) ?? 0;
  const types = meta.numberArray(KEY.types) ?? pieces.map((piece, id) => inferTokenType(id, piece, { unk, bos, eos }));
  return new Vocab({
    source,
    pieces,
    scores,
    types,
    bos,
    eos,
    unk,
    addBos: meta.bool(KEY.addBos) ?? true,
    addEos: meta.bool(KEY.addEos) ?? false,
    addDummyPrefix: meta.bool(KEY.addSpacePrefix) ?? true,
  });
}
