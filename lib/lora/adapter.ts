/**
 * PEFT LoRA adapters: a folder with `adapter_config.json` and `adapter_model.safetensors`, as
 * `PeftModel.save_pretrained` writes them for a Llama model.
 *
 *   adapter_config.json   { "peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": [...],
 *                           "use_rslora": false, "rank_pattern": {}, "alpha_pattern": {}, ... }
 *   tensors               base_model.model.model.layers.<i>.self_attn.q_proj.lora_A.weight  [r, in]
 *                         base_model.model.model.layers.<i>.self_attn.q_proj.lora_B.weight  [out, r]
 *                         (likewise k_proj v_proj o_proj, mlp.gate_proj up_proj down_proj)
 *
 * The adapted projection is  y = x·Wᵀ + scaling · (x·Aᵀ)·Bᵀ,  i.e.  W' = W + scaling · B·A, with
 * scaling = lora_alpha / r (or lora_alpha / √r with use_rslora). `rank_pattern` and
 * `alpha_pattern` override r and alpha for the modules whose name matches (PEFT's rule: the key
 * matches the end of the module name at a dot boundary). `fan_in_fan_out` describes Conv1D
 * layers (GPT-2); Llama's projections are nn.Linear, for which PEFT itself turns it off, so it
 * is ignored here too.
 *
 * Row order: adapters are trained on transformers' Llama, whose q_proj/k_proj rows pair RoPE
 * dimensions as "rotate half". GGUF and llama2.c files store those rows permuted into the
 * interleaved pairing (config.ropePairing 'interleaved'); effectiveB() moves B's rows the same
 * way so that B·A lines up with the base weights the engine holds.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { parseSafetensorsHeader } from '../formats/safetensors.js';
import { type LlamaConfig, kvDim } from '../model/config.js';
import type { LayerWeights } from '../model/weights.js';
import { type FloatEncoding, decodeFloats } from './floats.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** The Llama projections an adapter may target (transformers' module names). */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** Which engine weight of a layer each target adapts. */
export const TARGET_WEIGHT: Readonly<Record<LoraTarget, keyof LayerWeights>> = {
  q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down',
};

const TARGET_PARENT: Readonly<Record<LoraTarget, 'self_attn' | 'mlp'>> = {
  q_proj: 'self_attn', k_proj: 'self_attn', v_proj: 'self_attn', o_proj: 'self_attn',
  gate_proj: 'mlp', up_proj: 'mlp', down_proj: 'mlp',
};

/** One adapted projection of one layer. */
export interface LoraModule {
  readonly layer: number;
  readonly target: LoraTarget;
  /** e.g. "model.layers.3.self_attn.q_proj" (what rank_pattern / alpha_pattern match). */
  readonly moduleName: string;
  readonly rank: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** alpha / r (or alpha / √r with rsLoRA), from the config and its patterns. */
  readonly scaling: number;
  /** [rank][inFeatures], row-major. */
  readonly a: Float32Array;
  /** [outFeatures][rank], row-major, in transformers' row order. */
  readonly b: Float32Array;
}

export interface LoraAdapter {
  /** Absolute path of the adapter folder. */
  readonly path: string;
  readonly r: number;
  readonly alpha: number;
  readonly useRslora: boolean;
  /** Sorted by layer, then target in LORA_TARGETS order. */
  readonly modules: readonly LoraModule[];
}

function formatError(where: string, msg: string): LlamaCudaError {
  return new LlamaCudaError('ERR_MODEL_FORMAT', `LoRA adapter ${where}: ${msg}`);
}

interface AdapterConfig {
  r: number;
  alpha: number;
  useRslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
}

function numberMap(v: unknown, field: string, where: string): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw formatError(where, `${field} must be an object`);
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
    if (typeof n !== 'number' || !(n > 0)) throw formatError(where, `${field}["${k}"] must be a positive number`);
    out[k] = n;
  }
  return out;
}

