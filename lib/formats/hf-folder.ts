/**
 * Hugging Face model folders of Llama models (`LlamaForCausalLM`, model_type "llama"):
 *
 *   config.json                       hyper-parameters (hidden_size, num_attention_heads, ...)
 *   model.safetensors                 the weights in one file, or
 *   model.safetensors.index.json      {"weight_map": {tensor: shard}} and its shards
 *   model-00001-of-00002.safetensors  ...
 *   tokenizer.json / tokenizer.model  the tokenizer (reported, not read here)
 *
 * Tensors are reported under the GGUF names the rest of the library uses:
 *
 *   model.embed_tokens.weight                          token_embd.weight        [vocab, dim]
 *   model.layers.N.input_layernorm.weight              blk.N.attn_norm.weight   [dim]
 *   model.layers.N.self_attn.{q,k,v,o}_proj.weight     blk.N.attn_{q,k,v,output}.weight
 *   model.layers.N.post_attention_layernorm.weight     blk.N.ffn_norm.weight    [dim]
 *   model.layers.N.mlp.{gate,up,down}_proj.weight      blk.N.ffn_{gate,up,down}.weight
 *   model.norm.weight                                  output_norm.weight       [dim]
 *   lm_head.weight                                     output.weight            [vocab, dim]
 *
 * With tie_word_embeddings the classifier is the embedding (lm_head.weight, if stored, is
 * ignored as transformers ignores it). Q and K rows are stored for the half-split ("rotate
 * half") RoPE of transformers: they are used as they are, with ropePairing 'half'.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { type LlamaConfig, type RopeScaling, validateConfig } from '../model/config.js';
import { yarnAttentionFactor } from '../model/rope-scaling.js';
import { BNB_SUFFIXES, type LocatedTensor, bnbNf4TensorInfo, isBnbCompanion, isBnbNf4Config } from './bnb-nf4.js';
import { type SafetensorsFile, readSafetensors, safetensorsTensorInfo } from './safetensors.js';
import type { TensorInfo } from './tensor-info.js';

export const HF_CONFIG_FILE = 'config.json';
export const HF_SINGLE_WEIGHTS = 'model.safetensors';
export const HF_WEIGHTS_INDEX = 'model.safetensors.index.json';
/** Tokenizer files a folder may hold, in order of preference. */
export const HF_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer.model'] as const;

export interface HfModelFolder {
  /** Absolute path of the folder. */
  readonly path: string;
  readonly config: LlamaConfig;
  /** Under GGUF names (see above). */
  readonly tensors: readonly TensorInfo[];
  /** Absolute paths of the tokenizer files present, in order of preference. */
  readonly tokenizerFiles: readonly string[];
  /** Absolute paths of the safetensors files read. */
  readonly weightFiles: readonly string[];
  readonly tiedEmbeddings: boolean;
  /** config.json's torch_dtype (or dtype), for information: each tensor keeps its own dtype. */
  readonly torchDtype?: string;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number | readonly number[];
}

