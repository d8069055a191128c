/**
 * End to end on a real model: the native engine (every CPU kernel tier) against the float64
 * reference forward pass, both file formats against each other, and the greedy story that
 * llama2.c publishes for stories260K.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type LlamaModel, loadModel } from '../../lib/index.js';
import { assertClose } from '../helpers/assert-close.js';
import { availableTiers } from '../helpers/graphs.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { type Reference, argmax, greedyGenerate, loadLlama2cReference } from '../reference/llama2c-forward.js';
import { STORIES260K_GREEDY_STEPS, STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const GGUF = 'models/stories260K/stories260K.gguf';
const STEPS = 80; // greedy steps compared with the reference (the issue asks for at least 64)
const PROMPT = [1, 403, 407, 261, 378]; // BOS "Once upon a time"

describeWithShared([BIN, TOK, GGUF], 'stories260K end to end', () => {
  let reference: Reference;
  let refTokens: number[];
  const refLogits: Float64Array[] = [];

  beforeAll(() => {
    reference = loadLlama2cReference(sharedPath(BIN));
    refTokens = greedyGenerate(reference, PROMPT, STEPS);
    // logits at every position of prompt + generated tokens, one token at a time
    reference.reset();
    [...PROMPT, ...refTokens.slice(0, -1)].forEach((t, pos) => refLogits.push(reference.forward(t, pos)));
  });

  for (const tier of availableTiers()) {
    describe(`CPU kernels: ${tier}`, () => {
      let model: LlamaModel;
      beforeAll(async () => {
        model = await loadModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), device: 'cpu', cpuKernels: tier, kvCacheType: 'f32', batchSize: 7 });
      });
      afterAll(() => model.dispose());

      it(`greedy tokens equal the float64 reference for ${STEPS} steps`, async () => {
        const result = await model.complete(PROMPT, { temperature: 0, maxTokens: STEPS });
        expect(result.tokens).toEqual(refTokens);
      });

      it('logits at every position are close to the reference (prompt in batches of 7, then one by one)', async () => {
        const seq = model.createSequence({ allLogits: true });
        const prompt = [...PROMPT, ...refTokens.slice(0, 20)];
        const batched = (await seq.evaluate(prompt, { allLogits: true }))!;
        const vocab = model.config.vocabSize;
        prompt.forEach((_, pos) => {
          assertClose(batched.subarray(pos * vocab, (pos + 1) * vocab), refLogits[pos]!, { atol: 2e-3, rtol: 2e-3, nmse: 1e-8 }, `${tier} logits at position ${pos}`);
        });
        for (let pos = prompt.length; pos < PROMPT.length + STEPS - 1; pos++) {
          const token = refTokens[pos - PROMPT.length]!;
          const logits = (await seq.evaluate([token]))!;
          assertClose(logits, refLogits[pos]!, { atol: 2e-3, rtol: 2e-3, nmse: 1e-8 }, `${tier} logits at position ${pos}`);
          expect(argmax(logits)).toBe(argmax(refLogits[pos]!));
        }
        await seq.dispose();
      });
    });
  }

  it('the .gguf conversion gives the same greedy tokens as the .bin', async () => {
    const fromGguf = await loadModel(sharedPath(GGUF), { device: 'cpu', contextLength: 512 });
    const fromBin = await loadModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), device: 'cpu' });
    const a = await fromGguf.complete('Once upon a time', { temperature: 0, maxTokens: 150 });
    const b = await fromBin.complete('Once upon a time', { temperature: 0, maxTokens: 150 });
    expect(a.promptTokens).toEqual(PROMPT);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens.length).toBe(150);
    await fromGguf.dispose();
    await fromBin.dispose();
  });

  it("prints llama2.c's published greedy story (empty prompt, 256 steps, f16 KV cache)", async () => {
    const model = await loadModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), device: 'cpu' });
    // run.c runs `steps` forward passes, each followed by a sample: 256 generated tokens after BOS
    const result = await model.complete('', { temperature: 0, maxTokens: STORIES260K_GREEDY_STEPS });
    expect(result.text).toBe(STORIES260K_GREEDY_TEXT);
    await model.dispose();
  });

  it('the prompt "Once upon a time" continues as the reference does', async () => {
    const model = await loadModel(sharedPath(BIN), { tokenizer: sharedPath(TOK), device: 'cpu' });
    const result = await model.complete('Once upon a time', { temperature: 0, maxTokens: 60 });
    expect(result.tokens).toEqual(refTokens.slice(0, 60));
    expect(result.text).toBe(model.tokenizer.decode(refTokens.slice(0, 60), { stripLeadingSpace: false }));
    expect(result.text.startsWith(', there was a little girl named Lily.')).toBe(true);
    await model.dispose();
  });
});
