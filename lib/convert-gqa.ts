/**
 * convertGqa(): multi-head (or grouped-query) attention → grouped-query attention with fewer
 * key/value heads, by mean-pooling the key and value projection heads of each group, the
 * checkpoint conversion of the GQA paper (Ainslie et al., 2023, section 2.1: "the projection
 * matrices for key and value heads are mean-pooled into a single projection matrix"; the paper
 * then uptrains the result briefly, which this tool does not do).
 *
 *   Wk, Wv: [K·headDim][dim], K KV heads, head j = rows j·headDim .. (j+1)·headDim - 1
 *   N new heads, G = K / N old heads per group:
 *     new row g·headDim + r = (1/G) · Σ_{i<G} old row (g·G + i)·headDim + r      (in float64)
 *
 * Query head h reads KV head floor(h / (nHeads/K)) before and floor(h / (nHeads/N)) after, so
 * the queries that read any head of group g read the pooled head g: the grouping is contiguous,
 * as the engine's (and llama.cpp's) attention maps query heads to KV heads.
 *
 * RoPE: the rotated pairs lie inside one head, in both layouts (GGUF/llama2.c interleaved pairs
 * (2p, 2p+1), Hugging Face halves (p, p+headDim/2)). Pooling whole heads row by row therefore
 * commutes with RoPE and with the half → interleaved permutation, which (for Hugging Face
 * sources) is applied to q and the pooled k as lib/quantize-file.ts does for every GGUF it writes.
 *
 * Output: a GGUF with the source's tensors in its order (GGUF) or llama.cpp's llama2.c order
 * (others); every tensor copied byte for byte except attn_k/attn_v, which are written as f32
 * (the float64 mean rounded once; quantized sources are dequantized exactly as ggml does first),
 * and the q rows of Hugging Face sources, permuted. Metadata: a GGUF source's, copied, with
 * llama.attention.head_count_kv = N (and the llama.* keys it left to defaults written out);
 * other sources get the llama.* keys and the tokenizer (tokenizer.ggml.*) rebuilt.
 */
import * as path from 'node:path';

import type { Addon, SourceEncoding } from './addon-types.js';
import { LlamaCudaError } from './errors.js';
import { type GgufEntry, GgufValueType } from './formats/gguf.js';
import { type GgufTensorToWrite, writeGgufAtomically } from './formats/gguf-writer.js';
import { type ModelFile, openModelFile } from './formats/model-file.js';
import type { SourceType, TensorInfo } from './formats/tensor-info.js';
import { planWeights } from './model/weights.js';
import { loadAddon } from './native.js';
import { SourceReader, halfToInterleavedRows, llamaMetadata, tensorList, tokenizerMetadata } from './quantize-file.js';
import { resolveTokenizer } from './tokenizer/resolve.js';

export interface ConvertGqaOptions {
  /** Key/value heads of the output: divides the source's KV head count (1 = multi-query). */
  readonly kvHeads: number;
  /** Tokenizer file for sources without one (a llama2.c checkpoint: its tokenizer.bin). */
  readonly tokenizer?: string;
  readonly onProgress?: (progress: { readonly doneBytes: number; readonly totalBytes: number; readonly fraction: number; readonly tensor: string }) => void;
}

export interface ConvertGqaResult {
  readonly output: string;
  readonly heads: number;
  /** KV heads of the source and of the output. */
  readonly kvHeadsBefore: number;
  readonly kvHeads: number;
  /** Tensors written, and of them the pooled k/v projections. */
  readonly tensors: number;
  readonly pooledTensors: number;
  /** Bytes of the output file. */
  readonly bytes: number;
}

const u32 = (value: number): GgufEntry => ({ type: GgufValueType.UINT32, value });
const KV_TENSOR = /^blk\.\d+\.attn_[kv]\.weight$/;
const Q_TENSOR = /^blk\.\d+\.attn_q\.weight$/;

