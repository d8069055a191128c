/**
 * inspectModel() and the memory arithmetic behind it (lib/model/memory.ts): exact parameter
 * counts and byte figures computed here by hand from each model's shape, the weight bytes and
 * session bytes checked against what the engine reports on real loads, and the `inspect` CLI's
 * human and JSON output.
 */
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NativeSession } from '../lib/addon-types.js';
import { backendInfo, loadModel } from '../lib/index.js';
import { inspectModel } from '../lib/inspect.js';
import { kvCacheBytes, weightBytes } from '../lib/model/memory.js';
import type { LlamaSequence } from '../lib/model/sequence.js';
import { synthesizeModel } from '../lib/synth.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { describeWithShared, repoRoot, sharedPath } from './helpers/shared-data.js';
import { ggufImage, tinyLlama, vocabMetadataOf } from './helpers/tiny-gguf.js';
import { useTmpDir } from './helpers/tmp.js';

const tmp = useTmpDir();
const STORIES_BIN = 'models/stories260K/stories260K.bin';
const STORIES_GGUF = 'models/stories260K/stories260K.gguf';
const TOK512 = 'models/stories260K/tok512.bin';
const TINY = 'models/llama-2-tiny-random/llama-2-tiny-random.gguf';
const LLAMA2_TOK = 'models/llama2-tokenizer/tokenizer.bin';

/** Parameters of a Llama by its shape: per layer 2 norms, q/k/v/o, 3 FFN matrices; final norm; embedding (+ classifier). */
function llamaParameters(s: { dim: number; hidden: number; layers: number; heads: number; kvHeads: number; vocab: number; untied: boolean }): number {
  const kv = (s.dim / s.heads) * s.kvHeads;
  const layer = 2 * s.dim + 2 * s.dim * s.dim + 2 * kv * s.dim + 3 * s.dim * s.hidden;
  return s.layers * layer + s.dim + s.vocab * s.dim * (s.untied ? 2 : 1);
}

/** The engine's session of a sequence (for its memoryInfo()). */
function sessionOf(seq: LlamaSequence): NativeSession {
  return (seq as unknown as { session: NativeSession }).session;
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'llama-cuda.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('weightBytes (native/core/dtype.h weight_bytes)', () => {
  it('counts codes and scales of each storage type', () => {
    expect(weightBytes('f32', 3, 5)).toBe(60);
    expect(weightBytes('f16', 3, 5)).toBe(30);
    expect(weightBytes('bf16', 3, 5)).toBe(30);
    expect(weightBytes('q8_0', 3, 64)).toBe(3 * 64 + 3 * 2 * 2); // int8 codes + an f16 scale per 32
    expect(weightBytes('int4', 3, 64, 32)).toBe(3 * 32 + 3 * 2 * 4); // nibbles + f16 {scale, min} per group
    expect(weightBytes('int4', 3, 256, 128)).toBe(3 * 128 + 3 * 2 * 4);
  });
});

