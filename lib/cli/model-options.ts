/**
 * The model-loading options shared by the commands that load one model and run it
 * (perplexity, convert-gqa, embed): --tokenizer, --device, --threads, --ctx-size,
 * --batch-size, --kv-type, --quantize, and their translation into LoadModelOptions.
 */
import type { KvCacheType } from '../addon-types.js';
import type { LoadModelOptions } from '../load-model.js';
import type { QuantizeAtLoad } from '../model/weights.js';
import type { DeviceRequest } from '../native.js';
import { type OptionSpecs, type Parsed, UsageError, optInt, optString } from './args.js';

export const modelLoadOptions: OptionSpecs = {
  tokenizer: { type: 'string', value: 'F', description: 'tokenizer file (tokenizer.json, tokenizer.model, GGUF or llama2.c tokenizer.bin); needed for .bin models' },
  device: { type: 'string', value: 'D', description: 'cpu, cuda or auto (default auto; env LLAMA_CUDA_BACKEND)' },
  threads: { type: 'number', description: 'CPU threads (default: all)' },
  'ctx-size': { type: 'number', description: 'KV cache positions (default: what the command needs)' },
  'batch-size': { type: 'number', description: 'tokens per native step (default 128)' },
  'kv-type': { type: 'string', value: 'T', description: 'KV cache type: f16 (default), f32, or bf16 (CUDA)' },
  quantize: quantizeOptionSpec(),
};

/** `--quantize int4|int8|nf4`: store the file's float matrices quantized at load. */
export function quantizeOptionSpec(): OptionSpecs[string] {
  return { type: 'string', value: 'T', description: 'quantize float weights at load: int4, int8 or nf4 (default: keep the file\'s types)' };
}

/** The `quantize` load option from --quantize (checked), or nothing. */
export function quantizeLoadOption(p: Parsed): { quantize?: QuantizeAtLoad } {
  const q = optString(p, 'quantize');
  if (q === undefined) return {};
  if (!QUANTIZE_VALUES.includes(q as QuantizeAtLoad)) throw new UsageError(`--quantize must be ${QUANTIZE_VALUES.join(', ')}`);
  return { quantize: q as QuantizeAtLoad };
}
const QUANTIZE_VALUES: readonly QuantizeAtLoad[] = ['int4', 'int8', 'nf4'];

/** LoadModelOptions from the parsed flags; `contextLength` is used when --ctx-size is absent. */
export function loadOptionsFrom(p: Parsed, contextLength?: number): LoadModelOptions {
  const device = optString(p, 'device');
  if (device !== undefined && !['cpu', 'cuda', 'auto'].includes(device)) throw new UsageError('--device must be cpu, cuda or auto');
  const kvType = optString(p, 'kv-type');
  if (kvType !== undefined && !['f16', 'f32', 'bf16'].includes(kvType)) throw new UsageError('--kv-type must be f16, f32 or (CUDA) bf16');
  const tokenizer = optString(p, 'tokenizer');
  const threads = optInt(p, 'threads');
  const ctx = optInt(p, 'ctx-size') ?? contextLength;
  const batch = optInt(p, 'batch-size');
  return {
    ...(device !== undefined ? { device: device as DeviceRequest } : {}),
    ...(tokenizer !== undefined ? { tokenizer } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...(ctx !== undefined ? { contextLength: ctx } : {}),
    ...(batch !== undefined ? { batchSize: batch } : {}),
    ...(kvType !== undefined ? { kvCacheType: kvType as KvCacheType } : {}),
    ...quantizeLoadOption(p),
  };
}
