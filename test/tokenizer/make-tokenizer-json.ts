/**
 * A Hugging Face `tokenizer.json` made from a SentencePiece `tokenizer.model`, the way
 * transformers converts a Llama tokenizer (there is no tokenizer.json in the shared data, so the
 * tests make one), and a reference BPE that applies such a file the way the `tokenizers` library
 * does, merge rank by merge rank.
 *
 * What the converter follows (transformers, convert_slow_tokenizer.py, LlamaConverter over
 * SpmConverter, v4.40-era code with `generate_merges(vocab, vocab_scores)`; tokenizers' JSON
 * serialization; LlamaTokenizerFast.update_post_processor):
 *  - model: BPE with vocab = piece → id in id order (LlamaConverter.vocab keeps every piece and
 *    its score, ids 0..2 being the unk / bos / eos pieces), unk_token = trainer_spec.unk_piece,
 *    fuse_unk true, byte_fallback true, dropout / continuing_subword_prefix / end_of_word_suffix
 *    null, ignore_merges false;
 *  - merges (generate_merges with scores): for every piece, in id order, every split into two
 *    halves that are both pieces (Python string indices, so at code point boundaries), the splits
 *    of one piece sorted by (id of left, id of right); then all of them sorted, stably, by
 *    (score of the merged piece, length of left, length of right), descending; serialized as
 *    [left, right] pairs (tokenizers >= 0.20) or "left right" strings (older files);
 *  - added_tokens: the control pieces (type 3) as special AddedTokens, normalized false, as
 *    SpmConverter adds them, plus `<unk>` (LlamaTokenizerFast registers it as a special token);
 *    user-defined pieces (type 4) as non-special ones;
 *  - normalizer (legacy = true, add_prefix_space = true): Sequence[Prepend("▁"), Replace(" " → "▁")];
 *    pre_tokenizer null;
 *  - post_processor: TemplateProcessing "<s>:0 $A:0" / "<s>:0 $A:0 <s>:1 $B:1" (add_bos_token true,
 *    add_eos_token false);
 *  - decoder: Sequence[Replace("▁" → " "), ByteFallback, Fuse, Strip(" ", 1, 0)].
 * `form: 'metaspace'` writes the newer non-legacy form instead: no normalizer and a Metaspace
 * pre-tokenizer (prepend_scheme "first", split false), with a Metaspace decoder.
 */
import type { SentencePieceModel } from '../../lib/tokenizer/from-sentencepiece.js';

export interface MakeTokenizerJsonOptions {
  /** How merges are written: [left, right] pairs (default, current tokenizers) or "left right". */
  readonly merges?: 'pairs' | 'strings';
  /** Normalizer form: legacy Prepend + Replace (default), or Metaspace pre-tokenizer. */
  readonly form?: 'legacy' | 'metaspace';
}

function codePoints(s: string): string[] {
  return Array.from(s);
}

/** transformers' generate_merges(vocab, vocab_scores) for a BPE SentencePiece model. */
export function generateMerges(pieces: readonly string[], scores: ArrayLike<number>): [string, string][] {
  const vocab = new Map<string, number>();
  pieces.forEach((p, id) => {
    if (!vocab.has(p)) vocab.set(p, id);
  });
  interface Merge { left: string; right: string; score: number; lenL: number; lenR: number }
  const merges: Merge[] = [];
  const seen = new Set<string>(); // dict(vocab_scores): a piece listed twice counts once
  pieces.forEach((piece, id) => {
    if (seen.has(piece)) return;
    seen.add(piece);
    const cps = codePoints(piece);
    const local: Merge[] = [];
    for (let i = 1; i < cps.length; i++) {
      const left = cps.slice(0, i).join('');
      const right = cps.slice(i).join('');
      if (vocab.has(left) && vocab.has(right)) local.push({ left, right, score: scores[id] as number, lenL: i, lenR: cps.length - i });
    }
    local.sort((a, b) => (vocab.get(a.left) as number) - (vocab.get(b.left) as number) || (vocab.get(a.right) as number) - (vocab.get(b.right) as number));
    merges.push(...local);
  });
  // Python's sorted(..., reverse=True) is stable: equal keys keep their order.
  merges.sort((a, b) => b.score - a.score || b.lenL - a.lenL || b.lenR - a.lenR);
  return merges.map((m) => [m.left, m.right]);
}

const ADDED_TOKEN_FLAGS = { single_word: false, lstrip: false, rstrip: false, normalized: false };

