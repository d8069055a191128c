/**
 * RoPE scaling: the frequencies (and YaRN's mscale) of every scaling type against numbers worked
 * by hand and against a float64 re-implementation written here from the formulas; the rope op
 * with explicit frequencies on every CPU tier; and end to end, stories260K under each scaling
 * (as a Hugging Face folder and as GGUF) against the float64 reference forward with the
 * frequencies this file computes.
 */
import { readFileSync } from 'node:fs';

import { beforeAll, describe, expect, it } from 'vitest';

import type { GraphSpec } from '../../lib/addon-types.js';
import { LlamaCudaError } from '../../lib/errors.js';
import { type GgufEntry, GgufValueType, readGguf } from '../../lib/formats/gguf.js';
import { configFromGguf } from '../../lib/formats/gguf-llama.js';
import { writeGguf } from '../../lib/formats/gguf-writer.js';
import { type LlamaModel, loadModel } from '../../lib/index.js';
import { type LlamaConfig, type RopeScaling, validateConfig } from '../../lib/model/config.js';
import { ropeFrequencies, ropeNodeFields } from '../../lib/model/rope-scaling.js';
import { buildLlamaGraph } from '../../lib/model/transformer.js';
import { planWeights } from '../../lib/model/weights.js';
import { openModelFile } from '../../lib/formats/model-file.js';
import { assertClose } from '../helpers/assert-close.js';
import { writeHfFolder } from '../helpers/hf-model.js';
import { runGraph, tiers } from '../helpers/op-runner.js';
import { Rng } from '../helpers/rng.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { type Llama2cConfig, type Llama2cWeights, parseLlama2cCheckpoint } from '../reference/llama2c-forward.js';
import { createScaledReference } from '../reference/llama-forward-scaled.js';

const tmp = useTmpDir();

// ---- an independent float64 implementation, from the formulas ----------------------------------

interface Case {
  theta: number;
  ropeDim: number;
  scaling?: RopeScaling;
  ctx: number;
}

