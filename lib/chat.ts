/**
 * The Llama 2 chat format, token for token as Meta's reference `chat_completion`
 * (llama/generation.py) builds it:
 *
 *   - an optional system message (first) is folded into the first user message:
 *       "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user
 *   - then the dialog must be user, assistant, user, ..., user (alternating, ending on a user turn);
 *   - each completed (user, assistant) pair is
 *       BOS + encode(`[INST] ${strip(user)} [/INST] ${strip(assistant)} `) + EOS
 *   - and the last user turn is
 *       BOS + encode(`[INST] ${strip(user)} [/INST]`)
 *
 * `strip` is Python's str.strip() (its whitespace set, not JavaScript's trim()), applied as Meta
 * applies it: to the user content *after* the system text is folded in, so the system text's
 * own surrounding whitespace is kept, and only the user text's trailing whitespace goes.
 * Every segment is encoded on its own, with SentencePiece's dummy prefix and without parsing
 * control-token text: a user who types `<s>` or `[INST]` gets those characters as text, never
 * the control ids. (Meta's code additionally replaces the reply with an error message when any
 * message contains `[INST]`, `[/INST]`, `<<SYS>>` or `<</SYS>>`; we do not: the prompt tokens
 * are the same either way, and the caller decides what to allow.)
 *
 * The reply is generated until EOS (or the other ends of generate()). Its text is what
 * SentencePiece's decode gives for the reply tokens, as in Meta's code: the first piece's
 * leading space (the word boundary after `[/INST]`) is dropped, nothing else is trimmed.
 */
import { LlamaCudaError } from './errors.js';
import { type GenerateChunk, type GenerateContext, type GenerateOptions, type GenerateResult, generate } from './generate.js';
import { type Tokenizer, TokenType } from './tokenizer/index.js';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

/** generate()'s options, less the ones that shape a text prompt (the chat format decides those). */
export type ChatOptions = Omit<GenerateOptions, 'addBos' | 'parseSpecial'>;

const B_INST = '[INST]';
const E_INST = '[/INST]';
const B_SYS = '<<SYS>>\n';
const E_SYS = '\n<</SYS>>\n\n';

/** The characters Python's str.isspace() accepts (str.strip() removes these). */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/** Python's str.strip() with no argument. */
export function pythonStrip(s: string): string {
  return s.replace(PY_STRIP, '');
}

const ROLES: readonly ChatRole[] = ['system', 'user', 'assistant'];

function invalid(message: string): LlamaCudaError {
  return new LlamaCudaError('ERR_INVALID_ARG', `chat: ${message}`);
}

/** Checks the shape of the dialog and folds the system message in; returns alternating user/assistant turns. */
function foldDialog(messages: readonly ChatMessage[]): ChatMessage[] {
  if (!Array.isArray(messages)) throw invalid('messages must be an array of { role, content }');
  if (messages.length === 0) throw invalid('no messages: a dialog needs at least one user message');
  messages.forEach((m: unknown, i) => {
    const msg = m as { role?: unknown; content?: unknown } | null;
    if (typeof msg !== 'object' || msg === null) throw invalid(`message ${i} is not an object`);
    if (!ROLES.includes(msg.role as ChatRole)) throw invalid(`message ${i} has role ${JSON.stringify(msg.role)} (expected system, user or assistant)`);
    if (typeof msg.content !== 'string') throw invalid(`message ${i} (${String(msg.role)}): content must be a string`);
  });
  let dialog: ChatMessage[] = [...messages];
  const first = dialog[0]!;
  if (first.role === 'system') {
    const next = dialog[1];
    if (next === undefined) throw invalid('a system message must be followed by a user message');
    if (next.role !== 'user') throw invalid(`message 1 is a ${next.role} message; the system message must be followed by a user message`);
    dialog = [{ role: 'user', content: B_SYS + first.content + E_SYS + next.content }, ...dialog.slice(2)];
  }
  // positions below are those of the caller's array
  const offset = first.role === 'system' ? 1 : 0;
  dialog.forEach((m, i) => {
    const want: ChatRole = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== want) {
      const where = i + offset;
      const detail = m.role === 'system' ? 'a system message is only allowed first' : `expected a ${want} message (the dialog alternates user/assistant, starting with user)`;
      throw invalid(`message ${where} is a ${m.role} message: ${detail}`);
    }
  });
  const last = dialog[dialog.length - 1]!;
  if (last.role !== 'user') throw invalid(`the last message must be a user message, got ${last.role}`);
  return dialog;
}

/**
 * The prompt token ids of a Llama 2 chat dialog, exactly as Meta's `chat_completion` builds
 * them (see the file comment). Throws ERR_INVALID_ARG naming the problem when the dialog is
 * not [system], user, (assistant, user)*.
 */
export function buildLlama2ChatTokens(tokenizer: Tokenizer, messages: readonly ChatMessage[]): number[] {
  const dialog = foldDialog(messages);
  const plain = { addBos: false, addEos: false, parseSpecial: false } as const;
  const out: number[] = [];
  for (let i = 0; i + 1 < dialog.length; i += 2) {
    const user = pythonStrip(dialog[i]!.content);
    const answer = pythonStrip(dialog[i + 1]!.content);
    out.push(tokenizer.bos, ...tokenizer.encode(`${B_INST} ${user} ${E_INST} ${answer} `, plain), tokenizer.eos);
  }
  const last = pythonStrip(dialog[dialog.length - 1]!.content);
  out.push(tokenizer.bos, ...tokenizer.encode(`${B_INST} ${last} ${E_INST}`, plain));
  return out;
}

/**
 * Whether decode() of a reply starting with `token` drops that token's leading space: true for
 * a text piece starting with `▁`; false for bytes and `<unk>` (they produce text first); and
 * undecided (undefined) for a control token, which produces nothing.
 */
function dropsLeadingSpace(tokenizer: Tokenizer, token: number): boolean | undefined {
  const type = tokenizer.vocab.types[token];
  if (type === TokenType.CONTROL) return undefined;
  if (type === TokenType.BYTE || type === TokenType.UNKNOWN) return false;
  return tokenizer.tokenToPiece(token).startsWith('\u2581');
}

/**
 * Generates the assistant's reply to a dialog (see buildLlama2ChatTokens) on the context's
 * sequence. Chunks and result are generate()'s, except that the text is the reply as decode()
 * gives it on its own: without the leading space of its first piece.
 */
export async function* chat(
  ctx: GenerateContext,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
): AsyncGenerator<GenerateChunk, GenerateResult, undefined> {
  const tokens = buildLlama2ChatTokens(ctx.tokenizer, messages);
  // a token-array prompt is used as given; generate() decodes the reply as a continuation of
  // the prompt (keeping the word-boundary space), which is dropped below
  const it = generate(ctx, tokens, options);
  let strip: boolean | undefined;
  let text = '';
  let finished = false;
  try {
    for (;;) {
      const step = await it.next();
      if (step.done) {
        finished = true;
        return { ...step.value, text };
      }
      let chunk = step.value;
      if (strip === undefined && chunk.token >= 0) strip = dropsLeadingSpace(ctx.tokenizer, chunk.token);
      if (strip === true && chunk.text.length > 0) {
        // the first text of the reply is the first text piece's, whose first character is that space
        chunk = { text: chunk.text.slice(1), token: chunk.token };
        strip = false;
      } else if (chunk.text.length > 0) {
        strip = false;
      }
      text += chunk.text;
      yield chunk;
    }
  } finally {
    // the caller stopped early (break, return, throw): end the generation so it releases the sequence
    if (!finished) await it.return(undefined as unknown as GenerateResult);
  }
}
