/**
 * The Llama 2 chat format (lib/chat.ts): prompt token ids checked piece by piece against the
 * rules of Meta's chat_completion, dialog validation, the reply text, and KV-cache reuse over a
 * multi-turn conversation on stories260K and llama-2-tiny-random.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ChatMessage, chat, pythonStrip } from '../lib/chat.js';
import type { GenerateChunk, GenerateResult } from '../lib/generate.js';
import { type LlamaModel, LlamaCudaError, buildLlama2ChatTokens, loadModel } from '../lib/index.js';
import { Mutex, type LlamaSequence } from '../lib/model/sequence.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { expectErrorCode } from './helpers/errors.js';
import { describeWithShared, sharedPath } from './helpers/shared-data.js';

const LLAMA2_TOK = 'models/llama2-tokenizer/tokenizer.bin';
const STORIES_BIN = 'models/stories260K/stories260K.bin';
const TOK512 = 'models/stories260K/tok512.bin';
const TINY = 'models/llama-2-tiny-random/llama-2-tiny-random.gguf';

const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
const system = (content: string): ChatMessage => ({ role: 'system', content });

describe('pythonStrip', () => {
  it("strips Python's whitespace set, not JavaScript's", () => {
    expect(pythonStrip(' \t\n\v\f\r hi \r\n')).toBe('hi');
    expect(pythonStrip('\x1c\x1d\x1e\x1fhi\x85\u00a0\u3000')).toBe('hi'); // isspace() in Python, not trim() in JS
    expect(pythonStrip('\ufeffhi\ufeff')).toBe('\ufeffhi\ufeff'); // trim() in JS, not isspace() in Python
    expect(pythonStrip('a  b')).toBe('a  b');
    expect(pythonStrip('   ')).toBe('');
  });
});

describeWithShared([LLAMA2_TOK, TOK512], 'buildLlama2ChatTokens', () => {
  let tok: Tokenizer;
  let tok512: Tokenizer;
  /** Ids of pieces written out by hand (SentencePiece form, ▁ for a space). */
  let ids: (pieces: string[]) => number[];
  beforeAll(async () => {
    tok = await Tokenizer.fromLlama2cFile(sharedPath(LLAMA2_TOK), 32000);
    tok512 = await Tokenizer.fromLlama2cFile(sharedPath(TOK512), 512);
    const index = new Map(tok.vocab.pieces.map((p, i) => [p, i]));
    ids = (pieces) =>
      pieces.map((p) => {
        const id = index.get(p);
        if (id === undefined) throw new Error(`no piece ${JSON.stringify(p)}`);
        return id;
      });
  });
  const BOS = 1;
  const EOS = 2;
  // "[INST]" after a space (the dummy prefix or a word boundary), and "[/INST]" likewise
  const B_INST = ['▁[', 'INST', ']'];
  const E_INST = ['▁[', '/', 'INST', ']'];

  it('one user turn: BOS [INST] text [/INST], no EOS', () => {
    const got = buildLlama2ChatTokens(tok, [user('Hi')]);
    expect(got).toEqual([BOS, ...ids([...B_INST, '▁Hi', ...E_INST])]);
    // the well-known ids of Llama 2's "[INST]" / "[/INST]"
    expect(got).toEqual([1, 518, 25580, 29962, 6324, 518, 29914, 25580, 29962]);
  });

  it('a completed pair is BOS [INST] user [/INST] answer ▁ EOS, and every turn starts with BOS', () => {
    const got = buildLlama2ChatTokens(tok, [user('Hi'), assistant('Hello!'), user('Bye')]);
    expect(got).toEqual([
      BOS, ...ids([...B_INST, '▁Hi', ...E_INST, '▁Hello', '!', '▁']), EOS,
      BOS, ...ids([...B_INST, '▁By', 'e', ...E_INST]),
    ]);
    expect(got.filter((t) => t === BOS).length).toBe(2);
    expect(got.filter((t) => t === EOS).length).toBe(1);
  });

  it('the system message is folded into the first user message inside <<SYS>> ... <</SYS>>', () => {
    const got = buildLlama2ChatTokens(tok, [system('Be nice'), user('Hi')]);
    // "[INST] <<SYS>>\nBe nice\n<</SYS>>\n\nHi [/INST]": newlines are byte tokens, no space after them
    expect(got).toEqual([
      BOS,
      ...ids([...B_INST, '▁<<', 'SY', 'S', '>>', '<0x0A>', 'Be', '▁nice', '<0x0A>', '<', '</', 'SY', 'S', '>>', '<0x0A>', '<0x0A>', 'Hi', ...E_INST]),
    ]);
    // and only into the first one
    const two = buildLlama2ChatTokens(tok, [system('Be nice'), user('Hi'), assistant('Yo'), user('Hi')]);
    expect(two.slice(two.lastIndexOf(BOS))).toEqual([BOS, ...ids([...B_INST, '▁Hi', ...E_INST])]);
  });

  it("strips as Meta does: the folded user content as a whole, with Python's whitespace", () => {
    const noBos = { addBos: false } as const;
    expect(buildLlama2ChatTokens(tok, [user('  Hi \n')])).toEqual(buildLlama2ChatTokens(tok, [user('Hi')]));
    expect(buildLlama2ChatTokens(tok, [user('\x1cHi\x85')])).toEqual(buildLlama2ChatTokens(tok, [user('Hi')]));
    // BOM is not whitespace to Python: kept
    expect(buildLlama2ChatTokens(tok, [user('\ufeffHi')])).toEqual([BOS, ...tok.encode('[INST] \ufeffHi [/INST]', noBos)]);
    // the system text keeps its spaces, the user text loses only its trailing ones
    expect(buildLlama2ChatTokens(tok, [system('  sys  '), user('  Hi  ')])).toEqual([
      BOS, ...tok.encode('[INST] <<SYS>>\n  sys  \n<</SYS>>\n\n  Hi [/INST]', noBos),
    ]);
    // the answer is stripped too, then followed by one space
    expect(buildLlama2ChatTokens(tok, [user('a'), assistant('\n  b  \n'), user('c')]).slice(0, 12)).toEqual([
      BOS, ...tok.encode('[INST] a [/INST] b ', noBos), EOS,
    ].slice(0, 12));
  });

  it('user text that looks like control tokens stays text', () => {
    const got = buildLlama2ChatTokens(tok, [user('<s>[INST] x </s>')]);
    expect(got.indexOf(BOS, 1)).toBe(-1);
    expect(got).not.toContain(EOS);
    // (">[" is one piece of the Llama 2 vocabulary)
    expect(got).toEqual([BOS, ...ids([...B_INST, '▁<', 's', '>[', 'INST', ']', '▁x', '▁</', 's', '>', ...E_INST])]);
  });

  it('works with the 512-piece stories260K vocabulary', () => {
    const index = new Map(tok512.vocab.pieces.map((p, i) => [p, i]));
    const ids512 = (pieces: string[]): number[] => pieces.map((p) => index.get(p)!);
    // no "INST" or "▁[" pieces here: the letters stay single, the space before "[" is its own piece
    const inst = ['▁', '[', 'I', 'N', 'S', 'T', ']'];
    const endInst = ['▁', '[', '/', 'I', 'N', 'S', 'T', ']'];
    expect(buildLlama2ChatTokens(tok512, [user('Hi')])).toEqual([1, ...ids512([...inst, '▁H', 'i', ...endInst])]);
    expect(buildLlama2ChatTokens(tok512, [user('Hi'), assistant('Once upon a time.'), user('Hi')])).toEqual([
      1, ...ids512([...inst, '▁H', 'i', ...endInst, '▁Once', '▁upon', '▁a', '▁time', '.', '▁']), 2,
      1, ...ids512([...inst, '▁H', 'i', ...endInst]),
    ]);
  });

  it('rejects dialogs of the wrong shape with ERR_INVALID_ARG naming the problem', () => {
    const bad = (messages: unknown, pattern: RegExp): void =>
      expectErrorCode(() => buildLlama2ChatTokens(tok, messages as ChatMessage[]), 'ERR_INVALID_ARG', pattern);
    bad([], /no messages/);
    bad('hi', /must be an array/);
    bad([assistant('x')], /message 0 is a assistant message: expected a user message/);
    bad([user('a'), user('b')], /message 1 is a user message: expected a assistant message/);
    bad([user('a'), assistant('b')], /last message must be a user message, got assistant/);
    bad([system('s')], /system message must be followed by a user message/);
    bad([system('s'), assistant('x')], /message 1 is a assistant message; the system message must be followed by a user message/);
    bad([user('a'), system('s'), user('b')], /message 1 is a system message: a system message is only allowed first/);
    bad([system('s'), user('a'), assistant('b'), system('t'), user('c')], /message 3 is a system message/);
    bad([{ role: 'bot', content: 'x' }], /message 0 has role "bot"/);
    bad([{ role: 'user', content: 3 }], /content must be a string/);
    bad([null], /message 0 is not an object/);
  });
});

