/**
 * `llama-cuda chat` as users run it (bin/llama-cuda.js over dist/), with turns piped on stdin:
 * one reply per turn, the same replies as chat() in-process, KV-cache reuse from the second
 * turn on (--verbose timings on stderr), /reset, and usage errors.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { type ChatMessage, chat } from '../../lib/chat.js';
import type { GenerateResult } from '../../lib/generate.js';
import { type LlamaModel, buildLlama2ChatTokens, loadModel } from '../../lib/index.js';
import { describeWithShared, repoRoot, sharedPath } from '../helpers/shared-data.js';

const bin = path.join(repoRoot, 'bin', 'llama-cuda.js');
const STORIES_BIN = 'models/stories260K/stories260K.bin';
const TOK512 = 'models/stories260K/tok512.bin';
const TINY = 'models/llama-2-tiny-random/llama-2-tiny-random.gguf';

function chatCli(args: string[], input: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'chat', ...args], { encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, LLAMA_CUDA_BACKEND: 'cpu' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Turn {
  readonly prompt: number;
  readonly evaluated: number;
  readonly cached: number;
  readonly reply: number;
}

/** The --verbose per-turn lines. */
function turnsOf(stderr: string): Turn[] {
  return [...stderr.matchAll(/^\[llama-cuda\] turn \d+: prompt (\d+) tokens \((\d+) evaluated, (\d+) from cache\); reply (\d+) tokens/gm)].map((m) => ({
    prompt: Number(m[1]),
    evaluated: Number(m[2]),
    cached: Number(m[3]),
    reply: Number(m[4]),
  }));
}

/**
 * The same conversation in-process on a fresh sequence (same greedy settings and context):
 * the replies the CLI must print, and the prompt evaluation it must report, computed from the
 * tokens the cache holds after each turn (the prompt and every reply token fed back).
 */
async function expected(model: LlamaModel, system: string | undefined, lines: string[], maxTokens: number): Promise<{ replies: string[]; turns: Turn[] }> {
  const base: ChatMessage[] = system === undefined ? [] : [{ role: 'system', content: system }];
  let history = [...base];
  const replies: string[] = [];
  const turns: Turn[] = [];
  const sequence = model.createSequence();
  let cache: number[] = [];
  try {
    for (const line of lines) {
      if (line === '/reset') {
        history = [...base];
        continue;
      }
      history.push({ role: 'user', content: line });
      const prompt = buildLlama2ChatTokens(model.tokenizer, history);
      const it = chat({ tokenizer: model.tokenizer, sequence }, history, { temperature: 0, maxTokens });
      let r: GenerateResult;
      for (;;) {
        const step = await it.next();
        if (step.done) {
          r = step.value;
          break;
        }
      }
      let shared = 0;
      while (shared < cache.length && shared < prompt.length - 1 && cache[shared] === prompt[shared]) shared++;
      turns.push({ prompt: prompt.length, evaluated: prompt.length - shared, cached: shared, reply: r.tokens.length });
      expect(r.timings.promptEvaluated).toBe(prompt.length - shared);
      cache = [...r.promptTokens, ...(r.finishReason === 'eos' ? r.tokens : r.tokens.slice(0, -1))];
      replies.push(r.text);
      history.push({ role: 'assistant', content: r.text });
    }
  } finally {
    await sequence.dispose();
  }
  return { replies, turns };
}

describeWithShared([STORIES_BIN, TOK512, TINY], 'llama-cuda chat', () => {
  let stories: LlamaModel;
  let tiny: LlamaModel;
  beforeAll(async () => {
    stories = await loadModel(sharedPath(STORIES_BIN), { tokenizer: sharedPath(TOK512), device: 'cpu', contextLength: 256 });
    tiny = await loadModel(sharedPath(TINY), { device: 'cpu', contextLength: 256 });
  });
  afterAll(async () => {
    await stories?.dispose();
    await tiny?.dispose();
  });

  it('stories260K: one reply per turn, the cache reused from the second turn on, /reset', async () => {
    const lines = ['Hi', 'Tell me a story.', 'Thanks!', '/reset', 'Hello'];
    const r = chatCli(['--model', sharedPath(STORIES_BIN), '--tokenizer', sharedPath(TOK512), '--temperature', '0', '--max-tokens', '16', '--ctx-size', '256', '--verbose'], `${lines.join('\n')}\n`);
    expect(r.status, r.stderr).toBe(0);
    const want = await expected(stories, undefined, lines, 16);
    expect(r.stdout).toBe(want.replies.map((text) => `${text}\n`).join(''));
    expect(r.stdout.startsWith('> ')).toBe(false); // no prompt when stdin is not a terminal
    const turns = turnsOf(r.stderr);
    expect(turns).toEqual(want.turns);
    expect(turns.length).toBe(4);
    // turns 2 and 3 reuse at least the whole previous prompt; after /reset only what the new first turn shares
    expect(turns[1]!.cached).toBeGreaterThanOrEqual(turns[0]!.prompt);
    expect(turns[2]!.cached).toBeGreaterThanOrEqual(turns[1]!.prompt);
    expect(turns[2]!.evaluated).toBeLessThan(turns[2]!.prompt / 2);
    expect(turns[3]!.prompt).toBe(buildLlama2ChatTokens(stories.tokenizer, [{ role: 'user', content: 'Hello' }]).length);
    expect(turns[3]!.cached).toBeLessThan(turns[3]!.prompt);
    expect(r.stderr).toMatch(/history cleared/);
  });

  it('llama-2-tiny-random with --system: replies and cache reuse', async () => {
    const lines = ['Hi', 'And then?', 'Bye'];
    const system = 'You are terse.';
    const r = chatCli(['--model', sharedPath(TINY), '--system', system, '--temperature', '0', '--max-tokens', '8', '--ctx-size', '256', '--verbose'], lines.join('\n')); // no final newline
    expect(r.status, r.stderr).toBe(0);
    const want = await expected(tiny, system, lines, 8);
    expect(r.stdout).toBe(want.replies.map((text) => `${text}\n`).join(''));
    const turns = turnsOf(r.stderr);
    expect(turns).toEqual(want.turns);
    expect(turns.map((t) => t.reply)).toEqual([8, 8, 8]);
    expect(turns[0]!.evaluated).toBe(turns[0]!.prompt);
    expect(turns[1]!.cached).toBeGreaterThanOrEqual(turns[0]!.prompt);
    expect(turns[2]!.cached).toBeGreaterThanOrEqual(turns[1]!.prompt);
  });

  it('drops the oldest exchanges when the history no longer fits, and says so', () => {
    const lines = ['Tell me a long story about a cat and a dog.', 'And then what happened to them?', 'More please.'];
    const r = chatCli(['--model', sharedPath(STORIES_BIN), '--tokenizer', sharedPath(TOK512), '--temperature', '0', '--max-tokens', '30', '--ctx-size', '100', '--verbose'], lines.join('\n'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/the context is full: dropped the 1 oldest exchange/);
    expect(turnsOf(r.stderr).length).toBe(3);
  });

  it('usage errors exit 2; an empty stdin ends at once', () => {
    expect(chatCli([], '').status).toBe(2);
    expect(chatCli(['--model', 'x', 'hello'], '').stderr).toMatch(/user turns are read from stdin/);
    const empty = chatCli(['--model', sharedPath(TINY)], '');
    expect(empty.status).toBe(0);
    expect(empty.stdout).toBe('');
  });
});
