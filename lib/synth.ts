/**
 * Synthetic Llama models: GGUF files with random weights in the exact shapes of published
 * models (for benchmarks: the speed of a 7B-shaped model does not depend on what its weights
 * say). Weights are drawn with a per-matrix scale of about 1/sqrt(fan_in), so activations stay
 * finite through every layer; norms are 1. The vocabulary is a real one, copied from a
 * tokenizer file, so prompts tokenize as they would on the real model.
 *
 * Random bytes go straight into the target encoding (no f32 detour): Q4_0 and Q8_0 blocks get
 * uniform codes and a fixed scale, F16 and BF16 values get a random sign, mantissa and a small
 * range of exponents. Deterministic for a given seed.
 */
import { LlamaCudaError } from './errors.js';
import { type GgufEntry, GgufValueType } from './formats/gguf.js';
import { type GgufTensorToWrite, writeGguf } from './formats/gguf-writer.js';
import type { Tokenizer } from './tokenizer/index.js';

export interface SynthShape {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly contextLength: number;
  readonly ropeTheta: number;
}

/** Shapes of published models (their config.json / params.json). */
export const SYNTH_PRESETS = {
  'llama2-7b': { dim: 4096, hiddenDim: 11008, nLayers: 32, nHeads: 32, nKvHeads: 32, contextLength: 4096, ropeTheta: 10000 },
  'llama2-13b': { dim: 5120, hiddenDim: 13824, nLayers: 40, nHeads: 40, nKvHeads: 40, contextLength: 4096, ropeTheta: 10000 },
  'llama2-70b': { dim: 8192, hiddenDim: 28672, nLayers: 80, nHeads: 64, nKvHeads: 8, contextLength: 4096, ropeTheta: 10000 },
  'tinyllama-1.1b': { dim: 2048, hiddenDim: 5632, nLayers: 22, nHeads: 32, nKvHeads: 4, contextLength: 2048, ropeTheta: 10000 },
} as const satisfies Record<string, SynthShape>;

export type SynthPreset = keyof typeof SYNTH_PRESETS;
export type SynthType = 'f16' | 'bf16' | 'q8_0' | 'q4_0';

export interface SynthOptions {
  readonly preset: SynthPreset;
  readonly type: SynthType;
  /** Fewer layers than the preset (same width): a fraction of the size, same per-layer speed. */
  readonly layers?: number;
  readonly out: string;
  readonly tokenizer: Tokenizer;
  readonly seed?: number;
}

/** xorshift128: fast 32-bit random words. */
class RandomWords {
  private x: number;
  private y = 362436069;
  private z = 521288629;
  private w = 88675123;
  constructor(seed: number) {
    this.x = (seed >>> 0) || 123456789;
    for (let i = 0; i < 16; i++) this.next();
  }
  next(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.w;
  }
  fill(bytes: Uint8Array): void {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    for (let i = words.length * 4; i < bytes.length; i++) bytes[i] = this.next() & 0xff;
  }
}

function f16Bits(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0]!;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  return ((b >>> 16) & 0x8000) | (Math.max(1, Math.min(30, exp)) << 10) | ((b >>> 13) & 0x3ff);
}

const CHUNK_ROWS = 256;

/** Writes rows x cols of `type` in chunks: random codes, scale chosen for std ~ 1/sqrt(cols). */
function randomMatrix(rng: RandomWords, type: SynthType, rows: number, cols: number): GgufTensorToWrite['data'] {
  return async (write) => {
    const target = 1 / Math.sqrt(cols);
    for (let r0 = 0; r0 < rows; r0 += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, rows - r0);
      if (type === 'f16') {
        // |x| in [2^e, 2^(e+3)) with e picked so the spread is around `target`
        const e = Math.floor(Math.log2(target)) - 2 + 15;
        const bytes = new Uint8Array(n * cols * 2);
        rng.fill(bytes);
        const h = new Uint16Array(bytes.buffer);
        for (let i = 0; i < h.length; i++) h[i] = (h[i]! & 0x83ff) | ((e + (h[i]! >>> 10 & 3)) << 10);
        await write(bytes);
      } else if (type === 'bf16') {
        // the same spread with bf16's 8 exponent bits (bias 127) and 7 mantissa bits
        const e = Math.floor(Math.log2(target)) - 2 + 127;
        const bytes = new Uint8Array(n * cols * 2);
        rng.fill(bytes);
        const h = new Uint16Array(bytes.buffer);
        for (let i = 0; i < h.length; i++) h[i] = (h[i]! & 0x807f) | ((e + (h[i]! >>> 7 & 3)) << 7);
        await write(bytes);
      } else {
        const blockBytes = type === 'q4_0' ? 18 : 34;
        const codeStd = type === 'q4_0' ? 4.6 : 73.9; // std of uniform codes: q4_0 -8..7, q8_0 -128..127
        const d = f16Bits(target / codeStd);
        const bytes = new Uint8Array(n * (cols / 32) * blockBytes);
        rng.fill(bytes);
        for (let off = 0; off < bytes.length; off += blockBytes) {
          bytes[off] = d & 0xff;
          bytes[off + 1] = d >>> 8;
        }
        await write(bytes);
      }
    }
  };
}