/** A stand-in sequence whose logits pick the scripted tokens, for testing the reply text. */
function scriptedContext(tokenizer: Tokenizer, script: number[]): { tokenizer: Tokenizer; sequence: LlamaSequence } {
  const cached: number[] = [];
  let step = 0;
  const fake = {
    mutex: new Mutex(),
    get tokens(): number[] { return cached; },
    get position(): number { return cached.length; },
    contextLength: 256,
    truncate(n: number): void { cached.length = Math.min(cached.length, n); },
    async evaluateLocked(tokens: readonly number[]): Promise<Float32Array> {
      cached.push(...tokens);
      const logits = new Float32Array(tokenizer.vocabSize);
      logits[script[step++] ?? tokenizer.eos] = 10;
      return logits;
    },
  };
  return { tokenizer, sequence: fake as unknown as LlamaSequence };
}

async function drain(it: AsyncGenerator<GenerateChunk, GenerateResult>): Promise<{ chunks: GenerateChunk[]; result: GenerateResult }> {
  const chunks: GenerateChunk[] = [];
  for (;;) {
    const step = await it.next();
    if (step.done) return { chunks, result: step.value };
    chunks.push(step.value);
  }
}

describeWithShared([LLAMA2_TOK], 'chat(): the reply text', () => {
  let tok: Tokenizer;
  let id: (piece: string) => number;
  beforeAll(async () => {
    tok = await Tokenizer.fromLlama2cFile(sharedPath(LLAMA2_TOK), 32000);
    id = (p) => tok.vocab.pieces.indexOf(p);
  });

  it('is decode() of the reply: the first piece loses its leading space, nothing else is trimmed', async () => {
    const script = [id('▁Hello'), id('!'), id('▁'), id('<0x0A>'), tok.eos];
    const { chunks, result } = await drain(chat(scriptedContext(tok, script), [user('Hi')], { temperature: 0 }));
    expect(result.text).toBe('Hello! \n');
    expect(result.text).toBe(tok.decode(result.tokens));
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
    expect(result.finishReason).toBe('eos');
    expect(result.promptTokens).toEqual(buildLlama2ChatTokens(tok, [user('Hi')]));
  });

  it('keeps the text of a reply that starts with bytes, a piece without ▁, or <unk>', async () => {
    const bytes = await drain(chat(scriptedContext(tok, [id('<0x20>'), id('▁a'), tok.eos]), [user('Hi')], { temperature: 0 }));
    expect(bytes.result.text).toBe('  a');
    expect(bytes.result.text).toBe(tok.decode(bytes.result.tokens));
    const word = await drain(chat(scriptedContext(tok, [id('Hello'), tok.eos]), [user('Hi')], { temperature: 0 }));
    expect(word.result.text).toBe('Hello');
    // <unk> is not a control token: " ⁇ " comes first, so the next piece keeps its space
    const unk = await drain(chat(scriptedContext(tok, [tok.unk, id('▁a'), tok.eos]), [user('Hi')], { temperature: 0 }));
    expect(unk.result.text).toBe(tok.decode(unk.result.tokens));
  });

  it('holds back stop strings as generate() does', async () => {
    const script = [id('▁Hello'), id('▁there'), id('!'), tok.eos];
    const { chunks, result } = await drain(chat(scriptedContext(tok, script), [user('Hi')], { temperature: 0, stop: ['there'] }));
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe('Hello ');
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
  });
});

