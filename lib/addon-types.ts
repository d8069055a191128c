/*
 * The whole native surface of the addon, typed in one place. Nothing here is public API:
 * lib/index.ts exposes the model-level API built on it. (No internal-tag here: tsc's stripInternal
 * reads the tag in any comment before the first declaration, JSDoc or not, and drops that declaration.)
 */

/** Storage types of weights inside the engine (native/core/dtype.h). */
export type WeightDType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'int4' | 'nf4';

/**
 * Tensor encodings the native loader reads from files and keeps as they are (floats, Q8_0) or
 * repacks exactly (Q4_0): the ones the kernels' storage mirrors and the op tests encode.
 */
export type LoadableType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0';

/**
 * More ggml block types the native loader reads and converts at load (native/core/ggml_blocks.h;
 * which storage each becomes, and how exactly: the table in native/core/weight_loader.cc).
 */
export type ConvertedType = 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k' | 'nf4';

/** Every encoding a WeightSource may name. */
export type SourceEncoding = LoadableType | ConvertedType;

/** What quantizeRows writes: GGUF Q8_0 / Q4_0 blocks (ggml's reference rules), f16 or f32 values. */
export type QuantizeTarget = 'q8_0' | 'q4_0' | 'f16' | 'f32';

export type CpuKernelTier = 'auto' | 'reference' | 'generic' | 'avx2' | 'avx512';

export interface WeightSpec {
  readonly name: string;
  readonly dtype: WeightDType;
  /** [rows, cols]; 1-D weights are [1, n]. */
  readonly shape: readonly [number, number];
  /** int4 group size (32, 64 or 128); nf4 blocks are always 64. */
  readonly group?: number;
}

export interface BufferSpec {
  readonly name: string;
  /** f32 values per row (one row per token). */
  readonly width: number;
}

export interface KvCacheSpec {
  readonly name: string;
  readonly kvDim: number;
}

/** One op of the graph; buffer, weight and cache fields are names. Meanings: native/core/graph.h. */
export type NodeSpec =
  | { readonly op: 'embed'; readonly out: string; readonly weight: string }
  | { readonly op: 'rmsnorm'; readonly out: string; readonly a: string; readonly weight: string; readonly eps: number }
  | { readonly op: 'matmul'; readonly out: string; readonly a: string; readonly weight: string }
  | {
      readonly op: 'rope';
      readonly a: string;
      readonly nHeads: number;
      readonly headDim: number;
      readonly ropeDim: number;
      readonly theta: number;
      readonly freqScale: number;
      readonly pairing: 'interleaved' | 'half';
      /** Per-pair frequencies (angle = position x freqs[p]); default theta^(-2p/ropeDim) x freqScale. */
      readonly freqs?: readonly number[];
      /** Multiplies cos and sin (YaRN's attention factor); default 1. */
      readonly mscale?: number;
    }
  | { readonly op: 'kv_append'; readonly a: string; readonly b: string; readonly kv: string }
  | {
      readonly op: 'attention';
      readonly out: string;
      readonly a: string;
      readonly kv: string;
      readonly nHeads: number;
      readonly nKvHeads: number;
      readonly headDim: number;
    }
  | { readonly op: 'swiglu'; readonly out: string; readonly a: string; readonly b: string }
  | { readonly op: 'add'; readonly out: string; readonly a: string; readonly b: string }
  | { readonly op: 'last_row'; readonly out: string; readonly a: string };

export type OpName = NodeSpec['op'];

export interface GraphSpec {
  readonly weights: readonly WeightSpec[];
  readonly buffers: readonly BufferSpec[];
  readonly kvCaches: readonly KvCacheSpec[];
  readonly nodes: readonly NodeSpec[];
}

export interface EngineOptions {
  readonly device?: 'cpu' | 'cuda';
  /** CPU threads; 0 = every online CPU. */
  readonly threads?: number;
  readonly cpuKernels?: CpuKernelTier;
}

interface SourceBase {
  readonly weight: string;
  readonly type: SourceEncoding;
  readonly nbytes: number;
}
export type WeightSource =
  | (SourceBase & { readonly file: string; readonly offset: number })
  | (SourceBase & { readonly data: Uint8Array });