/** Checks that `kvHeads` can be reached from a model with `before` KV heads. */
export function checkKvHeads(kvHeads: number, before: number, heads: number): void {
  if (!Number.isInteger(kvHeads) || kvHeads < 1) throw new LlamaCudaError('ERR_INVALID_ARG', `kvHeads must be a positive integer, got ${kvHeads}`);
  if (kvHeads > before) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `the model has ${before} KV heads (${heads} query heads); mean-pooling can only reduce them, not make ${kvHeads}`);
  }
  if (before % kvHeads !== 0) {
    const divisors = Array.from({ length: before }, (_, i) => i + 1).filter((d) => before % d === 0);
    throw new LlamaCudaError('ERR_INVALID_ARG', `${kvHeads} KV heads do not divide the model's ${before} into equal groups; choose one of ${divisors.join(', ')}`);
  }
}

/**
 * Mean-pools the heads of a k/v projection (f32 rows [K·headDim][cols]) into N heads, in
 * float64, rounding once to f32. @internal exported for tests
 */
export function poolKvHeads(w: Float32Array, cols: number, headDim: number, kvBefore: number, kvAfter: number): Float32Array {
  const group = kvBefore / kvAfter;
  const out = new Float32Array(kvAfter * headDim * cols);
  const acc = new Float64Array(cols);
  for (let g = 0; g < kvAfter; g++) {
    for (let r = 0; r < headDim; r++) {
      acc.fill(0);
      for (let i = 0; i < group; i++) {
        const src = ((g * group + i) * headDim + r) * cols;
        for (let c = 0; c < cols; c++) acc[c] = (acc[c] as number) + (w[src + c] as number);
      }
      const dst = (g * headDim + r) * cols;
      for (let c = 0; c < cols; c++) out[dst + c] = (acc[c] as number) / group;
    }
  }
  return out;
}

/** Reorders the rows of each head (rows [heads·headDim][rowBytes]): new row r of a head = old row from[r]. */
function permuteHeadRows(bytes: Uint8Array, rowBytes: number, headDim: number, from: Int32Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const rows = bytes.length / rowBytes;
  for (let r = 0; r < rows; r++) {
    const src = Math.floor(r / headDim) * headDim + from[r % headDim]!;
    out.set(bytes.subarray(src * rowBytes, (src + 1) * rowBytes), r * rowBytes);
  }
  return out;
}

