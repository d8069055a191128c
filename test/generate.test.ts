/**
 * Generation behaviour on stories260K: every way a generation ends, KV reuse, streaming text
 * equal to the final text, serialization of concurrent calls, and bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type GenerateChunk, type LlamaModel, LlamaCudaError, loadModel } from '../lib/index.js';
import { StopMatcher } from '../lib/stop-strings.js';
import { describeWithShared, sharedPath } from './helpers/shared-data.js';

describe('StopMatcher', () => {
  it('holds back a possible stop prefix and cuts at the stop string', () => {
    const m = new StopMatcher(['</end>', 'xyz']);
    expect(m.push('hello <')).toEqual({ text: 'hello ', stopped: false });
    expect(m.push('/en')).toEqual({ text: '', stopped: false });
    expect(m.push('d> more')).toEqual({ text: '', stopped: true });
    const n = new StopMatcher(['</end>']);
    expect(n.push('a </e')).toEqual({ text: 'a ', stopped: false });
    expect(n.push('x')).toEqual({ text: '</ex', stopped: false });
    expect(n.push(' <')).toEqual({ text: ' ', stopped: false });
    expect(n.flush()).toBe('<');
  });

  it('finds the earliest of several stop strings, even inside one piece', () => {
    const m = new StopMatcher(['b', 'abc']);
    expect(m.push('xxabc')).toEqual({ text: 'xx', stopped: true }); // 'abc' starts before 'b'
    expect(new StopMatcher(['']).push('abc')).toEqual({ text: 'abc', stopped: false });
  });
});

describeWithShared(['models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin'], 'generate()', () => {
  let model: LlamaModel;
  beforeAll(async () => {
    model = await loadModel(sharedPath('models/stories260K/stories260K.bin'), {
      tokenizer: sharedPath('models/stories260K/tok512.bin'),
      device: 'cpu',
      contextLength: 96,
      batchSize: 16,
    });
  });
  afterAll(() => model.dispose());

  async function collect(prompt: string, options: Parameters<LlamaModel['generate']>[1]): Promise<{ chunks: GenerateChunk[]; result: Awaited<ReturnType<LlamaModel['complete']>> }> {
    const it = model.generate(prompt, options);
    const chunks: GenerateChunk[] = [];
    for (;;) {
      const step = await it.next();
      if (step.done) return { chunks, result: step.value };
      chunks.push(step.value);
    }
  }

  it('streams chunks whose text adds up to the result, and stops at maxTokens', async () => {
    const { chunks, result } = await collect('Once upon a time', { temperature: 0, maxTokens: 30 });
    expect(result.finishReason).toBe('maxTokens');
    expect(result.tokens.length).toBe(30);
    expect(chunks.map((c) => c.token)).toEqual(result.tokens);
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
    expect(result.text).toBe(model.tokenizer.decode(result.tokens, { stripLeadingSpace: false }));
    expect(result.timings.generatedTokens).toBe(30);
  });

  it('stops at a stop string and leaves it out', async () => {
    const full = await model.complete('Once upon a time', { temperature: 0, maxTokens: 30 });
    const cut = full.text.indexOf('Lily');
    expect(cut).toBeGreaterThan(0);
    const { chunks, result } = await collect('Once upon a time', { temperature: 0, maxTokens: 30, stop: ['Lily', 'never-appears'] });
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(full.text.slice(0, cut));
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
  });

  it('fills the context and ends cleanly with finishReason "context"', async () => {
    const result = await model.complete('Once upon a time', { temperature: 0 });
    expect(result.finishReason === 'context' || result.finishReason === 'eos').toBe(true);
    if (result.finishReason === 'context') expect(result.promptTokens.length + result.tokens.length).toBe(96 + 1);
  });

  it('throws ERR_CONTEXT_FULL for a prompt that does not fit', async () => {
    const long = 'Lily and Tom went to the park. '.repeat(20);
    const it = model.generate(long, { temperature: 0 });
    await expect(it.next()).rejects.toMatchObject({ code: 'ERR_CONTEXT_FULL', message: expect.stringMatching(/the context holds 96/) });
  });

  it('ends on an AbortSignal, before and during generation', async () => {
    const before = new AbortController();
    before.abort();
    const r1 = await model.complete('Once upon a time', { temperature: 0, signal: before.signal });
    expect(r1.finishReason).toBe('abort');
    expect(r1.tokens).toEqual([]);
    const during = new AbortController();
    const it = model.generate('Once upon a time', { temperature: 0, maxTokens: 50, signal: during.signal });
    let n = 0;
    let last;
    for (;;) {
      const step = await it.next();
      if (step.done) {
        last = step.value;
        break;
      }
      if (++n === 5) during.abort();
    }
    expect(last.finishReason).toBe('abort');
    expect(last.tokens.length).toBe(5);
  });

  it('reuses the KV cache of a shared prefix', async () => {
    const first = await model.complete('Once upon a time there was a dog', { temperature: 0, maxTokens: 3 });
    expect(first.timings.promptEvaluated).toBeGreaterThan(1);
    const again = await model.complete('Once upon a time there was a dog named Max', { temperature: 0, maxTokens: 3 });
    // the cache holds the first prompt and every generated token but the last (never fed back)
    const cached = [...first.promptTokens, ...first.tokens.slice(0, -1)];
    let shared = 0;
    while (shared < cached.length && cached[shared] === again.promptTokens[shared]) shared++;
    expect(shared).toBeGreaterThanOrEqual(first.promptTokens.length);
    expect(again.timings.promptEvaluated).toBe(again.promptTokens.length - shared);
    // and reuse does not change results: a fresh sequence computes the same tokens
    const fresh = model.createSequence();
    const logits = (await fresh.evaluate(again.promptTokens))!;
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    expect(again.tokens[0]).toBe(best);
    await fresh.dispose();
  });

  it('serializes concurrent generations and repeats with a seed', async () => {
    const opts = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42, maxTokens: 20 };
    const [a, b] = await Promise.all([model.complete('Once upon a time', opts), model.complete('Once upon a time', opts)]);
    expect(a.tokens).toEqual(b.tokens);
    const c = await model.complete('Once upon a time', { ...opts, seed: 43 });
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('rejects bad options with ERR_INVALID_ARG', async () => {
    await expect(model.generate('x', { maxTokens: -1 }).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.generate('x', { temperature: Number.NaN }).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.generate('', { addBos: false }).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.generate([1, 9999]).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/token id 9999/) });
  });

  it('a disposed model refuses work with ERR_DISPOSED', async () => {
    const m = await loadModel(sharedPath('models/stories260K/stories260K.bin'), { tokenizer: sharedPath('models/stories260K/tok512.bin'), device: 'cpu' });
    await m.dispose();
    await m.dispose();
    expect(() => m.generate('hi')).toThrow(LlamaCudaError);
    expect(() => m.generate('hi')).toThrow(/disposed/);
  });
});