describeWithShared([STORIES_BIN, STORIES_GGUF, TOK512, TINY], 'inspectModel on the shared models', () => {
  it('stories260K.bin + tok512.bin', async () => {
    const r = await inspectModel(sharedPath(STORIES_BIN), { tokenizer: sharedPath(TOK512), threads: 2 });
    const params = llamaParameters({ dim: 64, hidden: 172, layers: 5, heads: 8, kvHeads: 4, vocab: 512, untied: false });
    expect(params).toBe(260_032);
    expect(r).toMatchObject({ format: 'llama2c', architecture: 'llama', name: 'stories260K.bin', fileBytes: 1_056_540, parameters: params, tensorElements: params, tiedClassifier: true, planError: undefined, tokenizerError: undefined });
    expect(r.config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, vocabSize: 512, contextLength: 512 });
    expect(r.tokenizer).toEqual({ type: 'sentencepiece-bpe', source: 'tok512.bin', vocabSize: 512, bos: 1, eos: 2, unk: 0, addBos: true, addEos: false });
    expect(r.tensorTypes).toEqual([{ type: 'f32', storage: 'f32', count: 47, elements: params, fileBytes: params * 4, engineBytes: params * 4 }]);
    // KV: 5 layers x (K + V) x 512 positions x kv_dim 32 x 2 or 4 bytes
    expect(r.memory).toMatchObject({ contextLength: 512, batchSize: 128, weights: params * 4, kvCacheF16: 5 * 2 * 512 * 32 * 2, kvCacheF32: 5 * 2 * 512 * 32 * 4 });
    expect(r.kvCacheAtModelContext).toEqual({ f16: 327_680, f32: 655_360 });
    // activations: x, xb, xb2 (dim), q, att (dim), k, v (kv_dim), hb, hb2 (hidden), 128 rows each;
    // x_last, x_final (dim) and logits (vocab): one row; one RoPE table of 128 rows x 4 pairs x cos/sin
    const rows = 128 * 4 * (5 * 64 + 2 * 32 + 2 * 172);
    expect(r.memory!.activations).toBe(rows + 2 * 256 + 2048 + 128 * 4 * 2 * 4);
  });

  it('stories260K.gguf: explicit classifier, context 128 from its metadata, --ctx-size', async () => {
    const r = await inspectModel(sharedPath(STORIES_GGUF), { contextLength: 64 });
    const params = llamaParameters({ dim: 64, hidden: 172, layers: 5, heads: 8, kvHeads: 4, vocab: 512, untied: true });
    expect(params).toBe(292_800);
    expect(r).toMatchObject({ format: 'gguf', architecture: 'llama', fileBytes: 1_185_376, parameters: params, tensorCount: 48, tiedClassifier: false });
    expect(r.config.contextLength).toBe(128);
    expect(r.tokenizer).toMatchObject({ vocabSize: 512, bos: 1, eos: 2, addBos: true });
    expect(r.memory).toMatchObject({ contextLength: 64, batchSize: 64, weights: params * 4, kvCacheF16: 5 * 2 * 64 * 32 * 2 });
    expect(r.kvCacheAtModelContext.f32).toBe(5 * 2 * 128 * 32 * 4);
  });

  it('llama-2-tiny-random.gguf: f16 matrices, f32 norms, 32000 vocab', async () => {
    const r = await inspectModel(sharedPath(TINY), { contextLength: 512 });
    const params = llamaParameters({ dim: 8, hidden: 32, layers: 1, heads: 2, kvHeads: 2, vocab: 32000, untied: true });
    expect(params).toBe(513_048);
    expect(r).toMatchObject({ parameters: params, tensorCount: 12, fileBytes: 1_750_560 });
    expect(r.tokenizer).toMatchObject({ vocabSize: 32000, bos: 1, eos: 2, unk: 0 });
    expect(r.tensorTypes).toEqual([
      { type: 'f16', storage: 'f16', count: 9, elements: params - 24, fileBytes: (params - 24) * 2, engineBytes: (params - 24) * 2 },
      { type: 'f32', storage: 'f32', count: 3, elements: 24, fileBytes: 96, engineBytes: 96 },
    ]);
    expect(r.memory).toMatchObject({ weights: (params - 24) * 2 + 96, kvCacheF16: 2 * 512 * 8 * 2 });
    expect(r.kvCacheAtModelContext.f16).toBe(2 * 4096 * 8 * 2);
  });

  it('a llama2.c checkpoint without its tokenizer is still described', async () => {
    const r = await inspectModel(sharedPath(STORIES_BIN));
    expect(r.tokenizer).toBeUndefined();
    expect(r.tokenizerError).toMatch(/ERR_INVALID_ARG.*carries no tokenizer/);
    expect(r.parameters).toBe(260_032);
  });

  it('weights and session bytes equal what the engine allocates', async () => {
    const tiers = backendInfo().native.cpu.kernelTiers;
    for (const [file, tokenizer] of [[STORIES_BIN, TOK512], [STORIES_GGUF, undefined], [TINY, undefined]] as const) {
      for (const kvCacheType of ['f16', 'f32'] as const) {
        const contextLength = kvCacheType === 'f16' ? 40 : 200;
        const model = await loadModel(sharedPath(file), { device: 'cpu', contextLength, batchSize: 24, threads: 2, kvCacheType, ...(tokenizer ? { tokenizer: sharedPath(tokenizer) } : {}) });
        try {
          const r = await inspectModel(sharedPath(file), { contextLength, batchSize: 24, threads: 2, ...(tokenizer ? { tokenizer: sharedPath(tokenizer) } : {}) });
          const m = r.memory!;
          expect(model.info.weightBytes).toBe(m.weights);
          const seq = model.createSequence();
          const kv = kvCacheType === 'f16' ? m.kvCacheF16 : m.kvCacheF32;
          expect(sessionOf(seq).memoryInfo().bytes, `${file} ${kvCacheType}`).toBe(kv + m.activations + m.cpu.scratch);
          await seq.dispose();
        } finally {
          await model.dispose();
        }
      }
    }
    // the reference kernels use no scratch
    if (tiers.includes('reference')) {
      const model = await loadModel(sharedPath(TINY), { device: 'cpu', contextLength: 16, batchSize: 8, cpuKernels: 'reference' });
      const r = await inspectModel(sharedPath(TINY), { contextLength: 16, batchSize: 8 });
      expect(sessionOf(model.createSequence()).memoryInfo().bytes).toBe(r.memory!.kvCacheF16 + r.memory!.activations);
      await model.dispose();
    }
  });
});

