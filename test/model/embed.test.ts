/**
 * model.embed() on stories260K against a float64 reference (the final normed hidden state of
 * the reference forward pass, pooled and normalized in float64), and its properties.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';

import { type LlamaModel, loadModel } from '../../lib/index.js';
import { assertClose } from '../helpers/assert-close.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { type Reference, loadLlama2cReference } from '../reference/llama2c-forward.js';

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';

function norm(v: ArrayLike<number>): number {
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += (v[i] as number) ** 2;
  return Math.sqrt(ss);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Float64 embedding: mean of the normed final states of tokens 1.. (BOS excluded), or the last. */
function referenceEmbedding(ref: Reference, tokens: readonly number[], pooling: 'mean' | 'last'): Float64Array {
  ref.reset();
  const dim = ref.config.dim;
  const acc = new Float64Array(dim);
  tokens.forEach((t, pos) => {
    ref.forward(t, pos);
    const take = pooling === 'last' ? pos === tokens.length - 1 : pos >= 1;
    if (take) for (let d = 0; d < dim; d++) acc[d]! += ref.finalHidden[d]!;
  });
  const n = norm(acc);
  return acc.map((x) => x / n);
}

describeWithShared([BIN, TOK], 'embeddings on stories260K', () => {
  let model: LlamaModel;
  let ref: Reference;
  const texts = ['Once upon a time, there was a little girl named Lily.', 'The big red ball was too high.', 'Tom and his dog ran to the park to play.'];
  beforeAll(async () => {
    model = await loadModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), device: 'cpu', kvCacheType: 'f32', batchSize: 5 });
    ref = loadLlama2cReference(sharedPath(BIN));
  });
  afterAll(() => model.dispose());

  it('mean and last pooling equal the float64 reference', async () => {
    for (const pooling of ['mean', 'last'] as const) {
      const [got] = await model.embed([texts[0]!], { pooling });
      const want = referenceEmbedding(ref, model.tokenize(texts[0]!), pooling);
      assertClose(got!, want, { atol: 1e-4, rtol: 1e-3, nmse: 1e-8 }, `${pooling} embedding`);
      expect(dot(got!, want)).toBeGreaterThan(0.99999);
    }
  });

  it('vectors are unit length, mean differs from last, the same text gives the same vector', async () => {
    const mean = await model.embed([...texts, texts[0]!]);
    const last = await model.embed(texts, { pooling: 'last' });
    expect(mean).toHaveLength(4);
    for (const v of [...mean, ...last]) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v.length).toBe(model.config.dim);
      expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-6);
    }
    expect(mean[3]).toEqual(mean[0]); // same text, same call
    expect((await model.embed([texts[0]!]))[0]).toEqual(mean[0]); // same text, another call
    for (let i = 0; i < texts.length; i++) expect(dot(mean[i]!, last[i]!)).toBeLessThan(0.999);
    expect(dot(mean[0]!, mean[1]!)).toBeLessThan(0.9999);
  });

  it('batchSize runs texts on several sequences with the same results', async () => {
    const one = await model.embed(texts);
    const done: number[] = [];
    const three = await model.embed(texts, { batchSize: 3, onProgress: (d) => done.push(d) });
    expect(three).toEqual(one);
    expect(done).toEqual([1, 2, 3]);
  });

  it('texts longer than the context are cut (or rejected with truncate: false); empty text is the BOS state', async () => {
    const long = 'Lily liked to play with her ball in the park. '.repeat(80);
    expect(model.tokenize(long).length).toBeGreaterThan(model.contextLength);
    const [cut] = await model.embed([long]);
    expect(Math.abs(norm(cut!) - 1)).toBeLessThan(1e-6);
    await expect(model.embed([long], { truncate: false })).rejects.toMatchObject({ code: 'ERR_CONTEXT_FULL' });
    const [empty] = await model.embed(['']);
    const want = referenceEmbedding(ref, [1], 'last');
    assertClose(empty!, want, { atol: 1e-4, rtol: 1e-3 }, 'empty text');
    await expect(model.embed(texts, { pooling: 'max' as 'mean' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(model.embed(texts, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