/** What the scaling should give, computed pair by pair from the published formulas. */
function expected(c: Case): { freqs: number[]; mscale: number } {
  const half = c.ropeDim / 2;
  const inv = (base: number, p: number): number => 1 / base ** ((2 * p) / c.ropeDim);
  const plain = Array.from({ length: half }, (_, p) => inv(c.theta, p));
  const s = c.scaling;
  if (s === undefined) return { freqs: plain, mscale: 1 };
  switch (s.type) {
    case 'linear':
      return { freqs: plain.map((f) => f / s.factor), mscale: 1 };
    case 'dynamic': {
      if (c.ctx <= s.originalContextLength || c.ropeDim === 2) return { freqs: plain, mscale: 1 };
      // NTK-aware: base' = base * (factor * L / L0 - (factor - 1)) ^ (d / (d - 2))
      const alpha = (s.factor * c.ctx) / s.originalContextLength - (s.factor - 1);
      const base = c.theta * alpha ** (c.ropeDim / (c.ropeDim - 2));
      return { freqs: plain.map((_, p) => inv(base, p)), mscale: 1 };
    }
    case 'yarn': {
      // the pair index at which a pair turns `beta` times over the original context:
      // L0 * theta^(-2p/d) / (2 pi) = beta  <=>  p = d * ln(L0 / (2 pi beta)) / (2 ln theta)
      const pairAt = (beta: number): number => (c.ropeDim * Math.log(s.originalContextLength / (2 * Math.PI * beta))) / (2 * Math.log(c.theta));
      let lo = pairAt(s.betaFast);
      let hi = pairAt(s.betaSlow);
      if (s.truncate) [lo, hi] = [Math.floor(lo), Math.ceil(hi)];
      lo = Math.max(0, lo);
      hi = Math.min(c.ropeDim - 1, hi);
      if (hi === lo) hi = lo + 0.001;
      const freqs = plain.map((f, p) => {
        let t = (p - lo) / (hi - lo); // 0 at lo: keep the trained frequency; 1 at hi: fully interpolated
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        return (1 - t) * f + t * (f / s.factor);
      });
      return { freqs, mscale: s.attentionFactor };
    }
    case 'llama3': {
      const freqs = plain.map((f) => {
        const wavelength = (2 * Math.PI) / f;
        const ratio = s.originalContextLength / wavelength; // how many wavelengths fit the original context
        if (ratio > s.highFreqFactor) return f;
        if (ratio < s.lowFreqFactor) return f / s.factor;
        const smooth = (ratio - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        return (1 - smooth) * (f / s.factor) + smooth * f;
      });
      return { freqs, mscale: 1 };
    }
  }
}

function config(c: Case): LlamaConfig {
  return validateConfig(
    {
      dim: 4 * c.ropeDim, hiddenDim: 8, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: c.ropeDim, vocabSize: 8, contextLength: 4096,
      ropeTheta: c.theta, ropeDim: c.ropeDim, ropeFreqScale: 1, ropePairing: 'half', normEps: 1e-5,
      ...(c.scaling !== undefined ? { ropeScaling: c.scaling } : {}),
    },
    'test',
  );
}

const yarn = (factor: number, originalContextLength: number, more: Partial<Extract<RopeScaling, { type: 'yarn' }>> = {}): RopeScaling => ({
  type: 'yarn', factor, originalContextLength, betaFast: 32, betaSlow: 1, attentionFactor: 0.1 * Math.log(factor) + 1, truncate: true, ...more,
});
const llama3 = (factor: number, lowFreqFactor: number, highFreqFactor: number, originalContextLength: number): RopeScaling => ({
  type: 'llama3', factor, lowFreqFactor, highFreqFactor, originalContextLength,
});

describe('RoPE frequencies, worked by hand', () => {
  const freqs = (c: Case): Float64Array => ropeFrequencies(config(c), c.ctx).freqs;

  it('plain and linear', () => {
    expect(Array.from(freqs({ theta: 10000, ropeDim: 4, ctx: 4096 }))).toEqual([1, 0.01]);
    const lin = freqs({ theta: 10000, ropeDim: 4, ctx: 4096, scaling: { type: 'linear', factor: 4 } });
    expect(lin[0]).toBe(0.25);
    expect(lin[1]).toBeCloseTo(0.0025, 17);
    // ropeFreqScale multiplies on top
    const both = ropeFrequencies({ ...config({ theta: 10000, ropeDim: 4, ctx: 0, scaling: { type: 'linear', factor: 4 } }), ropeFreqScale: 0.5 }).freqs;
    expect(both[0]).toBe(0.125);
  });

  it('dynamic NTK: theta 10000, d 4, factor 2, original 1000', () => {
    const s: RopeScaling = { type: 'dynamic', factor: 2, originalContextLength: 1000 };
    // context 2000: base' = 10000 * (2 * 2000 / 1000 - 1)^(4 / 2) = 90000; pair 1: 90000^(-1/2) = 1/300
    const f = freqs({ theta: 10000, ropeDim: 4, ctx: 2000, scaling: s });
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(1 / 300, 15);
    // within the original context: plain RoPE
    expect(Array.from(freqs({ theta: 10000, ropeDim: 4, ctx: 1000, scaling: s }))).toEqual([1, 0.01]);
    expect(Array.from(freqs({ theta: 10000, ropeDim: 4, ctx: 600, scaling: s }))).toEqual([1, 0.01]);
  });

  it('YaRN: d 128, theta 10000, original 4096, factor 4, betas 32 / 1', () => {
    // pairs turning 32 times over 4096 positions: 128 ln(4096 / 64 pi) / (2 ln 10000) = 20.94 -> 20;
    // once: 128 ln(4096 / 2 pi) / (2 ln 10000) = 45.03 -> 46. Ramp over pairs 20..46.
    const { freqs: f, mscale } = ropeFrequencies(config({ theta: 10000, ropeDim: 128, ctx: 4096, scaling: yarn(4, 4096) }));
    const plain = (p: number): number => 10000 ** (-p / 64);
    for (const p of [0, 1, 19, 20]) expect(f[p]).toBeCloseTo(plain(p), 15);
    expect(f[21]! / plain(21)).toBeCloseTo(1 - (1 / 26) * 0.75, 14);
    expect(f[33]! / plain(33)).toBeCloseTo(0.625, 14); // halfway: (1 + 1/4) / 2
    expect(f[33]).toBeCloseTo(0.005412277021000409, 15);
    for (const p of [46, 50, 63]) expect(f[p]! / plain(p)).toBeCloseTo(0.25, 14);
    expect(mscale).toBeCloseTo(1.138629436111989, 14); // 0.1 ln 4 + 1
  });

  it('Llama 3.1: d 128, theta 500000, factor 8, low 1, high 4, original 8192', () => {
    const f = freqs({ theta: 500000, ropeDim: 128, ctx: 131072, scaling: llama3(8, 1, 4, 8192) });
    const plain = (p: number): number => 500000 ** (-p / 64);
    expect(f[0]).toBe(1); // wavelength 2 pi: kept
    // pair 34: wavelength 6695.1, between 2048 and 8192: s = (8192 / 6695.1 - 1) / 3 = 0.07453
    expect(f[34]).toBeCloseTo(0.0001785078127679964, 16);
    expect(f[35]! / plain(35)).toBeCloseTo(1 / 8, 14); // wavelength 8218.7 > 8192
    expect(f[63]! / plain(63)).toBeCloseTo(1 / 8, 14);
  });
});

describe('RoPE frequencies against the float64 re-implementation', () => {
  const scalings: (RopeScaling | undefined)[] = [
    undefined,
    { type: 'linear', factor: 2 },
    { type: 'linear', factor: 8 },
    { type: 'dynamic', factor: 2, originalContextLength: 512 },
    { type: 'dynamic', factor: 4, originalContextLength: 4096 },
    yarn(4, 512),
    yarn(16, 4096),
    yarn(4, 2048, { betaFast: 16, betaSlow: 2, attentionFactor: 1.25 }),
    yarn(8, 4096, { truncate: false }),
    yarn(2, 64), // both correction pairs clamped
    llama3(8, 1, 4, 8192),
    llama3(4, 2, 8, 1024),
  ];
  for (const ropeDim of [2, 8, 64, 128]) {
    for (const theta of [10000, 500000]) {
      it(`ropeDim ${ropeDim}, theta ${theta}`, () => {
        let checked = 0;
        for (const scaling of scalings) {
          for (const ctx of [256, 512, 1000, 4096, 32768]) {
            const c: Case = { theta, ropeDim, ctx, ...(scaling !== undefined ? { scaling } : {}) };
            const want = expected(c);
            const got = ropeFrequencies(config(c), ctx);
            assertClose(got.freqs, want.freqs, { atol: 0, rtol: 1e-12 }, `${JSON.stringify(c)}`);
            expect(got.mscale).toBeCloseTo(want.mscale, 14);
            checked++;
          }
        }
        expect(checked).toBe(scalings.length * 5);
      });
    }
  }
});

describe('the rope node fields', () => {
  const base: Case = { theta: 10000, ropeDim: 8, ctx: 0 };
  it('plain and linear use theta and freqScale; the rest explicit frequencies', () => {
    expect(ropeNodeFields(config(base))).toEqual({ theta: 10000, freqScale: 1 });
    expect(ropeNodeFields(config({ ...base, scaling: { type: 'linear', factor: 4 } }))).toEqual({ theta: 10000, freqScale: 0.25 });
    const dyn = config({ ...base, scaling: { type: 'dynamic', factor: 2, originalContextLength: 1024 } });
    expect(ropeNodeFields(dyn, 1024)).toEqual({ theta: 10000, freqScale: 1 });
    assertClose(ropeNodeFields(dyn, 2048).freqs!, expected({ ...base, ctx: 2048, scaling: dyn.ropeScaling! }).freqs, { atol: 0, rtol: 1e-14 }, 'dynamic node');
    expect(ropeNodeFields(dyn, 2048).mscale).toBeUndefined();
    const y = ropeNodeFields(config({ ...base, scaling: yarn(4, 1024) }));
    expect(y.freqs).toHaveLength(4);
    expect(y.mscale).toBeCloseTo(0.1 * Math.log(4) + 1, 15);
  });

  it('buildLlamaGraph passes them to both rope nodes of every layer, for the session context length', () => {
    // the model's own context (4096) is the original one: scaled only for longer sessions
    const c = { ...config({ ...base, scaling: { type: 'dynamic', factor: 2, originalContextLength: 4096 } }), nLayers: 2 };
    const names = (l: number): string[] => ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].map((n) => `blk.${l}.${n}.weight`);
    const tensors = ['token_embd.weight', 'output_norm.weight', ...names(0), ...names(1)].map((name) => {
      const shape = name.includes('norm') ? [32] : name.includes('ffn_down') ? [32, 8] : name.includes('ffn_') ? [8, 32] : name === 'token_embd.weight' ? [8, 32] : [32, 32];
      return { name, type: 'f32' as const, shape, file: '/x', offset: 0, nbytes: shape.reduce((a, b) => a * b, 4) };
    });
    const plan = planWeights(c, tensors, 'test');
    const ropes = (ctx?: number) => buildLlamaGraph(c, plan, ctx !== undefined ? { contextLength: ctx } : {}).nodes.filter((n) => n.op === 'rope');
    expect(ropes()).toHaveLength(4);
    for (const n of ropes()) expect(n).not.toHaveProperty('freqs');
    for (const n of ropes(2048)) expect(n).not.toHaveProperty('freqs');
    const want = expected({ ...base, ctx: 16384, scaling: c.ropeScaling! }).freqs;
    for (const n of ropes(16384)) {
      expect(n).toMatchObject({ pairing: 'half', ropeDim: 8 });
      assertClose((n as { freqs: readonly number[] }).freqs, want, { atol: 0, rtol: 1e-14 }, 'graph node');
    }
  });

  it('scaling parameters that cannot work are ERR_MODEL_FORMAT naming the field', () => {
    const bad = (scaling: RopeScaling, pattern: RegExp): void => {
      let caught: unknown;
      try {
        config({ ...base, scaling });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(LlamaCudaError);
      expect(caught).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(pattern) });
    };
    bad({ type: 'linear', factor: 0 }, /factor = 0 must be a finite number > 0/);
    bad({ type: 'linear', factor: Number.NaN }, /factor = NaN/);
    bad({ type: 'dynamic', factor: 2, originalContextLength: 0.5 }, /originalContextLength = 0.5 is not an integer/);
    bad(yarn(4, 1024, { betaFast: -1 }), /betaFast = -1/);
    bad(yarn(4, 1024, { attentionFactor: Number.POSITIVE_INFINITY }), /attentionFactor = Infinity/);
    bad(llama3(8, 4, 4, 8192), /highFreqFactor 4 must be greater than lowFreqFactor 4/);
    bad({ type: 'ntk', factor: 2 } as unknown as RopeScaling, /unknown RoPE scaling type "ntk"/);
  });
});