/** general.file_type (llama_ftype) for the most common matrix type, when it has one. */
function fileTypeOf(types: readonly SourceType[]): number | undefined {
  const counts = new Map<SourceType, number>();
  for (const t of types) counts.set(t, (counts.get(t) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const ftype: Partial<Record<SourceType, number>> = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q4_k: 15, q5_k: 17, q6_k: 18, bf16: 32 };
  return top === undefined ? undefined : ftype[top];
}

async function buildMetadata(file: ModelFile, kvHeads: number, outTypes: readonly SourceType[], tokenizerPath: string | undefined): Promise<Map<string, GgufEntry>> {
  const defaults = [...llamaMetadata(file.config, file.name, 'q8_0')].filter(([k]) => !k.startsWith('general.file_type') && k !== 'general.quantization_version');
  let metadata: Map<string, GgufEntry>;
  if (file.gguf !== undefined) {
    metadata = new Map(file.gguf.metadata);
    for (const [k, e] of defaults) if (!metadata.has(k)) metadata.set(k, e);
  } else {
    metadata = new Map(defaults);
    const ftype = fileTypeOf(outTypes);
    if (ftype !== undefined) metadata.set('general.file_type', u32(ftype));
  }
  if (file.gguf === undefined || tokenizerPath !== undefined) {
    const tokenizer = await resolveTokenizer(file, tokenizerPath);
    if (tokenizer.vocabSize !== file.config.vocabSize) {
      throw new LlamaCudaError('ERR_MODEL_FORMAT', `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${file.config.vocabSize}`);
    }
    for (const k of [...metadata.keys()]) if (k.startsWith('tokenizer.')) metadata.delete(k);
    for (const [k, e] of tokenizerMetadata(tokenizer)) metadata.set(k, e);
  }
  metadata.set('llama.attention.head_count_kv', u32(kvHeads));
  return metadata;
}

export async function convertGqa(input: string, output: string, options: ConvertGqaOptions): Promise<ConvertGqaResult> {
  if (typeof output !== 'string' || output === '') throw new LlamaCudaError('ERR_INVALID_ARG', 'the output path must be a non-empty string');
  if (path.resolve(input) === path.resolve(output)) throw new LlamaCudaError('ERR_INVALID_ARG', `the output ${output} is the input file`);
  const file = await openModelFile(input);
  planWeights(file.config, file.tensors, path.basename(file.path)); // a model this library loads, or a clear error
  const { config } = file;
  const { headDim, nHeads } = config;
  const kvBefore = config.nKvHeads;
  const kvHeads = options.kvHeads;
  checkKvHeads(kvHeads, kvBefore, nHeads);
  const headRows = config.ropePairing === 'half' ? halfToInterleavedRows(headDim, config.ropeDim) : undefined;

  const sources = tensorList(file);
  const outType = (t: TensorInfo): SourceType => (KV_TENSOR.test(t.name) ? 'f32' : t.type);
  const outShape = (t: TensorInfo): readonly number[] => (KV_TENSOR.test(t.name) ? [kvHeads * headDim, t.shape[t.shape.length - 1]!] : t.shape);
  const metadata = await buildMetadata(file, kvHeads, sources.filter((t) => t.shape.length === 2).map(outType), options.tokenizer);
  const addon: Addon = loadAddon('cpu').addon;
  const reader = new SourceReader();
  const totalBytes = sources.reduce((n, t) => n + t.nbytes, 0);
  let doneBytes = 0;

  const produce = (t: TensorInfo): GgufTensorToWrite['data'] => async (write) => {
    const rowBytes = t.nbytes / (t.shape.length > 1 ? t.shape[0]! : 1);
    if (KV_TENSOR.test(t.name)) {
      const cols = t.shape[1]!;
      const raw = await reader.read(t.file, t.offset, t.nbytes);
      const f32Bytes = t.type === 'f32' ? raw : addon.quantizeRows(raw, t.type as SourceEncoding, 'f32');
      const values = new Float32Array(f32Bytes.buffer.slice(f32Bytes.byteOffset, f32Bytes.byteOffset + f32Bytes.byteLength));
      let pooled = new Uint8Array(poolKvHeads(values, cols, headDim, kvBefore, kvHeads).buffer);
      if (headRows !== undefined && t.name.endsWith('attn_k.weight')) pooled = permuteHeadRows(pooled, cols * 4, headDim, headRows);
      await write(pooled);
    } else if (headRows !== undefined && Q_TENSOR.test(t.name)) {
      await write(permuteHeadRows(await reader.read(t.file, t.offset, t.nbytes), rowBytes, headDim, headRows));
    } else {
      const chunk = Math.max(1, Math.floor((16 << 20) / rowBytes)) * rowBytes;
      for (let at = 0; at < t.nbytes; at += chunk) await write(await reader.read(t.file, t.offset + at, Math.min(chunk, t.nbytes - at)));
    }
    doneBytes += t.nbytes;
    options.onProgress?.({ doneBytes, totalBytes, fraction: totalBytes > 0 ? doneBytes / totalBytes : 1, tensor: t.name });
  };

  const tensors: GgufTensorToWrite[] = sources.map((t) => ({ name: t.name, type: outType(t), shape: outShape(t), data: produce(t) }));
  let size: number;
  try {
    size = await writeGgufAtomically(output, metadata, tensors);
  } finally {
    await reader.close();
  }
  return {
    output,
    heads: nHeads,
    kvHeadsBefore: kvBefore,
    kvHeads,
    tensors: tensors.length,
    pooledTensors: sources.filter((t) => KV_TENSOR.test(t.name)).length,
    bytes: size,
  };
}
