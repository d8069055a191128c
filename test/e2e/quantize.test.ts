/**
 * Quantization, end to end, on the real stories260K model:
 *
 *   - at load (`loadModel(path, { quantize })`): which tensors change storage, the stored values
 *     against a JavaScript re-implementation of the quantizer (test/helpers/op-runner.ts
 *     storedValues, written from native/core/quantize.cc), and logits close to the f32 model;
 *   - to a file (`quantizeModelFile`, the work of `llama-cuda quantize`): from the llama2.c
 *     .bin (with tok512.bin) and from the GGUF, to Q8_0 and Q4_0. The output is read back with
 *     the GGUF reader (metadata, tokenizer, tensor types and order), its blocks are compared
 *     byte for byte with ggml's reference quantizers (test/reference/quant.ts), and the model
 *     it holds is loaded, generates, and matches the float64 reference over its dequantized
 *     weights.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import type { GraphSpec, WeightSource } from '../../lib/addon-types.js';
import { type GgufFile, readGguf } from '../../lib/formats/gguf.js';
import { openModelFile } from '../../lib/formats/model-file.js';
import { loadModel } from '../../lib/index.js';
import { type PlanOptions, type WeightPlan, planWeights } from '../../lib/model/weights.js';
import { halfToInterleavedRows, quantizeModelFile } from '../../lib/quantize-file.js';
import { assertClose } from '../helpers/assert-close.js';
import { roundAs, roundWeights, writeHfFolder } from '../helpers/hf-model.js';
import { expectErrorCode } from '../helpers/errors.js';
import { runGraph, storedValues } from '../helpers/op-runner.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { ggufReference } from '../reference/gguf-reference.js';
import { argmax, parseLlama2cCheckpoint } from '../reference/llama2c-forward.js';
import { dequantF32, quantizeQ4_0, quantizeQ8_0 } from '../reference/quant.js';

const tmp = useTmpDir();
const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const GGUF = 'models/stories260K/stories260K.gguf';
const TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

/** Logits at every position of TOKENS (one step). */
async function allLogits(file: string, options: Parameters<typeof loadModel>[1] = {}): Promise<Float32Array> {
  const model = await loadModel(file, { device: 'cpu', kvCacheType: 'f32', contextLength: 64, ...options });
  try {
    const seq = model.createSequence({ allLogits: true });
    const logits = (await seq.evaluate(TOKENS, { allLogits: true }))!;
    await seq.dispose();
    return logits;
  } finally {
    await model.dispose();
  }
}

function nmse(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let e = 0;
  let r = 0;
  for (let i = 0; i < ref.length; i++) {
    e += ((got[i] as number) - (ref[i] as number)) ** 2;
    r += (ref[i] as number) ** 2;
  }
  return e / r;
}

/** The engine's values of one planned weight, read back row by row with an embed graph (reference kernels). */
async function storedWeight(plan: WeightPlan, name: string): Promise<Float32Array> {
  const spec = plan.specs.find((s) => s.name === name)!;
  const source = plan.sources.find((s) => s.weight === name)! as WeightSource;
  const [rows, cols] = spec.shape;
  const graph: GraphSpec = { weights: [spec], buffers: [{ name: 'out', width: cols }], kvCaches: [], nodes: [{ op: 'embed', out: 'out', weight: name }] };
  const tokens = Int32Array.from({ length: rows }, (_, i) => i);
  const [out] = await runGraph(graph, [source], 'reference', [{ pos: 0, tokens, outputs: ['out'] }], { maxTokens: rows, maxSeqLen: rows });
  return out!['out']!;
}

/** The f32 bytes of a tensor of a llama2.c file. */
function f32Tensor(file: string, t: { offset: number; nbytes: number }): Uint8Array {
  return new Uint8Array(readFileSync(file).subarray(t.offset, t.offset + t.nbytes));
}

