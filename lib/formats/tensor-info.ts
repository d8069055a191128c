/**
 * What every model-file reader produces: where each tensor's bytes are and what they hold.
 * Shapes are outer-first, like PyTorch: a weight matrix is [rows, cols] with one output
 * feature per row (GGUF's ne = [cols, rows] is reversed into this order).
 */

/** Tensor element / block types that may appear in a model file (GGUF names, lowercase). */
export type SourceType =
  | 'f32' | 'f16' | 'bf16' | 'f64'
  | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q8_1'
  | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k'
  | 'iq2_xxs' | 'iq2_xs' | 'iq3_xxs' | 'iq1_s' | 'iq4_nl' | 'iq3_s' | 'iq2_s' | 'iq4_xs' | 'iq1_m'
  | 'i8' | 'i16' | 'i32' | 'i64'
  | 'tq1_0' | 'tq2_0'
  | 'nf4'; // not a GGUF type: bitsandbytes 4-bit NormalFloat, repacked by bnb-nf4.ts

export interface TensorInfo {
  /** Name as stored in the file (GGUF `blk.0.attn_q.weight`, llama2.c synthesized names). */
  readonly name: string;
  readonly type: SourceType;
  /** Outer-first shape; the last entry is the contiguous dimension. */
  readonly shape: readonly number[];
  /** Absolute path of the file holding the bytes. */
  readonly file: string;
  /** Absolute byte offset of the first byte in `file`. */
  readonly offset: number;
  readonly nbytes: number;
  /**
   * Produces the tensor's bytes (of `type`, `nbytes` long) when they are not one range of `file`:
   * bitsandbytes NF4 weights, assembled at load from their codes and quantization state.
   */
  readonly read?: () => Promise<Uint8Array>;
}

/** Elements per block and bytes per block of each type (ggml's type traits). */
export const BLOCK_LAYOUT: Readonly<Record<SourceType, { readonly elems: number; readonly bytes: number }>> = {
  f32: { elems: 1, bytes: 4 },
  f16: { elems: 1, bytes: 2 },
  bf16: { elems: 1, bytes: 2 },
  f64: { elems: 1, bytes: 8 },
  q4_0: { elems: 32, bytes: 18 },
  q4_1: { elems: 32, bytes: 20 },
  q5_0: { elems: 32, bytes: 22 },
  q5_1: { elems: 32, bytes: 24 },
  q8_0: { elems: 32, bytes: 34 },
  q8_1: { elems: 32, bytes: 36 },
  q2_k: { elems: 256, bytes: 84 },
  q3_k: { elems: 256, bytes: 110 },
  q4_k: { elems: 256, bytes: 144 },
  q5_k: { elems: 256, bytes: 176 },
  q6_k: { elems: 256, bytes: 210 },
  q8_k: { elems: 256, bytes: 292 },
  iq2_xxs: { elems: 256, bytes: 66 },
  iq2_xs: { elems: 256, bytes: 74 },
  iq3_xxs: { elems: 256, bytes: 98 },
  iq1_s: { elems: 256, bytes: 50 },
  iq4_nl: { elems: 32, bytes: 18 },
  iq3_s: { elems: 256, bytes: 110 },
  iq2_s: { elems: 256, bytes: 82 },
  iq4_xs: { elems: 256, bytes: 136 },
  iq1_m: { elems: 256, bytes: 56 },
  i8: { elems: 1, bytes: 1 },
  i16: { elems: 1, bytes: 2 },
  i32: { elems: 1, bytes: 4 },
  i64: { elems: 1, bytes: 8 },
  tq1_0: { elems: 256, bytes: 54 },
  tq2_0: { elems: 256, bytes: 66 },
  nf4: { elems: 64, bytes: 36 }, // f32 absmax + 32 code bytes (native/core/ggml_blocks.h)
};

/** Bytes of a tensor of this type and outer-first shape, or an error text if the shape cannot hold it. */
export function tensorBytes(type: SourceType, shape: readonly number[]): number | string {
  const { elems, bytes } = BLOCK_LAYOUT[type];
  const inner = shape.length === 0 ? 1 : shape[shape.length - 1]!;
  if (inner % elems !== 0) return `its last dimension ${inner} is not a multiple of ${type}'s block of ${elems}`;
  let rows = 1;
  for (let i = 0; i < shape.length - 1; i++) rows *= shape[i]!;
  const total = (inner / elems) * bytes * rows;
  if (!Number.isSafeInteger(total)) return `its size overflows (${shape.join('x')})`;
  return total;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
