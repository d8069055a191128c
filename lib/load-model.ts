/**
 * loadModel(): file → config + tokenizer + graph → native engine with weights loaded.
 */
import * as path from 'node:path';

import type { CpuKernelTier, KvCacheType, NativeEngine, WeightSource } from './addon-types.js';
import { LlamaCudaError, nativeError } from './errors.js';
import { openModelFile } from './formats/model-file.js';
import type { TensorInfo } from './formats/tensor-info.js';
import { defaultContextLength, parameterCount } from './model/config.js';
import { LlamaModel } from './model/llama-model.js';
import { buildLlamaGraph } from './model/transformer.js';
import { type QuantizeAtLoad, planWeights } from './model/weights.js';
import { type AddonChoice, type DeviceRequest, loadAddon } from './native.js';
import type { Tokenizer } from './tokenizer/index.js';
import { resolveTokenizer } from './tokenizer/resolve.js';
import { applyLora, checkLoraOptions } from './lora/index.js';
import type { LoraAdapterOptions, LoraMode } from './lora/types.js';

export interface LoadProgress {
  readonly loadedBytes: number;
  readonly totalBytes: number;
  /** 0..1 */
  readonly fraction: number;
}

export interface LoadModelOptions {
  /** Where to run: 'auto' (default: CUDA when usable, else CPU), 'cpu' or 'cuda'. */
  readonly device?: DeviceRequest;
  /**
   * Tokenizer file (tokenizer.json, tokenizer.model, a GGUF, or llama2.c tokenizer.bin); needed for
   * llama2.c checkpoints unless a `tokenizer.bin` sits beside the model. GGUF files and Hugging Face
   * folders carry their own.
   */
  readonly tokenizer?: string;
  /** KV cache positions per sequence (default: the model's context length, at most 4096). */
  readonly contextLength?: number;
  /** Prompt tokens per native step (default 128). */
  readonly batchSize?: number;
  /** CPU threads (default: every online CPU). */
  readonly threads?: number;
  /** KV cache precision (default 'f16', as llama.cpp; 'f32' for exactness; 'bf16' on CUDA only). */
  readonly kvCacheType?: KvCacheType;
  readonly onProgress?: (progress: LoadProgress) => void;
  /** CPU kernel tier, for testing and benchmarks (default 'auto': the fastest this CPU has). */
  readonly cpuKernels?: CpuKernelTier;
  /**
   * Quantize f32/f16/bf16 matrices at load: 'int4' (group-wise min/max affine, round to
   * nearest), 'int8' (Q8_0) or 'nf4' (QLoRA's 4-bit NormalFloat, blocks of 64 with an absmax
   * scale, each value rounded to the nearest NF4 level). Tensors already quantized in the file
   * stay as they are; norms stay f32.
   */
  readonly quantize?: QuantizeAtLoad;
  /** int4 group size for `quantize: 'int4'` (default 32). */
  readonly quantizeGroup?: 32 | 64 | 128;
  /**
   * PEFT LoRA adapters to apply (each a folder with adapter_config.json and
   * adapter_model.safetensors), summed when several; `scale` multiplies the adapter's alpha / r.
   */
  readonly lora?: readonly LoraAdapterOptions[];
  /** 'merged' (default: W + scale·(alpha/r)·B·A at load) or 'runtime' (low-rank matmuls in the graph). */
  readonly loraMode?: LoraMode;
}

/**
 * Sources whose tensor is assembled rather than one file range (TensorInfo.read: bitsandbytes
 * NF4 weights) become in-memory sources; the others stay file ranges.
 */
async function readAssembledSources(sources: readonly WeightSource[], tensors: readonly TensorInfo[]): Promise<WeightSource[]> {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const out: WeightSource[] = [];
  for (const s of sources) {
    const read = byName.get(s.weight)?.read;
    out.push(read === undefined || !('file' in s) ? s : { weight: s.weight, type: s.type, nbytes: s.nbytes, data: await read() });
  }
  return out;
}

function positiveInt(name: string, v: number | undefined, max: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > max)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `${name} must be an integer in 1..${max}, got ${v}`);
  }
}


/**
 * The tokenizer of a model file without loading its weights: from GGUF metadata, or for a
 * llama2.c checkpoint from `options.tokenizer` (or `tokenizer.bin` beside it).
 */
export async function loadTokenizer(modelPath: string, options: { tokenizer?: string } = {}): Promise<Tokenizer> {
  const file = await openModelFile(modelPath);
  return resolveTokenizer(file, options.tokenizer);
}

