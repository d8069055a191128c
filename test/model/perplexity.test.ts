/**
 * model.perplexity() against a float64 reference on stories260K: the same windows, the same
 * scored positions (second half of each window, BOS at each window's start), log-softmax in
 * float64 over the reference's float64 logits.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';

import { type LlamaModel, loadModel } from '../../lib/index.js';
import { scoredRange } from '../../lib/perplexity.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { type Reference, loadLlama2cReference } from '../reference/llama2c-forward.js';
import { referencePerplexity } from '../reference/perplexity-reference.js';
import { STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';

describeWithShared([BIN, TOK], 'perplexity on stories260K', () => {
  let model: LlamaModel;
  let ref: Reference;
  beforeAll(async () => {
    // f32 KV cache and batches of 7 rows: every window is several prefill chunks
    model = await loadModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), device: 'cpu', kvCacheType: 'f32', batchSize: 7 });
    ref = loadLlama2cReference(sharedPath(BIN));
  });
  afterAll(() => model.dispose());

  it('scores the second half of each window, matching the float64 reference', async () => {
    const tokens = model.tokenize(STORIES260K_GREEDY_TEXT);
    const ctx = 64;
    const got = await model.perplexity(STORIES260K_GREEDY_TEXT, { ctx });
    const want = referencePerplexity(ref, tokens, ctx);
    expect(got.windows).toBe(Math.floor(tokens.length / ctx));
    expect(got.windows).toBeGreaterThanOrEqual(3);
    expect(got.ctx).toBe(ctx);
    expect(got.textTokens).toBe(tokens.length);
    expect(got.tokens).toBe(want.tokens);
    expect(got.tokens).toBe(got.windows * scoredRange(ctx).count);
    expect(Math.abs(got.nll - want.nll)).toBeLessThan(2e-5);
    expect(got.perplexity).toBeCloseTo(Math.exp(want.nll), 4);
    got.windowPerplexities.forEach((p, i) => expect(Math.abs(p / want.windows[i]! - 1)).toBeLessThan(1e-4));
    // the model's own greedy story is very likely under it
    expect(got.perplexity).toBeGreaterThan(1);
    expect(got.perplexity).toBeLessThan(3);
  });

  it('an odd window length, token ids as input, and progress after each window', async () => {
    const tokens = model.tokenize(STORIES260K_GREEDY_TEXT).slice(0, 100);
    const seen: number[] = [];
    const got = await model.perplexity(tokens, { ctx: 33, onProgress: (p) => seen.push(p.window) });
    const want = referencePerplexity(ref, tokens, 33);
    expect(got.windows).toBe(3);
    expect(seen).toEqual([1, 2, 3]);
    expect(got.tokens).toBe(3 * 16); // rows 16..31 predict tokens 17..32
    expect(Math.abs(got.nll - want.nll)).toBeLessThan(2e-5);
  });

  it("defaults to the model's context (at most 512); a shorter text is one window of its length", async () => {
    const text = 'Once upon a time, there was a little dog. The dog liked to run in the sun.';
    const n = model.tokenize(text).length;
    const got = await model.perplexity(text);
    expect(got.windows).toBe(1);
    expect(got.ctx).toBe(n);
    const want = referencePerplexity(ref, model.tokenize(text), n);
    expect(Math.abs(got.nll - want.nll)).toBeLessThan(2e-5);
    expect(Number.isFinite(got.perplexity)).toBe(true);
  });

  it('rejects windows that do not fit, tiny texts and fired signals', async () => {
    await expect(model.perplexity(STORIES260K_GREEDY_TEXT, { ctx: model.contextLength + 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.perplexity(STORIES260K_GREEDY_TEXT, { ctx: 2 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.perplexity('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.perplexity(STORIES260K_GREEDY_TEXT, { ctx: 32, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