describeWithShared([BIN, TOK, GGUF], 'quantize at load', () => {
  it('stores 2-D float weights as int4 / Q8_0 where their rows fill the groups; norms stay f32', async () => {
    const file = await openModelFile(sharedPath(BIN));
    const dtypes = (plan: WeightPlan): Record<string, string> =>
      Object.fromEntries(plan.specs.map((s) => [s.name, s.dtype + (s.group !== undefined ? `/${s.group}` : '')]));
    const g32 = dtypes(planWeights(file.config, file.tensors, 'm', { quantize: 'int4' }));
    expect(g32).toMatchObject({
      'token_embd.weight': 'int4/32', // the embedding too (see lib/model/weights.ts)
      'blk.0.attn_q.weight': 'int4/32', 'blk.0.attn_k.weight': 'int4/32', 'blk.4.ffn_up.weight': 'int4/32', 'blk.4.ffn_gate.weight': 'int4/32',
      'blk.0.ffn_down.weight': 'f32', // rows of 172 do not fill groups of 32
      'blk.0.attn_norm.weight': 'f32', 'output_norm.weight': 'f32',
    });
    expect(dtypes(planWeights(file.config, file.tensors, 'm', { quantize: 'int4', quantizeGroup: 64 }))).toMatchObject({ 'blk.0.attn_q.weight': 'int4/64', 'blk.0.ffn_down.weight': 'f32' });
    expect(dtypes(planWeights(file.config, file.tensors, 'm', { quantize: 'int4', quantizeGroup: 128 }))).toMatchObject({ 'blk.0.attn_q.weight': 'f32' });
    expect(dtypes(planWeights(file.config, file.tensors, 'm', { quantize: 'int8' }))).toMatchObject({ 'token_embd.weight': 'q8_0', 'blk.0.attn_v.weight': 'q8_0', 'blk.0.ffn_down.weight': 'f32' });
  });

  it('keeps tensors that are already quantized as they are', async () => {
    const out = tmp('plan.q4_0.gguf');
    await quantizeModelFile(sharedPath(GGUF), out, { type: 'q4_0' });
    const file = await openModelFile(out);
    const plan = planWeights(file.config, file.tensors, 'm', { quantize: 'int8' });
    expect(plan.specs.find((s) => s.name === 'blk.0.attn_q.weight')).toMatchObject({ dtype: 'int4', group: 32 });
    expect(plan.specs.find((s) => s.name === 'blk.0.ffn_down.weight')).toMatchObject({ dtype: 'f32' }); // f32 in the file: rows of 172 fit no group
  });

  it('rejects bad options', async () => {
    const file = await openModelFile(sharedPath(BIN));
    expectErrorCode(() => planWeights(file.config, file.tensors, 'm', { quantize: 'int3' as never }), 'ERR_INVALID_ARG', /quantize must be 'int4', 'int8' or 'nf4'/);
    expectErrorCode(() => planWeights(file.config, file.tensors, 'm', { quantize: 'int4', quantizeGroup: 16 as never }), 'ERR_INVALID_ARG', /quantizeGroup must be 32, 64 or 128/);
    expectErrorCode(() => planWeights(file.config, file.tensors, 'm', { quantize: 'int8', quantizeGroup: 64 }), 'ERR_INVALID_ARG', /applies only to quantize: 'int4'/);
    await expect(loadModel(sharedPath(GGUF), { device: 'cpu', quantize: 'q4' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });

  for (const [quantize, group] of [['int4', 32], ['int4', 64], ['int8', undefined]] as const) {
    it(`${quantize}${group ? ` g${group}` : ''}: every stored weight equals the JavaScript quantizer's values`, async () => {
      const file = await openModelFile(sharedPath(BIN));
      const plan = planWeights(file.config, file.tensors, 'm', { quantize, ...(group !== undefined ? { quantizeGroup: group } : {}) });
      const byName = new Map(file.tensors.map((t) => [t.name, t]));
      let checked = 0;
      for (const spec of plan.specs) {
        if (spec.dtype === 'f32') continue;
        const bytes = f32Tensor(file.path, byName.get(spec.name)!);
        const want = storedValues({ source: 'f32', storage: spec.dtype, ...(spec.group !== undefined ? { group: spec.group } : {}) }, bytes);
        const got = await storedWeight(plan, spec.name);
        let diff = -1;
        for (let i = 0; i < want.length && diff < 0; i++) if (got[i] !== want[i]) diff = i;
        expect(diff, `${spec.name}: first difference at ${diff}: ${got[diff]} vs ${want[diff]}`).toBe(-1);
        checked++;
      }
      expect(checked).toBe(1 + 5 * 6); // the embedding and 6 matrices per layer (ffn_down's rows of 172 stay f32)
    });
  }

  describe('logits stay close to the f32 model', () => {
    let f32Logits: Float32Array;
    beforeAll(async () => {
      f32Logits = await allLogits(sharedPath(BIN), { tokenizer: sharedPath(TOK) });
    });

    /** NMSE of the quantized weights against the f32 ones, over every matrix the plan quantizes. */
    async function weightNmse(options: PlanOptions): Promise<number> {
      const file = await openModelFile(sharedPath(BIN));
      const plan = planWeights(file.config, file.tensors, 'm', options);
      const byName = new Map(file.tensors.map((t) => [t.name, t]));
      let err = 0;
      let ref = 0;
      for (const spec of plan.specs) {
        if (spec.dtype === 'f32') continue;
        const bytes = f32Tensor(file.path, byName.get(spec.name)!);
        const x = dequantF32(bytes);
        const y = storedValues({ source: 'f32', storage: spec.dtype, ...(spec.group !== undefined ? { group: spec.group } : {}) }, bytes);
        for (let i = 0; i < x.length; i++) {
          err += (x[i]! - y[i]!) ** 2;
          ref += x[i]! ** 2;
        }
      }
      return err / ref;
    }

    /*
     * The bound: each quantized matrix perturbs the activations by about its own relative error,
     * the perturbations of different matrices are independent and add in variance through the
     * residual stream, and RMSNorm rescales rather than amplifies; so the NMSE of the logits is
     * a small multiple of the NMSE of the weights. Measured on the 21 positions: weights int4
     * g32 / g64 / int8 = 6.7e-3 / 8.3e-3 / 2.9e-5, logits 0.0126 / 0.0144 / 7.5e-5, a ratio of
     * 1.7 to 2.6; the bound is 4x. (Quantizing the embedding, here also the tied classifier,
     * accounts for 0.0019 of int4 g32's 0.0126.) int8 must also agree on every next token.
     */
    for (const [quantize, group] of [['int4', 32], ['int4', 64], ['int8', undefined]] as const) {
      it(`${quantize}${group ? ` g${group}` : ''}: logit NMSE < 4x the weights' NMSE, and the next token mostly agrees`, async () => {
        const options = { quantize, ...(group !== undefined ? { quantizeGroup: group } : {}) } as const;
        const logits = await allLogits(sharedPath(BIN), { tokenizer: sharedPath(TOK), ...options });
        const w = await weightNmse(options);
        expect(w).toBeLessThan(quantize === 'int8' ? 5e-5 : 1e-2);
        expect(nmse(logits, f32Logits)).toBeLessThan(4 * w);
        const vocab = 512;
        let agree = 0;
        for (let p = 0; p < TOKENS.length; p++) {
          if (argmax(logits.subarray(p * vocab, (p + 1) * vocab)) === argmax(f32Logits.subarray(p * vocab, (p + 1) * vocab))) agree++;
        }
        expect(agree).toBeGreaterThanOrEqual(quantize === 'int8' ? TOKENS.length : TOKENS.length - 4);
      });
    }
  });
});

// ---- quantize to a file ---------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly source: string;
  readonly tokenizer?: string;
  readonly type: 'q8_0' | 'q4_0';
}

const CASES: Case[] = [
  { name: 'stories260K.bin → q8_0', source: BIN, tokenizer: TOK, type: 'q8_0' },
  { name: 'stories260K.bin → q4_0', source: BIN, tokenizer: TOK, type: 'q4_0' },
  { name: 'stories260K.gguf → q8_0', source: GGUF, type: 'q8_0' },
  { name: 'stories260K.gguf → q4_0', source: GGUF, type: 'q4_0' },
];

const LLAMA2C_ORDER = ['token_embd', 'output_norm'].map((n) => `${n}.weight`).concat(
  Array.from({ length: 5 }, (_, l) => ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_norm', 'ffn_gate', 'ffn_down', 'ffn_up', 'ffn_norm'].map((n) => `blk.${l}.${n}.weight`)).flat(),
);

describeWithShared([BIN, TOK, GGUF], 'quantizeModelFile (llama-cuda quantize)', () => {
  let stories: GgufFile;
  beforeAll(async () => {
    stories = await readGguf(sharedPath(GGUF));
  });

  for (const c of CASES) {
    describe(c.name, () => {
      let out: string;
      let g: GgufFile;
      beforeAll(async () => {
        out = tmp(`${path.basename(c.source)}.${c.type}.gguf`);
        const result = await quantizeModelFile(sharedPath(c.source), out, { type: c.type, ...(c.tokenizer ? { tokenizer: sharedPath(c.tokenizer) } : {}) });
        expect(result.type).toBe(c.type);
        g = await readGguf(out);
        expect(result.bytes).toBe(g.fileSize);
      });

      it('has the Llama metadata, the file type and the quantization version', () => {
        const meta = (k: string): unknown => g.metadata.get(k)?.value;
        expect(meta('general.architecture')).toBe('llama');
        expect(meta('general.file_type')).toBe(c.type === 'q8_0' ? 7 : 2);
        expect(meta('general.quantization_version')).toBe(2);
        expect(meta('llama.embedding_length')).toBe(64);
        expect(meta('llama.feed_forward_length')).toBe(172);
        expect(meta('llama.block_count')).toBe(5);
        expect(meta('llama.attention.head_count')).toBe(8);
        expect(meta('llama.attention.head_count_kv')).toBe(4);
        expect(meta('llama.rope.dimension_count')).toBe(8);
        expect(meta('llama.rope.freq_base')).toBe(10000);
        expect(meta('llama.attention.layer_norm_rms_epsilon')).toBe(Math.fround(1e-5));
        // the .bin header's seq_len; the GGUF's own value is copied
        expect(meta('llama.context_length')).toBe(c.source === BIN ? 512 : 128);
        expect(g.metadata.get('general.file_type')?.type).toBe(4); // u32
      });

      it("has the tokenizer: the same pieces, scores and types as llama.cpp's conversion of tok512", () => {
        for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
          expect(Array.from(g.metadata.get(k)!.value as ArrayLike<unknown>), k).toEqual(Array.from(stories.metadata.get(k)!.value as ArrayLike<unknown>));
        }
        expect(g.metadata.get('tokenizer.ggml.model')?.value).toBe('llama');
        for (const [k, v] of [['bos_token_id', 1], ['eos_token_id', 2], ['unknown_token_id', 0]] as const) expect(g.metadata.get(`tokenizer.ggml.${k}`)?.value).toBe(v);
      });

      it('has the tensors in order: matrices quantized where rows fill 32-blocks, the rest f32', () => {
        const names = g.tensors.map((t) => t.name);
        if (c.source === BIN) expect(names).toEqual(LLAMA2C_ORDER); // tied classifier: no output.weight
        else expect(names).toEqual(stories.tensors.map((t) => t.name));
        for (const t of g.tensors) {
          const want = t.shape.length === 2 && t.shape[1]! % 32 === 0 ? c.type : 'f32';
          expect(t.type, t.name).toBe(want);
          expect(t.shape, t.name).toEqual(stories.tensors.find((s) => s.name === t.name)!.shape);
        }
      });

      it("its blocks are ggml's reference quantization of the source, byte for byte", () => {
        const outBytes = readFileSync(out);
        const srcBytes = readFileSync(sharedPath(GGUF)); // same f32 weights as the .bin
        const quantize = c.type === 'q8_0' ? quantizeQ8_0 : quantizeQ4_0;
        for (const t of g.tensors) {
          const s = stories.tensors.find((x) => x.name === t.name)!;
          const src = srcBytes.subarray(s.offset, s.offset + s.nbytes);
          const want = t.type === 'f32' ? src : quantize(dequantF32(src));
          expect(Buffer.compare(outBytes.subarray(t.offset, t.offset + t.nbytes), want), t.name).toBe(0);
        }
      });

      it('loads, generates, and matches the float64 reference over its dequantized weights', async () => {
        const reference = await ggufReference(out, 64);
        const refLogits = TOKENS.map((t, pos) => reference.forward(t, pos));
        for (const tier of ['reference', 'auto'] as const) {
          const model = await loadModel(out, { device: 'cpu', cpuKernels: tier, kvCacheType: 'f32', contextLength: 64 });
          try {
            expect(model.info.tensorTypes[c.type]).toBeGreaterThan(0);
            const seq = model.createSequence({ allLogits: true });
            const logits = (await seq.evaluate(TOKENS, { allLogits: true }))!;
            await seq.dispose();
            // the reference tier dequantizes exactly and accumulates in double; the fast tiers
            // quantize activations to int8 blocks for Q8_0/Q4_0 weights (see gguf-types.test.ts)
            const tol = tier === 'reference' ? { atol: 1e-4, rtol: 1e-4, nmse: 1e-11 } : { atol: 0.3, rtol: 0.05, nmse: 3e-3 };
            refLogits.forEach((ref, pos) => assertClose(logits.subarray(pos * 512, (pos + 1) * 512), ref, tol, `${c.name} ${tier} position ${pos}`));
            if (tier === 'reference') {
              const r = await model.complete('Once upon a time', { maxTokens: 30, temperature: 0 });
              expect(r.tokens.length).toBe(30);
              expect(r.text.length).toBeGreaterThan(40);
            }
          } finally {
            await model.dispose();
          }
        }
      });
    });
  }

  it('the .bin and the .gguf give the same tensor bytes', async () => {
    const a = tmp('same-a.gguf');
    const b = tmp('same-b.gguf');
    await quantizeModelFile(sharedPath(BIN), a, { type: 'q4_0', tokenizer: sharedPath(TOK) });
    await quantizeModelFile(sharedPath(GGUF), b, { type: 'q4_0' });
    const [ga, gb] = [await readGguf(a), await readGguf(b)];
    const [ba, bb] = [readFileSync(a), readFileSync(b)];
    for (const t of ga.tensors) {
      const u = gb.tensors.find((x) => x.name === t.name)!;
      expect(Buffer.compare(ba.subarray(t.offset, t.offset + t.nbytes), bb.subarray(u.offset, u.offset + u.nbytes)), t.name).toBe(0);
    }
  });

  it('greedy Q8_0 output follows the f32 model', async () => {
    const out = tmp('greedy.q8_0.gguf');
    await quantizeModelFile(sharedPath(GGUF), out, { type: 'q8_0' });
    const run = async (file: string): Promise<number[]> => {
      const model = await loadModel(file, { device: 'cpu' });
      try {
        return [...(await model.complete('Once upon a time', { maxTokens: 40, temperature: 0 })).tokens];
      } finally {
        await model.dispose();
      }
    };
    expect(await run(out)).toEqual(await run(sharedPath(GGUF)));
  });

  for (const dtype of ['F32', 'BF16'] as const) {
    it(`a Hugging Face folder (${dtype}) gives the GGUF's interleaved q/k rows back`, async () => {
      // stories260K as transformers lays it out: q/k rows in half-split RoPE order
      const { config, weights } = parseLlama2cCheckpoint(readFileSync(sharedPath(BIN)));
      const dir = tmp(`hf-${dtype}`);
      await writeHfFolder(dir, config, dtype === 'F32' ? weights : roundWeights(weights, 'BF16'), { dtype });
      const fromHf = tmp(`hf-${dtype}.q8_0.gguf`);
      await quantizeModelFile(dir, fromHf, { type: 'q8_0', tokenizer: sharedPath(TOK) });
      const g = await readGguf(fromHf);
      expect(g.tensors.map((t) => t.name)).toEqual(LLAMA2C_ORDER);
      expect(g.metadata.get('llama.rope.dimension_count')?.value).toBe(8);
      // the same bytes as quantizing the (identically rounded) weights of the llama2.c file
      const bytes = readFileSync(fromHf);
      const src = readFileSync(sharedPath(GGUF));
      for (const t of g.tensors) {
        const s = stories.tensors.find((x) => x.name === t.name)!;
        let values = dequantF32(src.subarray(s.offset, s.offset + s.nbytes));
        if (dtype === 'BF16') values = roundAs('BF16', values);
        const want = t.type === 'q8_0' ? quantizeQ8_0(values) : new Uint8Array(Float32Array.from(values).buffer);
        expect(Buffer.compare(bytes.subarray(t.offset, t.offset + t.nbytes), want), t.name).toBe(0);
      }
    });
  }

  it('reports errors with codes and leaves no partial file', async () => {
    await expect(quantizeModelFile(sharedPath(GGUF), sharedPath(GGUF), { type: 'q8_0' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/is the input file/) });
    await expect(quantizeModelFile(sharedPath(GGUF), tmp('x.gguf'), { type: 'q5_0' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(quantizeModelFile(tmp('missing.gguf'), tmp('x.gguf'), { type: 'q8_0' })).rejects.toMatchObject({ code: 'ERR_IO' });
    // a llama2.c checkpoint needs its tokenizer (there is no tokenizer.bin beside stories260K.bin)
    await expect(quantizeModelFile(sharedPath(BIN), tmp('x.gguf'), { type: 'q8_0' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/tokenizer/) });
    const dir = tmp('no-such-dir');
    await expect(quantizeModelFile(sharedPath(GGUF), path.join(dir, 'x.gguf'), { type: 'q8_0' })).rejects.toMatchObject({ code: 'ERR_IO' });
  });
});

describe('Hugging Face RoPE order', () => {
  it('half-split pairs map to interleaved pairs, and back', () => {
    // HF's conversion from Meta's layout puts Meta row 2p + s of a head at row s·(dim/2) + p
    for (const [headDim, ropeDim] of [[8, 8], [128, 128], [64, 32]] as const) {
      const from = halfToInterleavedRows(headDim, ropeDim);
      const hfRowOfMeta = (r: number): number => (r < ropeDim ? (r % 2) * (ropeDim / 2) + Math.floor(r / 2) : r);
      for (let r = 0; r < headDim; r++) expect(from[r], `row ${r}`).toBe(hfRowOfMeta(r));
      expect(new Set(from).size).toBe(headDim);
    }
  });
});