describe('the rope op with explicit frequencies and mscale, every CPU tier', () => {
  const nHeads = 3;
  const headDim = 10;
  const ropeDim = 8;
  const freqs = [1, 0.31, 0.047, 0.0009];
  const mscale = 1.3;
  for (const pairing of ['interleaved', 'half'] as const) {
    it(pairing, async () => {
      const spec: GraphSpec = {
        weights: [], buffers: [{ name: 'q', width: nHeads * headDim }], kvCaches: [],
        nodes: [{ op: 'rope', a: 'q', nHeads, headDim, ropeDim, theta: 10000, freqScale: 1, pairing, freqs, mscale }],
      };
      const rng = new Rng(99);
      const x = Float32Array.from({ length: 5 * nHeads * headDim }, () => rng.uniform(-2, 2));
      const pos0 = 37;
      const want = new Float64Array(x);
      for (let i = 0; i < 5; i++) {
        for (let h = 0; h < nHeads; h++) {
          const o = (i * nHeads + h) * headDim;
          for (let p = 0; p < ropeDim / 2; p++) {
            const [a, b] = pairing === 'interleaved' ? [o + 2 * p, o + 2 * p + 1] : [o + p, o + p + ropeDim / 2];
            const angle = (pos0 + i) * freqs[p]!;
            want[a] = mscale * (x[a]! * Math.cos(angle) - x[b]! * Math.sin(angle));
            want[b] = mscale * (x[a]! * Math.sin(angle) + x[b]! * Math.cos(angle));
          }
        }
      }
      for (const tier of tiers()) {
        const [out] = await runGraph(spec, [], tier, [{ pos: pos0, inputs: { q: x }, outputs: ['q'] }], { maxTokens: 8, maxSeqLen: 64 });
        assertClose(out!['q']!, want, { atol: 2e-6, rtol: 2e-6 }, `rope ${pairing} tier ${tier}`);
      }
    });
  }
});