describeWithShared([STORIES_GGUF], 'inspectModel on a synthetic model of every storage type', () => {
  it('counts each file type, its engine storage and bytes, and matches the engine', async () => {
    const vocab = await vocabMetadataOf(sharedPath(STORIES_GGUF));
    const tiny = tinyLlama(vocab, { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, contextLength: 48 });
    const file = tmp('every-type.gguf');
    writeFileSync(file, ggufImage(tiny.metadata, tiny.tensors));
    const r = await inspectModel(file, { threads: 2 });
    const V = 512;
    const D = 64;
    const H = 96;
    const KV = 32;
    // by role: embedding q8_0 [V, D]; per layer q f16 [D, D], k q4_0 [KV, D], v q8_0 [KV, D],
    // o bf16 [D, D], gate f32 [H, D], up q4_0 [H, D], down q8_0 [D, H]; output f16 [V, D]; norms f32
    const q8 = (rows: number, cols: number): [number, number] => [(rows * cols / 32) * 34, rows * cols + rows * (cols / 32) * 2];
    const q4 = (rows: number, cols: number): [number, number] => [(rows * cols / 32) * 18, rows * cols / 2 + rows * (cols / 32) * 4];
    const rows = Object.fromEntries(r.tensorTypes.map((t) => [`${t.type}>${t.storage}`, t]));
    expect(Object.keys(rows).sort()).toEqual(['bf16>bf16', 'f16>f16', 'f32>f32', 'q4_0>int4', 'q8_0>q8_0']);
    expect(rows['q8_0>q8_0']).toMatchObject({ count: 1 + 2 * 2, fileBytes: q8(V, D)[0] + 2 * (q8(KV, D)[0] + q8(D, H)[0]), engineBytes: q8(V, D)[1] + 2 * (q8(KV, D)[1] + q8(D, H)[1]) });
    expect(rows['q4_0>int4']).toMatchObject({ count: 4, fileBytes: 2 * (q4(KV, D)[0] + q4(H, D)[0]), engineBytes: 2 * (q4(KV, D)[1] + q4(H, D)[1]) });
    expect(rows['f16>f16']).toMatchObject({ count: 3, fileBytes: 2 * (2 * D * D + V * D), engineBytes: 2 * (2 * D * D + V * D) });
    expect(rows['bf16>bf16']).toMatchObject({ count: 2, engineBytes: 2 * 2 * D * D });
    expect(rows['f32>f32']).toMatchObject({ count: 2 + 5, engineBytes: 4 * (2 * H * D + 5 * D) });
    expect(r.parameters).toBe(llamaParameters({ dim: D, hidden: H, layers: 2, heads: 4, kvHeads: 2, vocab: V, untied: true }));
    const model = await loadModel(file, { device: 'cpu', threads: 2 });
    try {
      expect(model.info.weightBytes).toBe(r.memory!.weights);
      expect(r.memory!.weights).toBe(Object.values(rows).reduce((n, t) => n + t.engineBytes, 0));
      const seq = model.createSequence();
      expect(sessionOf(seq).memoryInfo().bytes).toBe(r.memory!.kvCacheF16 + r.memory!.activations + r.memory!.cpu.scratch);
    } finally {
      await model.dispose();
    }
  });

  it('describes a file it cannot run, with the reason', async () => {
    const vocab = await vocabMetadataOf(sharedPath(STORIES_GGUF));
    const tiny = tinyLlama(vocab, { nLayers: 1 });
    const file = tmp('missing-tensor.gguf');
    writeFileSync(file, ggufImage(tiny.metadata, tiny.tensors.filter((t) => t.name !== 'blk.0.ffn_up.weight')));
    const r = await inspectModel(file);
    expect(r.memory).toBeUndefined();
    expect(r.planError).toMatch(/ERR_MODEL_FORMAT.*missing tensor "blk.0.ffn_up.weight"/);
    expect(r.tensorTypes.every((t) => t.storage === 'unused')).toBe(true);
    const out = cli(['inspect', file]);
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/cannot run in this version: \[ERR_MODEL_FORMAT\]/);
  });
});

