/**
 * The `llama-cuda` command as users run it (bin/llama-cuda.js over dist/), its output formats
 * and its errors.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { loadModel } from '../../lib/index.js';
import { describeWithShared, repoRoot, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';

const tmp = useTmpDir();
const bin = path.join(repoRoot, 'bin', 'llama-cuda.js');

function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, LLAMA_CUDA_BACKEND: 'cpu' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const GGUF = 'models/stories260K/stories260K.gguf';

describeWithShared([BIN, TOK, GGUF], 'llama-cuda CLI', () => {
  it('generate prints the greedy story (the issue\'s command)', () => {
    const r = cli(['generate', '--model', sharedPath(BIN), '--tokenizer', sharedPath(TOK), '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '60']);
    expect(r.status).toBe(0);
    // llama2.c's greedy story starts with this prompt; 60 tokens reach into its second line
    expect(STORIES260K_GREEDY_TEXT.startsWith(r.stdout.trimEnd())).toBe(true);
    expect(r.stdout.length).toBeGreaterThan(150);
    expect(r.stderr).toMatch(/generated 60 tokens at [\d.]+ tok\/s/);
  });

  it('generate --json prints one object with the documented fields', () => {
    const r = cli(['generate', '--model', sharedPath(GGUF), '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '12', '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { prompt_tokens: number[]; tokens: number[]; text: string; timings: Record<string, number>; finish_reason: string };
    expect(out.prompt_tokens).toEqual([1, 403, 407, 261, 378]);
    expect(out.tokens.length).toBe(12);
    expect(STORIES260K_GREEDY_TEXT.startsWith(`Once upon a time${out.text}`)).toBe(true);
    expect(out.finish_reason).toBe('maxTokens');
    expect(out.timings.tokens_per_second).toBeGreaterThan(0);
    expect(r.stdout.trim().split('\n').length).toBe(1);
  });

  it('generate with a seed repeats', () => {
    const args = ['generate', '--model', sharedPath(GGUF), '--prompt', 'Tom', '--temperature', '1', '--seed', '7', '--max-tokens', '20', '--json'];
    expect(JSON.parse(cli(args).stdout).tokens).toEqual(JSON.parse(cli(args).stdout).tokens);
  });

  it('generate --quantize nf4 runs the model quantized at load, as loadModel({ quantize }) does', async () => {
    const r = cli(['generate', '--model', sharedPath(GGUF), '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '16', '--quantize', 'nf4', '--json']);
    expect(r.status).toBe(0);
    const model = await loadModel(sharedPath(GGUF), { device: 'cpu', quantize: 'nf4' });
    try {
      const api = await model.complete('Once upon a time', { maxTokens: 16, temperature: 0 });
      expect((JSON.parse(r.stdout) as { tokens: number[] }).tokens).toEqual(api.tokens);
    } finally {
      await model.dispose();
    }
    const bad = cli(['generate', '--model', sharedPath(GGUF), '--prompt', 'x', '--quantize', 'int3']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--quantize must be int4, int8, nf4/);
  });

  it('tokenize prints ids with BOS first; --jsonl maps lines', () => {
    const r = cli(['tokenize', '--model', sharedPath(GGUF), 'Once upon a time']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1 403 407 261 378\n');
    const j = cli(['tokenize', '--model', sharedPath(BIN), '--tokenizer', sharedPath(TOK), '--jsonl'], '{"text": "Once upon a time"}\n{"text": ""}\n');
    expect(j.status).toBe(0);
    expect(j.stdout).toBe('{"ids":[1,403,407,261,378]}\n{"ids":[1]}\n');
  });

  it('errors: bad usage exits 2, bad files exit 1 with the error code', () => {
    expect(cli(['generate', '--prompt', 'x']).status).toBe(2);
    expect(cli(['generate', '--model', 'x', '--bogus']).stderr).toMatch(/unknown option --bogus/);
    expect(cli(['nope']).status).toBe(2);
    const bad = tmp('bad.gguf');
    writeFileSync(bad, Buffer.from('GGUF\x03\x00\x00\x00garbage'));
    const r = cli(['generate', '--model', bad, '--prompt', 'x']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error \[ERR_MODEL_FORMAT\]: bad.gguf: not a valid GGUF file/);
    const noTok = cli(['generate', '--model', sharedPath(BIN), '--prompt', 'x']);
    expect(noTok.status).toBe(1);
    expect(noTok.stderr).toMatch(/carries no tokenizer: pass/);
  });
});

it('prints help and the version', () => {
  const r = cli(['--help']);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/generate/);
  expect(cli(['--version']).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  expect(cli(['generate', '--help']).stdout).toMatch(/--max-tokens/);
});