function ones(n: number): Uint8Array {
  return new Uint8Array(new Float32Array(n).fill(1).buffer);
}

export function synthMetadata(shape: SynthShape, name: string, type: SynthType, tokenizer: Tokenizer): Map<string, GgufEntry> {
  const { vocab } = tokenizer;
  const u32 = (value: number): GgufEntry => ({ type: GgufValueType.UINT32, value });
  const fileType = { f16: 1, q4_0: 2, q8_0: 7, bf16: 32 }[type];
  return new Map<string, GgufEntry>([
    ['general.architecture', { type: GgufValueType.STRING, value: 'llama' }],
    ['general.name', { type: GgufValueType.STRING, value: name }],
    ['general.file_type', u32(fileType)],
    ['llama.context_length', u32(shape.contextLength)],
    ['llama.embedding_length', u32(shape.dim)],
    ['llama.block_count', u32(shape.nLayers)],
    ['llama.feed_forward_length', u32(shape.hiddenDim)],
    ['llama.attention.head_count', u32(shape.nHeads)],
    ['llama.attention.head_count_kv', u32(shape.nKvHeads)],
    ['llama.rope.dimension_count', u32(shape.dim / shape.nHeads)],
    ['llama.rope.freq_base', { type: GgufValueType.FLOAT32, value: shape.ropeTheta }],
    ['llama.attention.layer_norm_rms_epsilon', { type: GgufValueType.FLOAT32, value: 1e-5 }],
    ['tokenizer.ggml.model', { type: GgufValueType.STRING, value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: [...vocab.pieces] }],
    ['tokenizer.ggml.scores', { type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: Float32Array.from(vocab.scores) }],
    ['tokenizer.ggml.token_type', { type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: Int32Array.from(vocab.types) }],
    ['tokenizer.ggml.bos_token_id', u32(vocab.bos)],
    ['tokenizer.ggml.eos_token_id', u32(vocab.eos)],
    ['tokenizer.ggml.unknown_token_id', u32(vocab.unk)],
  ]);
}

/** Writes the model; returns its shape (with the layer count used). */
export async function synthesizeModel(options: SynthOptions): Promise<SynthShape> {
  const preset = SYNTH_PRESETS[options.preset];
  if (preset === undefined) throw new LlamaCudaError('ERR_INVALID_ARG', `unknown preset "${String(options.preset)}" (${Object.keys(SYNTH_PRESETS).join(', ')})`);
  if (!['f16', 'bf16', 'q8_0', 'q4_0'].includes(options.type)) throw new LlamaCudaError('ERR_INVALID_ARG', `type must be f16, bf16, q8_0 or q4_0, got ${String(options.type)}`);
  const layers = options.layers ?? preset.nLayers;
  if (!Number.isInteger(layers) || layers < 1) throw new LlamaCudaError('ERR_INVALID_ARG', `layers must be a positive integer, got ${layers}`);
  const shape: SynthShape = { ...preset, nLayers: layers };
  const vocabSize = options.tokenizer.vocabSize;
  const { dim, hiddenDim, nHeads, nKvHeads } = shape;
  const kvDim = (dim / nHeads) * nKvHeads;
  const rng = new RandomWords(options.seed ?? 1);
  const t = options.type;
  const matrix = (name: string, rows: number, cols: number): GgufTensorToWrite => ({ name, type: t, shape: [rows, cols], data: randomMatrix(rng, t, rows, cols) });
  const vector = (name: string): GgufTensorToWrite => ({ name, type: 'f32', shape: [dim], data: ones(dim) });

  const tensors: GgufTensorToWrite[] = [matrix('token_embd.weight', vocabSize, dim), vector('output_norm.weight'), matrix('output.weight', vocabSize, dim)];
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      vector(`${p}attn_norm.weight`),
      matrix(`${p}attn_q.weight`, dim, dim),
      matrix(`${p}attn_k.weight`, kvDim, dim),
      matrix(`${p}attn_v.weight`, kvDim, dim),
      matrix(`${p}attn_output.weight`, dim, dim),
      vector(`${p}ffn_norm.weight`),
      matrix(`${p}ffn_gate.weight`, hiddenDim, dim),
      matrix(`${p}ffn_up.weight`, hiddenDim, dim),
      matrix(`${p}ffn_down.weight`, dim, hiddenDim),
    );
  }
  const name = `synthetic ${options.preset}${layers !== preset.nLayers ? ` (${layers} layers)` : ''} ${t}`;
  await writeGguf(options.out, synthMetadata(shape, name, t, options.tokenizer), tensors);
  return shape;
}