export interface SessionOptions {
  /** KV cache capacity in positions. */
  readonly maxSeqLen: number;
  /** Rows (tokens) per step. */
  readonly maxTokens: number;
  /** Rows kept after last_row when a step asks for every row (default 1). */
  readonly maxOutputRows?: number;
  /** 'bf16' on the CUDA backend only. */
  readonly kvType?: KvCacheType;
}

/** KV cache element types: f32 and f16 everywhere, bf16 on the CUDA backend. */
export type KvCacheType = 'f32' | 'f16' | 'bf16';

export interface StepIo {
  readonly buffer: string;
  readonly data: Float32Array;
}

export interface StepRequest {
  readonly tokens?: Int32Array;
  /** Position of the first row. */
  readonly pos: number;
  readonly inputs?: readonly StepIo[];
  readonly outputs?: readonly StepIo[];
  /** last_row keeps every row (for per-position outputs). */
  readonly allRows?: boolean;
}

export interface NativeSession {
  run(request: StepRequest): Promise<{ outputRows: number[] }>;
  /** Device bytes (CUDA) or host bytes (CPU) of the session: activations, KV caches, tables. */
  memoryInfo(): { bytes: number };
  /**
   * How the steps ran: steps completed; on CUDA, decode steps captured as a CUDA graph and
   * steps run by launching one (0 on the CPU).
   */
  stats(): { steps: number; graphCaptures: number; graphLaunches: number };
  dispose(): Promise<void>;
}

export interface NativeEngine {
  load(sources: readonly WeightSource[], onProgress?: (done: number, total: number) => void): Promise<void>;
  createSession(options: SessionOptions): NativeSession;
  /** Bytes of all weights, and of each by name. */
  memoryInfo(): { weightBytes: number; weights: Record<string, number>; backend: string };
  describe(): string;
  dispose(): Promise<void>;
}

export interface CudaDeviceInfo {
  readonly index: number;
  readonly name: string;
  readonly computeCapability: string;
  readonly totalMemory: number;
  readonly multiprocessors: number;
}

/**
 * Which build: 'cpu' (no CUDA code), 'cuda' (nvcc: kernels on a GPU) or 'simt' (the CUDA backend
 * and kernels compiled for the SIMT emulator: CUDA semantics on the CPU, for tests; never chosen
 * automatically).
 */
export type NativeVariant = 'cpu' | 'cuda' | 'simt';

export interface NativeBackendInfo {
  readonly variant: NativeVariant;
  readonly napiVersion: number;
  readonly cpu: {
    readonly model: string;
    readonly arch: string;
    readonly features: readonly string[];
    readonly onlineCpus: number;
    readonly kernelTiers: readonly CpuKernelTier[];
    readonly defaultTier: CpuKernelTier;
  };
  readonly cuda: {
    readonly compiled: boolean;
    readonly driverVersion?: number;
    readonly runtimeVersion?: number;
    readonly architectures?: readonly string[];
    readonly devices: readonly CudaDeviceInfo[];
    readonly error?: string;
    /** Whether this build can run models on the GPU (not only probe it). */
    readonly computeBackend: boolean;
  };
}

/** What cudaBench times: the two ceilings (copy bandwidth, mma.sync bf16 rate) or one op. */
export type CudaBenchSpec =
  | { readonly kind: 'copy'; readonly bytes: number; readonly repeats?: number; readonly device?: number }
  | { readonly kind: 'mma'; readonly iterations?: number; readonly blocksPerSm?: number; readonly repeats?: number; readonly device?: number }
  | {
      readonly kind: 'op';
      readonly op: 'matmul' | 'attention' | 'rmsnorm' | 'swiglu';
      readonly dtype?: WeightDType;
      readonly rows?: number;
      readonly cols?: number;
      readonly group?: number;
      readonly n?: number;
      readonly nHeads?: number;
      readonly nKvHeads?: number;
      readonly headDim?: number;
      readonly ctx?: number;
      readonly kvType?: KvCacheType;
      readonly flushL2?: boolean;
      readonly repeats?: number;
      readonly device?: number;
    };

