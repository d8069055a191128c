/**
 * `llama-cuda embed` and `llama-cuda perplexity` (in process, through lib/cli/main.ts): output
 * formats, agreement with the API, usage errors. (convert-gqa's CLI is tested in
 * test/e2e/convert-gqa.test.ts.)
 */
import { writeFileSync } from 'node:fs';

import { expect, it, vi } from 'vitest';

import { main } from '../../lib/cli/main.js';
import { loadModel } from '../../lib/index.js';
import { describeWithShared, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';

const GGUF = 'models/stories260K/stories260K.gguf';
const tmp = useTmpDir();

async function cliRun(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describeWithShared([GGUF], 'embed and perplexity commands', () => {
  it('embed prints the same unit vector as model.embed', async () => {
    const r = await cliRun(['embed', '--model', sharedPath(GGUF), '--device', 'cpu', '--pooling', 'last', 'Lily', 'saw', 'a', 'ball.']);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as number[];
    const model = await loadModel(sharedPath(GGUF), { device: 'cpu' });
    const [want] = await model.embed(['Lily saw a ball.'], { pooling: 'last' });
    await model.dispose();
    expect(got).toEqual(Array.from(want!));
    expect((await cliRun(['embed', '--model', sharedPath(GGUF), '--pooling', 'max', 'x'])).code).toBe(2);
    expect((await cliRun(['embed', '--model', sharedPath(GGUF)])).code).toBe(2);
  });

  it('perplexity prints a summary line, --json the numbers of model.perplexity', async () => {
    const text = tmp('story.txt');
    writeFileSync(text, STORIES260K_GREEDY_TEXT);
    const r = await cliRun(['perplexity', '--model', sharedPath(GGUF), '--file', text, '--ctx', '50', '--device', 'cpu', '--kv-type', 'f32']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^perplexity [\d.]+ \(mean nll [\d.]+\) over 120 tokens: 5 window\(s\) of 50 tokens, second halves scored \(text: 257 tokens\)\n$/);
    const j = await cliRun(['perplexity', '--model', sharedPath(GGUF), '--file', text, '--ctx', '50', '--device', 'cpu', '--kv-type', 'f32', '--json']);
    const parsed = JSON.parse(j.stdout) as { perplexity: number; window_perplexities: number[] };
    const model = await loadModel(sharedPath(GGUF), { device: 'cpu', kvCacheType: 'f32', contextLength: 50 });
    const want = await model.perplexity(STORIES260K_GREEDY_TEXT, { ctx: 50 });
    await model.dispose();
    expect(parsed).toMatchObject({ perplexity: want.perplexity, nll: want.nll, tokens: 120, windows: 5, ctx: 50, text_tokens: 257 });
    expect(parsed.window_perplexities).toEqual(want.windowPerplexities);
    expect((await cliRun(['perplexity', '--model', sharedPath(GGUF)])).code).toBe(2);
    const missing = await cliRun(['perplexity', '--model', sharedPath(GGUF), '--file', tmp('nope.txt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ERR_IO/);
  });
});