function parseAdapterConfig(text: string, where: string): AdapterConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw formatError(where, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw formatError(where, 'not a JSON object');
  const c = json as Record<string, unknown>;
  const peftType = c['peft_type'];
  if (peftType !== undefined && peftType !== 'LORA') {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `LoRA adapter ${where}: peft_type ${JSON.stringify(peftType)} is not supported (only LORA)`);
  }
  if (c['use_dora'] === true) throw new LlamaCudaError('ERR_UNSUPPORTED', `LoRA adapter ${where}: DoRA (use_dora) is not supported`);
  const r = c['r'];
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) throw formatError(where, `"r" must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = c['lora_alpha'] ?? 8; // LoraConfig's default
  if (typeof alpha !== 'number' || !(alpha > 0)) throw formatError(where, `"lora_alpha" must be a positive number, got ${JSON.stringify(alpha)}`);
  const targets = c['target_modules'];
  if (Array.isArray(targets)) {
    const unknown = targets.filter((t) => typeof t !== 'string' || !(LORA_TARGETS as readonly string[]).includes(t.split('.').at(-1)!));
    if (unknown.length > 0) {
      throw new LlamaCudaError(
        'ERR_UNSUPPORTED',
        `LoRA adapter ${where}: target_modules ${JSON.stringify(unknown)} cannot be applied (supported: ${LORA_TARGETS.join(', ')})`,
      );
    }
  }
  const toSave = c['modules_to_save'];
  if (Array.isArray(toSave) && toSave.length > 0) {
    throw new LlamaCudaError(
      'ERR_UNSUPPORTED',
      `LoRA adapter ${where}: modules_to_save ${JSON.stringify(toSave)} (fully trained copies of base modules) are not supported`,
    );
  }
  const bias = c['bias'];
  if (bias !== undefined && bias !== 'none') throw new LlamaCudaError('ERR_UNSUPPORTED', `LoRA adapter ${where}: bias "${String(bias)}" is not supported (Llama has no biases)`);
  return {
    r,
    alpha,
    useRslora: c['use_rslora'] === true,
    rankPattern: numberMap(c['rank_pattern'], 'rank_pattern', where),
    alphaPattern: numberMap(c['alpha_pattern'], 'alpha_pattern', where),
  };
}

/** PEFT's pattern rule: the key is the module name or a dot-separated suffix of it (longest key wins). */
function patternValue(patterns: Record<string, number>, moduleName: string): number | undefined {
  let best: string | undefined;
  for (const key of Object.keys(patterns)) {
    if ((moduleName === key || moduleName.endsWith(`.${key}`)) && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : patterns[best];
}

// ...layers.<i>.<self_attn|mlp>.<target>.lora_<A|B>[.<adapter name>].weight
const TENSOR_NAME = /(?:^|\.)layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])(?:\.[\w-]+)?\.weight$/;

/** Whether a tensor name is something a PEFT adapter may hold that we do not apply (for the message). */
function unsupportedKind(name: string): string | undefined {
  if (/lora_embedding_[AB]|embed_tokens/.test(name)) return 'the token embedding (embed_tokens)';
  if (/lm_head/.test(name)) return 'the classifier (lm_head)';
  if (/lora_magnitude_vector/.test(name)) return 'DoRA magnitudes';
  if (/\.bias$/.test(name)) return 'a bias';
  return undefined;
}

const ENCODING: Readonly<Record<string, FloatEncoding>> = { F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64' };

/** The folder of an adapter given as the folder or as one of its two files. */
async function adapterFolder(p: string): Promise<string> {
  let info;
  try {
    info = await stat(p);
  } catch (err) {
    throw new LlamaCudaError('ERR_IO', `cannot open LoRA adapter ${p}: ${(err as Error).message}`, { cause: err });
  }
  if (info.isDirectory()) return path.resolve(p);
  const base = path.basename(p);
  if (base === ADAPTER_CONFIG_FILE || base.endsWith('.safetensors')) return path.resolve(path.dirname(p));
  throw formatError(p, `expected a PEFT adapter folder (${ADAPTER_CONFIG_FILE} + ${ADAPTER_WEIGHTS_FILE})`);
}

async function readAdapterFile(dir: string, name: string): Promise<Buffer> {
  const file = path.join(dir, name);
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      const hint = name === ADAPTER_WEIGHTS_FILE ? ' (PyTorch adapter_model.bin files are not read: save with safe_serialization=True)' : '';
      throw formatError(dir, `${name} is missing${hint}`);
    }
    throw new LlamaCudaError('ERR_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The [in, out] features of a target in a model with this config. */
export function targetShape(config: LlamaConfig, target: LoraTarget): { inFeatures: number; outFeatures: number } {
  const qDim = config.nHeads * config.headDim;
  switch (target) {
    case 'q_proj': return { inFeatures: config.dim, outFeatures: qDim };
    case 'k_proj':
    case 'v_proj': return { inFeatures: config.dim, outFeatures: kvDim(config) };
    case 'o_proj': return { inFeatures: qDim, outFeatures: config.dim };
    case 'gate_proj':
    case 'up_proj': return { inFeatures: config.dim, outFeatures: config.hiddenDim };
    case 'down_proj': return { inFeatures: config.hiddenDim, outFeatures: config.dim };
  }
}

/**
 * Reads an adapter folder and checks it against the model it will be applied to: every tensor
 * is an A or B of a supported projection of an existing layer, A and B come in pairs, and their
 * shapes are [r, in] and [out, r] for that projection and the rank the config gives it.
 */
export async function readLoraAdapter(adapterPath: string, config: LlamaConfig): Promise<LoraAdapter> {
  const dir = await adapterFolder(adapterPath);
  const cfg = parseAdapterConfig((await readAdapterFile(dir, ADAPTER_CONFIG_FILE)).toString('utf8'), path.join(dir, ADAPTER_CONFIG_FILE));
  const bytes = await readAdapterFile(dir, ADAPTER_WEIGHTS_FILE);
  const file = path.join(dir, ADAPTER_WEIGHTS_FILE);
  const st = parseSafetensorsHeader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, file);

  interface Half { a?: { shape: readonly number[]; values: Float32Array; name: string }; b?: { shape: readonly number[]; values: Float32Array; name: string } }
  const pairs = new Map<string, { layer: number; target: LoraTarget; moduleName: string; half: Half }>();
  for (const t of st.tensors) {
    const bad = (msg: string): never => {
      throw formatError(file, `tensor "${t.name}" ${msg}`);
    };
    const m = TENSOR_NAME.exec(t.name);
    if (m === null) {
      const kind = unsupportedKind(t.name);
      if (kind !== undefined) {
        throw new LlamaCudaError('ERR_UNSUPPORTED', `LoRA adapter ${file}: tensor "${t.name}" adapts ${kind}; only ${LORA_TARGETS.join(', ')} can be applied`);
      }
      bad('is not a LoRA A/B weight of a Llama layer');
    }
    const [, layerText, parent, targetName, which] = m!;
    const layer = Number(layerText);
    if (!(LORA_TARGETS as readonly string[]).includes(targetName!)) {
      throw new LlamaCudaError('ERR_UNSUPPORTED', `LoRA adapter ${file}: tensor "${t.name}" adapts ${targetName}; only ${LORA_TARGETS.join(', ')} can be applied`);
    }
    const target = targetName as LoraTarget;
    if (TARGET_PARENT[target] !== parent) bad(`puts ${target} under ${parent}`);
    if (layer >= config.nLayers) bad(`is for layer ${layer}, but the model has ${config.nLayers} layers`);
    const encoding = ENCODING[t.dtype];
    if (encoding === undefined) throw new LlamaCudaError('ERR_UNSUPPORTED', `LoRA adapter ${file}: tensor "${t.name}" has dtype ${t.dtype} (supported: F32, F16, BF16, F64)`);
    if (t.shape.length !== 2) bad(`has shape [${t.shape.join(', ')}], expected a matrix`);
    const key = `${layer}.${target}`;
    let pair = pairs.get(key);
    if (pair === undefined) {
      pair = { layer, target, moduleName: `model.layers.${layer}.${parent}.${target}`, half: {} };
      pairs.set(key, pair);
    }
    const slot = which === 'A' ? 'a' : 'b';
    if (pair.half[slot] !== undefined) bad(`duplicates "${pair.half[slot].name}"`);
    const values = decodeFloats(new Uint8Array(bytes.buffer, bytes.byteOffset + t.offset, t.nbytes), encoding);
    pair.half[slot] = { shape: t.shape, values, name: t.name };
  }
  if (pairs.size === 0) throw formatError(file, 'holds no LoRA weights');

  const modules: LoraModule[] = [];
  for (const { layer, target, moduleName, half } of pairs.values()) {
    const { a, b } = half;
    if (a === undefined || b === undefined) {
      throw formatError(file, `${moduleName} has lora_${a === undefined ? 'A' : 'B'} missing (found only "${(a ?? b)!.name}")`);
    }
    const { inFeatures, outFeatures } = targetShape(config, target);
    const rank = patternValue(cfg.rankPattern, moduleName) ?? cfg.r;
    const alpha = patternValue(cfg.alphaPattern, moduleName) ?? cfg.alpha;
    const expect = (t: typeof a, shape: readonly number[]): void => {
      if (t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
        throw formatError(file, `tensor "${t.name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] (rank ${rank}, ${target} of this model maps ${inFeatures} -> ${outFeatures})`);
      }
    };
    expect(a, [rank, inFeatures]);
    expect(b, [outFeatures, rank]);
    const scaling = cfg.useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    modules.push({ layer, target, moduleName, rank, inFeatures, outFeatures, scaling, a: a.values, b: b.values });
  }
  modules.sort((x, y) => x.layer - y.layer || LORA_TARGETS.indexOf(x.target) - LORA_TARGETS.indexOf(y.target));
  return { path: dir, r: cfg.r, alpha: cfg.alpha, useRslora: cfg.useRslora, modules };
}

/**
 * B scaled by `scale · scaling`, in the row order of the model's own weights: for q_proj and
 * k_proj of a model with interleaved RoPE pairs (GGUF, llama2.c), each head's rows move from
 * transformers' half-split order (pair p = rows p and ropeDim/2 + p) to interleaved order
 * (pair p = rows 2p and 2p + 1), as llama.cpp's converter moves the base weights. float64.
 */
export function effectiveB(m: LoraModule, scale: number, config: LlamaConfig): Float64Array {
  const { rank, outFeatures } = m;
  const s = scale * m.scaling;
  const out = new Float64Array(outFeatures * rank);
  const permute = config.ropePairing === 'interleaved' && (m.target === 'q_proj' || m.target === 'k_proj');
  const { headDim, ropeDim } = config;
  for (let row = 0; row < outFeatures; row++) {
    let from = row;
    if (permute) {
      const inHead = row % headDim;
      if (inHead < ropeDim) from = row - inHead + (inHead % 2 === 0 ? inHead / 2 : ropeDim / 2 + (inHead - 1) / 2);
    }
    for (let k = 0; k < rank; k++) out[row * rank + k] = s * m.b[from * rank + k]!;
  }
  return out;
}
