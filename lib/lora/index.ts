/**
 * LoRA adapters at load: reads and checks every adapter against the model, then merges them
 * into the weights (mergeLora) or adds them to the graph (addRuntimeLora).
 */
import type { Addon, GraphSpec } from '../addon-types.js';
import { LlamaCudaError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import type { WeightPlan } from '../model/weights.js';
import { readLoraAdapter } from './adapter.js';
import { mergeLora } from './merge.js';
import { addRuntimeLora } from './runtime.js';
import type { LoadedLora, LoraAdapterOptions, LoraInfo, LoraMode } from './types.js';

export { readLoraAdapter, type LoraAdapter, type LoraModule, LORA_TARGETS, type LoraTarget } from './adapter.js';
export type { LoraAdapterOptions, LoraInfo, LoraMode } from './types.js';

/** Throws ERR_INVALID_ARG for malformed `lora` / `loraMode` options. */
export function checkLoraOptions(lora: unknown, mode: unknown): void {
  if (mode !== undefined && mode !== 'merged' && mode !== 'runtime') {
    throw new LlamaCudaError('ERR_INVALID_ARG', `loraMode must be 'merged' or 'runtime', got ${String(mode)}`);
  }
  if (lora === undefined) return;
  if (!Array.isArray(lora)) throw new LlamaCudaError('ERR_INVALID_ARG', 'lora must be an array of { path, scale? }');
  lora.forEach((entry: unknown, i) => {
    const e = entry as Partial<LoraAdapterOptions> | null;
    if (typeof e !== 'object' || e === null || typeof e.path !== 'string' || e.path === '') {
      throw new LlamaCudaError('ERR_INVALID_ARG', `lora[${i}].path must be a non-empty string`);
    }
    if (e.scale !== undefined && (typeof e.scale !== 'number' || !Number.isFinite(e.scale))) {
      throw new LlamaCudaError('ERR_INVALID_ARG', `lora[${i}].scale must be a finite number, got ${String(e.scale)}`);
    }
  });
}

/**
 * Applies the adapters to a model's weight plan and graph. Returns them unchanged when `lora`
 * is empty.
 */
export async function applyLora(
  addon: Addon,
  config: LlamaConfig,
  plan: WeightPlan,
  graph: GraphSpec,
  lora: readonly LoraAdapterOptions[] | undefined,
  mode: LoraMode = 'merged',
): Promise<{ plan: WeightPlan; graph: GraphSpec; info?: LoraInfo }> {
  if (lora === undefined || lora.length === 0) return { plan, graph };
  const adapters: LoadedLora[] = [];
  for (const entry of lora) adapters.push({ adapter: await readLoraAdapter(entry.path, config), scale: entry.scale ?? 1 });
  const info: LoraInfo = {
    mode,
    adapters: adapters.map(({ adapter, scale }) => ({ path: adapter.path, scale, r: adapter.r, alpha: adapter.alpha, modules: adapter.modules.length })),
  };
  if (mode === 'runtime') return { ...addRuntimeLora(config, plan, graph, adapters), info };
  const merged = await mergeLora(addon, config, plan, adapters);
  // the graph names weights only; its weight list must be the plan's
  return { plan: merged, graph: { ...graph, weights: merged.specs }, info };
}
