/**
 * LlamaConfig from GGUF metadata (`llama.*` keys, see shared/notes/gguf-formats.md §6).
 */
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { type LlamaConfig, type RopeScaling, validateConfig } from '../model/config.js';
import { yarnAttentionFactor } from '../model/rope-scaling.js';
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

  const contextLength = meta.requireNumber(key('context_length'));
  const ropeScaling = ropeScalingFromGguf(meta, arch, contextLength, name);
  return validateConfig(
    {
      dim,
      hiddenDim: meta.requireNumber(key('feed_forward_length')),
      nLayers: meta.requireNumber(key('block_count')),
      nHeads,
      nKvHeads,
      headDim,
      vocabSize,
      contextLength,
      ropeTheta: meta.number(key('rope.freq_base')) ?? 10000,
      ropeDim: meta.number(key('rope.dimension_count')) ?? headDim,
      ropeFreqScale: 1,
      ...(ropeScaling !== undefined ? { ropeScaling } : {}),
      ropePairing: 'interleaved',
      normEps: meta.number(key('attention.layer_norm_rms_epsilon')) ?? 1e-5,
    },
    name,
  );
}

/**
 * `{arch}.rope.scaling.*` as llama.cpp reads it: the type defaults to linear, the factor comes
 * from `rope.scaling.factor` or the older `rope.scale_linear` (absent, 0 or 1: no scaling).
 * YaRN takes `original_context_length` (default: the context length) and the beta keys; keys
 * that change YaRN's attention factor in ways this library does not implement are refused by name.
 */
function ropeScalingFromGguf(meta: GgufMetadata, arch: string, contextLength: number, name: string): RopeScaling | undefined {
  const key = (k: string): string => `${arch}.rope.${k}`;
  const type = meta.string(key('scaling.type')) ?? 'linear';
  const factor = meta.number(key('scaling.factor')) ?? meta.number(key('scale_linear'));
  if (type === 'none' || factor === undefined || factor === 0 || factor === 1) return undefined;
  if (!(factor > 0) || !Number.isFinite(factor)) {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `${name}: RoPE scaling "${type}" with an invalid factor ${factor}`);
  }
  if (type === 'linear') return { type: 'linear', factor };
  if (type === 'yarn') {
    // each of these keys scales llama.cpp's YaRN differently from the defaults (1, or 0 for the log multiplier)
    const defaults: readonly [string, number][] = [
      ['scaling.attn_factor', 1], ['scaling.yarn_attn_factor', 1], ['scaling.yarn_ext_factor', 1], ['scaling.yarn_log_multiplier', 0],
    ];
    for (const [k, dflt] of defaults) {
      const v = meta.number(key(k));
      if (v !== undefined && v !== dflt) {
        throw new LlamaCudaError('ERR_UNSUPPORTED', `${name}: YaRN RoPE scaling with ${key(k)} = ${v} is not supported (only ${dflt})`);
      }
    }
    return {
      type: 'yarn',
      factor,
      originalContextLength: meta.number(key('scaling.original_context_length')) ?? contextLength,
      betaFast: meta.number(key('scaling.yarn_beta_fast')) ?? 32,
      betaSlow: meta.number(key('scaling.yarn_beta_slow')) ?? 1,
      attentionFactor: yarnAttentionFactor(factor),
      truncate: true,
    };
  }
  throw new LlamaCudaError('ERR_UNSUPPORTED', `${name}: RoPE scaling "${type}" is not supported (linear and yarn are)`);
}
