/**
 * quantizeModelFile(): any model file the library reads (GGUF, llama2.c .bin, and whatever else
 * openModelFile opens) → a GGUF with Q4_0 or Q8_0 weights, the file `llama-quantize --pure`
 * would write:
 *
 *   metadata   from a GGUF source: all of it, copied, plus the llama.* keys it left to their
 *              defaults (rope.freq_base, head_count_kv, ...); otherwise general.*, the llama.*
 *              hyper-parameters and the tokenizer (tokenizer.ggml.*) rebuilt from the config and
 *              the tokenizer file. general.file_type = 2 (Q4_0) or 7 (Q8_0),
 *              general.quantization_version = 2.
 *   tensors    GGUF: the source's tensors in its order; otherwise the Llama tensors in the order
 *              llama.cpp's llama2.c converter writes them (token_embd, output_norm, output, then
 *              per layer attn_q, attn_k, attn_v, attn_output, attn_norm, ffn_gate, ffn_down,
 *              ffn_up, ffn_norm). Matrices whose rows fill 32-blocks → the requested type
 *              (ggml's reference quantizers, byte for byte; a tensor already of that type is
 *              copied); other matrices stay f32 or f16 (bf16 ones become f32, exactly);
 *              1-D tensors (norms) → f32.
 *
 * Sources whose RoPE pairs are the halves of each head (Hugging Face) get their q/k rows
 * permuted into GGUF's interleaved pairs, as llama.cpp's HF converter does.
 *
 * Streams: each tensor is read, converted (natively: addon.quantizeRows) and written a chunk of
 * rows at a time, so memory stays at a few chunks whatever the model's size. The output is
 * written beside the target and renamed into place when complete.
 */
import { type FileHandle, open } from 'node:fs/promises';
import * as path from 'node:path';

import type { Addon, QuantizeTarget, SourceEncoding } from './addon-types.js';
import { LlamaCudaError } from './errors.js';
import { type GgufEntry, GgufValueType } from './formats/gguf.js';
import { type GgufTensorToWrite, writeGgufAtomically } from './formats/gguf-writer.js';
import { type ModelFile, openModelFile } from './formats/model-file.js';
import { type SourceType, type TensorInfo, tensorBytes } from './formats/tensor-info.js';
import type { LlamaConfig } from './model/config.js';
import { planWeights } from './model/weights.js';
import { loadAddon } from './native.js';
import type { Tokenizer } from './tokenizer/index.js';
import { resolveTokenizer } from './tokenizer/resolve.js';

export type QuantizeFileType = 'q4_0' | 'q8_0';

/** llama.cpp's llama_ftype values for the two types (LLAMA_FTYPE_MOSTLY_Q4_0 / _Q8_0). */
export const GGUF_FILE_TYPE: Readonly<Record<QuantizeFileType, number>> = { q4_0: 2, q8_0: 7 };
/** GGML_QNT_VERSION: the block layouts these files use. */
export const GGML_QUANTIZATION_VERSION = 2;

export interface QuantizeProgress {
  /** Source bytes read so far, of totalBytes. */
  readonly doneBytes: number;
  readonly totalBytes: number;
  readonly fraction: number;
  /** The tensor being written. */
  readonly tensor: string;
}

export interface QuantizeFileOptions {
  readonly type: QuantizeFileType;
  /** Tokenizer file for sources without one (a llama2.c checkpoint: its tokenizer.bin). */
  readonly tokenizer?: string;
  readonly onProgress?: (progress: QuantizeProgress) => void;
}

export interface QuantizedTensor {
  readonly name: string;
  readonly from: SourceType;
  readonly to: SourceType;
  /** Outer-first. */
  readonly shape: readonly number[];
}

export interface QuantizeFileResult {
  readonly output: string;
  readonly type: QuantizeFileType;
  readonly tensors: readonly QuantizedTensor[];
  /** Bytes of the output file. */
  readonly bytes: number;
}

/** Source bytes converted per chunk. */
const CHUNK_BYTES = 16 << 20;
const CONVERTIBLE: readonly SourceType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k', 'q8_k'];

/** The Llama tensors in llama.cpp's llama2.c-converter order (GGUF names). */
function canonicalOrder(config: LlamaConfig): string[] {
  const names = ['token_embd.weight', 'output_norm.weight', 'output.weight'];
  for (let l = 0; l < config.nLayers; l++) {
    for (const t of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_norm', 'ffn_gate', 'ffn_down', 'ffn_up', 'ffn_norm']) {
      names.push(`blk.${l}.${t}.weight`);
    }
  }
  return names;
}

/** The type a tensor is written as. */
export function outputType(t: Pick<TensorInfo, 'type' | 'shape'>, target: QuantizeFileType): SourceType {
  if (!CONVERTIBLE.includes(t.type)) return t.type;
  if (t.shape.length <= 1) return 'f32';
  const inner = t.shape[t.shape.length - 1]!;
  if (inner % 32 === 0) return target;
  // rows that fit no block: f32 and f16 stay, bf16 becomes f32 (exact, and read everywhere)
  return t.type === 'f16' ? 'f16' : 'f32';
}

