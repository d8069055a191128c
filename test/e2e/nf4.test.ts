/**
 * `loadModel(path, { quantize: 'nf4' })` on the real stories260K model:
 *   - which tensors become NF4 (rows that fill 64-blocks: all matrices but ffn_down's 172-wide
 *     rows, the tied embedding too), and every stored value against the JavaScript NF4
 *     quantizer (test/helpers/op-runner.ts requantizeNf4, written from native/core/nf4.cc);
 *   - the CPU backend and the CUDA backend (SIMT emulator) against the float64 reference forward
 *     over those dequantized weights;
 *   - the quantization error next to int4 group-affine of the same size (groups of 64: 4.5 bits a
 *     weight for both), and perplexity (model.perplexity) within reach of the f32 model (the
 *     numbers, with int4 g32: bench/e2e/nf4-perplexity.ts and the README's NF4 section).
 */
import { readFileSync } from 'node:fs';

import { beforeAll, expect, it } from 'vitest';

import { openModelFile } from '../../lib/formats/model-file.js';
import { type LlamaModel, inspectModel, loadModel } from '../../lib/index.js';
import { loadModelWith } from '../../lib/load-model.js';
import { planWeights } from '../../lib/model/weights.js';
import type { GraphSpec, WeightSource } from '../../lib/addon-types.js';
import { assertClose } from '../helpers/assert-close.js';
import { simtChoice, simtMissing } from '../helpers/graphs.js';
import { requantizeNf4, runGraph, storedValues } from '../helpers/op-runner.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { type Llama2cConfig, type Llama2cWeights, createLlama2cReference, parseLlama2cCheckpoint } from '../reference/llama2c-forward.js';
import { STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];
/** As test/formats/hf-folder.test.ts: f32 activations and KV cache against float64. */
const VS_REFERENCE = { atol: 2e-3, rtol: 2e-3, nmse: 1e-8 };