/** The tokenizer.json text for a parsed SentencePiece model. */
export function makeTokenizerJson(model: SentencePieceModel, options: MakeTokenizerJsonOptions = {}): string {
  const { pieces, scores, types, trainer } = model;
  const merges = generateMerges(pieces, scores);
  const unkPiece = pieces[trainer.unkId] as string;
  const bosPiece = pieces[trainer.bosId] as string;

  const added: { id: number; content: string; special: boolean }[] = [];
  pieces.forEach((piece, id) => {
    if (types[id] === 3 || id === trainer.unkId) added.push({ id, content: piece, special: true });
    else if (types[id] === 4) added.push({ id, content: piece, special: false });
  });

  const legacy = options.form !== 'metaspace';
  const normalizer = legacy
    ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] }
    : null;
  const preTokenizer = legacy ? null : { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  const decoder = legacy
    ? {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      }
    : { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  const special = (type_id: number) => ({ SpecialToken: { id: bosPiece, type_id } });
  const postProcessor = {
    type: 'TemplateProcessing',
    single: [special(0), { Sequence: { id: 'A', type_id: 0 } }],
    pair: [special(0), { Sequence: { id: 'A', type_id: 0 } }, special(1), { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bosPiece]: { id: bosPiece, ids: [trainer.bosId], tokens: [bosPiece] } },
  };

  // Written by hand where order matters: a JS object would list integer-like keys ("0".."9")
  // first, while tokenizers writes the vocabulary in id order.
  const vocabText = pieces.map((p, id) => `${JSON.stringify(p)}:${id}`).join(',');
  const mergesText = merges.map(([l, r]) => JSON.stringify(options.merges === 'strings' ? `${l} ${r}` : [l, r])).join(',');
  const modelText =
    `{"type":"BPE","dropout":null,"unk_token":${JSON.stringify(unkPiece)},"continuing_subword_prefix":null,` +
    `"end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false,` +
    `"vocab":{${vocabText}},"merges":[${mergesText}]}`;
  return (
    `{"version":"1.0","truncation":null,"padding":null,` +
    `"added_tokens":${JSON.stringify(added.map((t) => ({ id: t.id, content: t.content, ...ADDED_TOKEN_FLAGS, special: t.special })))},` +
    `"normalizer":${JSON.stringify(normalizer)},"pre_tokenizer":${JSON.stringify(preTokenizer)},` +
    `"post_processor":${JSON.stringify(postProcessor)},"decoder":${JSON.stringify(decoder)},"model":${modelText}}`
  );
}

/**
 * A reference for what the `tokenizers` library does with such a file (no added-token
 * extraction, i.e. like parseSpecial false): normalize (Prepend "▁" to non-empty text, Replace
 * " " → "▁"), one symbol per character (a character not in the vocabulary becomes its UTF-8
 * `<0xXX>` byte tokens), then repeatedly apply the listed merge of lowest rank, leftmost first
 * on equal rank. O(n²) per text: for short test strings.
 */
export class HfBpeReference {
  private readonly vocab = new Map<string, number>();
  private readonly ranks = new Map<string, number>();

  constructor(json: string) {
    const parsed = JSON.parse(json) as { model: { vocab: Record<string, number>; merges: ([string, string] | string)[] } };
    for (const [piece, id] of Object.entries(parsed.model.vocab)) this.vocab.set(piece, id);
    parsed.model.merges.forEach((m, rank) => {
      const [l, r] = typeof m === 'string' ? (m.split(' ') as [string, string]) : m;
      this.ranks.set(`${l}\u0000${r}`, rank); // a later duplicate overwrites, as tokenizers' HashMap does
    });
  }

  /** Ids without BOS. */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    const norm = `▁${text.replaceAll(' ', '▁')}`;
    // symbols: [piece, isByte]
    const symbols: { piece: string; byte: boolean }[] = [];
    for (const ch of norm) {
      if (this.vocab.has(ch)) symbols.push({ piece: ch, byte: false });
      else for (const b of new TextEncoder().encode(ch)) symbols.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, byte: true });
    }
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${(symbols[i] as { piece: string }).piece}\u0000${(symbols[i + 1] as { piece: string }).piece}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const merged = (symbols[best] as { piece: string }).piece + (symbols[best + 1] as { piece: string }).piece;
      symbols.splice(best, 2, { piece: merged, byte: false });
    }
    return symbols.map((s) => this.vocab.get(s.piece) as number);
  }
}
