/**
 * How much memory a model takes in the engine, computed from the weight plan and the graph
 * without loading anything (for `llama-cuda inspect`, and to refuse absurd loads early).
 *
 * The numbers follow the native allocations exactly:
 *   - weights: native/core/dtype.h weight_bytes() per weight (the CPU backend allocates exactly
 *     that; the CUDA backend stores the same layouts);
 *   - KV cache: per layer one key and one value buffer of contextLength x kvDim elements
 *     (f32: 4 bytes, f16/bf16: 2), each rounded up to 64 bytes (native/core/aligned_buffer.h);
 *   - activations: the graph's buffers, batchSize rows each (1 row for the buffers written after
 *     last_row: the logits of the last token), and one RoPE table per distinct RoPE config
 *     (batchSize x ropeDim/2 cos/sin pairs), each rounded up to 64 bytes
 *     (native/cpu/backend_cpu.cc CpuSession::init);
 *   - CPU kernel scratch: the SIMD and generic tiers' fast_tier_scratch_bytes
 *     (native/cpu/parallel.h); the reference tier uses none.
 *   - On a GPU (native/cuda/backend_cuda.cu CudaSession::init), one arena per session: the same
 *     buffers (each rounded up to 256 bytes), RoPE tables for every position of the context
 *     (contextLength x ropeDim/2 cos/sin pairs: built once, so a replayed CUDA graph reads any
 *     position), the kernels' workspace (the larger of matmul's and attention's, the formulas of
 *     native/cuda/matmul.cu and attention.cu), the step's tokens and position, and the KV caches.
 */
import type { GraphSpec, NodeSpec, WeightDType, WeightSpec } from '../addon-types.js';
import { LlamaCudaError } from '../errors.js';
import { type LlamaConfig, kvDim } from './config.js';

/** Q8_0 scale group (native/core/dtype.h kQ8Group). */
const Q8_GROUP = 32;

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

/**
 * Bytes of a [rows][cols] weight stored as `dtype` (native/core/dtype.h weight_bytes):
 * f32 4 per element; f16/bf16 2; q8_0 1 per code + an f16 scale per 32; int4 half a byte per
 * code + an f16 {scale, min} pair per group; nf4 half a byte per code + an f32 scale per 64.
 */
export function weightBytes(dtype: WeightDType, rows: number, cols: number, group = 32): number {
  const n = rows * cols;
  switch (dtype) {
    case 'f32': return n * 4;
    case 'f16':
    case 'bf16': return n * 2;
    case 'q8_0': return n + rows * Math.floor(cols / Q8_GROUP) * 2;
    case 'int4': return n / 2 + rows * Math.floor(cols / group) * 4;
    case 'nf4': return n / 2 + rows * Math.floor(cols / 64) * 4; // f32 absmax per 64-block
    default: throw new LlamaCudaError('ERR_INVALID_ARG', `weightBytes: unknown dtype ${String(dtype)}`);
  }
}

/** Engine bytes of one planned weight. */
export function weightSpecBytes(spec: WeightSpec): number {
  return weightBytes(spec.dtype, spec.shape[0], spec.shape[1], spec.group);
}

/** Engine bytes of every planned weight. */
export function totalWeightBytes(specs: readonly WeightSpec[]): number {
  return specs.reduce((sum, s) => sum + weightSpecBytes(s), 0);
}

/** KV cache bytes of one sequence: keys and values of every layer at `contextLength` positions. */
export function kvCacheBytes(config: LlamaConfig, contextLength: number, elementBytes: 2 | 4): number {
  return config.nLayers * 2 * align64(contextLength * kvDim(config) * elementBytes);
}

/** The shape of a session (a sequence), as LlamaModel creates them. */
export interface SessionShape {
  /** KV positions. */
  readonly contextLength: number;
  /** Tokens per native step (rows of each activation buffer). */
  readonly batchSize: number;
  /** Rows kept after last_row (1, or batchSize for a sequence with allLogits). */
  readonly outputRows?: number;
}

function nodeOut(n: NodeSpec): string | undefined {
  return 'out' in n ? n.out : undefined;
}

