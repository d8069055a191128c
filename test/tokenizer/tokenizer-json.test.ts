/**
 * Hugging Face tokenizer.json: synthetic files for every accepted and rejected setting, malformed
 * JSON, and a tokenizer.json converted from the real Llama 2 tokenizer.model (as transformers'
 * LlamaConverter would make it) against SentencePiece (the parity suite), against a rank-by-rank
 * HF-style BPE reference, and against the other vocabulary files.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { LlamaCudaError } from '../../lib/errors.js';
import { TokenType, Tokenizer } from '../../lib/tokenizer/index.js';
import { expectErrorCode } from '../helpers/errors.js';
import { describeWithShared } from '../helpers/shared-data.js';
import {
  FILES, defineParityTests, ggufTokenizer, llama2TokenizerJson, readLlamaVectors, readSpCases, sentencePieceTokenizer,
} from './load.js';
import { HfBpeReference } from './make-tokenizer-json.js';
import { pick, randomInt, randomText, seededRandom } from './random.js';

// ---- a small Llama-style tokenizer.json ----

const BYTES = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
const PIECES = ['<unk>', '<s>', '</s>', ...BYTES, '▁', 'h', 'i', '▁h', 'hi', '▁hi'];
const id = (p: string): number => PIECES.indexOf(p);
const MERGES: [string, string][] = [['▁', 'h'], ['▁h', 'i'], ['h', 'i'], ['▁', 'hi']];

type J = Record<string, unknown>;
const special = (i: number, content: string, extra: J = {}): J => ({ id: i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra });
const LEGACY_NORMALIZER = { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] };
const TEMPLATE = {
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
  pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
};
const DECODER = {
  type: 'Sequence',
  decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
};

/** The small tokenizer.json as an object; `top` and `model` replace (undefined: remove) keys. */
function tj(top: J = {}, model: J = {}): J {
  const m: J = {
    type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: true, byte_fallback: true, ignore_merges: false,
    vocab: Object.fromEntries(PIECES.map((p, i) => [p, i])),
    merges: MERGES,
    ...model,
  };
  const root: J = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: LEGACY_NORMALIZER, pre_tokenizer: null, post_processor: TEMPLATE, decoder: DECODER,
    model: m,
    ...top,
  };
  for (const obj of [root, m]) for (const [k, v] of Object.entries(obj)) if (v === undefined) delete obj[k];
  return root;
}

const load = (json: J | string): Tokenizer => Tokenizer.fromTokenizerJson(json);

