/**
 * Merged LoRA: W' = W + Σ_adapters scale · scaling · B·A, computed once at load, before the
 * engine stores W' in the weight's planned storage (so a base loaded with `quantize` is
 * quantized after the merge, and a base stored quantized in its file is decoded, merged and
 * quantized again: use runtime mode to keep such a base bit for bit).
 *
 * Per weight: the file's bytes are decoded to f32 (addon.quantizeRows: ggml's dequantization
 * for block types), each output row is accumulated in float64 (W row + Σ_k B'[o][k]·A[k]),
 * rounded to f32, and handed to the engine as an in-memory source encoded to match the
 * storage: f32 → f32, f16 → f16, bf16 → bf16, q8_0 → Q8_0 blocks (repacked exactly), int4 →
 * f16 values (the loader quantizes them with the planned group). The merged matrices stay in JS
 * memory until the engine has loaded them.
 */
import { open } from 'node:fs/promises';

import type { Addon, SourceEncoding, WeightSource, WeightSpec } from '../addon-types.js';
import { LlamaCudaError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import type { WeightPlan } from '../model/weights.js';
import { TARGET_WEIGHT, effectiveB } from './adapter.js';
import { encodeBf16 } from './floats.js';
import type { LoadedLora } from './types.js';

async function sourceBytes(src: WeightSource): Promise<Uint8Array> {
  if ('data' in src) return src.data;
  const handle = await open(src.file, 'r').catch((err: unknown) => {
    throw new LlamaCudaError('ERR_IO', `cannot open ${src.file}: ${(err as Error).message}`, { cause: err });
  });
  try {
    const out = new Uint8Array(src.nbytes);
    const { bytesRead } = await handle.read(out, 0, src.nbytes, src.offset);
    if (bytesRead !== src.nbytes) throw new LlamaCudaError('ERR_MODEL_FORMAT', `tensor "${src.weight}" lies outside ${src.file}: the file is truncated`);
    return out;
  } finally {
    await handle.close();
  }
}

function asFloat32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** The merged values encoded for the weight's storage (see the file comment). */
function encodeFor(addon: Addon, spec: WeightSpec, values: Float32Array): { type: SourceEncoding; data: Uint8Array } {
  switch (spec.dtype) {
    case 'f16':
      return { type: 'f16', data: addon.quantizeRows(bytesOf(values), 'f32', 'f16') };
    case 'bf16':
      return { type: 'bf16', data: encodeBf16(values) };
    case 'q8_0':
      return { type: 'q8_0', data: addon.quantizeRows(bytesOf(values), 'f32', 'q8_0') };
    case 'int4': {
      // f16 halves the memory held until the load; its rounding is far below int4's step
      let max = 0;
      for (const v of values) max = Math.max(max, Math.abs(v));
      return max < 65504 ? { type: 'f16', data: addon.quantizeRows(bytesOf(values), 'f32', 'f16') } : { type: 'f32', data: bytesOf(values) };
    }
    default:
      return { type: 'f32', data: bytesOf(values) };
  }
}

/** The plan with every adapted weight's source replaced by its merged values. */
export async function mergeLora(addon: Addon, config: LlamaConfig, plan: WeightPlan, adapters: readonly LoadedLora[]): Promise<WeightPlan> {
  // engine weight name -> the modules adapting it (from every adapter)
  const byWeight = new Map<string, { a: Float32Array; b: Float64Array; rank: number }[]>();
  for (const { adapter, scale } of adapters) {
    for (const m of adapter.modules) {
      const weight = plan.layers[m.layer]![TARGET_WEIGHT[m.target]];
      const list = byWeight.get(weight) ?? [];
      list.push({ a: m.a, b: effectiveB(m, scale, config), rank: m.rank });
      byWeight.set(weight, list);
    }
  }
  const sources: WeightSource[] = [];
  let totalBytes = 0;
  for (const src of plan.sources) {
    const mods = byWeight.get(src.weight);
    if (mods === undefined) {
      sources.push(src);
      totalBytes += src.nbytes;
      continue;
    }
    const spec = plan.specs.find((s) => s.name === src.weight)!;
    const [rows, cols] = spec.shape;
    const raw = await sourceBytes(src);
    let w: Float32Array;
    try {
      w = src.type === 'f32' ? asFloat32(raw) : asFloat32(addon.quantizeRows(raw, src.type, 'f32'));
    } catch (err) {
      throw new LlamaCudaError('ERR_UNSUPPORTED', `LoRA merge: cannot decode tensor "${src.weight}" (${src.type}): ${(err as Error).message}`, { cause: err });
    }
    const row = new Float64Array(cols);
    for (let o = 0; o < rows; o++) {
      const base = o * cols;
      for (let i = 0; i < cols; i++) row[i] = w[base + i]!;
      for (const { a, b, rank } of mods) {
        for (let k = 0; k < rank; k++) {
          const c = b[o * rank + k]!;
          if (c === 0) continue;
          const ak = k * cols;
          for (let i = 0; i < cols; i++) row[i] = row[i]! + c * a[ak + i]!;
        }
      }
      for (let i = 0; i < cols; i++) w[base + i] = row[i]!;
    }
    const { type, data } = encodeFor(addon, spec, w);
    sources.push({ weight: src.weight, type, nbytes: data.byteLength, data });
    totalBytes += data.byteLength;
  }
  return { ...plan, sources, totalBytes };
}
