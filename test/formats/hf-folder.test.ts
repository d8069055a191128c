/**
 * Hugging Face model folders: stories260K written as transformers lays out a converted Llama
 * (LlamaForCausalLM names, Q/K rows permuted to the half-split RoPE) in f32, f16 and bf16, in one
 * file and in shards, must run as the llama2.c file does; config.json parsing (RoPE scaling, GQA,
 * head_dim, tied embeddings, defaults); and malformed folders give clear errors with codes.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LlamaCudaError } from '../../lib/errors.js';
import { configFromHf, hfTensorName, readHfFolder } from '../../lib/formats/hf-folder.js';
import { openModelFile } from '../../lib/formats/model-file.js';
import type { SafetensorsTensorToWrite } from '../../lib/formats/safetensors.js';
import { type LlamaModel, loadModel } from '../../lib/index.js';
import { assertClose } from '../helpers/assert-close.js';
import { type FloatDType, hfConfigJson, randomWeights, roundWeights, tinyConfig, writeHfFolder } from '../helpers/hf-model.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import {
  type Llama2cConfig, type Llama2cWeights, createLlama2cReference, greedyGenerate, parseLlama2cCheckpoint,
} from '../reference/llama2c-forward.js';

const tmp = useTmpDir();
const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const PROMPT = [1, 403, 407, 261, 378]; // BOS "Once upon a time"
const STEPS = 72;
/**
 * Engine against the float64 reference over the very weights the folder holds (f16 / bf16 values
 * are exact in f32, so rounding the weights costs nothing here): what separates them is f32
 * activations and the f32 KV cache, as for the .bin in test/e2e/stories260k.test.ts.
 */
const VS_REFERENCE = { atol: 2e-3, rtol: 2e-3, nmse: 1e-8 };

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LlamaCudaError);
    return err as LlamaCudaError;
  }
  throw new Error('expected an error');
}

