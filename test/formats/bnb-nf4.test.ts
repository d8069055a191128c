/**
 * bitsandbytes 4-bit NF4 checkpoints (lib/formats/bnb-nf4.ts): a Hugging Face folder whose
 * Linear weights this test quantizes itself, with a float64 NF4 quantizer written here from the
 * format (QLoRA's table, absmax per 64-block over the flattened weight, codes two a byte with the
 * earlier element in the high nibble; layer 1 also double-quantized: absmax - mean coded in 8 bits
 * per 256-block with an f32 absmax and the offset), saved in the tensor layout transformers
 * writes (`.weight` U8 [n/2, 1], `.absmax`, `.quant_map`, `.nested_absmax`, `.nested_quant_map`,
 * `.quant_state.bitsandbytes__nf4` JSON). Checked:
 *   - every stored engine value equals table[code] x scale exactly (the scale decoded in f32 as
 *     bitsandbytes does), for row-aligned weights (NF4 storage) and for down_proj, whose 160-wide
 *     rows put blocks across rows (kept as exact f32 values);
 *   - the model on the CPU and on the CUDA backend (SIMT emulator) against the float64 reference
 *     forward over those dequantized weights;
 *   - readable errors for fp4, a foreign quant_map and a missing absmax.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import type { GraphSpec, WeightSource } from '../../lib/addon-types.js';
import { NF4_VALUES } from '../../lib/formats/bnb-nf4.js';
import { openModelFile } from '../../lib/formats/model-file.js';
import type { SafetensorsTensorToWrite } from '../../lib/formats/safetensors.js';
import { type LlamaModel, loadModel } from '../../lib/index.js';
import { loadModelWith } from '../../lib/load-model.js';
import { planWeights } from '../../lib/model/weights.js';
import { assertClose } from '../helpers/assert-close.js';
import { simtChoice, simtMissing } from '../helpers/graphs.js';
import { randomWeights, tinyConfig, writeHfFolder, writeTinyTokenizer } from '../helpers/hf-model.js';
import { runGraph } from '../helpers/op-runner.js';
import { useTmpDir } from '../helpers/tmp.js';
import { type Llama2cWeights, createLlama2cReference } from '../reference/llama2c-forward.js';

const tmp = useTmpDir();
const f32 = Math.fround;

// dim 64 (q/k/v/o/gate/up rows are single 64-blocks), hidden 160 (down_proj rows of 160: blocks
// cross rows), two layers: layer 0 plain absmax, layer 1 double-quantized.
const cfg = tinyConfig({ dim: 64, hiddenDim: 160, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 64, shared: false });
const weights = randomWeights(cfg, 41);
const LINEAR = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
const NESTED_BLOCK = 256;

/** The 8-bit map of double quantization (any 256 values serve: the file carries it). */
const NESTED_MAP = Float32Array.from({ length: 256 }, (_, i) => f32(-1 + (2 * i) / 255));

interface Quantized {
  readonly tensors: SafetensorsTensorToWrite[];
  /** What the weight means after bitsandbytes' dequantization, in the folder's (row) order. */
  readonly values: Float64Array;
}