async function logitsOf(model: LlamaModel): Promise<Float32Array> {
  const seq = model.createSequence({ allLogits: true });
  const parts: Float32Array[] = [];
  // chunks of 7 rows: the decode kernels on CUDA (n <= 8), whose arithmetic is f32 like the CPU's
  for (let i = 0; i < TOKENS.length; i += 7) parts.push((await seq.evaluate(TOKENS.slice(i, i + 7), { allLogits: true }))!);
  await seq.dispose();
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describeWithShared([BIN, TOK], "quantize: 'nf4' on stories260K", () => {
  let cfg: Llama2cConfig;
  let weights: Llama2cWeights;
  let nf4Weights: Llama2cWeights;
  beforeAll(() => {
    ({ config: cfg, weights } = parseLlama2cCheckpoint(readFileSync(sharedPath(BIN)), BIN));
    const q = requantizeNf4;
    const tokenEmbedding = q(weights.tokenEmbedding);
    nf4Weights = {
      ...weights,
      tokenEmbedding,
      wcls: weights.wcls === weights.tokenEmbedding ? tokenEmbedding : q(weights.wcls),
      wq: weights.wq.map(q), wk: weights.wk.map(q), wv: weights.wv.map(q), wo: weights.wo.map(q),
      w1: weights.w1.map(q), w3: weights.w3.map(q), // w2 (ffn_down, rows of 172) stays f32
    };
  });

  it('stores every matrix whose rows fill 64-blocks as NF4, each value as the JavaScript quantizer gives it', async () => {
    const file = await openModelFile(sharedPath(BIN));
    const plan = planWeights(file.config, file.tensors, 'm', { quantize: 'nf4' });
    const dtypes = Object.fromEntries(plan.specs.map((s) => [s.name, s.dtype]));
    expect(dtypes).toMatchObject({
      'token_embd.weight': 'nf4', 'blk.0.attn_q.weight': 'nf4', 'blk.4.ffn_gate.weight': 'nf4', 'blk.2.attn_output.weight': 'nf4',
      'blk.0.ffn_down.weight': 'f32', 'blk.0.attn_norm.weight': 'f32',
    });
    expect(plan.specs.filter((s) => s.dtype === 'nf4')).toHaveLength(1 + 5 * 6);
    // each engine weight read back row by row (embed op, reference kernels) against the JS quantizer
    const byName = new Map(file.tensors.map((t) => [t.name, t]));
    const bytes = readFileSync(sharedPath(BIN));
    for (const spec of plan.specs) {
      if (spec.dtype !== 'nf4') continue;
      const t = byName.get(spec.name)!;
      const want = storedValues({ source: 'f32', storage: 'nf4' }, new Uint8Array(bytes.subarray(t.offset, t.offset + t.nbytes)));
      const source = plan.sources.find((x) => x.weight === spec.name)! as WeightSource;
      const [rows, cols] = spec.shape;
      const graph: GraphSpec = { weights: [spec], buffers: [{ name: 'out', width: cols }], kvCaches: [], nodes: [{ op: 'embed', out: 'out', weight: spec.name }] };
      const tokens = Int32Array.from({ length: rows }, (_, i) => i);
      const [out] = await runGraph(graph, [source], 'reference', [{ pos: 0, tokens, outputs: ['out'] }], { maxTokens: rows, maxSeqLen: rows });
      const got = out!['out']!;
      let diff = -1;
      for (let i = 0; i < want.length && diff < 0; i++) if (got[i] !== want[i]) diff = i;
      expect(diff, `${spec.name}: first difference at ${diff}: ${got[diff]} vs ${want[diff]}`).toBe(-1);
    }
  });

  it('inspectModel with quantize: nf4 predicts the engine weight bytes', async () => {
    const report = await inspectModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), quantize: 'nf4' });
    const model = await loadModel(sharedPath(BIN), { device: 'cpu', tokenizer: sharedPath(TOK), quantize: 'nf4' });
    try {
      expect(report.memory!.weights).toBe(model.info.weightBytes);
      // 31 NF4 matrices at 4.5 bits a weight, ffn_down and the norms in f32
      expect(model.info.weightBytes).toBe(337888);
    } finally {
      await model.dispose();
    }
  });

  const targets = [
    { name: 'cpu', load: (o: Parameters<typeof loadModel>[1]) => loadModel(sharedPath(BIN), { ...o, device: 'cpu' }) },
    {
      name: 'cuda (SIMT emulator)',
      load: (o: Parameters<typeof loadModel>[1]) => {
        const choice = simtChoice();
        if (choice === undefined) throw new Error(`no SIMT build: ${simtMissing()}`);
        return loadModelWith(choice, sharedPath(BIN), o);
      },
    },
  ];
  for (const target of targets) {
    it(`${target.name}: logits equal the float64 reference over the NF4-dequantized weights`, async (ctx) => {
      if (target.name !== 'cpu' && simtMissing() !== undefined) {
        if (process.env['CI'] === 'true') throw new Error(`SIMT build missing: ${simtMissing()}`);
        ctx.skip();
      }
      const model = await target.load({ tokenizer: sharedPath(TOK), kvCacheType: 'f32', contextLength: 64, quantize: 'nf4' });
      try {
        const logits = await logitsOf(model);
        const ref = createLlama2cReference(cfg, nf4Weights);
        TOKENS.forEach((t, pos) => {
          assertClose(logits.subarray(pos * cfg.vocabSize, (pos + 1) * cfg.vocabSize), ref.forward(t, pos), VS_REFERENCE, `${target.name} position ${pos}`);
        });
      } finally {
        await model.dispose();
      }
    });
  }

  it('has about the weight error of int4 g64 (the same bytes) and a perplexity within 25% of f32', async () => {
    // relative weight error over the matrices both quantize (the same set)
    const all = (w: Llama2cWeights): Float64Array[] => [w.tokenEmbedding, ...w.wq, ...w.wk, ...w.wv, ...w.wo, ...w.w1, ...w.w3];
    const orig = all(weights);
    const nf4 = all(nf4Weights);
    const int4 = orig.map((x) => storedValues({ source: 'f32', storage: 'int4', group: 64 }, new Uint8Array(Float32Array.from(x).buffer)));
    const err = (qs: Float64Array[]): number => {
      let e = 0;
      let r = 0;
      orig.forEach((x, i) => {
        for (let j = 0; j < x.length; j++) {
          e += (x[j]! - qs[i]![j]!) ** 2;
          r += x[j]! ** 2;
        }
      });
      return e / r;
    };
    // Measured: NMSE nf4 8.94e-3, int4 g64 8.26e-3 (ratio 1.08): this tiny model's blocks are not
    // the normal distribution NF4's levels are placed for, and min/max affine spends no level on
    // an unused sign. Held: both below 1e-2 and within 25% of each other.
    const nf4Err = err(nf4);
    const int4Err = err(int4);
    expect(nf4Err).toBeLessThan(1e-2);
    expect(int4Err).toBeLessThan(1e-2);
    expect(Math.abs(nf4Err / int4Err - 1)).toBeLessThan(0.25);

    const ppl = async (options: Parameters<typeof loadModel>[1]): Promise<number> => {
      const model = await loadModel(sharedPath(BIN), { device: 'cpu', tokenizer: sharedPath(TOK), kvCacheType: 'f32', ...options });
      try {
        return (await model.perplexity(STORIES260K_GREEDY_TEXT, { ctx: 64 })).perplexity;
      } finally {
        await model.dispose();
      }
    };
    const base = await ppl({});
    const q = await ppl({ quantize: 'nf4' });
    expect(q).toBeGreaterThan(base);
    expect(q).toBeLessThan(1.25 * base);
  });
});