const u32 = (value: number): GgufEntry => ({ type: GgufValueType.UINT32, value });
const f32 = (value: number): GgufEntry => ({ type: GgufValueType.FLOAT32, value });
const str = (value: string): GgufEntry => ({ type: GgufValueType.STRING, value });

/** tokenizer.ggml.* for a SentencePiece BPE vocabulary. */
export function tokenizerMetadata(tokenizer: Tokenizer): Map<string, GgufEntry> {
  const v = tokenizer.vocab;
  return new Map<string, GgufEntry>([
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: [...v.pieces] }],
    ['tokenizer.ggml.scores', { type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: Float32Array.from(v.scores) }],
    ['tokenizer.ggml.token_type', { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: Int32Array.from(v.types) }],
    ['tokenizer.ggml.bos_token_id', u32(v.bos)],
    ['tokenizer.ggml.eos_token_id', u32(v.eos)],
    ['tokenizer.ggml.unknown_token_id', u32(v.unk)],
    ['tokenizer.ggml.add_bos_token', { type: GgufValueType.BOOL, value: v.addBos }],
    ['tokenizer.ggml.add_eos_token', { type: GgufValueType.BOOL, value: v.addEos }],
    ['tokenizer.ggml.add_space_prefix', { type: GgufValueType.BOOL, value: v.addDummyPrefix }],
  ]);
}

/** general.* and llama.* keys for a config (the keys configFromGguf reads back). */
export function llamaMetadata(config: LlamaConfig, name: string, type: QuantizeFileType): Map<string, GgufEntry> {
  const m = new Map<string, GgufEntry>([
    ['general.architecture', str('llama')],
    ['general.name', str(name)],
    ['general.file_type', u32(GGUF_FILE_TYPE[type])],
    ['general.quantization_version', u32(GGML_QUANTIZATION_VERSION)],
    ['llama.vocab_size', u32(config.vocabSize)],
    ['llama.context_length', u32(config.contextLength)],
    ['llama.embedding_length', u32(config.dim)],
    ['llama.block_count', u32(config.nLayers)],
    ['llama.feed_forward_length', u32(config.hiddenDim)],
    ['llama.attention.head_count', u32(config.nHeads)],
    ['llama.attention.head_count_kv', u32(config.nKvHeads)],
    ['llama.rope.dimension_count', u32(config.ropeDim)],
    ['llama.rope.freq_base', f32(config.ropeTheta)],
    ['llama.attention.layer_norm_rms_epsilon', f32(config.normEps)],
  ]);
  if (config.ropeFreqScale !== 1) {
    m.set('llama.rope.scaling.type', str('linear'));
    m.set('llama.rope.scaling.factor', f32(1 / config.ropeFreqScale));
  }
  return m;
}

function setFileType(metadata: Map<string, GgufEntry>, type: QuantizeFileType): void {
  metadata.set('general.file_type', u32(GGUF_FILE_TYPE[type]));
  metadata.set('general.quantization_version', u32(GGML_QUANTIZATION_VERSION));
}

/** A GGUF source's metadata with the new file type, and every llama.* key the reader defaulted written out. */
function copiedMetadata(file: ModelFile & { gguf: NonNullable<ModelFile['gguf']> }, type: QuantizeFileType): Map<string, GgufEntry> {
  const metadata = new Map(file.gguf.metadata);
  setFileType(metadata, type);
  for (const [k, e] of llamaMetadata(file.config, file.name, type)) if (!metadata.has(k)) metadata.set(k, e);
  return metadata;
}

