/**
 * LlamaConfig: the hyper-parameters of a Llama 2 model, from whichever file format.
 */
import { LlamaCudaError } from '../errors.js';

export type RopePairing = 'interleaved' | 'half';

/**
 * RoPE scaling for contexts longer than the model was trained on (Hugging Face `rope_scaling`,
 * GGUF `rope.scaling.*`). The frequencies each type gives are computed in
 * lib/model/rope-scaling.ts. `originalContextLength` is the context the model was pre-trained
 * with (HF `original_max_position_embeddings`, else `max_position_embeddings`).
 *
 * - linear: every frequency divided by `factor` (positions interpolated).
 * - dynamic: NTK-aware base, from the session's context length when it exceeds
 *   `originalContextLength` (plain RoPE otherwise); see rope-scaling.ts for why it is static
 *   per session.
 * - yarn: per-pair blend of interpolated and original frequencies, with cos and sin multiplied
 *   by `attentionFactor`.
 * - llama3: Llama 3.1's per-wavelength blend.
 */
export type RopeScaling =
  | { readonly type: 'linear'; readonly factor: number }
  | { readonly type: 'dynamic'; readonly factor: number; readonly originalContextLength: number }
  | {
      readonly type: 'yarn';
      readonly factor: number;
      readonly originalContextLength: number;
      /** Rotations above which a pair is left as trained (default 32). */
      readonly betaFast: number;
      /** Rotations below which a pair is fully interpolated (default 1). */
      readonly betaSlow: number;
      /** Multiplies cos and sin (default 0.1 ln(factor) + 1). */
      readonly attentionFactor: number;
      /** Round the ramp's bounds to whole pairs (HF `truncate`, default true). */
      readonly truncate: boolean;
    }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly originalContextLength: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
    };

export interface LlamaConfig {
  /** Model width (n_embd). */
  readonly dim: number;
  /** FFN hidden size. */
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Key/value heads (GQA); equals nHeads for multi-head attention, 1 for MQA. */
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  /** Context length the model was trained for. */
  readonly contextLength: number;
  /** RoPE base frequency. */
  readonly ropeTheta: number;
  /** Dimensions rotated per head (normally headDim). */
  readonly ropeDim: number;
  /**
   * An extra linear multiplier on every RoPE frequency (1 = none), on top of `ropeScaling`.
   * The file readers leave it at 1 and describe a file's scaling in `ropeScaling`.
   */
  readonly ropeFreqScale: number;
  /** RoPE scaling the model was trained or configured with (absent: plain RoPE). */
  readonly ropeScaling?: RopeScaling;
  /** Which dims RoPE rotates together: interleaved (Meta, GGUF, llama2.c) or half (Hugging Face). */
  readonly ropePairing: RopePairing;
  /** RMSNorm epsilon. */
  readonly normEps: number;
}

/** Checks that the numbers describe a model we can build, with errors naming the field. */
export function validateConfig(c: LlamaConfig, source: string): LlamaConfig {
  const fail = (msg: string): never => {
    throw new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: ${msg}`);
  };
  const positive = (name: keyof LlamaConfig, max: number): void => {
    const v = c[name] as number;
    if (!Number.isSafeInteger(v) || v <= 0 || v > max) fail(`${name} = ${v} is not an integer in 1..${max}`);
  };
  positive('dim', 1 << 17);
  positive('hiddenDim', 1 << 19);
  positive('nLayers', 4096);
  positive('nHeads', 4096);
  positive('nKvHeads', 4096);
  positive('headDim', 4096);
  positive('vocabSize', 1 << 22);
  positive('contextLength', 1 << 24);
  positive('ropeDim', 4096);
  if (c.nHeads % c.nKvHeads !== 0) fail(`nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`);
  if (c.ropeDim % 2 !== 0 || c.ropeDim > c.headDim) fail(`ropeDim ${c.ropeDim} must be even and at most headDim ${c.headDim}`);
  if (!(c.ropeTheta > 1) || !Number.isFinite(c.ropeTheta)) fail(`ropeTheta ${c.ropeTheta} must be a finite number > 1`);
  if (!(c.ropeFreqScale > 0) || !Number.isFinite(c.ropeFreqScale)) fail(`ropeFreqScale ${c.ropeFreqScale} must be > 0`);
  if (!(c.normEps > 0 && c.normEps < 1)) fail(`normEps ${c.normEps} must be in (0, 1)`);
  if (c.ropeScaling !== undefined) validateRopeScaling(c.ropeScaling, fail);
  return c;
}

const ROPE_SCALING_TYPES: readonly string[] = ['linear', 'dynamic', 'yarn', 'llama3'];

function validateRopeScaling(s: RopeScaling, fail: (msg: string) => never): void {
  if (!ROPE_SCALING_TYPES.includes(s.type)) fail(`unknown RoPE scaling type "${String(s.type)}" (${ROPE_SCALING_TYPES.join(', ')})`);
  const finitePositive = (name: string, v: number): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) fail(`RoPE scaling (${s.type}): ${name} = ${String(v)} must be a finite number > 0`);
  };
  finitePositive('factor', s.factor);
  if (s.factor > 1e6) fail(`RoPE scaling (${s.type}): factor ${s.factor} is absurd`);
  if (s.type === 'linear') return;
  if (!Number.isSafeInteger(s.originalContextLength) || s.originalContextLength < 1 || s.originalContextLength > 1 << 24) {
    fail(`RoPE scaling (${s.type}): originalContextLength = ${String(s.originalContextLength)} is not an integer in 1..${1 << 24}`);
  }
  if (s.type === 'yarn') {
    finitePositive('betaFast', s.betaFast);
    finitePositive('betaSlow', s.betaSlow);
    finitePositive('attentionFactor', s.attentionFactor);
    if (s.attentionFactor > 1e3) fail(`RoPE scaling (yarn): attentionFactor ${s.attentionFactor} is absurd`);
  } else if (s.type === 'llama3') {
    finitePositive('lowFreqFactor', s.lowFreqFactor);
    finitePositive('highFreqFactor', s.highFreqFactor);
    if (!(s.highFreqFactor > s.lowFreqFactor)) fail(`RoPE scaling (llama3): highFreqFactor ${s.highFreqFactor} must be greater than lowFreqFactor ${s.lowFreqFactor}`);
  }
}

export function kvDim(c: LlamaConfig): number {
  return c.nKvHeads * c.headDim;
}

/** Parameters per layer and in total (embedding and classifier counted once each when untied). */
export function parameterCount(c: LlamaConfig, tiedClassifier: boolean): number {
  const qDim = c.nHeads * c.headDim;
  const perLayer = 2 * c.dim + c.dim * qDim * 2 + 2 * c.dim * kvDim(c) + 3 * c.dim * c.hiddenDim;
  return c.nLayers * perLayer + c.dim + c.vocabSize * c.dim * (tiedClassifier ? 1 : 2);
}

/**
 * KV cache positions when the caller does not say: the model's context length, at most 4096
 * (Llama 2's own). A larger context is an explicit choice (`contextLength`), so a file that
 * claims a huge context cannot make every load reserve gigabytes.
 */
export const DEFAULT_MAX_CONTEXT = 4096;

export function defaultContextLength(config: { readonly contextLength: number }): number {
  return Math.min(config.contextLength, DEFAULT_MAX_CONTEXT);
}