function formatError(source: string, msg: string): LlamaCudaError {
  return new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: ${msg}`);
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads config.json's fields with errors naming the field. */
class ConfigFields {
  readonly json: Json;
  readonly source: string;

  constructor(json: Json, source: string) {
    this.json = json;
    this.source = source;
  }

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  number(key: string, obj: Json = this.json, where = ''): number | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw formatError(this.source, `${where}${key} = ${JSON.stringify(v)} is not a number`);
    return v;
  }

  int(key: string, fallback?: number): number {
    const v = this.number(key) ?? fallback;
    if (v === undefined) throw formatError(this.source, `missing "${key}"`);
    if (!Number.isSafeInteger(v) || v <= 0) throw formatError(this.source, `${key} = ${v} is not a positive integer`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw formatError(this.source, `${key} = ${JSON.stringify(v)} is not true or false`);
    return v;
  }

  string(key: string): string | undefined {
    const v = this.json[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw formatError(this.source, `${key} = ${JSON.stringify(v)} is not a string`);
    return v;
  }
}

/**
 * rope_scaling (transformers 4.x) or rope_parameters (5.x) as a RopeScaling; undefined for
 * plain RoPE. Follows transformers' defaults: YaRN's beta_fast 32 / beta_slow 1 (also when 0 or
 * null), attention factor 0.1 ln(factor) + 1 (or DeepSeek's mscale ratio), truncate true.
 */
function ropeScalingFromHf(f: ConfigFields, rs: Json, maxPositions: number): RopeScaling | undefined {
  const where = 'rope_scaling.';
  const type = rs['rope_type'] ?? rs['type'];
  if (type === undefined || type === null || type === 'default') return undefined;
  const num = (key: string): number | undefined => f.number(key, rs, where);
  const originalContextLength = num('original_max_position_embeddings') ?? maxPositions;
  const factor = num('factor') ?? (type === 'yarn' ? maxPositions / originalContextLength : undefined);
  if (factor === undefined) throw formatError(f.source, `rope_scaling of type "${String(type)}" has no factor`);
  switch (type) {
    case 'linear':
      return { type: 'linear', factor };
    case 'dynamic':
      return { type: 'dynamic', factor, originalContextLength };
    case 'yarn': {
      const mscale = num('mscale');
      const mscaleAllDim = num('mscale_all_dim');
      const attentionFactor =
        num('attention_factor') ??
        (mscale && mscaleAllDim ? yarnAttentionFactor(factor, mscale) / yarnAttentionFactor(factor, mscaleAllDim) : yarnAttentionFactor(factor));
      const truncate = rs['truncate'];
      if (truncate !== undefined && truncate !== null && typeof truncate !== 'boolean') throw formatError(f.source, `rope_scaling.truncate = ${JSON.stringify(truncate)} is not true or false`);
      return {
        type: 'yarn', factor, originalContextLength, attentionFactor,
        betaFast: num('beta_fast') || 32,
        betaSlow: num('beta_slow') || 1,
        truncate: truncate ?? true,
      };
    }
    case 'llama3': {
      const need = (key: string): number => {
        const v = num(key);
        if (v === undefined) throw formatError(f.source, `rope_scaling of type "llama3" has no ${key}`);
        return v;
      };
      return {
        type: 'llama3', factor, lowFreqFactor: need('low_freq_factor'), highFreqFactor: need('high_freq_factor'),
        originalContextLength: need('original_max_position_embeddings'),
      };
    }
    default:
      throw new LlamaCudaError('ERR_UNSUPPORTED', `${f.source}: RoPE scaling "${String(type)}" is not supported (linear, dynamic, yarn and llama3 are)`);
  }
}

/** A LlamaConfig from the parsed config.json of a Llama model; `source` names it in errors. */
export function configFromHf(json: unknown, source = HF_CONFIG_FILE): LlamaConfig {
  if (!isObject(json)) throw formatError(source, 'not a JSON object');
  const f = new ConfigFields(json, source);
  const architectures = json['architectures'];
  const archList = Array.isArray(architectures) ? architectures.filter((a): a is string => typeof a === 'string') : [];
  const modelType = f.string('model_type');
  if (modelType !== 'llama' && !archList.includes('LlamaForCausalLM')) {
    throw new LlamaCudaError(
      'ERR_UNSUPPORTED',
      `${source}: model_type ${JSON.stringify(modelType ?? null)} (architectures ${archList.join(', ') || 'none'}) is not supported: only Llama (LlamaForCausalLM, model_type "llama")`,
    );
  }
  if (isObject(json['quantization_config']) && !isBnbNf4Config(json['quantization_config'])) {
    const method = json['quantization_config']['quant_method'];
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${source}: quantized checkpoints (quantization_config.quant_method ${JSON.stringify(method ?? null)}) are not supported yet, except bitsandbytes 4-bit NF4; use f32, f16 or bf16 weights`);
  }
  const act = f.string('hidden_act');
  if (act !== undefined && act !== 'silu') throw new LlamaCudaError('ERR_UNSUPPORTED', `${source}: hidden_act "${act}" is not supported (Llama uses silu)`);
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (f.bool(key, false)) throw new LlamaCudaError('ERR_UNSUPPORTED', `${source}: ${key} = true is not supported (Llama 2 has no biases)`);
  }

  const dim = f.int('hidden_size');
  const nHeads = f.int('num_attention_heads');
  const nKvHeads = f.int('num_key_value_heads', nHeads);
  let headDim: number;
  if (f.has('head_dim')) {
    headDim = f.int('head_dim');
  } else {
    if (dim % nHeads !== 0) throw formatError(source, `hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads} (and there is no head_dim)`);
    headDim = dim / nHeads;
  }
  // transformers' LlamaConfig defaults
  const contextLength = f.int('max_position_embeddings', 2048);
  const ropeParameters = isObject(json['rope_parameters']) ? json['rope_parameters'] : undefined; // transformers 5
  const ropeTheta = f.number('rope_theta') ?? (ropeParameters ? f.number('rope_theta', ropeParameters, 'rope_parameters.') : undefined) ?? 10000;
  const rs = json['rope_scaling'] ?? ropeParameters;
  if (rs !== undefined && rs !== null && !isObject(rs)) throw formatError(source, `rope_scaling = ${JSON.stringify(rs)} is not an object`);
  const ropeScaling = rs ? ropeScalingFromHf(f, rs, contextLength) : undefined;

  return validateConfig(
    {
      dim,
      hiddenDim: f.int('intermediate_size'),
      nLayers: f.int('num_hidden_layers'),
      nHeads,
      nKvHeads,
      headDim,
      vocabSize: f.int('vocab_size'),
      contextLength,
      ropeTheta,
      ropeDim: headDim,
      ropeFreqScale: 1,
      ...(ropeScaling !== undefined ? { ropeScaling } : {}),
      ropePairing: 'half',
      normEps: f.number('rms_norm_eps') ?? 1e-6,
    },
    source,
  );
}