function nearest(table: ArrayLike<number>, v: number): number {
  let best = 0;
  for (let k = 1; k < table.length; k++) if (Math.abs(v - (table[k] as number)) < Math.abs(v - (table[best] as number))) best = k;
  return best;
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** Float64 NF4 quantization of a [rows, cols] weight in bitsandbytes' packed layout. */
function quantizeBnb(name: string, rows: number, cols: number, w: Float64Array, nested: boolean, state: Record<string, unknown> = {}): Quantized {
  const n = rows * cols;
  const nblocks = Math.ceil(n / 64);
  const absmax = new Float32Array(nblocks);
  for (let b = 0; b < nblocks; b++) for (let i = 64 * b; i < Math.min(n, 64 * b + 64); i++) absmax[b] = Math.max(absmax[b]!, Math.abs(w[i]!));
  const codes = new Uint8Array(Math.ceil(n / 2));
  for (let i = 0; i < n; i++) {
    const a = absmax[Math.floor(i / 64)]!;
    const q = a === 0 ? 7 : nearest(NF4_VALUES, w[i]! / a);
    codes[i >> 1]! |= i % 2 === 0 ? q << 4 : q;
  }
  // the scales the file will decode to (f32, as bitsandbytes computes them)
  let scales = absmax;
  const tensors: SafetensorsTensorToWrite[] = [{ name: `${name}.weight`, dtype: 'U8', shape: [codes.length, 1], data: codes }];
  const json: Record<string, unknown> = { quant_type: 'nf4', blocksize: 64, dtype: 'float32', shape: [rows, cols] };
  if (nested) {
    let mean = 0;
    for (const a of absmax) mean += a;
    const offset = f32(mean / nblocks);
    const centered = absmax.map((a) => a - offset);
    const nn = Math.ceil(nblocks / NESTED_BLOCK);
    const nestedAbsmax = new Float32Array(nn);
    for (let b = 0; b < nblocks; b++) nestedAbsmax[Math.floor(b / NESTED_BLOCK)] = Math.max(nestedAbsmax[Math.floor(b / NESTED_BLOCK)]!, Math.abs(centered[b]!));
    const q8 = Uint8Array.from(centered, (c, b) => nearest(NESTED_MAP, c / nestedAbsmax[Math.floor(b / NESTED_BLOCK)]!));
    scales = Float32Array.from(q8, (q, b) => f32(f32(NESTED_MAP[q]! * nestedAbsmax[Math.floor(b / NESTED_BLOCK)]!) + offset));
    tensors.push(
      { name: `${name}.weight.absmax`, dtype: 'U8', shape: [nblocks], data: q8 },
      { name: `${name}.weight.nested_absmax`, dtype: 'F32', shape: [nn], data: f32Bytes(nestedAbsmax) },
      { name: `${name}.weight.nested_quant_map`, dtype: 'F32', shape: [256], data: f32Bytes(NESTED_MAP) },
    );
    Object.assign(json, { nested_blocksize: NESTED_BLOCK, nested_dtype: 'float32', nested_offset: offset });
  } else {
    tensors.push({ name: `${name}.weight.absmax`, dtype: 'F32', shape: [nblocks], data: f32Bytes(absmax) });
  }
  tensors.push(
    { name: `${name}.weight.quant_map`, dtype: 'F32', shape: [16], data: f32Bytes(Float32Array.from(NF4_VALUES)) },
    { name: `${name}.weight.quant_state.bitsandbytes__nf4`, dtype: 'U8', shape: [0], data: new Uint8Array(0) },
  );
  const stateBytes = new TextEncoder().encode(JSON.stringify({ ...json, ...state }));
  tensors[tensors.length - 1] = { name: `${name}.weight.quant_state.bitsandbytes__nf4`, dtype: 'U8', shape: [stateBytes.length], data: stateBytes };
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const byte = codes[i >> 1]!;
    values[i] = f32(NF4_VALUES[i % 2 === 0 ? byte >> 4 : byte & 15]! * scales[Math.floor(i / 64)]!);
  }
  return { tensors, values };
}

/** transformers' half-split Q/K rows back into Meta's interleaved order (inverse of permuteToHalf). */
function permuteFromHalf(w: Float64Array, heads: number, headDim: number, cols: number): Float64Array {
  const out = new Float64Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const base = h * headDim;
      out.set(w.subarray((base + i) * cols, (base + i + 1) * cols), (base + 2 * i) * cols);
      out.set(w.subarray((base + i + half) * cols, (base + i + half + 1) * cols), (base + 2 * i + 1) * cols);
    }
  }
  return out;
}

interface BnbFolder {
  readonly dir: string;
  readonly tokenizer: string;
  /** HF tensor name (without .weight) -> dequantized values in the folder's order. */
  readonly values: Map<string, Float64Array>;
  readonly reference: Llama2cWeights;
}

