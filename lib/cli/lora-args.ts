/**
 * --lora PATH[:SCALE] (repeatable) and --lora-mode merged|runtime, shared by generate and chat.
 */
import type { LoraAdapterOptions, LoraMode } from '../lora/types.js';
import { type OptionSpecs, type Parsed, UsageError, optList, optString } from './args.js';

export const loraOptions: OptionSpecs = {
  lora: { type: 'string', repeat: true, value: 'PATH[:S]', description: 'apply a PEFT LoRA adapter folder, scaled by S (default 1)' },
  'lora-mode': { type: 'string', value: 'M', description: 'merged (default: folded into the weights at load) or runtime (extra low-rank matmuls)' },
};

/** "PATH" or "PATH:SCALE" (the last colon, when what follows is a number: paths may hold colons). */
export function parseLoraArg(arg: string): LoraAdapterOptions {
  const colon = arg.lastIndexOf(':');
  if (colon > 0) {
    const tail = arg.slice(colon + 1);
    const scale = Number(tail);
    if (tail.trim() !== '' && Number.isFinite(scale)) return { path: arg.slice(0, colon), scale };
  }
  if (arg === '') throw new UsageError('--lora needs a path');
  return { path: arg };
}

/** The loadModel options the --lora flags ask for (empty when none). */
export function loraLoadOptions(p: Parsed): { lora?: LoraAdapterOptions[]; loraMode?: LoraMode } {
  const list = optList(p, 'lora').map(parseLoraArg);
  const mode = optString(p, 'lora-mode');
  if (mode !== undefined && mode !== 'merged' && mode !== 'runtime') throw new UsageError('--lora-mode must be merged or runtime');
  if (mode !== undefined && list.length === 0) throw new UsageError('--lora-mode needs --lora');
  return { ...(list.length > 0 ? { lora: list } : {}), ...(mode !== undefined ? { loraMode: mode } : {}) };
}