/**
 * One CPU op on prepared buffers (native/core/op_bench.h), for the microbenchmarks. Sizes by op:
 * matmul/embed `rows` x `cols` weight of `dtype`; rmsnorm/swiglu/add/last_row `width`; rope,
 * kv_append, attention `nHeads`/`nKvHeads`/`headDim`, rows at positions ctx - n .. ctx - 1.
 * Buffers are seeded random unless `a`, `b` (f32) or `weight` (a source encoding) are given.
 */
export interface OpBenchSpec {
  readonly op: OpName;
  readonly dtype?: WeightDType;
  readonly group?: number;
  readonly rows?: number;
  readonly cols?: number;
  readonly width?: number;
  readonly n?: number;
  readonly nHeads?: number;
  readonly nKvHeads?: number;
  readonly headDim?: number;
  readonly ctx?: number;
  readonly kvType?: 'f32' | 'f16';
  readonly tier?: CpuKernelTier;
  readonly threads?: number;
  readonly seed?: number;
  /**
   * matmul / attention: replicate the weight (the KV cache) until the copies take this many
   * bytes and read the next copy each run, so runs read memory, not the cache (default 0: one copy).
   */
  readonly coldBytes?: number;
  readonly a?: Float32Array;
  readonly b?: Float32Array;
  readonly weight?: { readonly type: SourceEncoding; readonly data: Uint8Array };
}

export interface OpBenchHandle {
  /** What runs: kernel tier, op, dtype, threads. */
  readonly kernel: string;
  readonly threads: number;
  /** Copies of the weight / KV cache the runs rotate over (coldBytes). */
  readonly copies: number;
  /** Runs the op `iterations` times back to back (blocking); returns the elapsed seconds. */
  run(iterations?: number): number;
  /** A copy of the op's output (rope: the rotated input; kv_append: empty). */
  output(): Float32Array;
  dispose(): void;
}

export interface Addon {
  readonly Engine: new (spec: GraphSpec, options?: EngineOptions) => NativeEngine;
  backendInfo(): NativeBackendInfo;
  /**
   * The NVIDIA driver asked directly (dlopen libcuda.so.1; no CUDA toolkit needed), in every build
   * made since the driver probe exists (absent in older builds). Never throws. (The type is an
   * inline import: a first-line import would take the file's header comment and be stripped.)
   */
  cudaDriverProbe?: () => import('./cuda-archs.js').DriverProbeResult;
  /** Runs a tiny kernel on the device: "" when it worked, else the reason. */
  cudaProbe(device?: number): string;
  /** Free and total device memory (cudaMemGetInfo); throws ERR_UNSUPPORTED in the CPU build. */
  cudaMemoryInfo(device?: number): { free: number; total: number };
  /**
   * CUDA builds only (absent in the CPU build): native timing for bench/gpu, CUDA events around
   * each repeat (the L2 cache flushed before each op run). Synchronous; `bytes` and `flops` are
   * the work of one repeat. See native/cuda/bench.h.
   */
  cudaBench?: (spec: CudaBenchSpec) => { ms: number[]; bytes: number; flops: number; kernel: string };
  /** The 'simt' build only, for tests: a kernel traps, leaving the emulated context with a sticky error. */
  simtInjectFault?: () => string;
  /** Host memory bandwidth, best of `repeats` passes over `bytes` (a benchmark ceiling; blocks). */
  measureMemoryBandwidth(bytes?: number, threads?: number, repeats?: number): { readGBps: number; copyGBps: number; bytes: number; threads: number };
  /**
   * Converts whole blocks of `srcType` into `dstType` (blocks, or values for f16/f32): a flat
   * run of values, so a chunk of whole rows of any tensor. Synchronous; new memory is returned.
   * q8_0/q4_0 follow ggml's reference quantizers byte for byte; 'f32' gives ggml's dequantization.
   */
  quantizeRows(src: Uint8Array, srcType: SourceEncoding, dstType: QuantizeTarget): Uint8Array;
  /** One CPU op on prepared buffers, timed natively (synchronous; a benchmark helper). */
  benchOp(spec: OpBenchSpec): OpBenchHandle;
}
