/**
 * Hugging Face `tokenizer.json` for Llama: the `tokenizers` library's serialization of a
 * SentencePiece BPE model converted by transformers' LlamaConverter. The parts read:
 *
 *   model          {"type": "BPE", "vocab": {piece: id}, "merges": ["a b", ...] or [["a", "b"], ...],
 *                   "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
 *                   "dropout": null, "continuing_subword_prefix": null, "end_of_word_suffix": null}
 *   normalizer     Sequence[Prepend("▁"), Replace(" " → "▁")]  (legacy Llama; Prepend optional)
 *   pre_tokenizer  null, or Metaspace("▁") with a null normalizer (the newer form)
 *   post_processor TemplateProcessing: a special token before $A is BOS (added), after it EOS
 *   decoder        Replace("▁" → " "), ByteFallback, Fuse, Strip(" ", 1, 0), or Metaspace
 *   added_tokens   [{id, content, special, lstrip, rstrip, single_word, normalized}]
 *
 * Mapping onto the Vocab (and so onto the one SentencePiece-style encoder):
 *  - pieces are the vocab keys by id; added tokens with new ids extend it (ids must stay dense);
 *  - types: the unk_token is UNKNOWN; special added tokens and the BOS / EOS are CONTROL;
 *    other added tokens USER_DEFINED (always matched whole); `<0xXX>` pieces are BYTE when
 *    byte_fallback is on; the rest NORMAL;
 *  - scores: HF's BPE applies the merge of lowest rank first, SentencePiece the pair whose merged
 *    piece has the highest score. Each piece gets score -(1 + rank of the first merge producing
 *    it), so a lower rank means a higher score; pieces no merge produces get a score below all
 *    of those (they are never merge results, so the value does not matter to encoding).
 *
 * When is that the same tokenization? The encoder merges any adjacent pair whose concatenation
 * is a piece; HF merges only the listed pairs. So the merges must list every split of a piece
 * into two parts that the encoder can reach (single characters, or pieces themselves made by a
 * merge): converters from SentencePiece list them all (transformers' generate_merges takes every
 * split whose halves are in the vocabulary). A file whose merges miss one (a BPE trained by the
 * tokenizers library itself, which keeps one merge per piece) is rejected with ERR_UNSUPPORTED
 * naming the pair, rather than tokenized differently from its own definition. Within that, a
 * piece's merges may be spread over several ranks (transformers orders equal SentencePiece scores
 * by the halves' lengths; in Llama 2 the 15 runs of 2 to 16 `▁` share one score); the piece then
 * takes its first rank. The tests compare, token for token, this encoder on the converted Llama 2
 * tokenizer.json with a rank-by-rank HF-style BPE reference and with SentencePiece.
 *
 * Behaviour follows SentencePiece (which Llama was trained with) where HF's pipeline is known to
 * differ from it: with a Metaspace pre-tokenizer, runs of spaces may merge (split: true would
 * keep `▁▁` from forming) and a leading space still gets its dummy prefix; special tokens are
 * recognized only with `parseSpecial` (HF always does), and each text segment after one gets the
 * dummy prefix (also with prepend_scheme "first"); `<unk>` decodes to " ⁇ " and control tokens
 * to nothing. Normalizers, pre-tokenizers, decoders, post-processors and model options outside
 * the list above are rejected with ERR_UNSUPPORTED naming them.
 */
import { LlamaCudaError } from '../errors.js';
import { SPACE_SYMBOL, TokenType, Vocab, bytePieceValue } from './vocab.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isTokenId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Typed access to the JSON with errors naming the path ("model.vocab"). */
class Reader {
  readonly source: string;

  constructor(source: string) {
    this.source = source;
  }

  format(path: string, message: string): LlamaCudaError {
    return new LlamaCudaError('ERR_MODEL_FORMAT', `${this.source}: not a valid tokenizer.json: ${path} ${message}`);
  }

  unsupported(message: string): LlamaCudaError {
    return new LlamaCudaError('ERR_UNSUPPORTED', `${this.source}: ${message} is not supported (the Llama tokenizer is a SentencePiece-style BPE)`);
  }

  object(v: unknown, path: string): JsonObject {
    if (!isObject(v)) throw this.format(path, `should be an object, found ${describe(v)}`);
    return v;
  }