export async function loadModel(modelPath: string, options: LoadModelOptions = {}): Promise<LlamaModel> {
  checkOptions(modelPath, options);
  return loadModelWith(loadAddon(options.device), modelPath, options);
}

function checkOptions(modelPath: string, options: LoadModelOptions): void {
  if (typeof modelPath !== 'string' || modelPath === '') throw new LlamaCudaError('ERR_INVALID_ARG', 'loadModel(path): path must be a non-empty string');
  positiveInt('contextLength', options.contextLength, 1 << 22);
  positiveInt('batchSize', options.batchSize, 1 << 16);
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 0 || options.threads > 1024)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `threads must be an integer in 0..1024, got ${options.threads}`);
  }
  if (options.kvCacheType !== undefined && !['f16', 'f32', 'bf16'].includes(options.kvCacheType)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `kvCacheType must be 'f16', 'f32' or (CUDA) 'bf16', got ${String(options.kvCacheType)}`);
  }
  checkLoraOptions(options.lora, options.loraMode);
}

/**
 * loadModel on an addon already chosen (tests: the SIMT build from loadSimtAddon()). Not part of
 * the public API.
 */
export async function loadModelWith(choice: AddonChoice, modelPath: string, options: LoadModelOptions = {}): Promise<LlamaModel> {
  checkOptions(modelPath, options);
  const t0 = performance.now();
  if (options.kvCacheType === 'bf16' && choice.device !== 'cuda') {
    throw new LlamaCudaError('ERR_INVALID_ARG', `kvCacheType 'bf16' needs the CUDA backend; this model would run on the ${choice.device} (${choice.reason})`);
  }
  const file = await openModelFile(modelPath);
  const tokenizer = await resolveTokenizer(file, options.tokenizer);
  if (tokenizer.vocabSize !== file.config.vocabSize) {
    throw new LlamaCudaError(
      'ERR_MODEL_FORMAT',
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${file.config.vocabSize}`,
    );
  }
  const planned = planWeights(file.config, file.tensors, path.basename(file.path), {
    ...(options.quantize !== undefined ? { quantize: options.quantize } : {}),
    ...(options.quantizeGroup !== undefined ? { quantizeGroup: options.quantizeGroup } : {}),
  });
  const plan = { ...planned, sources: await readAssembledSources(planned.sources, file.tensors) };
  const contextLength = options.contextLength ?? defaultContextLength(file.config);
  const spec = buildLlamaGraph(file.config, plan, { contextLength });
  const lora = await applyLora(choice.addon, file.config, plan, spec, options.lora, options.loraMode);
  const batchSize = Math.min(options.batchSize ?? 128, contextLength);

  const site = new Error();
  let engine: NativeEngine;
  try {
    engine = new choice.addon.Engine(lora.graph, {
      device: choice.device,
      threads: options.threads ?? 0,
      cpuKernels: options.cpuKernels ?? 'auto',
    });
  } catch (err) {
    throw nativeError(err, site);
  }
  try {
    const onProgress = options.onProgress;
    await engine.load(
      lora.plan.sources,
      onProgress ? (done, total) => onProgress({ loadedBytes: done, totalBytes: total, fraction: total > 0 ? done / total : 1 }) : undefined,
    );
  } catch (err) {
    await engine.dispose().catch(() => undefined);
    throw nativeError(err, site);
  }

  const memory = engine.memoryInfo();
  const embeddingBytes = memory.weights[plan.embedding] ?? 0;
  const bytesPerToken = memory.weightBytes - (plan.tiedClassifier ? 0 : embeddingBytes - embeddingBytes / file.config.vocabSize);
  const tensorTypes: Record<string, number> = {};
  for (const t of file.tensors) tensorTypes[t.type] = (tensorTypes[t.type] ?? 0) + 1;
  const model = new LlamaModel({
    engine,
    config: file.config,
    tokenizer,
    contextLength,
    batchSize,
    kvCacheType: options.kvCacheType ?? 'f16',
    info: {
      path: file.path,
      format: file.format,
      name: file.name,
      parameters: parameterCount(file.config, plan.tiedClassifier),
      weightBytes: memory.weightBytes,
      bytesPerToken,
      tensorTypes,
      backend: { variant: choice.variant, device: choice.device, reason: choice.reason, description: engine.describe() },
      loadMs: performance.now() - t0,
      ...(lora.info !== undefined ? { lora: lora.info } : {}),
    },
  });
  return model;
}
