/**
 * RoPE frequencies under each scaling type (LlamaConfig.ropeScaling), computed in float64 from
 * the config and the context length of the session. Pair p of a head (dims 2p, 2p+1 when
 * interleaved; p, p + ropeDim/2 when half-split) turns at position t by t * freqs[p]; cos and
 * sin are multiplied by `mscale`. The graph's rope node takes both (lib/addon-types.ts NodeSpec).
 *
 *   plain    freqs[p] = theta^(-2p/d)                                 d = ropeDim
 *   linear   freqs[p] = theta^(-2p/d) / factor
 *   dynamic  freqs[p] = theta'^(-2p/d),  theta' = theta * (factor * ctx / orig - (factor - 1))^(d / (d - 2))
 *            when ctx > orig, else plain
 *   yarn     freqs[p] = interp[p] * ramp[p] + extrap[p] * (1 - ramp[p]),  extrap = plain, interp = plain / factor
 *            ramp[p] = clamp((p - low) / (high - low), 0, 1), with low / high the pairs that turn
 *            betaFast / betaSlow times over the original context:
 *              dimOf(r) = d * ln(orig / (2 pi r)) / (2 ln theta);  low = floor(dimOf(betaFast)), high = ceil(dimOf(betaSlow))
 *              (unrounded when truncate is false), low >= 0, high <= d - 1
 *            mscale = attentionFactor (0.1 ln(factor) + 1 unless the file gives it)
 *   llama3   wavelength w = 2 pi / plain[p]:  w < orig / highFreqFactor: plain;  w > orig / lowFreqFactor: plain / factor;
 *            otherwise s = (orig / w - low) / (high - low) and (1 - s) * plain / factor + s * plain
 *
 * These follow Hugging Face transformers' `_compute_*_parameters` (modeling_rope_utils.py).
 *
 * Dynamic NTK: transformers recomputes theta' from the current sequence length at every forward
 * pass once it exceeds the original context. With a KV cache that is inconsistent (keys cached
 * under one base are queried under another, and the result depends on how the prompt was cut into
 * steps), so here theta' is computed once per session from the session's context length (the
 * `contextLength` given to loadModel): the static NTK-aware base for the longest sequence the
 * session can hold. With a context within the original one it is plain RoPE.
 */
import { LlamaCudaError } from '../errors.js';
import type { LlamaConfig } from './config.js';

export interface RopeFrequencies {
  /** Radians per position of each pair, [ropeDim / 2]. */
  readonly freqs: Float64Array;
  /** Multiplies cos and sin (YaRN's attention factor; 1 otherwise). */
  readonly mscale: number;
}

/** theta^(-2p / ropeDim) for p in [0, ropeDim / 2). */
export function plainRopeFrequencies(theta: number, ropeDim: number): Float64Array {
  const freqs = new Float64Array(ropeDim / 2);
  for (let p = 0; p < freqs.length; p++) freqs[p] = theta ** ((-2 * p) / ropeDim);
  return freqs;
}

/** YaRN's default attention factor for a scaling factor (1 when not scaling up). */
export function yarnAttentionFactor(factor: number, mscale = 1): number {
  return factor <= 1 ? 1 : 0.1 * mscale * Math.log(factor) + 1;
}

/** The pair index (fractional) that turns `rotations` times over `contextLength` positions. */
function yarnCorrectionDim(rotations: number, ropeDim: number, theta: number, contextLength: number): number {
  return (ropeDim * Math.log(contextLength / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
}

/**
 * The frequencies and mscale the model uses in a session of `contextLength` positions
 * (default: the model's own context length).
 */
export function ropeFrequencies(config: LlamaConfig, contextLength: number = config.contextLength): RopeFrequencies {
  const d = config.ropeDim;
  const theta = config.ropeTheta;
  const plain = plainRopeFrequencies(theta, d);
  const scaling = config.ropeScaling;
  let freqs = plain;
  let mscale = 1;
  if (scaling !== undefined) {
    switch (scaling.type) {
      case 'linear':
        freqs = plain.map((f) => f / scaling.factor);
        break;
      case 'dynamic': {
        const orig = scaling.originalContextLength;
        // with d = 2 the only pair has frequency theta^0 = 1 whatever the base
        if (contextLength > orig && d > 2) {
          const base = theta * ((scaling.factor * contextLength) / orig - (scaling.factor - 1)) ** (d / (d - 2));
          freqs = plainRopeFrequencies(base, d);
        }
        break;
      }
      case 'yarn': {
        const orig = scaling.originalContextLength;
        let low = yarnCorrectionDim(scaling.betaFast, d, theta, orig);
        let high = yarnCorrectionDim(scaling.betaSlow, d, theta, orig);
        if (scaling.truncate) {
          low = Math.floor(low);
          high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, d - 1);
        if (low === high) high += 0.001; // as transformers does, to avoid dividing by zero
        freqs = plain.map((f, p) => {
          const ramp = Math.min(1, Math.max(0, (p - low) / (high - low)));
          return (f / scaling.factor) * ramp + f * (1 - ramp);
        });
        mscale = scaling.attentionFactor;
        break;
      }
      case 'llama3': {
        const orig = scaling.originalContextLength;
        const lowWavelength = orig / scaling.lowFreqFactor;
        const highWavelength = orig / scaling.highFreqFactor;
        freqs = plain.map((f) => {
          const wavelength = (2 * Math.PI) / f;
          if (wavelength < highWavelength) return f;
          if (wavelength > lowWavelength) return f / scaling.factor;
          const s = (orig / wavelength - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
          return ((1 - s) * f) / scaling.factor + s * f;
        });
        break;
      }
    }
  }
  if (config.ropeFreqScale !== 1) freqs = freqs.map((f) => f * config.ropeFreqScale);
  for (const f of freqs) {
    if (!(f > 0) || !Number.isFinite(f)) {
      throw new LlamaCudaError(
        'ERR_MODEL_FORMAT',
        `RoPE scaling ${JSON.stringify(scaling)} with base ${theta} and context ${contextLength} gives a frequency of ${f}: the parameters are not usable`,
      );
    }
  }
  return { freqs, mscale };
}

/** The fields of a rope graph node for this config and session context length. */
export interface RopeNodeFields {
  readonly theta: number;
  readonly freqScale: number;
  readonly freqs?: readonly number[];
  readonly mscale?: number;
}

/**
 * Plain and linear RoPE use the node's own theta^(-2p/d) x freqScale; every other scaling passes
 * its frequencies explicitly (and YaRN its mscale).
 */
export function ropeNodeFields(config: LlamaConfig, contextLength: number = config.contextLength): RopeNodeFields {
  const s = config.ropeScaling;
  const plain = { theta: config.ropeTheta, freqScale: config.ropeFreqScale };
  if (s === undefined) return plain;
  if (s.type === 'linear') return { ...plain, freqScale: config.ropeFreqScale / s.factor };
  if (s.type === 'dynamic' && !(contextLength > s.originalContextLength)) return plain;
  const { freqs, mscale } = ropeFrequencies(config, contextLength);
  return { ...plain, freqs: Array.from(freqs), ...(mscale !== 1 ? { mscale } : {}) };
}
