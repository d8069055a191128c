/**
 * LlamaConfig: the hyper-parameters of a Llama 2 model, from whichever file format.
 */
import { LlamaCudaError } from '../errors.js';

export type RopePairing = 'interleaved' | 'half';

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
  /** Linear RoPE scaling: positions are multiplied by this (1 = none). */
  readonly ropeFreqScale: number;
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
  return c;
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