describe('tokenizer.json (synthetic)', () => {
  it('maps vocab, added tokens and merges onto pieces, types and scores', () => {
    const tok = load(tj());
    expect(tok.vocab.pieces).toEqual(PIECES);
    expect([tok.bos, tok.eos, tok.unk, tok.addBos, tok.vocab.addEos, tok.vocab.addDummyPrefix]).toEqual([1, 2, 0, true, false, true]);
    expect(Array.from(tok.vocab.types)).toEqual([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, ...BYTES.map(() => TokenType.BYTE), 1, 1, 1, 1, 1, 1]);
    // score = -(1 + first rank); pieces no merge makes score below all of them; others 0
    expect(Array.from(tok.vocab.scores.slice(259))).toEqual([-5, -5, -5, -1, -3, -2]);
    expect(Array.from(tok.vocab.scores.slice(0, 259)).every((s) => s === 0)).toBe(true);
    expect(tok.encode('hi hi')).toEqual([1, id('▁hi'), id('▁hi')]);
    expect(tok.encode('é', { addBos: false })).toEqual([id('▁'), id('<0xC3>'), id('<0xA9>')]);
    expect(tok.decode([1, id('▁hi'), id('▁hi'), 2])).toBe('hi hi');
    expect(tok.vocab.source).toBe('tokenizer.json');
  });

  it('reads text (with or without a BOM) and objects alike, and "a b" merges like ["a", "b"]', () => {
    const text = JSON.stringify(tj());
    const strings = tj({}, { merges: MERGES.map(([l, r]) => `${l} ${r}`) });
    for (const tok of [load(text), load(`\ufeff${text}`), load(strings), Tokenizer.fromTokenizerJson(text, 'x/tokenizer.json')]) {
      expect(tok.vocab.pieces).toEqual(PIECES);
      expect(tok.vocab.scores).toEqual(load(tj()).vocab.scores);
    }
    expect(Tokenizer.fromTokenizerJson(text, 'mine.json').vocab.source).toBe('mine.json');
  });

  it('applies merges by rank, as the tokenizers library does', () => {
    const pieces = ['<unk>', '<s>', '</s>', ...BYTES, '▁', 'a', 'b', 'c', 'ab', 'bc'];
    const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
    for (const merges of [[['a', 'b'], ['b', 'c']], [['b', 'c'], ['a', 'b']]]) {
      const json = JSON.stringify(tj({}, { vocab, merges }));
      const tok = load(json);
      const got = tok.encode('abc abcbc', { addBos: false });
      expect(got).toEqual(new HfBpeReference(json).encode('abc abcbc'));
      expect(got.map((i) => pieces[i])).toEqual(merges[0]?.[0] === 'a' ? ['▁', 'ab', 'c', '▁', 'ab', 'c', 'bc'] : ['▁', 'a', 'bc', '▁', 'a', 'bc', 'bc']);
    }
  });

  it('takes added tokens: special ones are control tokens, others user-defined (always whole)', () => {
    const tok = load(tj({ added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), special(265, '<|x|>', { special: false }), special(266, '<|end|>')] }));
    expect(tok.vocabSize).toBe(267);
    expect([tok.vocab.types[265], tok.vocab.types[266]]).toEqual([TokenType.USER_DEFINED, TokenType.CONTROL]);
    expect(tok.encode('hi<|x|>hi', { addBos: false })).toEqual([id('▁hi'), 265, id('hi')]);
    expect(tok.encode('hi<|end|>', { addBos: false })).not.toContain(266);
    expect(tok.encode('hi<|end|>', { addBos: false, parseSpecial: true })).toEqual([id('▁hi'), 266]);
    expect(tok.decode([id('▁hi'), 265, 266])).toBe('hi<|x|>');
  });

  it('takes BOS / EOS from the post-processor template, and defaults to Llama\'s BOS without one', () => {
    const noPost = load(tj({ post_processor: null }));
    expect([noPost.addBos, noPost.vocab.addEos, noPost.bos, noPost.eos]).toEqual([true, false, 1, 2]);
    const textOnly = load(tj({ post_processor: { type: 'TemplateProcessing', single: [{ Sequence: { id: 'A', type_id: 0 } }] } }));
    expect(textOnly.encode('hi')).toEqual([id('▁hi')]);
    const both = load(tj({
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      },
    }));
    expect(both.encode('hi')).toEqual([1, id('▁hi'), 2]);
  });

  it.each([
    ['Replace only (no dummy prefix)', { normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' } }, false],
    ['Replace then Prepend', { normalizer: { type: 'Sequence', normalizers: [LEGACY_NORMALIZER.normalizers[1], LEGACY_NORMALIZER.normalizers[0]] } }, true],
    ['Metaspace, prepend_scheme always', { normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true } }, true],
    ['Metaspace, prepend_scheme first', { normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false } }, true],
    ['Metaspace, prepend_scheme never', { normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: false } }, false],
    ['old Metaspace, add_prefix_space', { normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '▁', add_prefix_space: true } }, true],
    ['old Metaspace, no prefix', { normalizer: { type: 'Sequence', normalizers: [] }, pre_tokenizer: { type: 'Metaspace', str_rep: '▁', add_prefix_space: false } }, false],
  ] as const)('accepts the normalization %s', (_name, top, dummy) => {
    const tok = load(tj(top));
    expect(tok.vocab.addDummyPrefix).toBe(dummy);
    expect(tok.encode('hi hi', { addBos: false })).toEqual(dummy ? [id('▁hi'), id('▁hi')] : [id('hi'), id('▁hi')]);
    expect(tok.decode(tok.encode('hi hi'))).toBe('hi hi');
  });

  it.each([
    ['the model type Unigram', {}, { type: 'Unigram', vocab: [['a', 0]] }, /the model type "Unigram" is not supported/],
    ['the model type WordPiece', {}, { type: 'WordPiece' }, /the model type "WordPiece"/],
    ['the model type WordLevel', {}, { type: 'WordLevel' }, /the model type "WordLevel"/],
    ['a model without type or merges', {}, { type: undefined, merges: undefined }, /a model without "type" or "merges"/],
    ['BPE dropout', {}, { dropout: 0.1 }, /BPE dropout 0\.1 is not supported/],
    ['a subword prefix', {}, { continuing_subword_prefix: '##' }, /BPE continuing_subword_prefix "##"/],
    ['a word suffix', {}, { end_of_word_suffix: '</w>' }, /BPE end_of_word_suffix "<\/w>"/],
    ['ignore_merges', {}, { ignore_merges: true }, /BPE ignore_merges is not supported/],
    ['neither byte_fallback nor fuse_unk', {}, { byte_fallback: false, fuse_unk: false }, /BPE without byte_fallback and without fuse_unk/],
    ['no unk_token', {}, { unk_token: null }, /a BPE model without unk_token/],
    ['the NFKC normalizer', { normalizer: { type: 'NFKC' } }, {}, /the normalizer "NFKC" is not supported/],
    ['a Lowercase step', { normalizer: { type: 'Sequence', normalizers: [{ type: 'Lowercase' }, ...LEGACY_NORMALIZER.normalizers] } }, {}, /the normalizer "Lowercase"/],
    ['a Precompiled step', { normalizer: { type: 'Sequence', normalizers: [{ type: 'Precompiled', precompiled_charsmap: 'AAAA' }, ...LEGACY_NORMALIZER.normalizers] } }, {}, /the normalizer "Precompiled" \{"precompiled_charsmap":"AAAA"\}/],
    ['Replace of a regex', { normalizer: { type: 'Replace', pattern: { Regex: ' {2,}' }, content: '▁' } }, {}, /the normalizer "Replace" \{"pattern":\{"Regex"/],
    ['a Prepend of something else', { normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '_' }, LEGACY_NORMALIZER.normalizers[1]] } }, {}, /the normalizer "Prepend" \{"prepend":"_"\}/],
    ['Prepend without Replace', { normalizer: { type: 'Prepend', prepend: '▁' } }, {}, /a Prepend\("▁"\) normalizer without Replace/],
    ['no way for spaces to become ▁', { normalizer: null }, {}, /neither a Replace\(" " → "▁"\) normalizer nor a Metaspace pre_tokenizer/],
    ['the ByteLevel pre-tokenizer', { normalizer: null, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false } }, {}, /the pre_tokenizer "ByteLevel"/],
    ['a Digits pre-tokenizer', { pre_tokenizer: { type: 'Digits', individual_digits: true } }, {}, /the pre_tokenizer "Digits"/],
    ['Metaspace after Replace', { pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always' } }, {}, /a Metaspace pre_tokenizer after a Replace normalizer/],
    ['Metaspace with another replacement', { normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '_' } }, {}, /replacement "_"/],
    ['an unknown prepend_scheme', { normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'sometimes' } }, {}, /prepend_scheme "sometimes"/],
    ['the ByteLevel decoder', { decoder: { type: 'ByteLevel' } }, {}, /the decoder "ByteLevel"/],
    ['a WordPiece decoder step', { decoder: { type: 'Sequence', decoders: [{ type: 'WordPiece', prefix: '##' }] } }, {}, /the decoder "WordPiece"/],
    ['the RobertaProcessing post-processor', { post_processor: { type: 'RobertaProcessing' } }, {}, /the post_processor "RobertaProcessing"/],
    ['two tokens before the text', { post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }] } }, {}, /adding 2 tokens before and 0 after/],
    ['an added token with lstrip', { added_tokens: [special(0, '<unk>'), special(1, '<s>', { lstrip: true })] }, {}, /the added token "<s>" with lstrip/],
    ['an added token with single_word', { added_tokens: [special(265, 'x y', { single_word: true })] }, {}, /the added token "x y" with single_word/],
    ['a non-special added token with a space', { added_tokens: [special(265, 'x y', { special: false })] }, {}, /the added token "x y", which holds a space/],
    ['merges missing a split', {}, { merges: MERGES.slice(0, 3) }, /a merges list without "▁" \+ "hi" → "▁hi" \(both halves can occur.*not converted from a SentencePiece model\) is not supported/],
    ['merges missing a piece', {}, { merges: [] }, /a merges list without "▁" \+ "h" → "▁h"/],
    ['a merge of byte tokens', {}, { vocab: { ...Object.fromEntries(PIECES.map((p, i) => [p, i])), '<0x41><0x42>': 265 }, merges: [...MERGES, ['<0x41>', '<0x42>']] }, /the merge of byte-fallback tokens "<0x41>" \+ "<0x42>"/],
  ] as const)('rejects %s as unsupported, naming it', (_name, top, model, message) => {
    expectErrorCode(() => load(tj(top as J, model as J)), 'ERR_UNSUPPORTED', message);
  });

  const vocabWith = (changes: J): J => ({ ...Object.fromEntries(PIECES.map((p, i) => [p, i])), ...changes });
  it.each([
    ['text that is not JSON', '{"model": ', /^tokenizer\.json: not valid JSON: /],
    ['a top-level array', '[1, 2]', /the top level should be an object, found an array/],
    ['no model', tj({ model: undefined }), /model should be an object, found nothing/],
    ['a model that is a string', tj({ model: 'BPE' }), /model should be an object, found string "BPE"/],
    ['no vocab', tj({}, { vocab: undefined }), /model\.vocab should be an object, found nothing/],
    ['a vocab array', tj({}, { vocab: [['a', 0]] }), /model\.vocab should be an object, found an array/],
    ['a fractional id', tj({}, { vocab: vocabWith({ h: 1.5 }) }), /model\.vocab\["h"\] should be a token id \(an integer ≥ 0\), found number 1\.5/],
    ['a string id', tj({}, { vocab: vocabWith({ h: '260' }) }), /model\.vocab\["h"\] should be a token id .* found string "260"/],
    ['a negative id', tj({}, { vocab: vocabWith({ h: -1 }) }), /found number -1/],
    ['a duplicate id', tj({}, { vocab: vocabWith({ h: 259 }) }), /model\.vocab gives id 259 to both/],
    ['an id past the end', tj({}, { vocab: vocabWith({ h: 300 }) }), /model\.vocab\["h"\] is 300, but the 265 pieces must have ids 0\.\.264/],
    ['merges that are not an array', tj({}, { merges: 'a b' }), /model\.merges should be an array, found string/],
    ['a merge without a space', tj({}, { merges: ['▁h'] }), /model\.merges\[0\] should be two pieces separated by one space, found "▁h"/],
    ['a merge of three', tj({}, { merges: ['▁ h i'] }), /model\.merges\[0\] should be two pieces separated by one space/],
    ['a merge of numbers', tj({}, { merges: [[1, 2]] }), /model\.merges\[0\] should be "left right" or \["left", "right"\], found an array/],
    ['a merge of one', tj({}, { merges: [['▁']] }), /model\.merges\[0\] should be "left right"/],
    ['a merge of an unknown piece', tj({}, { merges: [...MERGES, ['x', 'h']] }), /model\.merges\[4\] \("x", "h"\) uses "x", which is not in the vocabulary/],
    ['a merge whose result is unknown', tj({}, { merges: [...MERGES, ['i', 'h']] }), /model\.merges\[4\] \("i", "h"\) uses "ih", which is not in the vocabulary/],
    ['added_tokens that are not an array', tj({ added_tokens: {} }), /added_tokens should be an array, found an object/],
    ['an added token without content', tj({ added_tokens: [{ id: 0, special: true }] }), /added_tokens\[0\]\.content should be a string, found nothing/],
    ['an added token without id', tj({ added_tokens: [{ content: '<s>' }] }), /added_tokens\[0\]\.id should be a token id/],
    ['an added token with a bad flag', tj({ added_tokens: [special(0, '<unk>', { special: 'yes' })] }), /added_tokens\[0\]\.special should be a boolean, found string "yes"/],
    ['an added token that contradicts the vocab', tj({ added_tokens: [special(1, '<bos>')] }), /added_tokens give id 1 to "<bos>" but model\.vocab has "<s>" there/],
    ['added token ids with a gap', tj({ added_tokens: [special(270, '<x>')] }), /added_tokens jump to id 270 after 264: token ids must be dense/],
    ['an added token listed twice', tj({ added_tokens: [special(265, '<x>'), special(265, '<y>')] }), /added_tokens list id 265 twice/],
    ['a new added token already in the vocab', tj({ added_tokens: [special(265, 'hi')] }), /added_tokens give "hi" id 265 but model\.vocab has it as 263/],
    ['an unk_token not in the vocab', tj({}, { unk_token: '<UNK>' }), /model\.unk_token "<UNK>" is not in the vocabulary/],
    ['a template naming an unknown token', tj({ post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }] } }), /post_processor\.single\[0\] names the special token "<bos>", which is not in the vocabulary/],
    ['a template without $A', tj({ post_processor: { type: 'TemplateProcessing', single: [] } }), /post_processor\.single has no \$A sequence/],
    ['a template entry of neither kind', tj({ post_processor: { type: 'TemplateProcessing', single: [{ Text: 'x' }] } }), /post_processor\.single\[0\] should be \{"Sequence": \.\.\.\} or \{"SpecialToken": \.\.\.\}/],
    ['no BOS anywhere', tj({ post_processor: null, added_tokens: [] }, { vocab: Object.fromEntries(PIECES.map((p, i) => [p === '<s>' ? '<bos>' : p, i])) }), /names no BOS token and the vocabulary has no "<s>"/],
  ] as const)('rejects %s as a format error', (_name, json, message) => {
    expectErrorCode(() => load(json as J | string), 'ERR_MODEL_FORMAT', message);
  });

  it('never fails with anything but a typed error when any field has the wrong type', () => {
    const base = tj();
    const values: unknown[] = [null, 0, 1.5, -1, 'x', '', true, [], {}, [1], { a: 1 }];
    let paths = 0;
    // every key of every object (the vocab: only a few entries), replaced with each wrong value
    const visit = (obj: unknown, path: (string | number)[]): void => {
      if (typeof obj !== 'object' || obj === null) return;
      const keys = Object.keys(obj).slice(0, 8);
      for (const key of keys) {
        const k: string | number = Array.isArray(obj) ? Number(key) : key;
        for (const v of values) {
          const copy = structuredClone(base) as J;
          let target = copy as Record<string | number, unknown>;
          for (const p of path) target = target[p] as Record<string | number, unknown>;
          target[k] = v;
          paths++;
          try {
            load(copy);
          } catch (err) {
            if (!(err instanceof LlamaCudaError) || (err.code !== 'ERR_MODEL_FORMAT' && err.code !== 'ERR_UNSUPPORTED')) {
              throw new Error(`${[...path, k].join('.')} = ${JSON.stringify(v)}: ${String(err)}`);
            }
          }
        }
        visit((obj as Record<string, unknown>)[key], [...path, k]);
      }
    };
    visit(base, []);
    expect(paths).toBeGreaterThan(500);
  });

  it('fails with a typed error on every truncation of the text', () => {
    const text = JSON.stringify(tj());
    for (let size = 0; size < text.length; size += 7) expectErrorCode(() => load(text.slice(0, size)), 'ERR_MODEL_FORMAT', /not valid JSON/);
  });
});

