/**
 * Writes Hugging Face model folders (config.json + safetensors, single-file or sharded) from
 * llama2.c-layout weights, as transformers' conversion of Meta's checkpoints lays them out:
 * tensor names of LlamaForCausalLM, and the rows of Q and K permuted from Meta's interleaved RoPE
 * pairs to transformers' half-split pairs (in every head, row 2i goes to i and row 2i+1 to
 * i + headDim/2). Also the f16 / bf16 rounding of weights, so that references can run on
 * exactly the values a folder holds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { type SafetensorsTensorToWrite, writeSafetensors } from '../../lib/formats/safetensors.js';
import { bf16ToNumber, numberToBf16 } from '../reference/float16.js';
import { Rng } from './rng.js';
import type { Llama2cConfig, Llama2cWeights } from '../reference/llama2c-forward.js';
import { dequantF16, encodeF16 } from '../reference/quant.js';

export type FloatDType = 'F32' | 'F16' | 'BF16';

/** Meta's interleaved Q/K rows [heads * headDim][cols] into transformers' half-split order. */
export function permuteToHalf(w: Float64Array, heads: number, headDim: number, cols: number): Float64Array {
  const out = new Float64Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const base = h * headDim;
      out.set(w.subarray((base + 2 * i) * cols, (base + 2 * i + 1) * cols), (base + i) * cols);
      out.set(w.subarray((base + 2 * i + 1) * cols, (base + 2 * i + 2) * cols), (base + i + half) * cols);
    }
  }
  return out;
}

export function encodeAs(dtype: FloatDType, values: ArrayLike<number>): Uint8Array {
  if (dtype === 'F16') return encodeF16(values);
  if (dtype === 'BF16') return new Uint8Array(Uint16Array.from(Array.from(values), numberToBf16).buffer);
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** The values a tensor of this dtype holds for `values`. */
export function roundAs(dtype: FloatDType, values: Float64Array): Float64Array {
  if (dtype === 'F16') return dequantF16(encodeF16(values));
  if (dtype === 'BF16') return Float64Array.from(values, (v) => bf16ToNumber(numberToBf16(v)));
  return Float64Array.from(Float32Array.from(values));
}

/** Every weight rounded as `dtype` stores it (norms included: the folder stores them in `dtype` too). */
export function roundWeights(w: Llama2cWeights, dtype: FloatDType): Llama2cWeights {
  const r = (a: Float64Array): Float64Array => roundAs(dtype, a);
  const tokenEmbedding = r(w.tokenEmbedding);
  return {
    tokenEmbedding,
    rmsAtt: w.rmsAtt.map(r), wq: w.wq.map(r), wk: w.wk.map(r), wv: w.wv.map(r), wo: w.wo.map(r),
    rmsFfn: w.rmsFfn.map(r), w1: w.w1.map(r), w2: w.w2.map(r), w3: w.w3.map(r),
    rmsFinal: r(w.rmsFinal),
    wcls: w.wcls === w.tokenEmbedding ? tokenEmbedding : r(w.wcls),
  };
}

/** config.json of a LlamaForCausalLM with these hyper-parameters. */
export function hfConfigJson(c: Llama2cConfig, dtype: FloatDType = 'F32', tied = c.sharedClassifier): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    hidden_act: 'silu',
    tie_word_embeddings: tied,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

/** The tensors of a LlamaForCausalLM checkpoint, in transformers' order. */
export function hfTensors(c: Llama2cConfig, w: Llama2cWeights, dtype: FloatDType, withLmHead = !c.sharedClassifier): SafetensorsTensorToWrite[] {
  const t = (name: string, shape: number[], values: Float64Array): SafetensorsTensorToWrite => ({ name, dtype, shape, data: encodeAs(dtype, values) });
  const out = [t('model.embed_tokens.weight', [c.vocabSize, c.dim], w.tokenEmbedding)];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      t(`${p}self_attn.q_proj.weight`, [c.nHeads * c.headDim, c.dim], permuteToHalf(w.wq[l]!, c.nHeads, c.headDim, c.dim)),
      t(`${p}self_attn.k_proj.weight`, [c.kvDim, c.dim], permuteToHalf(w.wk[l]!, c.nKvHeads, c.headDim, c.dim)),
      t(`${p}self_attn.v_proj.weight`, [c.kvDim, c.dim], w.wv[l]!),
      t(`${p}self_attn.o_proj.weight`, [c.dim, c.nHeads * c.headDim], w.wo[l]!),
      t(`${p}mlp.gate_proj.weight`, [c.hiddenDim, c.dim], w.w1[l]!),
      t(`${p}mlp.up_proj.weight`, [c.hiddenDim, c.dim], w.w3[l]!),
      t(`${p}mlp.down_proj.weight`, [c.dim, c.hiddenDim], w.w2[l]!),
      t(`${p}input_layernorm.weight`, [c.dim], w.rmsAtt[l]!),
      t(`${p}post_attention_layernorm.weight`, [c.dim], w.rmsFfn[l]!),
    );
  }
  out.push(t('model.norm.weight', [c.dim], w.rmsFinal));
  if (withLmHead) out.push(t('lm_head.weight', [c.vocabSize, c.dim], w.wcls));
  return out;
}