/** Buffers written only after last_row (native/core/graph.cc buffers_after_last_row). */
export function buffersAfterLastRow(graph: GraphSpec): Set<string> {
  const writes = new Map<string, number>();
  const lateWrites = new Map<string, number>();
  const late = new Set<string>();
  for (const n of graph.nodes) {
    const out = nodeOut(n);
    if (out === undefined) continue;
    let isLate = n.op === 'last_row';
    if (!isLate && n.op !== 'embed') {
      const a = 'a' in n ? n.a : undefined;
      const b = 'b' in n && n.op !== 'kv_append' ? n.b : undefined;
      isLate = a !== undefined && late.has(a) && (b === undefined || late.has(b));
    }
    writes.set(out, (writes.get(out) ?? 0) + 1);
    if (isLate) lateWrites.set(out, (lateWrites.get(out) ?? 0) + 1);
    if (writes.get(out) === (lateWrites.get(out) ?? 0)) late.add(out);
    else late.delete(out);
  }
  return late;
}

/** Frequencies per rotated pair of a rope node (native/core/graph.cc rope_frequencies). */
function ropeFrequencies(n: Extract<NodeSpec, { op: 'rope' }>): readonly number[] {
  if (n.freqs !== undefined && n.freqs.length > 0) return n.freqs;
  return Array.from({ length: Math.floor(n.ropeDim / 2) }, (_, p) => Math.pow(n.theta, (-2 * p) / n.ropeDim) * n.freqScale);
}

export interface ActivationBytes {
  /** The graph's activation buffers. */
  readonly buffers: number;
  /** RoPE cos/sin tables. */
  readonly ropeTables: number;
}

/** Activation memory of one session of this graph. */
export function activationBytes(graph: GraphSpec, shape: SessionShape): ActivationBytes {
  const late = buffersAfterLastRow(graph);
  const outputRows = Math.min(shape.outputRows ?? 1, shape.batchSize);
  let buffers = 0;
  for (const b of graph.buffers) buffers += align64((late.has(b.name) ? outputRows : shape.batchSize) * b.width * 4);
  const tables = new Map<string, number>();
  for (const n of graph.nodes) {
    if (n.op !== 'rope') continue;
    const freqs = ropeFrequencies(n);
    tables.set(`${freqs.join(',')}|${n.mscale ?? 1}`, freqs.length);
  }
  let ropeTables = 0;
  for (const pairs of tables.values()) ropeTables += align64(shape.batchSize * pairs * 2 * 4);
  return { buffers, ropeTables };
}

const align256 = (n: number): number => Math.ceil(n / 256) * 256;

/**
 * The kernels' workspace of one CUDA session (matmul_workspace_bytes / attention_workspace_bytes
 * of native/cuda/matmul.cu and attention.cu): split-K partials (at most 16 MiB), and for prompt
 * chunks of more than 8 tokens the bf16 copy of the activations and per-tile sums of the GEMM;
 * attention's split partials for decode. Shared by the nodes, which run one after another.
 */
export function cudaWorkspaceBytes(graph: GraphSpec, shape: SessionShape): number {
  const n = shape.batchSize;
  let maxRows = 0;
  let maxCols = 0;
  const weights = new Map(graph.weights.map((w) => [w.name, w]));
  let attention = 0;
  for (const node of graph.nodes) {
    if (node.op === 'matmul') {
      const w = weights.get(node.weight);
      if (w !== undefined) {
        maxRows = Math.max(maxRows, w.shape[0]);
        maxCols = Math.max(maxCols, w.shape[1]);
      }
    } else if (node.op === 'attention') {
      const cap = shape.contextLength;
      const split = Math.max(128, Math.ceil(Math.ceil(cap / 32) / 32) * 32);
      const splits = Math.ceil(cap / split);
      if (splits > 1) attention = Math.max(attention, 4 * Math.min(n, 8) * node.nHeads * splits * (node.headDim + 2));
    }
  }
  let matmul = 0;
  if (maxRows > 0) {
    matmul = align256(4 * Math.min(2 ** 22, maxRows * Math.min(512, 32 * n)));
    if (n > 8) {
      const nPad = Math.ceil(n / 128) * 128;
      const kPad = Math.ceil(maxCols / 32) * 32;
      matmul += align256(nPad * kPad * 2) + align256((kPad / 32) * nPad * 4);
    }
  }
  return Math.max(matmul, attention);
}