/** Writes the bitsandbytes folder; `tweak` may change one weight's quant_state or drop tensors. */
async function writeBnbFolder(name: string, tweak: { state?: Record<string, unknown>; drop?: string; map?: Float32Array } = {}): Promise<BnbFolder> {
  const dir = tmp(name);
  const values = new Map<string, Float64Array>();
  await writeHfFolder(dir, cfg, weights, {
    withLmHead: true,
    config: { quantization_config: { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true } },
    tensors: (ts) =>
      ts.flatMap((t) => {
        const m = /^(model\.layers\.(\d+)\.(.+))\.weight$/.exec(t.name);
        if (m === null || !LINEAR.includes(m[3]!)) return [t];
        const w = Float64Array.from(new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)));
        const q = quantizeBnb(m[1]!, t.shape[0]!, t.shape[1]!, w, m[2] === '1', m[2] === '1' && m[3] === 'mlp.up_proj' ? tweak.state : {});
        values.set(m[1]!, q.values);
        let out = q.tensors.filter((x) => x.name !== tweak.drop);
        if (tweak.map && m[2] === '0' && m[3] === 'self_attn.v_proj') {
          out = out.map((x) => (x.name.endsWith('.quant_map') ? { ...x, data: f32Bytes(tweak.map!) } : x));
        }
        return out;
      }),
  });
  const tokenizer = path.join(dir, 'tokenizer.bin');
  writeTinyTokenizer(tokenizer, cfg.vocabSize);
  const v = (l: number, m: string): Float64Array => values.get(`model.layers.${l}.${m}`)!;
  const layers = [0, 1];
  const reference: Llama2cWeights = {
    ...weights,
    wq: layers.map((l) => permuteFromHalf(v(l, 'self_attn.q_proj'), cfg.nHeads, cfg.headDim, cfg.dim)),
    wk: layers.map((l) => permuteFromHalf(v(l, 'self_attn.k_proj'), cfg.nKvHeads, cfg.headDim, cfg.dim)),
    wv: layers.map((l) => v(l, 'self_attn.v_proj')),
    wo: layers.map((l) => v(l, 'self_attn.o_proj')),
    w1: layers.map((l) => v(l, 'mlp.gate_proj')),
    w3: layers.map((l) => v(l, 'mlp.up_proj')),
    w2: layers.map((l) => v(l, 'mlp.down_proj')),
    // f32 in the folder: the float64 weights rounded as stored
    tokenEmbedding: Float64Array.from(Float32Array.from(weights.tokenEmbedding)),
    wcls: Float64Array.from(Float32Array.from(weights.wcls)),
    rmsAtt: weights.rmsAtt.map((a) => Float64Array.from(Float32Array.from(a))),
    rmsFfn: weights.rmsFfn.map((a) => Float64Array.from(Float32Array.from(a))),
    rmsFinal: Float64Array.from(Float32Array.from(weights.rmsFinal)),
  };
  return { dir, tokenizer, values, reference };
}

const ENGINE_NAME: Readonly<Record<string, string>> = {
  'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
};

const PROMPT = [1, 17, 290, 44, 3, 201, 99, 150, 12, 260, 7, 33, 81];
const VS_REFERENCE = { atol: 2e-3, rtol: 2e-3, nmse: 1e-8 };