describeWithShared([LLAMA2_TOK, STORIES_BIN, TOK512, TINY], 'inspect: Llama 2 7B shape (2 layers, Q4_0) and the CLI', () => {
  let file: string;
  beforeAll(async () => {
    file = tmp('llama2-7b-2l-q4_0.gguf');
    const tokenizer = await Tokenizer.fromLlama2cFile(sharedPath(LLAMA2_TOK), 32000);
    await synthesizeModel({ preset: 'llama2-7b', type: 'q4_0', layers: 2, out: file, tokenizer });
  });
  afterAll(() => {
    // 360 MB: do not wait for the tmp folder's cleanup
    try {
      writeFileSync(file, '');
    } catch {
      // already gone
    }
  });

  it('exact parameters and bytes', async () => {
    const r = await inspectModel(file, { threads: 2 });
    const D = 4096;
    const H = 11008;
    const V = 32000;
    const params = llamaParameters({ dim: D, hidden: H, layers: 2, heads: 32, kvHeads: 32, vocab: V, untied: true });
    expect(params).toBe(666_914_816);
    const norms = 2 * 2 * D + D;
    const quantized = params - norms; // every matrix is Q4_0
    expect(r).toMatchObject({ parameters: params, tensorCount: 2 + 1 + 2 * 9, fileBytes: statSync(file).size, tiedClassifier: false });
    expect(r.config).toMatchObject({ dim: D, hiddenDim: H, nLayers: 2, nHeads: 32, nKvHeads: 32, headDim: 128, vocabSize: V, contextLength: 4096 });
    expect(r.tensorTypes).toEqual([
      // Q4_0: 18 bytes per 32 weights in the file; int4: 16 bytes of nibbles + one f16 {scale, min} pair per 32
      { type: 'q4_0', storage: 'int4', count: 16, elements: quantized, fileBytes: (quantized / 32) * 18, engineBytes: (quantized / 32) * 20 },
      { type: 'f32', storage: 'f32', count: 5, elements: norms, fileBytes: norms * 4, engineBytes: norms * 4 },
    ]);
    expect(r.memory!.weights).toBe((quantized / 32) * 20 + norms * 4);
    expect(r.memory!.weights).toBe(416_808_960 + 81_920);
    // KV cache at 4096: 2 layers x K,V x 4096 x 4096 x 2 bytes = 128 MiB (f16 / bf16 on a GPU too)
    expect(r.memory!.kvCacheF16).toBe(2 * 2 * 4096 * 4096 * 2);
    expect(r.memory!.cuda.kvCache).toBe(128 * 2 ** 20);
    expect(r.memory!.kvCacheF32).toBe(256 * 2 ** 20);
    expect(kvCacheBytes(r.config, 1000, 2)).toBe(2 * 2 * 1000 * 4096 * 2);
    expect(r.memory!.cpu.total).toBe(r.memory!.weights + r.memory!.kvCacheF16 + r.memory!.activations + r.memory!.cpu.scratch);
    // on a GPU the session arena also holds RoPE tables for the whole context and the kernels' workspace
    expect(r.memory!.cuda.total).toBe(r.memory!.weights + r.memory!.kvCacheF16 + r.memory!.cuda.activations);
    expect(r.memory!.cuda.activations).toBeGreaterThan(r.memory!.activations);
  });

  it('--json prints one object with stable snake_case keys', () => {
    const out = cli(['inspect', file, '--ctx-size', '1024', '--threads', '2', '--json']);
    expect(out.status).toBe(0);
    expect(out.stdout.trim().split('\n').length).toBe(1);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed JSON document, checked field by field
    const j = JSON.parse(out.stdout) as Record<string, any>;
    expect(Object.keys(j)).toEqual([
      'path', 'format', 'architecture', 'name', 'file_bytes', 'parameters', 'tensor_count', 'tensor_elements', 'tied_classifier',
      'config', 'tokenizer', 'tokenizer_error', 'tensor_types', 'plan_error', 'memory',
    ]);
    expect(j['parameters']).toBe(666_914_816);
    expect(j['config']).toMatchObject({ dim: 4096, hidden_dim: 11008, n_layers: 2, n_heads: 32, n_kv_heads: 32, head_dim: 128, vocab_size: 32000, context_length: 4096 });
    expect(j['tokenizer']).toEqual({ type: 'sentencepiece-bpe', source: 'llama2-7b-2l-q4_0.gguf', vocab_size: 32000, bos: 1, eos: 2, unk: 0, add_bos: true, add_eos: false });
    expect(j['tensor_types'][0]).toEqual({ type: 'q4_0', storage: 'int4', count: 16, elements: 666_894_336, file_bytes: 375_128_064, engine_bytes: 416_808_960 });
    expect(j['memory']).toMatchObject({
      context_length: 1024,
      batch_size: 128,
      threads: 2,
      weight_bytes: 416_890_880,
      kv_cache: { model_context_length: 4096, model_context_f16_bytes: 128 * 2 ** 20, model_context_f32_bytes: 256 * 2 ** 20, context_f16_bytes: 32 * 2 ** 20, context_f32_bytes: 64 * 2 ** 20 },
    });
    expect(Object.keys(j['memory']['cpu'])).toEqual(['weight_bytes', 'kv_cache_bytes', 'activation_bytes', 'scratch_bytes', 'total_bytes']);
    expect(Object.keys(j['memory']['cuda'])).toEqual(['weight_bytes', 'kv_cache_bytes', 'activation_bytes', 'total_bytes']);
  });

  it('human output: an aligned summary', () => {
    const out = cli(['inspect', sharedPath(STORIES_BIN), '--tokenizer', sharedPath(TOK512)]);
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/^ {2}format {8}llama2c$/m);
    expect(out.stdout).toMatch(/parameters {4}260,032 \(260\.0 K\), classifier tied to the embedding/);
    expect(out.stdout).toMatch(/kv heads {2}4 \(GQA 2:1\)/);
    expect(out.stdout).toMatch(/^ {2}f32 +47 +0\.99 MiB {2}f32 +0\.99 MiB$/m);
    expect(out.stdout).toMatch(/^ {2}weights +0\.99 MiB {2}0\.99 MiB$/m);
    expect(out.stdout).toMatch(/KV cache \(f16\) +320 KiB +320 KiB/);
    expect(out.stdout).toMatch(/context 512: 320 KiB f16, 640 KiB f32/);
    const tiny = cli(['inspect', '--model', sharedPath(TINY), '--ctx-size', '256']);
    expect(tiny.status).toBe(0);
    expect(tiny.stdout).toMatch(/model context 4096: 128 KiB f16, 256 KiB f32/);
    expect(cli(['inspect']).status).toBe(2);
    expect(cli(['inspect', sharedPath(TINY), '--quantize', 'int3']).status).toBe(2);
  });
});