export interface HfFolderOptions {
  readonly dtype?: FloatDType;
  /** 1 (default): model.safetensors; more: model-0000i-of-0000n.safetensors + index. */
  readonly shards?: number;
  /** Merged over the generated config.json (null values stay null). */
  readonly config?: Record<string, unknown>;
  /** Replaces the tensor list (after it was generated), e.g. to break it. */
  readonly tensors?: (tensors: SafetensorsTensorToWrite[]) => SafetensorsTensorToWrite[];
  readonly withLmHead?: boolean;
}

/** Writes the folder `dir` (created if needed); returns the shard file names. */
export async function writeHfFolder(dir: string, c: Llama2cConfig, w: Llama2cWeights, options: HfFolderOptions = {}): Promise<string[]> {
  const dtype = options.dtype ?? 'F32';
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...hfConfigJson(c, dtype), ...options.config }, null, 2));
  let tensors = hfTensors(c, w, dtype, options.withLmHead);
  if (options.tensors) tensors = options.tensors(tensors);
  const shards = options.shards ?? 1;
  if (shards === 1) {
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return ['model.safetensors'];
  }
  const names: string[] = [];
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(tensors.length / shards);
  const pad = (n: number): string => String(n).padStart(5, '0');
  for (let s = 0; s < shards; s++) {
    const name = `model-${pad(s + 1)}-of-${pad(shards)}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    await writeSafetensors(path.join(dir, name), part, { format: 'pt' });
    for (const t of part) weightMap[t.name] = name;
    names.push(name);
  }
  const totalSize = tensors.reduce((a, t) => a + t.data.byteLength, 0);
  writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  return names;
}

/** Hyper-parameters of a small model in the reference's terms (head_dim = dim / nHeads). */
export function tinyConfig(o: { dim: number; hiddenDim: number; nLayers: number; nHeads: number; nKvHeads: number; vocabSize: number; seqLen: number; shared?: boolean }): Llama2cConfig {
  const headDim = o.dim / o.nHeads;
  return { ...o, headDim, kvDim: o.nKvHeads * headDim, sharedClassifier: o.shared ?? true };
}

/** Seeded random weights of that shape (norm weights near 1, matrices ~ U(-1, 1) / sqrt(cols)). */
export function randomWeights(c: Llama2cConfig, seed: number): Llama2cWeights {
  const rng = new Rng(seed);
  const mat = (rows: number, cols: number): Float64Array => Float64Array.from({ length: rows * cols }, () => rng.uniform(-1, 1) / Math.sqrt(cols));
  const norm = (): Float64Array => Float64Array.from({ length: c.dim }, () => rng.uniform(0.8, 1.2));
  const per = <T>(f: () => T): T[] => Array.from({ length: c.nLayers }, f);
  const tokenEmbedding = mat(c.vocabSize, c.dim);
  return {
    tokenEmbedding,
    rmsAtt: per(norm), wq: per(() => mat(c.dim, c.dim)), wk: per(() => mat(c.kvDim, c.dim)), wv: per(() => mat(c.kvDim, c.dim)),
    wo: per(() => mat(c.dim, c.dim)), rmsFfn: per(norm), w1: per(() => mat(c.hiddenDim, c.dim)), w2: per(() => mat(c.dim, c.hiddenDim)),
    w3: per(() => mat(c.hiddenDim, c.dim)), rmsFinal: norm(),
    wcls: c.sharedClassifier ? tokenEmbedding : mat(c.vocabSize, c.dim),
  };
}

/**
 * A llama2.c tokenizer.bin of `vocabSize` pieces (>= 259): <unk>, <s>, </s>, the 256 byte
 * pieces, then "t259", "t260", ... Enough for loadModel on synthetic models.
 */
export function writeTinyTokenizer(file: string, vocabSize: number): void {
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let id = pieces.length; id < vocabSize; id++) pieces.push(`t${id}`);
  const bytes = pieces.map((p) => Buffer.from(p, 'utf8'));
  const out = Buffer.alloc(4 + bytes.reduce((a, b) => a + 8 + b.length, 0));
  out.writeInt32LE(Math.max(...bytes.map((b) => b.length)), 0);
  let pos = 4;
  bytes.forEach((b, id) => {
    out.writeFloatLE(id < 259 ? 0 : -id, pos);
    out.writeInt32LE(b.length, pos + 4);
    b.copy(out, pos + 8);
    pos += 8 + b.length;
  });
  writeFileSync(file, out);
}