async function logitsOf(model: LlamaModel): Promise<Float32Array> {
  const seq = model.createSequence({ allLogits: true });
  const parts: Float32Array[] = [];
  for (let i = 0; i < PROMPT.length; i += 5) parts.push((await seq.evaluate(PROMPT.slice(i, i + 5), { allLogits: true }))!);
  await seq.dispose();
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('bitsandbytes NF4 safetensors', () => {
  let folder: BnbFolder;
  const ready = (async () => {
    folder = await writeBnbFolder('bnb');
  })();

  it('plans NF4 storage for row-aligned weights and exact f32 for the rest', async () => {
    await ready;
    const file = await openModelFile(folder.dir);
    const plan = planWeights(file.config, file.tensors, 'bnb');
    const dtype = (n: string): string => plan.specs.find((s) => s.name === n)!.dtype;
    for (const l of [0, 1]) {
      for (const m of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up']) expect(dtype(`blk.${l}.${m}.weight`)).toBe('nf4');
      expect(dtype(`blk.${l}.ffn_down.weight`)).toBe('f32'); // rows of 160: blocks cross rows
    }
    expect(dtype('token_embd.weight')).toBe('f32');
    expect(dtype('output.weight')).toBe('f32');
  });

  it('every stored value is exactly table[code] x the decoded block scale', async () => {
    await ready;
    const file = await openModelFile(folder.dir);
    const plan = planWeights(file.config, file.tensors, 'bnb');
    let checked = 0;
    for (const [hf, want] of folder.values) {
      const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf)!;
      const name = `blk.${m[1]}.${ENGINE_NAME[m[2]!]}.weight`;
      const spec = plan.specs.find((s) => s.name === name)!;
      const info = file.tensors.find((t) => t.name === name)!;
      const source: WeightSource = { weight: name, type: info.type as WeightSource['type'], nbytes: info.nbytes, data: await info.read!() };
      const [rows, cols] = spec.shape;
      const graph: GraphSpec = { weights: [spec], buffers: [{ name: 'out', width: cols }], kvCaches: [], nodes: [{ op: 'embed', out: 'out', weight: name }] };
      const tokens = Int32Array.from({ length: rows }, (_, i) => i);
      const [out] = await runGraph(graph, [source], 'reference', [{ pos: 0, tokens, outputs: ['out'] }], { maxTokens: rows, maxSeqLen: rows });
      const got = out!['out']!;
      let diff = -1;
      for (let i = 0; i < want.length && diff < 0; i++) if (got[i] !== want[i]) diff = i;
      expect(diff, `${name}: first difference at ${diff}: ${got[diff]} vs ${want[diff]}`).toBe(-1);
      checked++;
    }
    expect(checked).toBe(14);
  });

  const targets = [
    { name: 'cpu', load: (dir: string, o: Parameters<typeof loadModel>[1]) => loadModel(dir, { ...o, device: 'cpu' }) },
    {
      name: 'cuda (SIMT emulator)',
      load: (dir: string, o: Parameters<typeof loadModel>[1]) => {
        const choice = simtChoice();
        if (choice === undefined) throw new Error(`no SIMT build: ${simtMissing()}`);
        return loadModelWith(choice, dir, o);
      },
    },
  ];
  for (const target of targets) {
    it(`${target.name}: logits equal the float64 reference over the dequantized weights`, async (ctx) => {
      if (target.name !== 'cpu' && simtMissing() !== undefined) {
        if (process.env['CI'] === 'true') throw new Error(`SIMT build missing: ${simtMissing()}`);
        ctx.skip();
      }
      await ready;
      const model = await target.load(folder.dir, { tokenizer: folder.tokenizer, kvCacheType: 'f32', contextLength: 32 });
      try {
        expect(model.info.tensorTypes).toEqual({ nf4: 12, f32: 2 + 1 + 1 + 5 }); // down_proj x2, embed, lm_head, 5 norms
        const logits = await logitsOf(model);
        const ref = createLlama2cReference(cfg, folder.reference);
        PROMPT.forEach((t, pos) => {
          assertClose(logits.subarray(pos * cfg.vocabSize, (pos + 1) * cfg.vocabSize), ref.forward(t, pos), VS_REFERENCE, `${target.name} position ${pos}`);
        });
      } finally {
        await model.dispose();
      }
    });
  }

  it('refuses fp4, a foreign quant_map and a missing absmax with readable errors', async () => {
    const fp4 = await writeBnbFolder('bnb-fp4', { state: { quant_type: 'fp4' } });
    await expect(openModelFile(fp4.dir)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/quant_type "fp4" is not supported/) });
    const map = await writeBnbFolder('bnb-map', { map: Float32Array.from(NF4_VALUES, (v) => v / 2) });
    await expect(openModelFile(map.dir)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/quant_map is not the NF4 table/) });
    const noAbsmax = await writeBnbFolder('bnb-noabsmax', { drop: 'model.layers.0.mlp.gate_proj.weight.absmax' });
    await expect(loadModel(noAbsmax.dir, { device: 'cpu', tokenizer: noAbsmax.tokenizer })).rejects.toMatchObject({
      code: 'ERR_MODEL_FORMAT',
      message: expect.stringMatching(/mlp.gate_proj.weight".*missing its "absmax" tensor/),
    });
    expect(readFileSync(path.join(fp4.dir, 'config.json'), 'utf8')).toContain('bitsandbytes');
  });
});