// ---- end to end -------------------------------------------------------------------------------

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const GGUF = 'models/stories260K/stories260K.gguf';
const TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 261, 298];
const VS_REFERENCE = { atol: 2e-3, rtol: 2e-3, nmse: 1e-8 };

async function logitsOf(model: LlamaModel): Promise<Float32Array> {
  const seq = model.createSequence({ allLogits: true });
  const a = (await seq.evaluate(TOKENS.slice(0, 9), { allLogits: true }))!;
  const b = (await seq.evaluate(TOKENS.slice(9), { allLogits: true }))!;
  await seq.dispose();
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

describeWithShared([BIN, TOK, GGUF], 'stories260K with scaled RoPE, end to end', () => {
  let cfg: Llama2cConfig;
  let weights: Llama2cWeights;
  let plainLogits: Float64Array[];
  const vocab = 512;

  /** The float64 reference's logits at every position of TOKENS with these frequencies. */
  const referenceLogits = (c: Case): Float64Array[] => {
    const { freqs, mscale } = expected(c);
    const ref = createScaledReference(cfg, weights, { freqs, mscale, pairing: 'interleaved' });
    return TOKENS.map((t, pos) => ref.forward(t, pos));
  };
  const check = (got: Float32Array, want: Float64Array[], what: string): void => {
    want.forEach((w, pos) => assertClose(got.subarray(pos * vocab, (pos + 1) * vocab), w, VS_REFERENCE, `${what} at position ${pos}`));
  };
  const hf = async (name: string, ropeScaling: Record<string, unknown>, contextLength?: number): Promise<Float32Array> => {
    const dir = tmp(name);
    await writeHfFolder(dir, cfg, weights, { config: { rope_scaling: ropeScaling } });
    const model = await loadModel(dir, { device: 'cpu', tokenizer: sharedPath(TOK), kvCacheType: 'f32', ...(contextLength ? { contextLength } : {}) });
    try {
      return await logitsOf(model);
    } finally {
      await model.dispose();
    }
  };
  const plainCase: Case = { theta: 10000, ropeDim: 8, ctx: 512 };

  beforeAll(() => {
    ({ config: cfg, weights } = parseLlama2cCheckpoint(readFileSync(sharedPath(BIN)), BIN));
    plainLogits = referenceLogits(plainCase);
  });

  it('linear x2: the logits of positions / 2, and not those of plain RoPE', async () => {
    const got = await hf('linear', { type: 'linear', factor: 2.0 });
    const want = referenceLogits({ ...plainCase, scaling: { type: 'linear', factor: 2 } });
    check(got, want, 'linear x2');
    // position 0 does not turn; later positions must differ from plain RoPE by far more than the tolerance
    assertClose(got.subarray(0, vocab), plainLogits[0]!, VS_REFERENCE, 'position 0 is unscaled');
    let moved = 0;
    for (let pos = 1; pos < TOKENS.length; pos++) {
      const d = got.subarray(pos * vocab, (pos + 1) * vocab).reduce((m, v, i) => Math.max(m, Math.abs(v - plainLogits[pos]![i]!)), 0);
      if (d > 0.1) moved++;
    }
    expect(moved).toBeGreaterThanOrEqual(TOKENS.length - 3);
  });

  it('dynamic NTK: plain within the trained context, the NTK base for a longer session', async () => {
    const scaling = { type: 'dynamic', factor: 2.0 };
    check(await hf('dynamic-short', scaling, 256), plainLogits, 'dynamic, context 256');
    const want = referenceLogits({ ...plainCase, ctx: 2048, scaling: { type: 'dynamic', factor: 2, originalContextLength: 512 } });
    check(await hf('dynamic-long', scaling, 2048), want, 'dynamic, context 2048');
  });

  it('YaRN (factor 4 over an original 128 positions: every regime of the ramp) and its mscale', async () => {
    const got = await hf('yarn', { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 128 });
    check(got, referenceLogits({ ...plainCase, scaling: yarn(4, 128) }), 'yarn');
  });

  it('llama3', async () => {
    const got = await hf('llama3', { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 64 });
    check(got, referenceLogits({ ...plainCase, scaling: llama3(8, 1, 4, 64) }), 'llama3');
  });

  describe('GGUF rope.scaling keys', () => {
    const withKeys = async (name: string, keys: Record<string, GgufEntry>): Promise<string> => {
      const g = await readGguf(sharedPath(GGUF));
      const bytes = readFileSync(sharedPath(GGUF));
      const meta = new Map(g.metadata);
      for (const [k, v] of Object.entries(keys)) meta.set(k, v);
      const out = tmp(`${name}.gguf`);
      await writeGguf(out, meta, g.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, data: bytes.subarray(t.offset, t.offset + t.nbytes) })));
      return out;
    };
    const str = (value: string): GgufEntry => ({ type: GgufValueType.STRING, value });
    const f32 = (value: number): GgufEntry => ({ type: GgufValueType.FLOAT32, value });
    const u32 = (value: number): GgufEntry => ({ type: GgufValueType.UINT32, value });

    it('yarn with original_context_length and betas: config and logits', async () => {
      const file = await withKeys('yarn', {
        'llama.rope.scaling.type': str('yarn'), 'llama.rope.scaling.factor': f32(4), 'llama.rope.scaling.original_context_length': u32(128),
        'llama.rope.scaling.yarn_beta_fast': f32(16), 'llama.rope.scaling.yarn_beta_slow': f32(2), 'llama.rope.scaling.finetuned': { type: GgufValueType.BOOL, value: true },
      });
      const scaling = yarn(4, 128, { betaFast: 16, betaSlow: 2 });
      const c = configFromGguf(await readGguf(file));
      expect(c.ropeScaling).toEqual(scaling);
      expect(c.ropeFreqScale).toBe(1);
      const model = await loadModel(file, { device: 'cpu', kvCacheType: 'f32', contextLength: 512 });
      try {
        check(await logitsOf(model), referenceLogits({ ...plainCase, scaling }), 'GGUF yarn');
      } finally {
        await model.dispose();
      }
    });

    it('linear (and the older rope.scale_linear key); none; the refused', async () => {
      const lin = await withKeys('linear', { 'llama.rope.scaling.type': str('linear'), 'llama.rope.scaling.factor': f32(2) });
      expect((await openModelFile(lin)).config.ropeScaling).toEqual({ type: 'linear', factor: 2 });
      const model = await loadModel(lin, { device: 'cpu', kvCacheType: 'f32', contextLength: 512 });
      try {
        check(await logitsOf(model), referenceLogits({ ...plainCase, scaling: { type: 'linear', factor: 2 } }), 'GGUF linear');
      } finally {
        await model.dispose();
      }
      const old = await withKeys('old-linear', { 'llama.rope.scale_linear': f32(4) });
      expect(configFromGguf(await readGguf(old)).ropeScaling).toEqual({ type: 'linear', factor: 4 });
      const none = await withKeys('none', { 'llama.rope.scaling.type': str('none'), 'llama.rope.scaling.factor': f32(4) });
      expect(configFromGguf(await readGguf(none)).ropeScaling).toBeUndefined();
      const refused = async (name: string, keys: Record<string, GgufEntry>, pattern: RegExp): Promise<void> => {
        const file = await withKeys(name, keys);
        await expect(readGguf(file).then(configFromGguf)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(pattern) });
      };
      await refused('longrope', { 'llama.rope.scaling.type': str('longrope'), 'llama.rope.scaling.factor': f32(4) }, /RoPE scaling "longrope" is not supported/);
      await refused('logmul', { 'llama.rope.scaling.type': str('yarn'), 'llama.rope.scaling.factor': f32(4), 'llama.rope.scaling.yarn_log_multiplier': f32(0.1) }, /yarn_log_multiplier = 0.1/);
    });
  });
});
