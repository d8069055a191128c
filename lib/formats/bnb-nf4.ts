/**
 * bitsandbytes 4-bit NormalFloat (NF4) weights in safetensors: what transformers saves for a model
 * loaded with `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")`
 * (`quantization_config.quant_method` "bitsandbytes" in config.json). Each quantized Linear weight
 * `<m>.weight` is stored as (bitsandbytes QuantState.as_dict(packed=True)):
 *
 *   <m>.weight                                U8, the codes: ceil(numel / 2) bytes (transformers
 *                                             writes shape [numel / 2, 1]); two codes a byte, the
 *                                             EARLIER element of each pair in the HIGH nibble
 *                                             (bitsandbytes csrc/kernels.cu kQuantizeBlockwise:
 *                                             `q[j] = nf4(v[2j]) << 4 | nf4(v[2j+1])`)
 *   <m>.weight.absmax                         F32 [nblocks]: each block's absmax; or, with double
 *                                             quantization, U8 [nblocks] 8-bit codes of it
 *   <m>.weight.quant_map                      F32 [16]: the NF4 table (must equal core/nf4.h's)
 *   <m>.weight.nested_absmax                  F32 [ceil(nblocks / nested_blocksize)]  (double quant.)
 *   <m>.weight.nested_quant_map               F32 [256]: the 8-bit map of the absmax codes
 *   <m>.weight.quant_state.bitsandbytes__nf4  U8: UTF-8 JSON {quant_type, blocksize, dtype, shape,
 *                                             and with double quantization nested_blocksize,
 *                                             nested_dtype, nested_offset}
 *
 * Blocks of `blocksize` (64 by default) run over the row-major flattened [rows, cols] weight.
 * Double quantization (bitsandbytes dequantize_4bit / dequantize_blockwise), in float32:
 *   absmax[b] = nested_quant_map[q[b]] * nested_absmax[floor(b / nested_blocksize)] + nested_offset
 * and weight i = quant_map[code i] * absmax[floor(i / blocksize)].
 *
 * At load (TensorInfo.read) the weight becomes the engine's `nf4` source encoding (per 64-block a
 * little-endian f32 absmax and the block's 32 code bytes as they are: native/core/ggml_blocks.h),
 * which native code regroups exactly into NF4 storage. Weights whose blocks do not line up with
 * rows (blocksize other than 64, or cols not a multiple of 64) are handed over as their exact f32
 * values instead (and stored as f32, or quantized at load).
 */
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { withFile } from './file-io.js';
import type { SafetensorsFile, SafetensorsTensor } from './safetensors.js';
import type { TensorInfo } from './tensor-info.js';

/** bitsandbytes' NF4 values (float32), index = code: native/core/nf4.h, same source. */
export const NF4_VALUES: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
].map(Math.fround);

/** Suffixes of the tensors that carry a weight's quantization state. */
export const BNB_SUFFIXES = ['.absmax', '.quant_map', '.nested_absmax', '.nested_quant_map', '.quant_state.bitsandbytes__nf4'] as const;
const STATE_KEY = '.quant_state.bitsandbytes__nf4';

/** Whether a config.json `quantization_config` is bitsandbytes 4-bit NF4 (the one kind read). */
export function isBnbNf4Config(q: Readonly<Record<string, unknown>>): boolean {
  return q['quant_method'] === 'bitsandbytes' && q['load_in_4bit'] === true && (q['bnb_4bit_quant_type'] ?? 'fp4') === 'nf4';
}

/** Whether a tensor name is a bitsandbytes quantization-state companion of some weight. */
export function isBnbCompanion(name: string): boolean {
  return BNB_SUFFIXES.some((s) => name.endsWith(s)) || /\.quant_state\.bitsandbytes__\w+$/.test(name);
}

/** Where a tensor lives: its file and header entry. */
export interface LocatedTensor {
  readonly file: SafetensorsFile;
  readonly tensor: SafetensorsTensor;
}

interface QuantState {
  readonly blocksize: number;
  readonly shape: readonly number[];
  readonly nested?: { readonly blocksize: number; readonly offset: number };
}

function fail(where: string, msg: string): never {
  throw new LlamaCudaError('ERR_MODEL_FORMAT', `${where}: ${msg}`);
}

async function readTensor(t: LocatedTensor): Promise<Uint8Array> {
  const bytes = new Uint8Array(t.tensor.nbytes);
  await withFile(t.file.path, async (handle) => {
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, t.tensor.offset);
    if (bytesRead !== bytes.length) fail(path.basename(t.file.path), `tensor "${t.tensor.name}" is truncated`);
  });
  return bytes;
}

function f32Array(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = v.getFloat32(4 * i, true);
  return out;
}

function positiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function parseState(json: Uint8Array, where: string): QuantState {
  let s: unknown;
  try {
    s = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (err) {
    fail(where, `the quant_state is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof s !== 'object' || s === null) fail(where, 'the quant_state is not a JSON object');
  const o = s as Record<string, unknown>;
  if (o['quant_type'] !== 'nf4') {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${where}: bitsandbytes quant_type ${JSON.stringify(o['quant_type'])} is not supported (only nf4)`);
  }
  const shape = o['shape'];
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every(positiveInt)) fail(where, `quant_state shape ${JSON.stringify(shape)} is not [rows, cols]`);
  if (!positiveInt(o['blocksize'])) fail(where, `quant_state blocksize ${JSON.stringify(o['blocksize'])} is not a positive integer`);
  const state: QuantState = { blocksize: o['blocksize'], shape: shape as number[] };
  if (o['nested_blocksize'] === undefined) return state;
  if (!positiveInt(o['nested_blocksize'])) fail(where, `nested_blocksize ${JSON.stringify(o['nested_blocksize'])} is not a positive integer`);
  const offset = o['nested_offset'];
  if (typeof offset !== 'number' || !Number.isFinite(offset)) fail(where, `nested_offset ${JSON.stringify(offset)} is not a number`);
  if (o['nested_dtype'] !== undefined && o['nested_dtype'] !== 'float32') {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${where}: nested_dtype ${JSON.stringify(o['nested_dtype'])} is not supported (float32)`);
  }
  return { ...state, nested: { blocksize: o['nested_blocksize'], offset } };
}

/** Per-block absmax values (float32), decoding double quantization. */
async function blockScales(parts: ReadonlyMap<string, LocatedTensor>, state: QuantState, nblocks: number, where: string): Promise<Float32Array> {
  const need = (suffix: string, dtype: string, count: number): LocatedTensor => {
    const t = parts.get(suffix);
    if (t === undefined) fail(where, `missing its "${suffix.slice(1)}" tensor`);
    const n = t.tensor.shape.reduce((a, b) => a * b, 1);
    if (t.tensor.dtype !== dtype || n !== count) {
      fail(where, `"${suffix.slice(1)}" is ${t.tensor.dtype} [${t.tensor.shape.join(', ')}], expected ${dtype} with ${count} values`);
    }
    return t;
  };
  if (state.nested === undefined) return f32Array(await readTensor(need('.absmax', 'F32', nblocks)));
  const { blocksize, offset } = state.nested;
  const codes = await readTensor(need('.absmax', 'U8', nblocks));
  const nestedAbsmax = f32Array(await readTensor(need('.nested_absmax', 'F32', Math.ceil(nblocks / blocksize))));
  const map = f32Array(await readTensor(need('.nested_quant_map', 'F32', 256)));
  const off = Math.fround(offset);
  const out = new Float32Array(nblocks);
  for (let b = 0; b < nblocks; b++) {
    out[b] = Math.fround(Math.fround((map[codes[b]!] as number) * (nestedAbsmax[Math.floor(b / blocksize)] as number)) + off);
  }
  return out;
}

/**
 * The TensorInfo of a bitsandbytes NF4 weight `weight` (its U8 codes) under the engine name
 * `name`, given its companion tensors by suffix (BNB_SUFFIXES). Reads the small quant_state
 * now; the codes and scales are read by `read()` at load.
 */
export async function bnbNf4TensorInfo(
  weight: LocatedTensor,
  parts: ReadonlyMap<string, LocatedTensor>,
  name: string,
): Promise<TensorInfo> {
  const where = `${path.basename(weight.file.path)}: tensor "${weight.tensor.name}"`;
  if (weight.tensor.dtype !== 'U8') {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${where}: bitsandbytes storage dtype ${weight.tensor.dtype} is not supported (U8 codes, bnb_4bit_quant_storage uint8)`);
  }
  const stateTensor = parts.get(STATE_KEY);
  if (stateTensor === undefined) fail(where, 'is U8 but has no quant_state.bitsandbytes__nf4 tensor');
  const state = parseState(await readTensor(stateTensor), where);
  const [rows, cols] = state.shape as [number, number];
  const numel = rows * cols;
  if (weight.tensor.nbytes !== Math.ceil(numel / 2)) {
    fail(where, `holds ${weight.tensor.nbytes} code bytes; [${rows}, ${cols}] in 4 bits needs ${Math.ceil(numel / 2)}`);
  }
  const quantMap = parts.get('.quant_map');
  if (quantMap !== undefined) {
    const map = f32Array(await readTensor(quantMap));
    if (map.length !== 16 || map.some((v, i) => v !== NF4_VALUES[i])) {
      throw new LlamaCudaError('ERR_UNSUPPORTED', `${where}: its quant_map is not the NF4 table (a custom 4-bit map is not supported)`);
    }
  }
  const nblocks = Math.ceil(numel / state.blocksize);
  const rowAligned = state.blocksize === 64 && cols % 64 === 0;
  const read = async (): Promise<Uint8Array> => {
    const scales = await blockScales(parts, state, nblocks, where);
    const codes = await readTensor(weight);
    if (rowAligned) {
      // engine `nf4` source blocks: f32 absmax, then the block's 32 code bytes (bitsandbytes order)
      const out = new Uint8Array(nblocks * 36);
      const v = new DataView(out.buffer);
      for (let b = 0; b < nblocks; b++) {
        v.setFloat32(36 * b, scales[b] as number, true);
        out.set(codes.subarray(32 * b, 32 * b + 32), 36 * b + 4);
      }
      return out;
    }
    const values = new Float32Array(numel);
    for (let i = 0; i < numel; i++) {
      const byte = codes[i >> 1] as number;
      const q = i % 2 === 0 ? byte >> 4 : byte & 0x0f;
      values[i] = Math.fround((NF4_VALUES[q] as number) * (scales[Math.floor(i / state.blocksize)] as number));
    }
    return new Uint8Array(values.buffer);
  };
  return {
    name,
    type: rowAligned ? 'nf4' : 'f32',
    shape: [rows, cols],
    file: weight.file.path,
    offset: weight.tensor.offset,
    nbytes: rowAligned ? nblocks * 36 : numel * 4,
    read,
  };
}