/** Logits of every position of `tokens` (prompt in chunks of 7, as a prefill would). */
async function allLogits(model: LlamaModel, tokens: readonly number[]): Promise<Float32Array> {
  const seq = model.createSequence({ allLogits: true });
  const parts: Float32Array[] = [];
  for (let i = 0; i < tokens.length; i += 7) parts.push((await seq.evaluate(tokens.slice(i, i + 7), { allLogits: true }))!);
  await seq.dispose();
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describeWithShared([BIN, TOK], 'stories260K as a Hugging Face folder', () => {
  let cfg: Llama2cConfig;
  let weights: Llama2cWeights;
  let binModel: LlamaModel;
  let binTokens: number[];
  let binLogits: Float32Array;
  let sequence: number[]; // prompt + the .bin's greedy tokens (but the last)

  beforeAll(async () => {
    ({ config: cfg, weights } = parseLlama2cCheckpoint(readFileSync(sharedPath(BIN)), BIN));
    binModel = await loadModel(sharedPath(BIN), { device: 'cpu', tokenizer: sharedPath(TOK), kvCacheType: 'f32' });
    binTokens = [...(await binModel.complete(PROMPT, { temperature: 0, maxTokens: STEPS })).tokens];
    sequence = [...PROMPT, ...binTokens.slice(0, -1)];
    binLogits = await allLogits(binModel, sequence);
  });
  afterAll(() => binModel.dispose());

  const variants: { dtype: FloatDType; shards: number }[] = [
    { dtype: 'F32', shards: 1 },
    { dtype: 'F32', shards: 3 },
    { dtype: 'F16', shards: 2 },
    { dtype: 'BF16', shards: 1 },
  ];
  for (const { dtype, shards } of variants) {
    it(`${dtype}, ${shards === 1 ? 'model.safetensors' : `${shards} shards + index`}: greedy tokens and logits`, async () => {
      const dir = tmp(`stories-${dtype}-${shards}`);
      const files = await writeHfFolder(dir, cfg, weights, { dtype, shards });
      expect(files).toHaveLength(shards);
      const model = await loadModel(dir, { device: 'cpu', tokenizer: sharedPath(TOK), kvCacheType: 'f32' });
      try {
        expect(model.info.format).toBe('hf');
        expect(model.config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, vocabSize: 512, contextLength: 512, ropePairing: 'half', normEps: 1e-5 });
        // 9 per layer + embedding + final norm; tied: no lm_head
        expect(model.info.tensorTypes).toEqual({ [dtype.toLowerCase()]: 5 * 9 + 2 });

        const reference = createLlama2cReference(cfg, roundWeights(weights, dtype));
        const refTokens = greedyGenerate(reference, PROMPT, STEPS);
        const tokens = (await model.complete(PROMPT, { temperature: 0, maxTokens: STEPS })).tokens;
        expect(tokens).toEqual(refTokens);
        expect(tokens).toEqual(binTokens); // f16 rounding does not change this story; bf16's 8-bit mantissa does

        const logits = await allLogits(model, sequence);
        const vocab = cfg.vocabSize;
        reference.reset();
        sequence.forEach((t, pos) => {
          const got = logits.subarray(pos * vocab, (pos + 1) * vocab);
          assertClose(got, reference.forward(t, pos), VS_REFERENCE, `${dtype}/${shards} vs float64 reference at position ${pos}`);
          // f32: the same weights as the .bin, only the order of the RoPE pairs differs
          if (dtype === 'F32') assertClose(got, binLogits.subarray(pos * vocab, (pos + 1) * vocab), { atol: 1e-4, rtol: 1e-4 }, `vs the .bin at position ${pos}`);
        });
      } finally {
        await model.dispose();
      }
    });
  }

  it('an untied lm_head.weight is the classifier; with tie_word_embeddings a stored lm_head is ignored', async () => {
    const halfHead: Llama2cWeights = { ...weights, wcls: weights.tokenEmbedding.map((v) => v / 2) };
    const untied = tmp('stories-untied');
    await writeHfFolder(untied, cfg, halfHead, { withLmHead: true, config: { tie_word_embeddings: false } });
    const tiedWithHead = tmp('stories-tied-with-head');
    await writeHfFolder(tiedWithHead, cfg, halfHead, { withLmHead: true, config: { tie_word_embeddings: true } });
    const vocab = cfg.vocabSize;
    const a = await loadModel(untied, { device: 'cpu', tokenizer: sharedPath(TOK), kvCacheType: 'f32' });
    const b = await loadModel(tiedWithHead, { device: 'cpu', tokenizer: sharedPath(TOK), kvCacheType: 'f32' });
    try {
      expect(a.info.tensorTypes).toEqual({ f32: 5 * 9 + 3 });
      expect(b.info.tensorTypes).toEqual({ f32: 5 * 9 + 2 });
      const la = await allLogits(a, PROMPT);
      const lb = await allLogits(b, PROMPT);
      // halving the classifier halves the logits exactly (a power of two)
      assertClose(la, binLogits.subarray(0, PROMPT.length * vocab).map((v) => v / 2), { atol: 1e-5, rtol: 1e-5 }, 'untied, half lm_head');
      assertClose(lb, binLogits.subarray(0, PROMPT.length * vocab), { atol: 1e-4, rtol: 1e-4 }, 'tied: lm_head ignored');
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it('openModelFile: the folder or one of its files; tokenizer files in order of preference', async () => {
    const dir = tmp('stories-F32-3'); // written above
    writeFileSync(path.join(dir, 'tokenizer.model'), 'x');
    writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
    for (const p of [dir, path.join(dir, 'config.json'), path.join(dir, 'model.safetensors.index.json'), path.join(dir, 'model-00002-of-00003.safetensors')]) {
      const f = await openModelFile(p);
      expect(f.format).toBe('hf');
      expect(f.path).toBe(dir);
      expect(f.name).toBe('stories-F32-3');
      expect(f.tokenizerFiles).toEqual([path.join(dir, 'tokenizer.json'), path.join(dir, 'tokenizer.model')]);
      expect(f.tensors).toHaveLength(47);
      expect(new Set(f.tensors.map((t) => path.basename(t.file))).size).toBe(3);
    }
    rmSync(path.join(dir, 'tokenizer.json'));
    expect((await openModelFile(dir)).tokenizerFiles).toEqual([path.join(dir, 'tokenizer.model')]);
    rmSync(path.join(dir, 'tokenizer.model'));
    expect((await openModelFile(dir)).tokenizerFiles).toEqual([]);
    const hf = (await openModelFile(dir)).hf!;
    expect(hf).toMatchObject({ tiedEmbeddings: true, torchDtype: 'float32', bosTokenId: 1, eosTokenId: 2 });
    expect(hf.weightFiles.map((f) => path.basename(f))).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
  });
});

describe('config.json', () => {
  // meta-llama/Llama-2-7b-hf's config.json (as published)
  const llama2_7b = {
    architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096,
    initializer_range: 0.02, intermediate_size: 11008, max_position_embeddings: 4096, model_type: 'llama',
    num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32, pretraining_tp: 1, rms_norm_eps: 1e-5,
    rope_scaling: null, tie_word_embeddings: false, torch_dtype: 'float16', transformers_version: '4.31.0.dev0',
    use_cache: true, vocab_size: 32000,
  };

  it('Llama 2 7B', () => {
    expect(configFromHf(llama2_7b)).toEqual({
      dim: 4096, hiddenDim: 11008, nLayers: 32, nHeads: 32, nKvHeads: 32, headDim: 128, vocabSize: 32000, contextLength: 4096,
      ropeTheta: 10000, ropeDim: 128, ropeFreqScale: 1, ropePairing: 'half', normEps: 1e-5,
    });
  });

  it('Llama 2 70B (GQA 64 / 8) and an explicit head_dim', () => {
    const c70 = configFromHf({ ...llama2_7b, hidden_size: 8192, intermediate_size: 28672, num_attention_heads: 64, num_key_value_heads: 8, num_hidden_layers: 80 });
    expect(c70).toMatchObject({ nHeads: 64, nKvHeads: 8, headDim: 128, ropeDim: 128 });
    expect(configFromHf({ ...llama2_7b, head_dim: 64 })).toMatchObject({ headDim: 64, ropeDim: 64, dim: 4096 });
  });

  it("transformers' defaults: KV heads = heads, rope_theta 10000, rms_norm_eps 1e-6, 2048 positions", () => {
    const { num_key_value_heads: _a, rope_theta: _b, rms_norm_eps: _c, max_position_embeddings: _d, ...rest } = { ...llama2_7b, rope_theta: 1 };
    expect(configFromHf(rest)).toMatchObject({ nKvHeads: 32, ropeTheta: 10000, normEps: 1e-6, contextLength: 2048 });
    expect(configFromHf({ ...llama2_7b, rope_theta: 500000.0 }).ropeTheta).toBe(500000);
    const { architectures: _e, ...noArchitectures } = llama2_7b;
    expect(configFromHf(noArchitectures).nHeads).toBe(32); // model_type alone is enough
  });

  it('rope_scaling: linear, dynamic, yarn, llama3, default, and transformers 5 rope_parameters', () => {
    const rs = (rope_scaling: unknown): unknown => configFromHf({ ...llama2_7b, rope_scaling }).ropeScaling;
    expect(rs({ type: 'linear', factor: 4.0 })).toEqual({ type: 'linear', factor: 4 });
    expect(rs({ rope_type: 'linear', factor: 2 })).toEqual({ type: 'linear', factor: 2 });
    expect(rs({ type: 'dynamic', factor: 2.0 })).toEqual({ type: 'dynamic', factor: 2, originalContextLength: 4096 });
    expect(rs({ type: 'yarn', factor: 4.0, original_max_position_embeddings: 1024, beta_fast: null })).toEqual({
      type: 'yarn', factor: 4, originalContextLength: 1024, betaFast: 32, betaSlow: 1, attentionFactor: 0.1 * Math.log(4) + 1, truncate: true,
    });
    expect(rs({ rope_type: 'yarn', factor: 8, beta_fast: 16, beta_slow: 2, attention_factor: 1.5, truncate: false })).toEqual({
      type: 'yarn', factor: 8, originalContextLength: 4096, betaFast: 16, betaSlow: 2, attentionFactor: 1.5, truncate: false,
    });
    // DeepSeek's ratio of mscales: (0.1 * 1 * ln 40 + 1) / (0.1 * 0.5 * ln 40 + 1)
    const deepseek = rs({ type: 'yarn', factor: 40, mscale: 1, mscale_all_dim: 0.5 }) as { attentionFactor: number };
    expect(deepseek.attentionFactor).toBeCloseTo((0.1 * Math.log(40) + 1) / (0.05 * Math.log(40) + 1), 14);
    // Llama 3.1 8B's
    expect(rs({ factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' })).toEqual({
      type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192,
    });
    expect(rs({ rope_type: 'default' })).toBeUndefined();
    const { rope_scaling: _r, ...noScaling } = llama2_7b;
    expect(configFromHf({ ...noScaling, rope_parameters: { rope_type: 'linear', rope_theta: 500000.0, factor: 2.0 } })).toMatchObject({
      ropeTheta: 500000, ropeScaling: { type: 'linear', factor: 2 },
    });
  });

  it('refuses what it cannot run, naming it', () => {
    const err = (json: unknown, code: string, pattern: RegExp): void => {
      let caught: unknown;
      try {
        configFromHf(json);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(LlamaCudaError);
      expect(caught).toMatchObject({ code, message: expect.stringMatching(pattern) });
    };
    err({ ...llama2_7b, architectures: ['MistralForCausalLM'], model_type: 'mistral' }, 'ERR_UNSUPPORTED', /model_type "mistral" \(architectures MistralForCausalLM\) is not supported/);
    err({ ...llama2_7b, rope_scaling: { type: 'longrope', factor: 2, short_factor: [], long_factor: [] } }, 'ERR_UNSUPPORTED', /RoPE scaling "longrope" is not supported/);
    err({ ...llama2_7b, rope_scaling: { type: 'linear' } }, 'ERR_MODEL_FORMAT', /rope_scaling of type "linear" has no factor/);
    err({ ...llama2_7b, rope_scaling: { type: 'linear', factor: '2' } }, 'ERR_MODEL_FORMAT', /rope_scaling.factor = "2" is not a number/);
    err({ ...llama2_7b, rope_scaling: { type: 'linear', factor: -2 } }, 'ERR_MODEL_FORMAT', /factor = -2 must be a finite number > 0/);
    err({ ...llama2_7b, rope_scaling: { type: 'llama3', factor: 8 } }, 'ERR_MODEL_FORMAT', /has no low_freq_factor/);
    err({ ...llama2_7b, quantization_config: { quant_method: 'gptq', bits: 4 } }, 'ERR_UNSUPPORTED', /quant_method "gptq"/);
    err({ ...llama2_7b, hidden_act: 'gelu' }, 'ERR_UNSUPPORTED', /hidden_act "gelu"/);
    err({ ...llama2_7b, attention_bias: true }, 'ERR_UNSUPPORTED', /attention_bias = true/);
    err({ ...llama2_7b, hidden_size: '4096' }, 'ERR_MODEL_FORMAT', /hidden_size = "4096" is not a number/);
    err({ ...llama2_7b, hidden_size: 4096.5 }, 'ERR_MODEL_FORMAT', /hidden_size = 4096.5 is not a positive integer/);
    err({ ...llama2_7b, num_key_value_heads: 5 }, 'ERR_MODEL_FORMAT', /nHeads 32 is not a multiple of nKvHeads 5/);
    err({ ...llama2_7b, hidden_size: 4100 }, 'ERR_MODEL_FORMAT', /hidden_size 4100 is not a multiple of num_attention_heads 32/);
    const { vocab_size: _v, ...noVocab } = llama2_7b;
    err(noVocab, 'ERR_MODEL_FORMAT', /missing "vocab_size"/);
    err([1, 2], 'ERR_MODEL_FORMAT', /not a JSON object/);
  });

  it('maps LlamaForCausalLM tensor names to GGUF names', () => {
    expect(hfTensorName('model.embed_tokens.weight')).toBe('token_embd.weight');
    expect(hfTensorName('model.layers.0.input_layernorm.weight')).toBe('blk.0.attn_norm.weight');
    expect(hfTensorName('model.layers.31.self_attn.q_proj.weight')).toBe('blk.31.attn_q.weight');
    expect(hfTensorName('model.layers.7.self_attn.k_proj.weight')).toBe('blk.7.attn_k.weight');
    expect(hfTensorName('model.layers.7.self_attn.v_proj.weight')).toBe('blk.7.attn_v.weight');
    expect(hfTensorName('model.layers.7.self_attn.o_proj.weight')).toBe('blk.7.attn_output.weight');
    expect(hfTensorName('model.layers.2.post_attention_layernorm.weight')).toBe('blk.2.ffn_norm.weight');
    expect(hfTensorName('model.layers.2.mlp.gate_proj.weight')).toBe('blk.2.ffn_gate.weight');
    expect(hfTensorName('model.layers.2.mlp.up_proj.weight')).toBe('blk.2.ffn_up.weight');
    expect(hfTensorName('model.layers.2.mlp.down_proj.weight')).toBe('blk.2.ffn_down.weight');
    expect(hfTensorName('model.norm.weight')).toBe('output_norm.weight');
    expect(hfTensorName('lm_head.weight')).toBe('output.weight');
    expect(hfTensorName('layers.3.mlp.up_proj.weight')).toBe('blk.3.ffn_up.weight'); // LlamaModel checkpoints
    expect(hfTensorName('model.layers.0.self_attn.rotary_emb.inv_freq')).toBeNull();
    expect(hfTensorName('model.layers.0.self_attn.q_proj.bias')).toBeUndefined();
    expect(hfTensorName('model.layers.01.mlp.up_proj.weight')).toBeUndefined();
    expect(hfTensorName('score.weight')).toBeUndefined();
  });
});

describe('malformed folders', () => {
  // a small synthetic model: errors do not depend on real weights
  const cfg = tinyConfig({ dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seqLen: 64 });
  const weights = randomWeights(cfg, 7);
  let n = 0;
  const folder = async (options: Parameters<typeof writeHfFolder>[3] = {}): Promise<string> => {
    const dir = tmp(`bad-${n++}`);
    await writeHfFolder(dir, cfg, weights, options);
    return dir;
  };

  it('the synthetic folder itself is fine', async () => {
    const f = await readHfFolder(await folder({ shards: 2 }));
    expect(f.config).toMatchObject({ dim: 32, nLayers: 2, nKvHeads: 2, headDim: 8 });
    expect(f.tensors).toHaveLength(2 * 9 + 2);
  });

  it('missing config.json, missing weights, PyTorch weights, broken JSON', async () => {
    const dir = await folder();
    rmSync(path.join(dir, 'config.json'));
    expect(await codeOf(openModelFile(dir))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/is a folder without config.json: not a Hugging Face model folder/) });
    const noWeights = await folder();
    rmSync(path.join(noWeights, 'model.safetensors'));
    expect(await codeOf(openModelFile(noWeights))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/has config.json but neither model.safetensors nor model.safetensors.index.json/) });
    writeFileSync(path.join(noWeights, 'pytorch_model.bin'), 'x');
    expect(await codeOf(openModelFile(noWeights))).toMatchObject({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/pytorch_model.bin/) });
    const broken = await folder();
    writeFileSync(path.join(broken, 'config.json'), '{"hidden_size": 32,');
    expect(await codeOf(openModelFile(broken))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/config.json: not valid JSON/) });
  });

  it('a missing shard, and an index that puts a tensor in the wrong shard', async () => {
    const dir = await folder({ shards: 3 });
    rmSync(path.join(dir, 'model-00002-of-00003.safetensors'));
    expect(await codeOf(loadModel(dir, { device: 'cpu' }))).toMatchObject({
      code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/model.safetensors.index.json: names the shard "model-00002-of-00003.safetensors", which is not in .* \(an incomplete download\?\)/),
    });
    const wrong = await folder({ shards: 3 });
    const indexFile = path.join(wrong, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> };
    index.weight_map['model.norm.weight'] = 'model-00001-of-00003.safetensors';
    writeFileSync(indexFile, JSON.stringify(index));
    expect(await codeOf(openModelFile(wrong))).toMatchObject({
      code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/puts tensor "model.norm.weight" in model-00001-of-00003.safetensors, which has no such tensor/),
    });
    index.weight_map['model.norm.weight'] = '../model-00003-of-00003.safetensors';
    writeFileSync(indexFile, JSON.stringify(index));
    expect(await codeOf(openModelFile(wrong))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/is mapped to "..\/model-00003-of-00003.safetensors", which is not a file name in the folder/) });
    writeFileSync(indexFile, JSON.stringify({ metadata: {} }));
    expect(await codeOf(openModelFile(wrong))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/has no "weight_map" object/) });
  });

  it('wrong shapes, and layers the config does not have or lacks', async () => {
    const badShape = await folder({
      tensors: (ts) => ts.map((t) => (t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, shape: [32, 16] } : t)),
    });
    expect(await codeOf(loadModel(badShape, { device: 'cpu' }))).toMatchObject({
      code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/model.safetensors: tensor "model.layers.1.self_attn.k_proj.weight" has shape \[32, 16\], expected \[16, 32\] from config.json/),
    });
    const fewer = await folder({ config: { num_hidden_layers: 1 } });
    expect(await codeOf(openModelFile(fewer))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/tensor "model.layers.1.self_attn.q_proj.weight" belongs to no layer of a 1-layer model/) });
    const more = await folder({ config: { num_hidden_layers: 3 } });
    expect(await codeOf(openModelFile(more))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/missing tensor "model.layers.2.input_layernorm.weight" in model.safetensors/) });
    const untied = await folder({ config: { tie_word_embeddings: false } });
    expect(await codeOf(openModelFile(untied))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/missing tensor "lm_head.weight" .*tie_word_embeddings/) });
    const twice = await folder({ tensors: (ts) => [...ts, { ...ts.find((t) => t.name === 'model.norm.weight')!, name: 'norm.weight' }] });
    expect(await codeOf(openModelFile(twice))).toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/tensor "norm.weight" is stored twice \(as output_norm.weight\)/) });
  });

  it('dtypes the engine cannot run and tensors that are not Llama', async () => {
    const asDtype = (name: string, dtype: 'I8' | 'U8' | 'F8_E4M3' | 'F64') => (ts: SafetensorsTensorToWrite[]): SafetensorsTensorToWrite[] =>
      ts.map((t) => {
        if (t.name !== name) return t;
        const elems = t.shape.reduce((a, b) => a * b, 1);
        return { ...t, dtype, data: new Uint8Array(elems * (dtype === 'F64' ? 8 : 1)) };
      });
    for (const dtype of ['I8', 'U8', 'F8_E4M3', 'F64'] as const) {
      const dir = await folder({ tensors: asDtype('model.layers.0.mlp.up_proj.weight', dtype) });
      expect(await codeOf(loadModel(dir, { device: 'cpu' }))).toMatchObject({
        code: 'ERR_UNSUPPORTED', message: expect.stringMatching(new RegExp(`tensor "model.layers.0.mlp.up_proj.weight" has dtype ${dtype}, which this version cannot run \\(supported: F32, F16, BF16\\)`)),
      });
    }
    const bias = await folder({ tensors: (ts) => [...ts, { name: 'model.layers.0.self_attn.q_proj.bias', dtype: 'F32', shape: [32], data: new Uint8Array(128) }] });
    expect(await codeOf(openModelFile(bias))).toMatchObject({ code: 'ERR_UNSUPPORTED', message: expect.stringMatching(/tensor "model.layers.0.self_attn.q_proj.bias" is not part of the Llama model/) });
    // old checkpoints' rotary tables are ignored
    const inv = await folder({ tensors: (ts) => [...ts, { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [4], data: new Uint8Array(16) }] });
    expect((await openModelFile(inv)).tensors).toHaveLength(2 * 9 + 2);
  });

  it('a damaged safetensors file names the file and the tensor', async () => {
    const dir = await folder();
    const file = path.join(dir, 'model.safetensors');
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    expect(await codeOf(loadModel(dir, { device: 'cpu' }))).toMatchObject({
      code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/model.safetensors: not a valid safetensors file: tensor "model.norm.weight": data_offsets \[\d+, \d+\] run past the \d+ bytes of data \(truncated\?\)/),
    });
  });
});

it('hfConfigJson round-trips through configFromHf', () => {
  const cfg = tinyConfig({ dim: 48, hiddenDim: 40, nLayers: 3, nHeads: 6, nKvHeads: 3, vocabSize: 300, seqLen: 128, shared: false });
  expect(configFromHf(hfConfigJson(cfg))).toMatchObject({ dim: 48, hiddenDim: 40, nLayers: 3, nHeads: 6, nKvHeads: 3, headDim: 8, vocabSize: 300, contextLength: 128 });
});