async function buildMetadata(file: ModelFile, options: QuantizeFileOptions): Promise<Map<string, GgufEntry>> {
  if (file.gguf !== undefined && options.tokenizer === undefined) return copiedMetadata({ ...file, gguf: file.gguf }, options.type);
  const tokenizer = await resolveTokenizer(file, options.tokenizer);
  if (tokenizer.vocabSize !== file.config.vocabSize) {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${file.config.vocabSize}`);
  }
  if (file.gguf !== undefined) {
    // a GGUF with a tokenizer named by the caller: its metadata, that tokenizer
    const metadata = new Map([...copiedMetadata({ ...file, gguf: file.gguf }, options.type)].filter(([k]) => !k.startsWith('tokenizer.')));
    for (const [k, e] of tokenizerMetadata(tokenizer)) metadata.set(k, e);
    return metadata;
  }
  const metadata = llamaMetadata(file.config, file.name, options.type);
  for (const [k, e] of tokenizerMetadata(tokenizer)) metadata.set(k, e);
  return metadata;
}

/**
 * Row order of a q/k matrix whose RoPE pairs are (p, p + ropeDim/2) in each head → pairs
 * (2p, 2p + 1): new row 2p + s of a head = old row s·ropeDim/2 + p; rows past ropeDim stay.
 * Returns, for each new row of one head, the old row it comes from.
 */
export function halfToInterleavedRows(headDim: number, ropeDim: number): Int32Array {
  const from = new Int32Array(headDim);
  for (let r = 0; r < headDim; r++) from[r] = r;
  for (let p = 0; p < ropeDim / 2; p++) {
    from[2 * p] = p;
    from[2 * p + 1] = ropeDim / 2 + p;
  }
  return from;
}

/** Tensors of the output, in order, with the source each comes from. */
export function tensorList(file: ModelFile): TensorInfo[] {
  if (file.gguf !== undefined) return [...file.tensors];
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  return canonicalOrder(file.config).flatMap((name) => {
    const t = byName.get(name);
    return t === undefined ? [] : [t];
  });
}

/** Reads byte ranges of tensor files, one handle per file. */
export class SourceReader {
  private readonly handles = new Map<string, Promise<FileHandle>>();

  async read(file: string, position: number, length: number): Promise<Uint8Array> {
    let h = this.handles.get(file);
    if (h === undefined) {
      h = open(file, 'r');
      this.handles.set(file, h);
    }
    const handle = await h;
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(buf, done, length - done, position + done);
      if (bytesRead === 0) throw new LlamaCudaError('ERR_MODEL_FORMAT', `${path.basename(file)} is truncated: it ended at byte ${position + done}`);
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map(async (h) => (await h.catch(() => undefined))?.close()));
  }
}

export async function quantizeModelFile(input: string, output: string, options: QuantizeFileOptions): Promise<QuantizeFileResult> {
  const type = options.type;
  if (type !== 'q4_0' && type !== 'q8_0') throw new LlamaCudaError('ERR_INVALID_ARG', `type must be q4_0 or q8_0, got ${String(type)}`);
  if (typeof output !== 'string' || output === '') throw new LlamaCudaError('ERR_INVALID_ARG', 'the output path must be a non-empty string');
  if (path.resolve(input) === path.resolve(output)) throw new LlamaCudaError('ERR_INVALID_ARG', `the output ${output} is the input file`);

  const file = await openModelFile(input);
  // the source must be a model this library loads: this names a missing tensor, a wrong shape
  // or an unsupported type (with the tensor) before any writing
  planWeights(file.config, file.tensors, path.basename(file.path));
  const { config } = file;
  const permute = config.ropePairing === 'half';
  const headRows = permute ? halfToInterleavedRows(config.headDim, config.ropeDim) : undefined;
  const metadata = await buildMetadata(file, options);
  const addon: Addon = loadAddon('cpu').addon;

  const sources = tensorList(file);
  const plan: QuantizedTensor[] = sources.map((t) => ({ name: t.name, from: t.type, to: outputType(t, type), shape: t.shape }));
  const totalBytes = sources.reduce((n, t) => n + t.nbytes, 0);
  let doneBytes = 0;
  const reader = new SourceReader();

  const produce = (t: TensorInfo, to: SourceType): GgufTensorToWrite['data'] => async (write) => {
    const inner = t.shape[t.shape.length - 1] ?? 1;
    const rowBytes = tensorBytes(t.type, [inner]) as number;
    const rows = t.nbytes / rowBytes;
    const isQk = headRows !== undefined && /^blk\.\d+\.attn_[qk]\.weight$/.test(t.name);
    const unit = isQk ? config.headDim : 1; // a chunk holds whole heads when rows move
    const chunkRows = Math.max(unit, Math.floor(CHUNK_BYTES / rowBytes / unit) * unit);
    for (let r0 = 0; r0 < rows; r0 += chunkRows) {
      const n = Math.min(chunkRows, rows - r0);
      let bytes = await reader.read(t.file, t.offset + r0 * rowBytes, n * rowBytes);
      if (isQk) {
        const moved = new Uint8Array(bytes.length);
        for (let r = 0; r < n; r++) {
          const head = Math.floor(r / config.headDim);
          const src = head * config.headDim + headRows![r % config.headDim]!;
          moved.set(bytes.subarray(src * rowBytes, (src + 1) * rowBytes), r * rowBytes);
        }
        bytes = moved;
      }
      await write(to === t.type ? bytes : addon.quantizeRows(bytes, t.type as SourceEncoding, to as QuantizeTarget));
      doneBytes += n * rowBytes;
      options.onProgress?.({ doneBytes, totalBytes, fraction: totalBytes > 0 ? doneBytes / totalBytes : 1, tensor: t.name });
    }
  };

  const tensors: GgufTensorToWrite[] = sources.map((t, i) => ({ name: t.name, type: plan[i]!.to, shape: t.shape, data: produce(t, plan[i]!.to) }));
  let size: number;
  try {
    size = await writeGgufAtomically(output, metadata, tensors);
  } finally {
    await reader.close();
  }
  return { output, type, tensors: plan, bytes: size };
}
