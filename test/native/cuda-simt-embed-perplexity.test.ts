/**
 * Perplexity (every row's logits) and embeddings (the final hidden state buffer) through the
 * CUDA backend on the SIMT emulator, against the CPU backend on stories260K. Needs
 * `npm run build:simt`: skipped with the reason without it (failing under CI=true).
 */
import { describe, expect, it } from 'vitest';

import { loadModel } from '../../lib/index.js';
import { loadModelWith } from '../../lib/load-model.js';
import { simtChoice, simtMissing } from '../helpers/graphs.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';

const GGUF = 'models/stories260K/stories260K.gguf';

describeWithShared([GGUF], 'perplexity and embeddings on the CUDA backend (SIMT emulator)', () => {
  const simt = simtChoice();
  if (simt === undefined) {
    const ci = process.env['CI'] === 'true' || process.env['CI'] === '1';
    if (ci) it('has the SIMT build', () => expect.fail(simtMissing()));
    else describe('skipped', () => it.skip(`skipped: ${simtMissing()}`, () => {}));
    return;
  }
  it('gives the CPU backend perplexity and embeddings', async () => {
    const options = { kvCacheType: 'f32', contextLength: 64, batchSize: 13 } as const;
    const cuda = await loadModelWith(simt, sharedPath(GGUF), options);
    const cpu = await loadModel(sharedPath(GGUF), { ...options, device: 'cpu' });
    try {
      const text = STORIES260K_GREEDY_TEXT.slice(0, 240);
      const a = await cuda.perplexity(text, { ctx: 40 });
      const b = await cpu.perplexity(text, { ctx: 40 });
      expect(a.tokens).toBe(b.tokens);
      expect(Math.abs(a.nll - b.nll)).toBeLessThan(1e-4);
      for (const pooling of ['mean', 'last'] as const) {
        const e = await cuda.embed(['Lily saw a big red ball.', 'Tom ran.'], { pooling });
        const f = await cpu.embed(['Lily saw a big red ball.', 'Tom ran.'], { pooling });
        e.forEach((v, i) => v.forEach((x, d) => expect(Math.abs(x - f[i]![d]!)).toBeLessThan(1e-4)));
      }
    } finally {
      await cuda.dispose();
      await cpu.dispose();
    }
  });
});
