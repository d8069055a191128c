/**
 * convertGqa / `llama-cuda convert-gqa` on stories260K (8 query heads, 4 KV heads): 4 → 2 → 1.
 * The pooled k/v weights equal the float64 mean of each group's heads; the converted models load
 * and their perplexity equals a float64 reference forward pass run with those pooled weights;
 * converting to the same head count reproduces the original logits exactly.
 */
import { readFileSync, writeFileSync } from 'node:fs';

import { afterAll, beforeAll, expect, it, vi } from 'vitest';

import { main } from '../../lib/cli/main.js';
import { readGguf } from '../../lib/formats/gguf.js';
import { type LlamaModel, convertGqa, loadModel } from '../../lib/index.js';
import { writeHfFolder } from '../helpers/hf-model.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { createLlama2cReference, parseLlama2cCheckpoint } from '../reference/llama2c-forward.js';
import { STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';
import { referencePerplexity } from '../reference/perplexity-reference.js';

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const GGUF = 'models/stories260K/stories260K.gguf';
const tmp = useTmpDir();

/** The f32 values of a tensor of a GGUF file, by name. */
async function ggufTensor(file: string, name: string): Promise<{ shape: readonly number[]; values: Float32Array }> {
  const g = await readGguf(file);
  const t = g.tensors.find((x) => x.name === name)!;
  expect(t.type).toBe('f32');
  const bytes = readFileSync(file).subarray(t.offset, t.offset + t.nbytes);
  return { shape: t.shape, values: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

/** Float64 mean of each group of `from / to` consecutive heads of rows [from·headDim][cols]. */
function meanPooled(w: ArrayLike<number>, cols: number, headDim: number, from: number, to: number): Float64Array {
  const g = from / to;
  const out = new Float64Array(to * headDim * cols);
  for (let h = 0; h < to; h++) {
    for (let i = 0; i < g; i++) {
      for (let r = 0; r < headDim; r++) {
        for (let c = 0; c < cols; c++) out[(h * headDim + r) * cols + c]! += (w[((h * g + i) * headDim + r) * cols + c] as number) / g;
      }
    }
  }
  return out;
}

async function cliRun(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describeWithShared([BIN, TOK, GGUF], 'convert-gqa on stories260K', () => {
  const out2 = tmp('kv2.gguf');
  const out1 = tmp('kv1.gguf');
  const out4 = tmp('kv4.gguf');
  let original: LlamaModel;
  beforeAll(async () => {
    original = await loadModel(sharedPath(GGUF), { device: 'cpu', kvCacheType: 'f32' });
  });
  afterAll(() => original.dispose());

  it('4 → 2 → 1: the k/v projections are the float64 means of their groups, everything else is copied', async () => {
    const r2 = await convertGqa(sharedPath(GGUF), out2, { kvHeads: 2 });
    expect(r2).toMatchObject({ heads: 8, kvHeadsBefore: 4, kvHeads: 2, pooledTensors: 10, tensors: 48 });
    const r1 = await convertGqa(out2, out1, { kvHeads: 1 });
    expect(r1).toMatchObject({ kvHeadsBefore: 2, kvHeads: 1 });
    const src = await readGguf(sharedPath(GGUF));
    for (const [file, kv, input, kvIn] of [[out2, 2, sharedPath(GGUF), 4], [out1, 1, out2, 2]] as const) {
      const g = await readGguf(file);
      expect(g.metadata.get('llama.attention.head_count_kv')?.value).toBe(kv);
      expect(g.metadata.get('tokenizer.ggml.tokens')?.value).toEqual(src.metadata.get('tokenizer.ggml.tokens')?.value);
      expect(g.tensors.map((t) => t.name)).toEqual(src.tensors.map((t) => t.name));
      for (let l = 0; l < 5; l++) {
        for (const which of ['attn_k', 'attn_v']) {
          const name = `blk.${l}.${which}.weight`;
          const before = await ggufTensor(input, name);
          const after = await ggufTensor(file, name);
          expect(after.shape).toEqual([kv * 8, 64]);
          // the float64 mean of the input's grouped heads, rounded once to f32
          const want = Float32Array.from(meanPooled(before.values, 64, 8, kvIn, kv));
          expect(Array.from(after.values)).toEqual(Array.from(want));
          // and 4 → 2 → 1 in two steps is the mean of all four original heads (equal-size groups)
          // (two f32 roundings: each within half an ulp of the largest value summed)
          const orig = (await ggufTensor(sharedPath(GGUF), name)).values;
          const all = meanPooled(orig, 64, 8, 4, kv);
          const bound = 2 ** -23 * orig.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
          after.values.forEach((v, i) => expect(Math.abs(v - all[i]!)).toBeLessThanOrEqual(bound));
        }
        const q = `blk.${l}.attn_q.weight`;
        expect((await ggufTensor(file, q)).values).toEqual((await ggufTensor(sharedPath(GGUF), q)).values);
      }
    }
  });

  it('the converted models load and score as the float64 reference with pooled weights does', async () => {
    const tokens = original.tokenize(STORIES260K_GREEDY_TEXT);
    const ctx = 64;
    const { config, weights } = parseLlama2cCheckpoint(readFileSync(sharedPath(BIN)));
    const results: Record<number, number> = { 4: (await original.perplexity(tokens, { ctx })).perplexity };
    for (const [file, kv] of [[out2, 2], [out1, 1]] as const) {
      const model = await loadModel(file, { device: 'cpu', kvCacheType: 'f32' });
      expect(model.config.nKvHeads).toBe(kv);
      const got = await model.perplexity(tokens, { ctx });
      await model.dispose();
      const pooled = {
        ...weights,
        wk: weights.wk.map((w) => meanPooled(w, 64, 8, 4, kv)),
        wv: weights.wv.map((w) => meanPooled(w, 64, 8, 4, kv)),
      };
      const ref = createLlama2cReference({ ...config, nKvHeads: kv, kvDim: kv * config.headDim }, pooled);
      const want = referencePerplexity(ref, tokens, ctx);
      expect(Math.abs(got.nll - want.nll)).toBeLessThan(5e-5);
      expect(Number.isFinite(got.perplexity)).toBe(true);
      results[kv] = got.perplexity;
    }
    // fewer KV heads without uptraining lose quality (the GQA paper's reason to uptrain)
    expect(results[2]!).toBeGreaterThan(results[4]!);
    console.log(`stories260K perplexity (ctx ${ctx}, ${tokens.length} tokens): 4 KV heads ${results[4]!.toFixed(4)}, 2: ${results[2]!.toFixed(4)}, 1: ${results[1]!.toFixed(4)}`);
  });

  it('converting to the same head count reproduces the original logits exactly; the .bin converts too', async () => {
    await convertGqa(sharedPath(GGUF), out4, { kvHeads: 4 });
    const same = await loadModel(out4, { device: 'cpu', kvCacheType: 'f32' });
    const prompt = original.tokenize(STORIES260K_GREEDY_TEXT).slice(0, 60);
    const a = original.createSequence({ allLogits: true });
    const b = same.createSequence({ allLogits: true });
    expect(await b.evaluate(prompt, { allLogits: true })).toEqual(await a.evaluate(prompt, { allLogits: true }));
    await a.dispose();
    await same.dispose();

    const fromBin = tmp('bin-kv2.gguf');
    await convertGqa(sharedPath(BIN), fromBin, { kvHeads: 2, tokenizer: sharedPath(TOK) });
    const m1 = await loadModel(fromBin, { device: 'cpu' }); // the tokenizer travelled into the GGUF
    const m2 = await loadModel(out2, { device: 'cpu' });
    const t1 = await m1.complete('Once upon a time', { temperature: 0, maxTokens: 40 });
    const t2 = await m2.complete('Once upon a time', { temperature: 0, maxTokens: 40 });
    expect(t1.tokens).toEqual(t2.tokens);
    await m1.dispose();
    await m2.dispose();
  });

  it('a Hugging Face folder (half-split RoPE rows) converts to the same GGUF tensors as the GGUF does', async () => {
    const { config, weights } = parseLlama2cCheckpoint(readFileSync(sharedPath(BIN)));
    const dir = tmp('hf');
    await writeHfFolder(dir, config, weights); // q/k rows permuted to HF's half-split pairs, f32
    const fromHf = tmp('hf-kv2.gguf');
    await convertGqa(dir, fromHf, { kvHeads: 2, tokenizer: sharedPath(TOK) });
    for (let l = 0; l < 5; l++) {
      for (const which of ['attn_q', 'attn_k', 'attn_v']) {
        const name = `blk.${l}.${which}.weight`;
        expect((await ggufTensor(fromHf, name)).values, name).toEqual((await ggufTensor(out2, name)).values);
      }
    }
    const m = await loadModel(fromHf, { device: 'cpu', kvCacheType: 'f32' });
    const got = await m.perplexity(STORIES260K_GREEDY_TEXT, { ctx: 64 });
    await m.dispose();
    const want = await loadModel(out2, { device: 'cpu', kvCacheType: 'f32' });
    expect(got.perplexity).toBe((await want.perplexity(STORIES260K_GREEDY_TEXT, { ctx: 64 })).perplexity);
    await want.dispose();
  });

  it('rejects head counts that do not divide, or exceed, the KV heads', async () => {
    await expect(convertGqa(sharedPath(GGUF), tmp('x.gguf'), { kvHeads: 3 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/do not divide the model's 4.*1, 2, 4/) });
    await expect(convertGqa(sharedPath(GGUF), tmp('x.gguf'), { kvHeads: 8 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/has 4 KV heads/) });
    await expect(convertGqa(sharedPath(GGUF), tmp('x.gguf'), { kvHeads: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(convertGqa(sharedPath(GGUF), sharedPath(GGUF), { kvHeads: 2 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });

  it('the CLI prints the perplexity before and after, and --json', async () => {
    const text = tmp('story.txt');
    writeFileSync(text, STORIES260K_GREEDY_TEXT);
    const r = await cliRun(['convert-gqa', sharedPath(GGUF), tmp('cli-kv2.gguf'), '--kv-heads', '2', '--file', text, '--ctx', '64', '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/wrote .*cli-kv2\.gguf: 8 query heads, 4 -> 2 KV heads \(10 k\/v projections mean-pooled\)/);
    expect(r.stdout).toMatch(/^before \(4 KV heads\): perplexity [\d.]+ .* over 124 tokens: 4 window\(s\) of 64 tokens/m);
    expect(r.stdout).toMatch(/^after {2}\(2 KV heads\): perplexity [\d.]+ /m);
    const j = await cliRun(['convert-gqa', sharedPath(GGUF), tmp('cli-kv1.gguf'), '--kv-heads', '1', '--file', text, '--ctx', '64', '--json', '--device', 'cpu']);
    expect(j.code, j.stderr).toBe(0);
    const parsed = JSON.parse(j.stdout) as { kv_heads: number; perplexity_before: { perplexity: number }; perplexity_after: { perplexity: number; tokens: number } };
    expect(parsed.kv_heads).toBe(1);
    expect(parsed.perplexity_after.tokens).toBe(124);
    expect(Number.isFinite(parsed.perplexity_after.perplexity)).toBe(true);
    const bad = await cliRun(['convert-gqa', sharedPath(GGUF), tmp('y.gguf'), '--kv-heads', '3']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ERR_INVALID_ARG.*do not divide/);
    expect((await cliRun(['convert-gqa', sharedPath(GGUF), tmp('y.gguf')])).code).toBe(2);

    const p = await cliRun(['perplexity', '--model', sharedPath(GGUF), '--file', text, '--ctx', '64', '--json', '--device', 'cpu']);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ perplexity: parsed.perplexity_before.perplexity, windows: 4, ctx: 64, tokens: 124 });
  });
});