  array(v: unknown, path: string): Json[] {
    if (!Array.isArray(v)) throw this.format(path, `should be an array, found ${describe(v)}`);
    return v as Json[];
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') throw this.format(path, `should be a string, found ${describe(v)}`);
    return v;
  }

  /** An optional boolean (absent or null → `fallback`). */
  bool(v: unknown, path: string, fallback: boolean): boolean {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw this.format(path, `should be a boolean, found ${describe(v)}`);
    return v;
  }

  id(v: unknown, path: string): number {
    if (!isTokenId(v)) throw this.format(path, `should be a token id (an integer ≥ 0), found ${describe(v)}`);
    return v;
  }

  /** The `type` tag of a component. */
  type(v: JsonObject, path: string): string {
    return this.string(v['type'], `${path}.type`);
  }
}

/** Parses tokenizer.json text, or takes an already parsed object. */
function parseInput(input: string | object, r: Reader): JsonObject {
  if (typeof input === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(input.charCodeAt(0) === 0xfeff ? input.slice(1) : input);
    } catch (err) {
      throw new LlamaCudaError('ERR_MODEL_FORMAT', `${r.source}: not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    return r.object(parsed, 'the top level');
  }
  return r.object(input, 'the top level');
}

interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
}

export function vocabFromTokenizerJson(input: string | object, source = 'tokenizer.json'): Vocab {
  const r = new Reader(source);
  const root = parseInput(input, r);
  const model = r.object(root['model'], 'model');
  const modelType = model['type'];
  if (modelType !== undefined && modelType !== 'BPE') throw r.unsupported(`the model type ${JSON.stringify(modelType)}`);
  if (modelType === undefined && model['merges'] === undefined) throw r.unsupported('a model without "type" or "merges" (not BPE)');
  checkBpeOptions(model, r);
  const byteFallback = r.bool(model['byte_fallback'], 'model.byte_fallback', false);
  const fuseUnk = r.bool(model['fuse_unk'], 'model.fuse_unk', false);
  if (!byteFallback && !fuseUnk) throw r.unsupported('BPE without byte_fallback and without fuse_unk');

  // ---- pieces ----
  const vocabJson = r.object(model['vocab'], 'model.vocab');
  const keys = Object.keys(vocabJson);
  const nModel = keys.length;
  const pieceIds = new Map<string, number>();
  const pieces: string[] = new Array<string>(nModel); // ids must be exactly 0..nModel-1
  for (const piece of keys) {
    const value = vocabJson[piece];
    // (the path for the error message is built only when needed: this loop runs 32000 times)
    const id = isTokenId(value) ? value : r.id(value, `model.vocab[${JSON.stringify(piece)}]`);
    if (id >= nModel) throw r.format(`model.vocab[${JSON.stringify(piece)}]`, `is ${id}, but the ${nModel} pieces must have ids 0..${nModel - 1}`);
    if (pieces[id] !== undefined) throw r.format(`model.vocab`, `gives id ${id} to both ${JSON.stringify(pieces[id])} and ${JSON.stringify(piece)}`);
    pieces[id] = piece;
    pieceIds.set(piece, id);
  }

  const added = readAddedTokens(root['added_tokens'], r);
  for (const t of added) {
    const existing = pieceIds.get(t.content);
    if (t.id < pieces.length) {
      if (pieces[t.id] !== t.content) {
        throw r.format(`added_tokens`, `give id ${t.id} to ${JSON.stringify(t.content)} but model.vocab has ${JSON.stringify(pieces[t.id])} there`);
      }
    } else if (t.id === pieces.length) {
      if (existing !== undefined) throw r.format('added_tokens', `give ${JSON.stringify(t.content)} id ${t.id} but model.vocab has it as ${existing}`);
      pieces.push(t.content);
      pieceIds.set(t.content, t.id);
    } else {
      throw r.format('added_tokens', `jump to id ${t.id} after ${pieces.length - 1}: token ids must be dense`);
    }
  }
  const n = pieces.length;

  // ---- special ids and types ----
  const unkToken = model['unk_token'];
  if (unkToken === undefined || unkToken === null) throw r.unsupported('a BPE model without unk_token');
  const unk = pieceIds.get(r.string(unkToken, 'model.unk_token'));
  if (unk === undefined) throw r.format('model.unk_token', `${JSON.stringify(unkToken)} is not in the vocabulary`);
  const post = readPostProcessor(root['post_processor'], pieceIds, r);
  const bos = post.bos ?? pieceIds.get('<s>');
  const eos = post.eos ?? pieceIds.get('</s>');
  if (bos === undefined) throw r.format('post_processor', 'names no BOS token and the vocabulary has no "<s>"');
  if (eos === undefined) throw r.format('post_processor', 'names no EOS token and the vocabulary has no "</s>"');

  const types = new Uint8Array(n).fill(TokenType.NORMAL);
  if (byteFallback) {
    for (let id = 0; id < n; id++) if (bytePieceValue(pieces[id] as string) >= 0) types[id] = TokenType.BYTE;
  }
  for (const t of added) types[t.id] = t.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  types[bos] = TokenType.CONTROL;
  types[eos] = TokenType.CONTROL;
  types[unk] = TokenType.UNKNOWN;

  const addDummyPrefix = readNormalization(root['normalizer'], root['pre_tokenizer'], r);
  checkDecoder(root['decoder'], r);

  const scores = mergeScores(model['merges'], pieces, pieceIds, types, r);
  return new Vocab({ source, pieces, scores, types, bos, eos, unk, addBos: post.addBos, addEos: post.addEos, addDummyPrefix });
}

/** BPE options that would change the tokenization and that the encoder does not have. */
function checkBpeOptions(model: JsonObject, r: Reader): void {
  const dropout = model['dropout'];
  if (dropout !== undefined && dropout !== null && dropout !== 0) throw r.unsupported(`BPE dropout ${JSON.stringify(dropout)}`);
  for (const key of ['continuing_subword_prefix', 'end_of_word_suffix']) {
    const v = model[key];
    if (v !== undefined && v !== null && v !== '') throw r.unsupported(`BPE ${key} ${JSON.stringify(v)}`);
  }
  if (r.bool(model['ignore_merges'], 'model.ignore_merges', false)) throw r.unsupported('BPE ignore_merges');
}

function readAddedTokens(v: unknown, r: Reader): AddedToken[] {
  if (v === undefined || v === null) return [];
  const out: AddedToken[] = [];
  r.array(v, 'added_tokens').forEach((item, i) => {
    const path = `added_tokens[${i}]`;
    const t = r.object(item, path);
    const id = r.id(t['id'], `${path}.id`);
    const content = r.string(t['content'], `${path}.content`);
    if (content.length === 0) throw r.format(`${path}.content`, 'is empty');
    const special = r.bool(t['special'], `${path}.special`, false);
    for (const option of ['lstrip', 'rstrip', 'single_word']) {
      if (r.bool(t[option], `${path}.${option}`, false)) throw r.unsupported(`the added token ${JSON.stringify(content)} with ${option}`);
    }
    r.bool(t['normalized'], `${path}.normalized`, false);
    if (!special && content.includes(' ')) throw r.unsupported(`the added token ${JSON.stringify(content)}, which holds a space`);
    out.push({ id, content, special });
  });
  out.sort((a, b) => a.id - b.id);
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1] as AddedToken;
    const b = out[i] as AddedToken;
    if (a.id === b.id) throw r.format('added_tokens', `list id ${a.id} twice (${JSON.stringify(a.content)}, ${JSON.stringify(b.content)})`);
  }
  return out;
}

interface PostProcessing {
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly bos?: number;
  readonly eos?: number;
}

/**
 * BOS / EOS from a TemplateProcessing post-processor: the special token before `$A` is prepended,
 * the one after it appended. Without a post-processor, Llama's convention: BOS, no EOS (what
 * transformers' LlamaTokenizerFast installs from add_bos_token / add_eos_token).
 */
function readPostProcessor(v: unknown, pieceIds: ReadonlyMap<string, number>, r: Reader): PostProcessing {
  if (v === undefined || v === null) return { addBos: true, addEos: false };
  const post = r.object(v, 'post_processor');
  const type = r.type(post, 'post_processor');
  if (type !== 'TemplateProcessing') throw r.unsupported(`the post_processor ${JSON.stringify(type)}`);
  const single = r.array(post['single'], 'post_processor.single');
  const specials = post['special_tokens'] === undefined ? {} : r.object(post['special_tokens'], 'post_processor.special_tokens');
  const before: number[] = [];
  const after: number[] = [];
  let seenA = false;
  single.forEach((item, i) => {
    const path = `post_processor.single[${i}]`;
    const piece = r.object(item, path);
    if (piece['Sequence'] !== undefined) {
      const seqId = r.object(piece['Sequence'], `${path}.Sequence`)['id'];
      if (seqId !== 'A' || seenA) throw r.unsupported(`a post_processor template with sequence ${JSON.stringify(seqId)} at ${path}`);
      seenA = true;
    } else if (piece['SpecialToken'] !== undefined) {
      const name = r.string(r.object(piece['SpecialToken'], `${path}.SpecialToken`)['id'], `${path}.SpecialToken.id`);
      let id = pieceIds.get(name);
      const entry = Object.hasOwn(specials, name) ? specials[name] : undefined;
      if (entry !== undefined) {
        const ids = r.array(r.object(entry, `post_processor.special_tokens[${JSON.stringify(name)}]`)['ids'], `post_processor.special_tokens[${JSON.stringify(name)}].ids`);
        if (ids.length !== 1) throw r.unsupported(`the post_processor special token ${JSON.stringify(name)} of ${ids.length} ids`);
        id = r.id(ids[0], `post_processor.special_tokens[${JSON.stringify(name)}].ids[0]`);
      }
      if (id === undefined) throw r.format(path, `names the special token ${JSON.stringify(name)}, which is not in the vocabulary`);
      (seenA ? after : before).push(id);
    } else {
      throw r.format(path, `should be {"Sequence": ...} or {"SpecialToken": ...}, found keys ${JSON.stringify(Object.keys(piece))}`);
    }
  });
  if (!seenA) throw r.format('post_processor.single', 'has no $A sequence');
  if (before.length > 1 || after.length > 1) throw r.unsupported(`a post_processor template adding ${before.length} tokens before and ${after.length} after the text`);
  return {
    addBos: before.length === 1,
    addEos: after.length === 1,
    ...(before[0] !== undefined ? { bos: before[0] } : {}),
    ...(after[0] !== undefined ? { eos: after[0] } : {}),
  };
}

/**
 * The supported normalizer / pre-tokenizer pairs; returns add_dummy_prefix. Either the legacy
 * Llama normalizer (Replace " " → "▁", with or without Prepend "▁") and no pre-tokenizer, or no
 * normalizer and a Metaspace("▁") pre-tokenizer.
 */
function readNormalization(normalizerJson: unknown, preTokenizerJson: unknown, r: Reader): boolean {
  let prepend = false;
  let replace = false;
  if (normalizerJson !== undefined && normalizerJson !== null) {
    const normalizer = r.object(normalizerJson, 'normalizer');
    const steps = r.type(normalizer, 'normalizer') === 'Sequence' ? r.array(normalizer['normalizers'], 'normalizer.normalizers') : [normalizer];
    steps.forEach((item, i) => {
      const path = normalizer === item ? 'normalizer' : `normalizer.normalizers[${i}]`;
      const step = r.object(item, path);
      const type = r.type(step, path);
      if (type === 'Prepend' && step['prepend'] === SPACE_SYMBOL && !prepend) prepend = true;
      else if (type === 'Replace' && isStringPattern(step['pattern'], ' ') && step['content'] === SPACE_SYMBOL && !replace) replace = true;
      else throw r.unsupported(`the normalizer ${describeComponent(step)}`);
    });
    if (prepend && !replace) throw r.unsupported('a Prepend("▁") normalizer without Replace(" " → "▁")');
  }
  if (preTokenizerJson === undefined || preTokenizerJson === null) {
    if (!replace) throw r.unsupported('a tokenizer.json with neither a Replace(" " → "▁") normalizer nor a Metaspace pre_tokenizer (spaces would not become "▁")');
    return prepend;
  }
  const pre = r.object(preTokenizerJson, 'pre_tokenizer');
  const type = r.type(pre, 'pre_tokenizer');
  if (type !== 'Metaspace') throw r.unsupported(`the pre_tokenizer ${describeComponent(pre)}`);
  if (replace) throw r.unsupported('a Metaspace pre_tokenizer after a Replace normalizer');
  const replacement = pre['replacement'] ?? pre['str_rep'];
  if (replacement !== SPACE_SYMBOL) throw r.unsupported(`a Metaspace pre_tokenizer with replacement ${JSON.stringify(replacement)}`);
  r.bool(pre['split'], 'pre_tokenizer.split', true);
  const scheme = pre['prepend_scheme'];
  if (scheme !== undefined && scheme !== null) {
    if (scheme === 'always' || scheme === 'first') return true;
    if (scheme === 'never') return false;
    throw r.unsupported(`a Metaspace pre_tokenizer with prepend_scheme ${JSON.stringify(scheme)}`);
  }
  return r.bool(pre['add_prefix_space'], 'pre_tokenizer.add_prefix_space', true);
}

function isStringPattern(v: unknown, s: string): boolean {
  return isObject(v) && v['String'] === s && Object.keys(v).length === 1;
}

function describeComponent(v: JsonObject): string {
  const { type, ...rest } = v;
  const text = JSON.stringify(rest);
  return `${JSON.stringify(type)}${text === '{}' ? '' : ` ${text.length > 80 ? `${text.slice(0, 80)}...` : text}`}`;
}

/** The decoders of a Llama tokenizer.json; decoding itself is SentencePiece's (decode.ts). */
function checkDecoder(v: unknown, r: Reader): void {
  if (v === undefined || v === null) return;
  const decoder = r.object(v, 'decoder');
  const steps = r.type(decoder, 'decoder') === 'Sequence' ? r.array(decoder['decoders'], 'decoder.decoders') : [decoder];
  steps.forEach((item, i) => {
    const path = decoder === item ? 'decoder' : `decoder.decoders[${i}]`;
    const step = r.object(item, path);
    const type = r.type(step, path);
    const ok =
      type === 'ByteFallback' || type === 'Fuse' ||
      (type === 'Replace' && isStringPattern(step['pattern'], SPACE_SYMBOL) && step['content'] === ' ') ||
      (type === 'Strip' && step['content'] === ' ' && (step['start'] === 0 || step['start'] === 1) && step['stop'] === 0) ||
      (type === 'Metaspace' && (step['replacement'] ?? step['str_rep']) === SPACE_SYMBOL);
    if (!ok) throw r.unsupported(`the decoder ${describeComponent(step)}`);
  });
}

/** Merges listed for a piece are kept as id * SPLIT_KEY + (UTF-16 length of the left half). */
const SPLIT_KEY = 0x10000;

/**
 * Merge priority as SentencePiece-style scores (see the file comment), after checking that the
 * merges list every split the encoder could take.
 */
function mergeScores(mergesJson: unknown, pieces: readonly string[], pieceIds: ReadonlyMap<string, number>, types: Uint8Array, r: Reader): Float32Array {
  const merges = r.array(mergesJson ?? [], 'model.merges');
  const n = pieces.length;
  /** For each piece, the rank of the first merge producing it, or -1. */
  const firstRank = new Int32Array(n).fill(-1);
  /** The (piece, left length) of every merge into a normal piece. */
  const listed = new Set<number>();
  for (let rank = 0; rank < merges.length; rank++) {
    const m = merges[rank];
    let left: string;
    let right: string;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      left = m[0];
      right = m[1];
    } else if (typeof m === 'string') {
      const space = m.indexOf(' ');
      if (space < 0 || m.indexOf(' ', space + 1) >= 0) throw r.format(`model.merges[${rank}]`, `should be two pieces separated by one space, found ${JSON.stringify(m)}`);
      left = m.slice(0, space);
      right = m.slice(space + 1);
    } else {
      throw r.format(`model.merges[${rank}]`, `should be "left right" or ["left", "right"], found ${describe(m)}`);
    }
    const l = pieceIds.get(left);
    const rt = pieceIds.get(right);
    const id = pieceIds.get(left + right);
    if (l === undefined || rt === undefined || id === undefined) {
      const missing = [left, right, left + right].find((p) => !pieceIds.has(p));
      throw r.format(`model.merges[${rank}]`, `(${JSON.stringify(left)}, ${JSON.stringify(right)}) uses ${JSON.stringify(missing)}, which is not in the vocabulary`);
    }
    if (types[l] === TokenType.BYTE || types[rt] === TokenType.BYTE) {
      throw r.unsupported(`the merge of byte-fallback tokens ${JSON.stringify(left)} + ${JSON.stringify(right)} (model.merges[${rank}])`);
    }
    // Merges into control, unknown, byte or added pieces never fire in the encoder: such tokens
    // come only from parseSpecial / whole-piece matching, as in SentencePiece.
    if (types[id] !== TokenType.NORMAL) continue;
    if (left.length >= SPLIT_KEY) throw r.unsupported(`a piece of ${left.length + right.length} UTF-16 units`);
    if (firstRank[id] === -1) firstRank[id] = rank;
    listed.add(id * SPLIT_KEY + left.length);
  }

  checkMergesComplete(pieces, pieceIds, types, listed, r);

  const scores = new Float32Array(n);
  const unreached = -(merges.length + 1);
  for (let id = 0; id < n; id++) {
    if (types[id] !== TokenType.NORMAL) continue; // control, unknown, byte, added: 0, as in SentencePiece
    const rank = firstRank[id] as number;
    scores[id] = rank === -1 ? unreached : -(rank + 1);
  }
  return scores;
}

/**
 * Every split of a normal piece into two halves that the encoder can form (single code points,
 * or pieces made by a merge) must be a listed merge; otherwise the encoder could make a piece
 * that HF's BPE would not.
 */
function checkMergesComplete(pieces: readonly string[], pieceIds: ReadonlyMap<string, number>, types: Uint8Array, listed: ReadonlySet<number>, r: Reader): void {
  // Normal pieces of two or more code points, fewest first, so halves are decided before wholes.
  const n = pieces.length;
  const cps = new Int32Array(n);
  let maxCps = 0;
  for (let id = 0; id < n; id++) {
    if (types[id] !== TokenType.NORMAL) continue;
    const c = codePointCount(pieces[id] as string);
    cps[id] = c;
    if (c > maxCps) maxCps = c;
  }
  const order: number[] = [];
  for (let c = 2; c <= maxCps; c++) for (let id = 0; id < n; id++) if (cps[id] === c) order.push(id);

  /** 1 for normal pieces that some merge of reachable halves produces. */
  const reached = new Uint8Array(n);
  const reachable = (piece: string, from: number, to: number): boolean => {
    if (isOneCodePoint(piece, from, to)) return true;
    const id = pieceIds.get(piece.slice(from, to));
    return id !== undefined && reached[id] === 1;
  };
  for (const id of order) {
    const piece = pieces[id] as string;
    for (let cut = 1; cut < piece.length; cut++) {
      const unit = piece.charCodeAt(cut);
      if (unit >= 0xdc00 && unit <= 0xdfff && isHighSurrogate(piece.charCodeAt(cut - 1))) continue; // inside a pair
      if (listed.has(id * SPLIT_KEY + cut)) {
        if (reached[id] === 0 && reachable(piece, 0, cut) && reachable(piece, cut, piece.length)) reached[id] = 1;
      } else if (reachable(piece, 0, cut) && reachable(piece, cut, piece.length)) {
        throw r.unsupported(
          `a merges list without ${JSON.stringify(piece.slice(0, cut))} + ${JSON.stringify(piece.slice(cut))} → ${JSON.stringify(piece)} ` +
          '(both halves can occur, so SentencePiece BPE would merge them: this tokenizer.json was not converted from a SentencePiece model)',
        );
      }
    }
  }
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function codePointCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++, n++) {
    if (isHighSurrogate(s.charCodeAt(i)) && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return n;
}

/** Whether s[from, to) is a single code point. */
function isOneCodePoint(s: string, from: number, to: number): boolean {
  if (to - from === 1) return true;
  if (to - from !== 2 || !isHighSurrogate(s.charCodeAt(from))) return false;
  const next = s.charCodeAt(from + 1);
  return next >= 0xdc00 && next <= 0xdfff;
}
