/**
 * LoRA options of loadModel and what the loader keeps of each adapter.
 */
import type { LoraAdapter } from './adapter.js';

/** One adapter to apply: a PEFT adapter folder and a multiplier on its own alpha / r. */
export interface LoraAdapterOptions {
  /** The adapter folder (adapter_config.json + adapter_model.safetensors), or one of those files. */
  readonly path: string;
  /** Multiplies the adapter's scaling (default 1; 0 = no effect, negative subtracts it). */
  readonly scale?: number;
}

/**
 * 'merged' (default): W + scale·(alpha/r)·B·A is computed at load and stored like the base
 * weight: no cost per token. 'runtime': the base weights are loaded untouched and each adapted
 * projection gets two more low-rank matmuls and an add in the graph (A and B in f32, the
 * scale folded into B).
 */
export type LoraMode = 'merged' | 'runtime';

export interface LoadedLora {
  readonly adapter: LoraAdapter;
  readonly scale: number;
}

/** What a model says about the adapters it was loaded with (model.info.lora). */
export interface LoraInfo {
  readonly mode: LoraMode;
  readonly adapters: readonly { readonly path: string; readonly scale: number; readonly r: number; readonly alpha: number; readonly modules: number }[];
}
