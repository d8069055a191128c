/**
 * Tiny synthetic Llama GGUF files for tests: a few layers of width 32..64 whose weights use
 * several storage types (f32, f16, bf16, Q8_0, Q4_0), with a real vocabulary copied from a
 * GGUF's tokenizer metadata (e.g. stories260K's 512 pieces). Built in memory (`tinyLlamaImage`)
 * so tests can mutate the bytes, or written with lib/formats/gguf-writer.ts.
 */
import { type GgufEntry, GgufValueType, readGguf } from '../../lib/formats/gguf.js';
import { type GgufTensorToWrite, encodeGgufHeader } from '../../lib/formats/gguf-writer.js';
import type { SourceType } from '../../lib/formats/tensor-info.js';
import { numberToBf16 } from '../reference/float16.js';
import { encodeF16, quantizeQ4_0, quantizeQ8_0 } from '../reference/quant.js';
import { Rng } from './rng.js';

export type TinyTensorRole = 'embedding' | 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down' | 'output' | 'norm';

export interface TinyLlamaOptions {
  readonly dim?: number;
  readonly hiddenDim?: number;
  readonly nLayers?: number;
  readonly nHeads?: number;
  readonly nKvHeads?: number;
  readonly contextLength?: number;
  /** Storage type per role (default: a mix of every loadable type). */
  readonly types?: Partial<Record<TinyTensorRole, SourceType>>;
  /** Write output.weight (default true); false ties the classifier to the embedding. */
  readonly output?: boolean;
  readonly seed?: number;
}

export const DEFAULT_TINY_TYPES: Readonly<Record<TinyTensorRole, SourceType>> = {
  embedding: 'q8_0',
  q: 'f16',
  k: 'q4_0',
  v: 'q8_0',
  o: 'bf16',
  gate: 'f32',
  up: 'q4_0',
  down: 'q8_0',
  output: 'f16',
  norm: 'f32',
};

/** The `tokenizer.ggml.*` entries of a GGUF file. */
export async function vocabMetadataOf(file: string): Promise<Map<string, GgufEntry>> {
  const g = await readGguf(file);
  return new Map([...g.metadata].filter(([key]) => key.startsWith('tokenizer.ggml.')));
}

function encode(type: SourceType, values: Float32Array): Uint8Array {
  switch (type) {
    case 'f32': return new Uint8Array(values.buffer.slice(0));
    case 'f16': return encodeF16(values);
    case 'bf16': {
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = numberToBf16(values[i]!);
      return new Uint8Array(out.buffer);
    }
    case 'q8_0': return quantizeQ8_0(values);
    case 'q4_0': return quantizeQ4_0(values);
    default: throw new Error(`tiny-gguf: cannot encode ${type}`);
  }
}

export interface TinyLlama {
  readonly metadata: Map<string, GgufEntry>;
  readonly tensors: GgufTensorToWrite[];
  /** The shape it was built with. */
  readonly dim: number;
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly vocabSize: number;
}

export function tinyLlama(vocab: ReadonlyMap<string, GgufEntry>, options: TinyLlamaOptions = {}): TinyLlama {
  const dim = options.dim ?? 32;
  const hiddenDim = options.hiddenDim ?? 64;
  const nLayers = options.nLayers ?? 2;
  const nHeads = options.nHeads ?? 4;
  const nKvHeads = options.nKvHeads ?? 2;
  const headDim = dim / nHeads;
  const kvDim = headDim * nKvHeads;
  const types = { ...DEFAULT_TINY_TYPES, ...options.types };
  const vocabSize = (vocab.get('tokenizer.ggml.tokens')?.value as string[] | undefined)?.length;
  if (vocabSize === undefined) throw new Error('tiny-gguf: the vocabulary metadata has no tokenizer.ggml.tokens');
  const rng = new Rng(options.seed ?? 7);
  const tensors: GgufTensorToWrite[] = [];
  const matrix = (name: string, role: TinyTensorRole, rows: number, cols: number): void => {
    const scale = 1 / Math.sqrt(cols);
    const values = new Float32Array(rows * cols).map(() => rng.uniform(-scale, scale) * 1.7);
    tensors.push({ name, type: types[role], shape: [rows, cols], data: encode(types[role], values) });
  };
  const norm = (name: string): void => {
    const values = new Float32Array(dim).map(() => 1 + rng.uniform(-0.1, 0.1));
    tensors.push({ name, type: types.norm, shape: [dim], data: encode(types.norm, values) });
  };
  matrix('token_embd.weight', 'embedding', vocabSize, dim);
  for (let l = 0; l < nLayers; l++) {
    const p = `blk.${l}.`;
    norm(`${p}attn_norm.weight`);
    matrix(`${p}attn_q.weight`, 'q', dim, dim);
    matrix(`${p}attn_k.weight`, 'k', kvDim, dim);
    matrix(`${p}attn_v.weight`, 'v', kvDim, dim);
    matrix(`${p}attn_output.weight`, 'o', dim, dim);
    norm(`${p}ffn_norm.weight`);
    matrix(`${p}ffn_gate.weight`, 'gate', hiddenDim, dim);
    matrix(`${p}ffn_up.weight`, 'up', hiddenDim, dim);
    matrix(`${p}ffn_down.weight`, 'down', dim, hiddenDim);
  }
  norm('output_norm.weight');
  if (options.output ?? true) matrix('output.weight', 'output', vocabSize, dim);

  const u32 = (value: number): GgufEntry => ({ type: GgufValueType.UINT32, value });
  const metadata = new Map<string, GgufEntry>([
    ['general.architecture', { type: GgufValueType.STRING, value: 'llama' }],
    ['general.name', { type: GgufValueType.STRING, value: 'tiny test llama' }],
    ['llama.context_length', u32(options.contextLength ?? 64)],
    ['llama.embedding_length', u32(dim)],
    ['llama.block_count', u32(nLayers)],
    ['llama.feed_forward_length', u32(hiddenDim)],
    ['llama.attention.head_count', u32(nHeads)],
    ['llama.attention.head_count_kv', u32(nKvHeads)],
    ['llama.rope.dimension_count', u32(headDim)],
    ['llama.rope.freq_base', { type: GgufValueType.FLOAT32, value: 10000 }],
    ['llama.attention.layer_norm_rms_epsilon', { type: GgufValueType.FLOAT32, value: 1e-5 }],
    ...vocab,
  ]);
  return { metadata, tensors, dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize };
}

/** The bytes of a GGUF file holding these tensors (their data must be Uint8Arrays). */
export function ggufImage(metadata: ReadonlyMap<string, GgufEntry>, tensors: readonly GgufTensorToWrite[]): Uint8Array {
  const { header, offsets, sizes } = encodeGgufHeader(metadata, tensors);
  const last = tensors.length - 1;
  const total = header.length + (last < 0 ? 0 : offsets[last]! + sizes[last]!);
  const bytes = new Uint8Array(total);
  bytes.set(header);
  tensors.forEach((t, i) => {
    if (!(t.data instanceof Uint8Array)) throw new Error('ggufImage: tensor data must be bytes');
    bytes.set(t.data, header.length + offsets[i]!);
  });
  return bytes;
}