/** The device arena of one CUDA session without its KV caches: buffers, RoPE tables, workspace, tokens. */
export function cudaActivationBytes(graph: GraphSpec, shape: SessionShape): number {
  const late = buffersAfterLastRow(graph);
  const outputRows = Math.min(shape.outputRows ?? 1, shape.batchSize);
  let bytes = 0;
  for (const b of graph.buffers) bytes += align256((late.has(b.name) ? outputRows : shape.batchSize) * b.width * 4);
  const tables = new Map<string, number>();
  for (const n of graph.nodes) {
    if (n.op === 'rope') tables.set(`${ropeFrequencies(n).join(',')}|${n.mscale ?? 1}`, ropeFrequencies(n).length);
  }
  for (const pairs of tables.values()) bytes += align256(shape.contextLength * pairs * 2 * 4);
  return bytes + align256(cudaWorkspaceBytes(graph, shape)) + align256(shape.batchSize * 4) + 256;
}

/**
 * CPU kernel scratch of one session (native/cpu/parallel.h fast_tier_scratch_bytes, used by the
 * generic, AVX2 and AVX-512 tiers; 'reference' uses none): the largest of a dequantized weight
 * row per thread, the quantized activation rows with a repacked weight panel per thread, and
 * per-thread attention scores.
 */
export function cpuScratchBytes(graph: GraphSpec, shape: SessionShape, threads: number): number {
  const nth = Math.max(1, threads);
  const maxCols = graph.weights.reduce((m, w) => Math.max(m, w.shape[1]), 1);
  let maxHeads = 1;
  for (const n of graph.nodes) if ('nHeads' in n) maxHeads = Math.max(maxHeads, n.nHeads);
  const matmulGeneric = nth * align64(maxCols * 4);
  const qrow = align64(maxCols + 12 * Math.floor(maxCols / 32));
  // the quantized activation rows, then one repacked 16-row weight panel per thread (AVX-512 GEMM)
  const gemmPanel = align64(16 * maxCols) + 2 * align64(64 * Math.floor(maxCols / 32));
  const matmulQuant = align64(shape.batchSize * qrow) + nth * gemmPanel;
  const attention = nth * align64(Math.min(maxHeads, 8) * shape.contextLength * 4);
  return align64(Math.max(matmulGeneric, matmulQuant, attention) + 64);
}

export interface DeviceMemory {
  readonly weights: number;
  readonly kvCache: number;
  readonly activations: number;
  /** CPU only: kernel scratch. */
  readonly scratch: number;
  readonly total: number;
}

export interface MemoryEstimate {
  readonly contextLength: number;
  readonly batchSize: number;
  /** Weight bytes in the engine (the same on CPU and CUDA: same layouts). */
  readonly weights: number;
  /** KV cache of one sequence at contextLength. */
  readonly kvCacheF16: number;
  readonly kvCacheF32: number;
  /** Activation buffers and RoPE tables of one sequence. */
  readonly activations: number;
  /** On the CPU backend: the f16 KV cache (the default) and kernel scratch for `threads`. */
  readonly cpu: DeviceMemory;
  /**
   * On a GPU: KV cache in 2-byte elements (bf16/f16); activations are the session's device arena
   * without its KV caches (buffers, RoPE tables for the whole context, kernel workspace); no CPU scratch.
   */
  readonly cuda: DeviceMemory;
}

/** Memory of a model with one sequence of `shape`. */
export function estimateMemory(config: LlamaConfig, graph: GraphSpec, shape: SessionShape, threads: number): MemoryEstimate {
  const weights = totalWeightBytes(graph.weights);
  const kvCacheF16 = kvCacheBytes(config, shape.contextLength, 2);
  const kvCacheF32 = kvCacheBytes(config, shape.contextLength, 4);
  const act = activationBytes(graph, shape);
  const activations = act.buffers + act.ropeTables;
  const scratch = cpuScratchBytes(graph, shape, threads);
  const cudaActivations = cudaActivationBytes(graph, shape);
  return {
    contextLength: shape.contextLength,
    batchSize: shape.batchSize,
    weights,
    kvCacheF16,
    kvCacheF32,
    activations,
    cpu: { weights, kvCache: kvCacheF16, activations, scratch, total: weights + kvCacheF16 + activations + scratch },
    cuda: { weights, kvCache: kvCacheF16, activations: cudaActivations, scratch: 0, total: weights + kvCacheF16 + cudaActivations },
  };
}
