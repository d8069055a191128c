/**
 * `llama-cuda quantize` as users run it (bin/llama-cuda.js over dist/): the files it writes
 * load and generate, its summary and --json output, and its usage errors and exit codes.
 * What the files hold is tested in test/e2e/quantize.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { readGguf } from '../../lib/formats/gguf.js';
import { describeWithShared, repoRoot, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { STORIES260K_GREEDY_TEXT } from '../reference/stories260k-expected.js';

const tmp = useTmpDir();
const bin = path.join(repoRoot, 'bin', 'llama-cuda.js');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, LLAMA_CUDA_BACKEND: 'cpu' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BIN = 'models/stories260K/stories260K.bin';
const TOK = 'models/stories260K/tok512.bin';
const GGUF = 'models/stories260K/stories260K.gguf';

describeWithShared([BIN, TOK, GGUF], 'llama-cuda quantize', () => {
  it('quantizes the llama2.c checkpoint to Q8_0; the file generates the greedy story', async () => {
    const out = tmp('stories.q8_0.gguf');
    const r = cli(['quantize', sharedPath(BIN), out, '--type', 'q8_0', '--tokenizer', sharedPath(TOK)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^wrote .*stories\.q8_0\.gguf: 47 tensors \(31 q8_0, 16 f32\), [\d.]+ MiB in [\d.]+ s\n$/);
    const g = await readGguf(out);
    expect(g.metadata.get('general.file_type')?.value).toBe(7);
    // the .bin carries no tokenizer: the GGUF does now, so generate needs no --tokenizer
    const gen = cli(['generate', '--model', out, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '40']);
    expect(gen.status, gen.stderr).toBe(0);
    expect(STORIES260K_GREEDY_TEXT.startsWith(gen.stdout.trimEnd())).toBe(true);
  });

  it('quantizes the GGUF to Q4_0 with --json; the file generates', () => {
    const out = tmp('stories.q4_0.gguf');
    const r = cli(['quantize', sharedPath(GGUF), out, '--type=q4_0', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { output: string; type: string; bytes: number; tensor_types: Record<string, number>; seconds: number };
    expect(summary).toMatchObject({ output: out, type: 'q4_0', tensor_types: { q4_0: 32, f32: 16 } });
    expect(summary.bytes).toBeGreaterThan(0);
    expect(r.stdout.trim().split('\n').length).toBe(1);
    const gen = cli(['generate', '--model', out, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '20', '--json']);
    expect(gen.status, gen.stderr).toBe(0);
    expect((JSON.parse(gen.stdout) as { tokens: number[] }).tokens.length).toBe(20);
  });

  it('usage errors exit 2 with the usage line; other errors exit 1 with their code; no partial file stays', () => {
    const out = tmp('bad.gguf');
    for (const args of [
      ['quantize', sharedPath(GGUF), out],
      ['quantize', sharedPath(GGUF), out, '--type', 'q5_k'],
      ['quantize', sharedPath(GGUF), '--type', 'q8_0'],
      ['quantize', sharedPath(GGUF), out, 'extra', '--type', 'q8_0'],
      ['quantize', sharedPath(GGUF), out, '--type', 'q8_0', '--threads', '2'],
    ]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/usage: llama-cuda quantize IN OUT\.gguf --type q4_0\|q8_0/);
    }
    const missing = cli(['quantize', tmp('missing.gguf'), out, '--type', 'q8_0']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/error \[ERR_IO\]/);
    const noTokenizer = cli(['quantize', sharedPath(BIN), out, '--type', 'q8_0']);
    expect(noTokenizer.status).toBe(1);
    expect(noTokenizer.stderr).toMatch(/error \[ERR_INVALID_ARG\].*--tokenizer/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(path.dirname(out)).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('--help lists the options', () => {
    const r = cli(['quantize', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--type T\s+weight type: q4_0 or q8_0/);
    expect(r.stdout).toMatch(/--tokenizer F/);
    expect(cli(['--help']).stdout).toMatch(/quantize\s+write a Q4_0 or Q8_0 GGUF/);
  });
});
