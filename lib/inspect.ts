/**
 * inspectModel(): what a model file holds and what it would take to run, without loading its
 * weights: format, hyper-parameters, parameter count, tokenizer summary, tensor types and the
 * engine storage each maps to, and the memory needed on the CPU backend and on a GPU
 * (lib/model/memory.ts). Any file openModelFile() reads works (GGUF, llama2.c, Hugging Face
 * folders); a file that parses but cannot run (an unsupported tensor type, a missing tensor)
 * is still described, with the reason in `planError` and no memory figures.
 */
import { availableParallelism } from 'node:os';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';

import type { WeightDType } from './addon-types.js';
import { LlamaCudaError } from './errors.js';
import { type ModelFile, openModelFile } from './formats/model-file.js';
import { type SourceType, elementCount } from './formats/tensor-info.js';
import { type LlamaConfig, defaultContextLength, parameterCount } from './model/config.js';
import { type MemoryEstimate, estimateMemory, kvCacheBytes, weightSpecBytes } from './model/memory.js';
import { buildLlamaGraph } from './model/transformer.js';
import { type QuantizeAtLoad, type WeightPlan, planWeights } from './model/weights.js';
import { resolveTokenizer } from './tokenizer/resolve.js';

/** How the engine stores a weight (native/core/dtype.h). */
export type WeightStorage = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'int4' | 'nf4';
// the engine's set exactly (this line stops compiling when the two drift apart)
const storageIsEngineDType: [WeightStorage, WeightDType] extends [WeightDType, WeightStorage] ? true : never = true;
void storageIsEngineDType;

export interface InspectOptions {
  /** Tokenizer file (llama2.c tokenizer.bin), as for loadModel. */
  readonly tokenizer?: string;
  /** KV cache positions to size the memory for (default: the model's context length). */
  readonly contextLength?: number;
  /** Tokens per step (default 128, at most contextLength), as for loadModel. */
  readonly batchSize?: number;
  /** CPU threads the kernel scratch is sized for (default: every available CPU). */
  readonly threads?: number;
  /** Plan as loadModel({ quantize }) would. */
  readonly quantize?: QuantizeAtLoad;
}

export interface TokenizerSummary {
  /** Always 'sentencepiece-bpe' (the Llama tokenizer) for now. */
  readonly type: string;
  /** Where the vocabulary came from (a file name). */
  readonly source: string;
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
}

/** The tensors of one file type stored as one engine type. */
export interface TensorTypeRow {
  /** Type in the file (GGUF names: f32, f16, q4_0, ...). */
  readonly type: SourceType;
  /** How the engine stores them ('unused' for tensors the model does not read). */
  readonly storage: WeightStorage | 'unused';
  readonly count: number;
  readonly elements: number;
  /** Bytes in the file. */
  readonly fileBytes: number;
  /** Bytes in the engine (0 for unused). */
  readonly engineBytes: number;
}

export interface ModelReport {
  readonly path: string;
  readonly format: ModelFile['format'];
  /** general.architecture for GGUF; 'llama' for the formats that only hold Llama models. */
  readonly architecture: string;
  readonly name: string;
  /** Bytes of the files holding the tensors. */
  readonly fileBytes: number;
  readonly config: LlamaConfig;
  /** Parameters the model uses (embedding and classifier counted once each when untied). */
  readonly parameters: number;
  /** Elements of every tensor in the file (unused ones too). */
  readonly tensorElements: number;
  readonly tensorCount: number;
  /** Whether the classifier is the embedding (no separate output weight); undefined without a plan. */
  readonly tiedClassifier: boolean | undefined;
  readonly tokenizer: TokenizerSummary | undefined;
  /** Why the tokenizer could not be loaded. */
  readonly tokenizerError: string | undefined;
  readonly tensorTypes: readonly TensorTypeRow[];
  /** KV cache of one sequence at the model's own context length. */
  readonly kvCacheAtModelContext: { readonly f16: number; readonly f32: number };
  /** Memory for one sequence; undefined when the model cannot run (see planError). */
  readonly memory: MemoryEstimate | undefined;
  /** Why the model cannot run in this version (unsupported tensor type, missing tensor, ...). */
  readonly planError: string | undefined;
  /** The CPU threads the scratch figure assumes. */
  readonly threads: number;
}