const LAYER_TENSORS: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/**
 * The GGUF name of a LlamaForCausalLM tensor; null for tensors that carry nothing the model
 * needs (old checkpoints' rotary_emb.inv_freq); undefined for names that are not Llama's.
 * The `model.` prefix is optional (LlamaModel checkpoints have none).
 */
export function hfTensorName(name: string): string | null | undefined {
  if (name === 'lm_head.weight') return 'output.weight';
  const n = name.startsWith('model.') ? name.slice(6) : name;
  if (n === 'embed_tokens.weight') return 'token_embd.weight';
  if (n === 'norm.weight') return 'output_norm.weight';
  const m = /^layers\.(0|[1-9]\d{0,5})\.(.+)$/.exec(n);
  if (m === null) return undefined;
  if (m[2] === 'self_attn.rotary_emb.inv_freq') return null;
  const suffix = LAYER_TENSORS[m[2]!];
  return suffix === undefined ? undefined : `blk.${m[1]}.${suffix}`;
}

/** Expected outer-first shape of every tensor the model needs, by GGUF name. */
function expectedShapes(c: LlamaConfig, tied: boolean): Map<string, readonly number[]> {
  const qDim = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const shapes = new Map<string, readonly number[]>([
    ['token_embd.weight', [c.vocabSize, c.dim]],
    ['output_norm.weight', [c.dim]],
  ]);
  if (!tied) shapes.set('output.weight', [c.vocabSize, c.dim]);
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`;
    shapes.set(`${b}attn_norm.weight`, [c.dim]);
    shapes.set(`${b}attn_q.weight`, [qDim, c.dim]);
    shapes.set(`${b}attn_k.weight`, [kv, c.dim]);
    shapes.set(`${b}attn_v.weight`, [kv, c.dim]);
    shapes.set(`${b}attn_output.weight`, [c.dim, qDim]);
    shapes.set(`${b}ffn_norm.weight`, [c.dim]);
    shapes.set(`${b}ffn_gate.weight`, [c.hiddenDim, c.dim]);
    shapes.set(`${b}ffn_up.weight`, [c.hiddenDim, c.dim]);
    shapes.set(`${b}ffn_down.weight`, [c.dim, c.hiddenDim]);
  }
  return shapes;
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isFile(), () => false);
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new LlamaCudaError('ERR_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw formatError(what, `not valid JSON (${(err as Error).message})`);
  }
}

/** Where each tensor lives: the shard of every name in the index's weight_map. */
async function readIndex(dir: string): Promise<Map<string, string>> {
  const json = await readJson(path.join(dir, HF_WEIGHTS_INDEX), HF_WEIGHTS_INDEX);
  const map = isObject(json) ? json['weight_map'] : undefined;
  if (!isObject(map)) throw formatError(HF_WEIGHTS_INDEX, 'has no "weight_map" object');
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    // shards are files of this folder: no paths, so nothing outside the folder is ever opened
    if (typeof shard !== 'string' || shard === '' || shard === '.' || shard === '..' || shard !== path.basename(shard) || shard.includes('\\')) {
      throw formatError(HF_WEIGHTS_INDEX, `tensor "${name}" is mapped to ${JSON.stringify(shard)}, which is not a file name in the folder`);
    }
    out.set(name, shard);
  }
  if (out.size === 0) throw formatError(HF_WEIGHTS_INDEX, 'weight_map is empty');
  return out;
}

/** Reads a model folder's config and safetensors headers (no weight data). */
export async function readHfFolder(folder: string): Promise<HfModelFolder> {
  const dir = path.resolve(folder);
  const name = path.basename(dir);
  const configPath = path.join(dir, HF_CONFIG_FILE);
  if (!(await isFile(configPath))) {
    throw formatError(
      dir,
      `is a folder without ${HF_CONFIG_FILE}: not a Hugging Face model folder (expected config.json and model.safetensors or sharded model-*.safetensors with ${HF_WEIGHTS_INDEX})`,
    );
  }
  const configJson = await readJson(configPath, `${name}/${HF_CONFIG_FILE}`);
  const config = configFromHf(configJson, `${name}/${HF_CONFIG_FILE}`);
  const f = new ConfigFields(configJson as Json, `${name}/${HF_CONFIG_FILE}`);
  const tied = f.bool('tie_word_embeddings', false);

  // which file holds each tensor (HF name → shard file name)
  const files = new Map<string, SafetensorsFile>();
  const located: { hfName: string; shard: string }[] = [];
  if (await isFile(path.join(dir, HF_WEIGHTS_INDEX))) {
    const index = await readIndex(dir);
    for (const shard of new Set(index.values())) {
      const p = path.join(dir, shard);
      if (!(await isFile(p))) throw formatError(HF_WEIGHTS_INDEX, `names the shard "${shard}", which is not in ${dir} (an incomplete download?)`);
      files.set(shard, await readSafetensors(p));
    }
    for (const [hfName, shard] of index) located.push({ hfName, shard });
  } else if (await isFile(path.join(dir, HF_SINGLE_WEIGHTS))) {
    const st = await readSafetensors(path.join(dir, HF_SINGLE_WEIGHTS));
    files.set(HF_SINGLE_WEIGHTS, st);
    for (const t of st.tensors) located.push({ hfName: t.name, shard: HF_SINGLE_WEIGHTS });
  } else if (await isFile(path.join(dir, 'pytorch_model.bin')) || await isFile(path.join(dir, 'pytorch_model.bin.index.json'))) {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${dir}: PyTorch pickle weights (pytorch_model.bin) are not supported; convert them to safetensors`);
  } else {
    throw formatError(dir, `has ${HF_CONFIG_FILE} but neither ${HF_SINGLE_WEIGHTS} nor ${HF_WEIGHTS_INDEX}`);
  }

  const shapes = expectedShapes(config, tied);
  const tensors: TensorInfo[] = [];
  const seen = new Set<string>();
  const byName = new Map([...files].map(([shard, st]) => [shard, new Map(st.tensors.map((t) => [t.name, t]))]));
  // every tensor by HF name: a bitsandbytes weight's quantization state may sit in another shard
  const everywhere = new Map<string, LocatedTensor>();
  for (const { hfName, shard } of located) {
    const t = byName.get(shard)!.get(hfName);
    if (t !== undefined) everywhere.set(hfName, { file: files.get(shard)!, tensor: t });
  }
  for (const { hfName, shard } of located) {
    const st = files.get(shard)!;
    const t = byName.get(shard)!.get(hfName);
    if (t === undefined) throw formatError(HF_WEIGHTS_INDEX, `puts tensor "${hfName}" in ${shard}, which has no such tensor`);
    if (isBnbCompanion(hfName)) continue; // read with its weight (bnb-nf4.ts)
    const gguf = hfTensorName(hfName);
    if (gguf === null || (gguf === 'output.weight' && tied)) continue;
    if (gguf === undefined) {
      throw new LlamaCudaError('ERR_UNSUPPORTED', `${shard}: tensor "${hfName}" is not part of the Llama model this library runs (LlamaForCausalLM)`);
    }
    if (seen.has(gguf)) throw formatError(shard, `tensor "${hfName}" is stored twice (as ${gguf})`);
    const expected = shapes.get(gguf);
    if (expected === undefined) {
      throw formatError(shard, `tensor "${hfName}" belongs to no layer of a ${config.nLayers}-layer model (num_hidden_layers in ${HF_CONFIG_FILE})`);
    }
    if (t.dtype === 'U8' && everywhere.has(`${hfName}.quant_state.bitsandbytes__nf4`)) {
      const parts = new Map<string, LocatedTensor>();
      for (const s of BNB_SUFFIXES) {
        const part = everywhere.get(hfName + s);
        if (part !== undefined) parts.set(s, part);
      }
      const info = await bnbNf4TensorInfo({ file: st, tensor: t }, parts, gguf);
      if (info.shape.some((v, i) => v !== expected[i])) {
        throw formatError(shard, `tensor "${hfName}" (bitsandbytes NF4) has shape [${info.shape.join(', ')}], expected [${expected.join(', ')}] from ${HF_CONFIG_FILE}`);
      }
      tensors.push(info);
      seen.add(gguf);
      continue;
    }
    if (t.shape.length !== expected.length || t.shape.some((v, i) => v !== expected[i])) {
      throw formatError(shard, `tensor "${hfName}" has shape [${t.shape.join(', ')}], expected [${expected.join(', ')}] from ${HF_CONFIG_FILE}`);
    }
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new LlamaCudaError('ERR_UNSUPPORTED', `${shard}: tensor "${hfName}" has dtype ${t.dtype}, which this version cannot run (supported: F32, F16, BF16)`);
    }
    tensors.push(safetensorsTensorInfo(st, t, gguf));
    seen.add(gguf);
  }
  for (const [gguf] of shapes) {
    if (!seen.has(gguf)) {
      const hint = gguf === 'output.weight' ? ` (or set tie_word_embeddings in ${HF_CONFIG_FILE})` : '';
      throw formatError(name, `missing tensor "${hfToName(gguf)}" in ${[...files.keys()].join(', ')}${hint}`);
    }
  }

  const tokenizerFiles: string[] = [];
  for (const t of HF_TOKENIZER_FILES) if (await isFile(path.join(dir, t))) tokenizerFiles.push(path.join(dir, t));
  const torchDtype = f.string('torch_dtype') ?? f.string('dtype');
  const bos = f.number('bos_token_id');
  const eosRaw = (configJson as Json)['eos_token_id'];
  const eos = typeof eosRaw === 'number' ? eosRaw : Array.isArray(eosRaw) && eosRaw.every((x) => typeof x === 'number') ? (eosRaw as number[]) : undefined;
  return {
    path: dir,
    config,
    tensors,
    tokenizerFiles,
    weightFiles: [...files.values()].map((s) => s.path),
    tiedEmbeddings: tied,
    ...(torchDtype !== undefined ? { torchDtype } : {}),
    ...(bos !== undefined ? { bosTokenId: bos } : {}),
    ...(eos !== undefined ? { eosTokenId: eos } : {}),
  };
}

/** The transformers name of a GGUF tensor name (for messages). */
function hfToName(gguf: string): string {
  if (gguf === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (gguf === 'output_norm.weight') return 'model.norm.weight';
  if (gguf === 'output.weight') return 'lm_head.weight';
  const m = /^blk\.(\d+)\.(.+)$/.exec(gguf);
  const hf = m && Object.entries(LAYER_TENSORS).find(([, g]) => g === m[2]);
  return m && hf ? `model.layers.${m[1]}.${hf[0]}` : gguf;
}