// ---- a tokenizer.json converted from the real Llama 2 tokenizer.model ----

const PARITY_FILES = [FILES.llama2Model, FILES.spCases, FILES.spDecode, FILES.vectorsInp, FILES.vectorsOut];

describeWithShared(PARITY_FILES, 'SentencePiece parity, vocab from a tokenizer.json converted from tokenizer.model', () => {
  defineParityTests(() => Tokenizer.fromTokenizerJson(llama2TokenizerJson()));
});

describeWithShared([...PARITY_FILES, FILES.vocabGguf], 'the converted Llama 2 tokenizer.json', () => {
  let json: string;
  let fromJson: Tokenizer;
  let fromModel: Tokenizer;
  let hf: HfBpeReference;
  beforeAll(() => {
    json = llama2TokenizerJson();
    fromJson = Tokenizer.fromTokenizerJson(json);
    fromModel = sentencePieceTokenizer();
    hf = new HfBpeReference(json);
  });

  it('has the structure transformers writes for Llama 2', () => {
    const parsed = JSON.parse(json) as { model: { vocab: Record<string, number>; merges: [string, string][] }; added_tokens: { content: string }[] };
    expect(Object.keys(parsed.model.vocab)).toHaveLength(32000);
    expect(parsed.model.merges).toHaveLength(61249);
    expect(parsed.model.merges.slice(0, 9).map(([l, r]) => `${l} ${r}`)).toEqual(['▁ t', 'e r', 'i n', '▁ a', 'e n', 'o n', '▁t h', '▁ th', 'e s']);
    expect(parsed.added_tokens.map((t) => t.content)).toEqual(['<unk>', '<s>', '</s>']);
    expect(json.indexOf('"<unk>":0,"<s>":1,"</s>":2,"<0x00>":3')).toBeGreaterThan(0); // the vocab in id order
  });

  it('has the pieces and types of tokenizer.model and the GGUF vocabulary', async () => {
    const gguf = await ggufTokenizer(FILES.vocabGguf);
    for (const other of [fromModel, gguf]) {
      for (let i = 0; i < 32000; i++) {
        if (other.vocab.pieces[i] !== fromJson.vocab.pieces[i]) expect(fromJson.vocab.pieces[i], `piece ${i}`).toBe(other.vocab.pieces[i]);
      }
      expect(fromJson.vocab.types).toEqual(other.vocab.types);
    }
  });

  it('orders merged pieces as the SentencePiece scores do (ties: the 15 runs of ▁)', () => {
    const sp = fromModel.vocab.scores;
    const derived = fromJson.vocab.scores;
    const unreached = -(61249 + 1);
    const merged: number[] = [];
    let singles = 0;
    for (let i = 0; i < 32000; i++) {
      if (fromJson.vocab.types[i] !== TokenType.NORMAL) {
        expect(derived[i], `id ${i}`).toBe(0);
        continue;
      }
      if (derived[i] === unreached) {
        expect(Array.from(fromJson.vocab.pieces[i] as string), `piece ${i} is made by no merge`).toHaveLength(1);
        singles++;
      } else {
        merged.push(i);
      }
    }
    expect(singles + merged.length).toBe(31741);
    // Group by SentencePiece score, highest first: every derived score of a group must be above
    // every derived score of the next group (within a group, SentencePiece has a tie).
    const groups = new Map<number, { min: number; max: number; ids: number[] }>();
    for (const i of merged) {
      const d = derived[i] as number;
      const g = groups.get(sp[i] as number);
      if (g === undefined) groups.set(sp[i] as number, { min: d, max: d, ids: [i] });
      else {
        g.min = Math.min(g.min, d);
        g.max = Math.max(g.max, d);
        g.ids.push(i);
      }
    }
    const ordered = [...groups].sort((a, b) => b[0] - a[0]);
    for (let k = 1; k < ordered.length; k++) {
      const [scoreA, a] = ordered[k - 1] as [number, { min: number; max: number }];
      const [scoreB, b] = ordered[k] as [number, { min: number; max: number }];
      if (!(a.min > b.max)) expect.fail(`SentencePiece score ${scoreA} before ${scoreB}, but derived ${a.min} is not above ${b.max}`);
    }
    const tied = ordered.filter(([, g]) => g.ids.length > 1);
    expect(tied).toHaveLength(1); // the runs of 2 to 16 ▁ share the score -1e9 (with ▁, no merge result)
    expect(tied[0]?.[0]).toBe(-1e9);
    expect(tied[0]?.[1].ids.map((i) => fromJson.vocab.pieces[i]).every((p) => /^▁+$/.test(p as string))).toBe(true);
    expect(tied[0]?.[1].ids).toHaveLength(15);
  });

  it('encodes as the rank-by-rank HF BPE reference on every case and on random text', () => {
    const texts = [...readSpCases().map((c) => c.text), ...readLlamaVectors().map((v) => v.text)];
    const rng = seededRandom(314);
    for (let i = 0; i < 400; i++) texts.push(randomText(rng, 10));
    for (const text of texts) {
      const got = fromJson.encode(text, { addBos: false });
      const want = hf.encode(text);
      if (got.join() !== want.join()) expect(got, JSON.stringify(text)).toEqual(want);
    }
  });

  it('encodes runs of whitespace as SentencePiece and as the HF reference', () => {
    const rng = seededRandom(2718);
    const parts = [' ', '  ', '▁', '\t', '\n', 'a', 'the', 'x', '1', ' hello', '   world', '😀'];
    for (let i = 0; i < 300; i++) {
      let s = '';
      const n = randomInt(rng, 1, 12);
      for (let k = 0; k < n; k++) s += pick(rng, parts).repeat(randomInt(rng, 1, 8));
      const sp = fromModel.encode(s, { addBos: false });
      const got = fromJson.encode(s, { addBos: false });
      if (got.join() !== sp.join()) expect(got, `SentencePiece ${JSON.stringify(s)}`).toEqual(sp);
      const want = hf.encode(s);
      if (got.join() !== want.join()) expect(got, `HF ${JSON.stringify(s)}`).toEqual(want);
    }
    for (let n = 1; n <= 40; n++) {
      for (const s of [' '.repeat(n), `a${' '.repeat(n)}b`, `${'▁'.repeat(n)}x`]) {
        expect(fromJson.encode(s), JSON.stringify(s)).toEqual(fromModel.encode(s));
        expect(fromJson.encode(s, { addBos: false }), JSON.stringify(s)).toEqual(hf.encode(s));
      }
    }
  });

  it('gives the same tokens in the other forms: "a b" merges, a Metaspace pre-tokenizer, a parsed object', () => {
    const forms = [
      Tokenizer.fromTokenizerJson(llama2TokenizerJson({ merges: 'strings' })),
      Tokenizer.fromTokenizerJson(llama2TokenizerJson({ form: 'metaspace' })),
      Tokenizer.fromTokenizerJson(JSON.parse(json) as object),
    ];
    const cases = readSpCases();
    for (const tok of forms) {
      expect(tok.vocab.scores).toEqual(fromJson.vocab.scores);
      for (const c of cases) if (tok.encode(c.text).join() !== c.ids.join()) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
    }
  });
});