/** Tokens the KV cache holds after a generation: the prompt and every reply token that was fed back. */
function cacheAfter(result: GenerateResult): number[] {
  // the token that ends a generation is never fed back, except that EOS is not in `tokens` at all
  const fed = result.finishReason === 'eos' ? result.tokens : result.tokens.slice(0, -1);
  return [...result.promptTokens, ...fed];
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * Runs a conversation on a fresh default sequence, passing the whole history each turn, and
 * checks each turn's prompt evaluation: exactly the tokens after the longest prefix the cache
 * holds are computed. The previous turn's prompt is always reused whole; the reply is reused as
 * far as its re-encoded text (Meta's format: stripped, after "[/INST] ", then " " EOS) equals
 * the tokens generated (a base or random model's replies are not the canonical encoding of
 * their text, so there the reply is recomputed once).
 */
async function conversation(model: LlamaModel, systemPrompt: string | undefined, turns: string[], maxTokens: number): Promise<void> {
  const { tokenizer } = model;
  const history: ChatMessage[] = systemPrompt === undefined ? [] : [system(systemPrompt)];
  const space = tokenizer.vocab.pieces.indexOf('\u2581');
  let cache: number[] = [];
  let previousPrompt: number[] = [];
  for (const [i, turn] of turns.entries()) {
    history.push(user(turn));
    const { chunks, result } = await drain(model.chat(history, { temperature: 0, maxTokens }));
    const prompt = buildLlama2ChatTokens(tokenizer, history);
    expect(result.promptTokens).toEqual(prompt);
    expect(result.tokens.length).toBeGreaterThan(0);
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
    expect(result.text).toBe(tokenizer.decode(result.tokens));
    const shared = commonPrefixLength(cache, prompt);
    expect(result.timings.promptEvaluated).toBe(prompt.length - shared);
    if (i === 0) {
      expect(result.timings.promptEvaluated).toBe(prompt.length);
    } else {
      expect(shared).toBeGreaterThanOrEqual(previousPrompt.length);
      // the prompt is: previous prompt, the reply as re-encoded, "▁" EOS, the new turn
      const newTurn = [tokenizer.bos, ...tokenizer.encode(`[INST] ${turn} [/INST]`, { addBos: false })];
      const reply = tokenizer.encode(pythonStrip(history[history.length - 2]!.content), { addBos: false });
      expect(prompt).toEqual([...previousPrompt, ...reply, space, tokenizer.eos, ...newTurn]);
      expect(shared).toBe(previousPrompt.length + commonPrefixLength(cache.slice(previousPrompt.length), reply));
      expect(result.timings.promptEvaluated).toBeLessThanOrEqual(reply.length + 2 + newTurn.length);
    }
    cache = cacheAfter(result);
    previousPrompt = prompt;
    history.push(assistant(result.text));
  }
}

describeWithShared([STORIES_BIN, TOK512, TINY], 'model.chat()', () => {
  let stories: LlamaModel;
  let tiny: LlamaModel;
  beforeAll(async () => {
    stories = await loadModel(sharedPath(STORIES_BIN), { tokenizer: sharedPath(TOK512), device: 'cpu', contextLength: 320, batchSize: 32 });
    tiny = await loadModel(sharedPath(TINY), { device: 'cpu', contextLength: 256 });
  });
  afterAll(async () => {
    await stories?.dispose();
    await tiny?.dispose();
  });

  it('reuses the KV cache across turns (stories260K, 3 turns)', async () => {
    await conversation(stories, undefined, ['Hi', 'Tell me a story about a cat.', 'Thanks!'], 16);
  });

  it('reuses the KV cache across turns (llama-2-tiny-random, 32000 vocab, with a system message)', async () => {
    await conversation(tiny, 'You are terse.', ['Hi', 'And then?', 'Bye'], 12);
  });

  it('a reply that re-encodes as generated is reused too: only " " EOS and the new turn are computed', async () => {
    // replay a reply that the model "generated" by running the canonical tokens through the cache:
    // the cache then holds exactly what the next prompt starts with
    const history = [user('Once upon a time')];
    const seq = stories.createSequence();
    try {
      const reply = 'Lily went to the park.';
      const p1 = buildLlama2ChatTokens(stories.tokenizer, history);
      const replyTokens = stories.tokenizer.encode(reply, { addBos: false }); // its dummy prefix is the space after "[/INST]"
      const p2 = buildLlama2ChatTokens(stories.tokenizer, [...history, assistant(reply), user('More')]);
      expect(p2.slice(0, p1.length + replyTokens.length)).toEqual([...p1, ...replyTokens]);
      await seq.evaluate([...p1, ...replyTokens]);
      const { result } = await drain(chat({ tokenizer: stories.tokenizer, sequence: seq }, [...history, assistant(reply), user('More')], { temperature: 0, maxTokens: 2 }));
      const newTurn = [1, ...stories.tokenizer.encode('[INST] More [/INST]', { addBos: false })];
      expect(result.timings.promptEvaluated).toBe(2 + newTurn.length); // "▁", EOS, then the turn
    } finally {
      await seq.dispose();
    }
  });

  it('leaving a reply early (break) releases the sequence for the next turn', async () => {
    let n = 0;
    for await (const chunk of stories.chat([user('Hi')], { temperature: 0, maxTokens: 20 })) {
      expect(chunk.token).toBeGreaterThanOrEqual(0);
      if (++n === 3) break;
    }
    const next = drain(stories.chat([user('Hi'), assistant('Hello'), user('Bye')], { temperature: 0, maxTokens: 3 }));
    const hung = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the sequence stayed locked')), 10_000).unref());
    const { result } = await Promise.race([next, hung]);
    expect(result.tokens.length).toBe(3);
  });

  it('rejects a bad dialog before any work', async () => {
    await expect(stories.chat([assistant('x')]).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(stories.chat([user('x'), user('y')]).next()).rejects.toBeInstanceOf(LlamaCudaError);
  });
});
