/**
 * LlamaConfig from GGUF metadata (`llama.*` keys, see shared/notes/gguf-formats.md §6).
 */
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { type LlamaConfig, validateConfig } from '../model/config.js';
import { type GgufFile, GgufMetadata } from './gguf.js';

const SUPPORTED_ARCHITECTURES = ['llama'];

export function configFromGguf(file: GgufFile): LlamaConfig {
  const name = path.basename(file.path);
  const meta = new GgufMetadata(file.metadata, file.path);
  const arch = meta.string('general.architecture');
  if (arch === undefined) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${name}: missing general.architecture`);
  if (!SUPPORTED_ARCHITECTURES.includes(arch)) {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${name}: architecture "${arch}" is not supported (only Llama: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
  const key = (k: string): string => `${arch}.${k}`;
  const dim = meta.requireNumber(key('embedding_length'));
  const nHeads = meta.requireNumber(key('attention.head_count'));
  const nKvHeads = meta.number(key('attention.head_count_kv')) ?? nHeads;
  const embd = file.tensors.find((t) => t.name === 'token_embd.weight');
  const vocabSize = meta.number(key('vocab_size')) ?? embd?.shape[0] ?? meta.stringArray('tokenizer.ggml.tokens')?.length;
  if (vocabSize === undefined) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${name}: cannot tell the vocabulary size`);
  if (dim % nHeads !== 0) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${name}: embedding_length ${dim} is not a multiple of head_count ${nHeads}`);
  const headDim = dim / nHeads;

  let ropeFreqScale = 1;
  const scaling = meta.string(key('rope.scaling.type'));
  if (scaling !== undefined && scaling !== 'none') {
    const factor = meta.number(key('rope.scaling.factor'));
    if (scaling !== 'linear') {
      throw new LlamaCudaError('ERR_UNSUPPORTED', `${name}: RoPE scaling "${scaling}" is not supported yet (linear is)`);
    }
    if (factor === undefined || !(factor > 0)) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${name}: linear RoPE scaling without a valid factor`);
    ropeFreqScale = 1 / factor;
  }

  return validateConfig(
    {
      dim,
      hiddenDim: meta.requireNumber(key('feed_forward_length')),
      nLayers: meta.requireNumber(key('block_count')),
      nHeads,
      nKvHeads,
      headDim,
      vocabSize,
      contextLength: meta.requireNumber(key('context_length')),
      ropeTheta: meta.number(key('rope.freq_base')) ?? 10000,
      ropeDim: meta.number(key('rope.dimension_count')) ?? headDim,
      ropeFreqScale,
      ropePairing: 'interleaved',
      normEps: meta.number(key('attention.layer_norm_rms_epsilon')) ?? 1e-5,
    },
    name,
  );
}
