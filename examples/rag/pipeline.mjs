// Retrieval-augmented generation with llama-cuda, as a few plain functions (rag.mjs is the
// command line around them; test/e2e/rag-example.test.ts runs them on stories260K).
//
//   parseArxivDump(text)            the seed's dataset dump -> records { doi, chunkId, chunk, title, ... }
//   buildIndex(model, records)      embeds "title\n\nchunk" of every record -> VectorIndex
//   retrieve(model, index, q, k)    embeds the question, cosine top-k
//   buildMessages(...)              a Llama 2 chat dialog: instructions, the retrieved chunks, the question,
//                                   the chunks cut (token-wise) until prompt + answer fit the context
//   answer(model, messages, ...)    streams the reply (model.chat)
//
// Retrieval design: a document is embedded as its title, a blank line and the chunk, because a
// chunk cut out of a paper rarely says which paper it is from; the title puts that back. The
// embedding is the mean of the model's final normed hidden states over the text (model.embed,
// pooling 'mean'), cut to the model's trained context. A question is embedded the same way.
import { buildLlama2ChatTokens, VectorIndex } from 'llama-cuda';

/**
 * Parses a Hugging Face dataset viewer dump: a header of field descriptions (name, type, and
 * the type's statistics: `stringlengths` min max, `stringclasses` "N values", `sequence`,
 * `list`), then one line per field per record, in header order.
 * @param {string} text
 * @returns {{ fields: string[], records: Record<string, string>[] }}
 */
export function parseDatasetDump(text) {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const statLines = { stringlengths: 2, stringclasses: 1, sequence: 0, list: 0, int64: 2, float64: 2, bool: 1 };
  const fields = [];
  let i = 0;
  // the header ends at the first name whose next line is not a known type
  while (i + 1 < lines.length && Object.hasOwn(statLines, lines[i + 1])) {
    fields.push(lines[i]);
    i += 2 + statLines[lines[i + 1]];
  }
  if (fields.length === 0) throw new Error('not a dataset dump: no field header');
  const body = lines.slice(i);
  if (body.length % fields.length !== 0) {
    throw new Error(`${body.length} lines after the header are not whole records of ${fields.length} fields`);
  }
  const records = [];
  for (let r = 0; r < body.length; r += fields.length) {
    records.push(Object.fromEntries(fields.map((f, j) => [f, body[r + j]])));
  }
  return { fields, records };
}

/**
 * The arXiv chunks of the seed dump (fields doi, chunk-id, chunk, title, summary, ...).
 * @param {string} text
 */
export function parseArxivDump(text) {
  const { fields, records } = parseDatasetDump(text);
  for (const f of ['doi', 'chunk-id', 'chunk', 'title']) {
    if (!fields.includes(f)) throw new Error(`the dump has no "${f}" field (fields: ${fields.join(', ')})`);
  }
  return records.map((r) => ({ doi: r.doi, chunkId: r['chunk-id'], chunk: r.chunk, title: r.title, source: r.source ?? '', fields: r }));
}

/** The text a record is embedded as. */
export function documentText(record) {
  return `${record.title}\n\n${record.chunk}`;
}

/** Tokens worth embedding: the session's context, but not past the model's trained context. */
function embedTokens(model) {
  return Math.min(model.contextLength, model.config.contextLength);
}

/**
 * Embeds every record and returns the index (ids "doi#chunk-id", payload the record).
 * @param {import('llama-cuda').LlamaModel} model
 */
export async function buildIndex(model, records, { onProgress } = {}) {
  const vectors = await model.embed(records.map(documentText), { pooling: 'mean', maxTokens: embedTokens(model), ...(onProgress ? { onProgress } : {}) });
  const index = new VectorIndex(model.config.dim);
  records.forEach((r, i) => index.add(`${r.doi}#${r.chunkId}`, vectors[i], r));
  return index;
}

/** The k chunks closest to the question. */
export async function retrieve(model, index, question, k) {
  const [q] = await model.embed([question], { pooling: 'mean', maxTokens: embedTokens(model) });
  return index.search(q, k);
}

const SYSTEM =
  'You answer questions about research papers. Use only the numbered context passages below; ' +
  'if they do not contain the answer, say so. Cite passages by their number.';

function userTurn(question, passages) {
  const context = passages.map((p, i) => `[${i + 1}] ${p.title} (arXiv ${p.doi}, chunk ${p.chunkId}):\n${p.text}`).join('\n\n');
  return `Context:\n${context}\n\nQuestion: ${question}`;
}

/**
 * The chat dialog for the question and the retrieved hits: every passage is cut to the same
 * number of tokens, the most that lets the prompt plus `answerTokens` fit `model.contextLength`
 * (passages are dropped from the end if even one token each is too many).
 * @returns {{ messages: import('llama-cuda').ChatMessage[], promptTokens: number, passageTokens: number, passages: number }}
 */
export function buildMessages(model, question, hits, answerTokens) {
  const tok = model.tokenizer;
  const encoded = hits.map((h) => tok.encode(h.payload.chunk, { addBos: false }));
  const make = (count, perPassage) => {
    const passages = hits.slice(0, count).map((h, i) => ({ ...h.payload, text: tok.decode(encoded[i].slice(0, perPassage)) }));
    const messages = [
      { role: 'system', content: SYSTEM },
      { role: 'user', content: userTurn(question, passages) },
    ];
    return { messages, promptTokens: buildLlama2ChatTokens(tok, messages).length };
  };
  const budget = model.contextLength - answerTokens;
  for (let count = hits.length; count >= 0; count--) {
    // the largest per-passage length that fits, by bisection (prompt length grows with it)
    let lo = 0;
    let hi = Math.max(0, ...encoded.slice(0, count).map((e) => e.length));
    if (make(count, lo).promptTokens > budget) continue;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (make(count, mid).promptTokens <= budget) lo = mid;
      else hi = mid - 1;
    }
    if (count > 0 && lo === 0) continue;
    return { ...make(count, lo), passageTokens: lo, passages: count };
  }
  throw new Error(`the question alone does not fit a context of ${model.contextLength} tokens with ${answerTokens} for the answer`);
}

/**
 * Streams the answer; `onText` gets each piece of text. Returns the GenerateResult.
 * @param {import('llama-cuda').LlamaModel} model
 */
export async function answer(model, messages, { maxTokens = 256, temperature = 0, onText, signal } = {}) {
  const it = model.chat(messages, { maxTokens, temperature, ...(signal ? { signal } : {}) });
  for (;;) {
    const step = await it.next();
    if (step.done) return step.value;
    if (onText && step.value.text) onText(step.value.text);
  }
}