function positiveInt(name: string, v: number | undefined, max: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > max)) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `${name} must be an integer in 1..${max}, got ${v}`);
  }
}

async function fileBytes(file: ModelFile): Promise<number> {
  const files = new Set(file.tensors.map((t) => t.file));
  if (files.size === 0) files.add(file.path);
  let total = 0;
  for (const f of files) total += (await stat(f)).size;
  return total;
}

function tensorTypeRows(file: ModelFile, plan: WeightPlan | undefined): TensorTypeRow[] {
  const specs = new Map(plan?.specs.map((s) => [s.name, s]) ?? []);
  const rows = new Map<string, { type: SourceType; storage: WeightStorage | 'unused'; count: number; elements: number; fileBytes: number; engineBytes: number }>();
  for (const t of file.tensors) {
    const spec = specs.get(t.name);
    const storage = spec?.dtype ?? 'unused';
    const key = `${t.type}>${storage}`;
    const row = rows.get(key) ?? { type: t.type, storage, count: 0, elements: 0, fileBytes: 0, engineBytes: 0 };
    row.count++;
    row.elements += elementCount(t.shape);
    row.fileBytes += t.nbytes;
    row.engineBytes += spec === undefined ? 0 : weightSpecBytes(spec);
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => b.fileBytes - a.fileBytes || a.type.localeCompare(b.type));
}

/** Describes a model file without loading its weights. */
export async function inspectModel(modelPath: string, options: InspectOptions = {}): Promise<ModelReport> {
  if (typeof modelPath !== 'string' || modelPath === '') throw new LlamaCudaError('ERR_INVALID_ARG', 'inspectModel(path): path must be a non-empty string');
  positiveInt('contextLength', options.contextLength, 1 << 22);
  positiveInt('batchSize', options.batchSize, 1 << 16);
  positiveInt('threads', options.threads, 1024);
  const file = await openModelFile(modelPath);
  const { config } = file;

  let tokenizer: TokenizerSummary | undefined;
  let tokenizerError: string | undefined;
  try {
    const tok = await resolveTokenizer(file, options.tokenizer);
    tokenizer = {
      type: 'sentencepiece-bpe',
      source: tok.vocab.source,
      vocabSize: tok.vocabSize,
      bos: tok.bos,
      eos: tok.eos,
      unk: tok.unk,
      addBos: tok.addBos,
      addEos: tok.vocab.addEos,
    };
  } catch (err) {
    if (!(err instanceof LlamaCudaError)) throw err;
    tokenizerError = `[${err.code}] ${err.message}`;
  }

  let plan: WeightPlan | undefined;
  let planError: string | undefined;
  try {
    plan = planWeights(config, file.tensors, path.basename(file.path), options.quantize !== undefined ? { quantize: options.quantize } : {});
  } catch (err) {
    if (!(err instanceof LlamaCudaError)) throw err;
    planError = `[${err.code}] ${err.message}`;
  }

  const contextLength = options.contextLength ?? defaultContextLength(config);
  const batchSize = Math.min(options.batchSize ?? 128, contextLength);
  const threads = options.threads ?? availableParallelism();
  const memory = plan === undefined ? undefined : estimateMemory(config, buildLlamaGraph(config, plan, { contextLength }), { contextLength, batchSize }, threads);

  const general = file.gguf?.metadata.get('general.architecture')?.value;
  const tensorElements = file.tensors.reduce((n, t) => n + elementCount(t.shape), 0);
  return {
    path: file.path,
    format: file.format,
    architecture: typeof general === 'string' ? general : 'llama',
    name: file.name,
    fileBytes: await fileBytes(file),
    config,
    parameters: plan === undefined ? tensorElements : parameterCount(config, plan.tiedClassifier),
    tensorElements,
    tensorCount: file.tensors.length,
    tiedClassifier: plan?.tiedClassifier,
    tokenizer,
    tokenizerError,
    tensorTypes: tensorTypeRows(file, plan),
    kvCacheAtModelContext: { f16: kvCacheBytes(config, config.contextLength, 2), f32: kvCacheBytes(config, config.contextLength, 4) },
    memory,
    planError,
    threads,
  };
}
