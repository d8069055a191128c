/**
 * Encoding text to token ids the way SentencePiece's BPE model does for Llama 2:
 *
 *  1. normalize: identity (no Unicode normalization), every ASCII space becomes `▁`, and one
 *     `▁` is prepended (add_dummy_prefix; remove_extra_whitespaces is off, so runs of spaces are
 *     kept). Empty text gives no tokens. A literal `▁` in the text is therefore a space too.
 *  2. split into one symbol per Unicode code point, except that user-defined pieces found in
 *     the text become single symbols that are never merged;
 *  3. merge: repeatedly join the adjacent pair whose concatenation is a vocabulary piece with
 *     the highest score (equal scores: leftmost pair first). A priority queue holds candidate
 *     pairs and a linked list the symbols, so this is O(n log n). When no piece has a `▁` after
 *     another character (true of Llama vocabularies), words cannot merge across their `▁`
 *     boundary and each word is merged on its own, which keeps the queue small;
 *  4. emit each symbol's id; a symbol that is not a piece (only single code points can be)
 *     becomes the `<0xXX>` tokens of its UTF-8 bytes (byte fallback), or `<unk>` when the
 *     vocabulary has no byte pieces (a run of unknown symbols giving one `<unk>`).
 *
 * There is no separate digit splitting: Llama 2 was trained with split_digits, so its
 * vocabulary has no multi-digit pieces and digits stay single tokens by themselves.
 *
 * Only normal, user-defined and unused pieces are merge results; control and byte pieces never
 * are. As in SentencePiece, a merge into an *unused* piece is undone at the end (the piece is
 * split back into the two symbols it was made from), so unused ids are never produced.
 *
 * With `parseSpecial`, the text is first cut at the control / unknown / user-defined pieces it
 * contains (leftmost, longest first); those become their ids and every text segment between
 * them is encoded as its own text, with its own dummy prefix. This is what llama.cpp does (a
 * segment at the start or after a special token gets the space prefix), and what Meta's Llama 2
 * reference code gets by encoding each piece of a dialog separately.
 */
import { LlamaCudaError } from '../errors.js';
import { PairQueue } from './pair-queue.js';
import { pushUtf8 } from './utf8.js';
import { SPACE_SYMBOL, TokenType, type Vocab } from './vocab.js';

export interface EncodeOptions {
  /** Prepend BOS. Default: the vocabulary's add_bos_token (true for Llama 2). */
  readonly addBos?: boolean;
  /** Append EOS. Default: the vocabulary's add_eos_token (false for Llama 2). */
  readonly addEos?: boolean;
  /**
   * Recognize the text of control tokens (`<s>`, `</s>`, ...), `<unk>` and user-defined pieces
   * and emit their ids. Default false: such text is ordinary text (`<s>` → `▁<`, `s`, `>`), so
   * user input cannot inject control tokens.
   */
  readonly parseSpecial?: boolean;
}

export function encode(vocab: Vocab, text: string, options: EncodeOptions = {}): number[] {
  if (typeof text !== 'string') throw new LlamaCudaError('ERR_INVALID_ARG', `encode: text must be a string, got ${typeof text}`);
  const out: number[] = [];
  if (options.addBos ?? vocab.addBos) out.push(vocab.bos);
  if (options.parseSpecial === true) {
    let segmentStart = 0;
    let pos = 0;
    while (pos < text.length) {
      const match = vocab.specialMatcher.matchAt(text, pos);
      if (match === undefined) {
        pos++;
        continue;
      }
      encodeSegment(vocab, text.slice(segmentStart, pos), out);
      out.push(match.id);
      pos += match.length;
      segmentStart = pos;
    }
    encodeSegment(vocab, text.slice(segmentStart), out);
  } else {
    encodeSegment(vocab, text, out);
  }
  if (options.addEos ?? vocab.addEos) out.push(vocab.eos);
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Step 1: the normalized text ('' for empty input). Lone surrogates (which have no UTF-8 form)
 * become U+FFFD, as TextEncoder would make them.
 */
function normalize(text: string, addDummyPrefix: boolean): string {
  if (text.length === 0) return '';
  const escaped = text.replaceAll(' ', SPACE_SYMBOL).replace(LONE_SURROGATE, '\uFFFD');
  return addDummyPrefix ? SPACE_SYMBOL + escaped : escaped;
}

/** Encodes one text segment (no special tokens in it) and appends its ids to `out`. */
export function encodeSegment(vocab: Vocab, text: string, out: number[]): void {
  const norm = normalize(text, vocab.addDummyPrefix);
  if (norm.length === 0) return;
  new SegmentEncoder(vocab, norm, out).run();
}

/** Steps 2 to 4 for one normalized segment. */
class SegmentEncoder {
  // Symbols, as a doubly linked list over `norm`: symbol i is norm.slice(start[i], start[i] + len[i]);
  // len 0 marks a symbol merged into its left neighbour; frozen symbols (user-defined) never merge.
  private readonly start: Int32Array;
  private readonly len: Int32Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly frozen: Uint8Array;
  private nSymbols = 0;
  private readonly queue = new PairQueue();
  /** Merges into unused pieces, to undo at the end: piece → its two halves. */
  private unusedMerges: Map<string, readonly [string, string]> | undefined;
  private prevWasUnk = false;
  private readonly vocab: Vocab;
  private readonly norm: string;
  private readonly out: number[];

  constructor(vocab: Vocab, norm: string, out: number[]) {
    this.vocab = vocab;
    this.norm = norm;
    this.out = out;
    const cap = norm.length;
    this.start = new Int32Array(cap);
    this.len = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.frozen = new Uint8Array(cap);
  }

  run(): void {
    this.split();
    // Words (a run of `▁` and what follows up to the next `▁`) cannot merge with each other when
    // the vocabulary says so (Vocab.wordsAreIndependent), so each gets its own small queue.
    // The result is the same: merges in different words never interact.
    const { norm, start } = this;
    let first = 0;
    if (this.vocab.wordsAreIndependent) {
      for (let i = 1; i < this.nSymbols; i++) {
        const s = start[i] as number;
        if (norm[s] === SPACE_SYMBOL && norm[s - 1] !== SPACE_SYMBOL) {
          this.encodeRange(first, i);
          first = i;
        }
      }
    }
    this.encodeRange(first, this.nSymbols);
  }

  /** Step 2: one symbol per code point, or per user-defined piece found in the text. */
  private split(): void {
    const { norm, start, len, frozen } = this;
    const userDefined = this.vocab.userDefinedMatcher;
    let n = 0;
    for (let pos = 0; pos < norm.length; n++) {
      let size = 1;
      const match = userDefined.isEmpty ? undefined : userDefined.matchAt(norm, pos);
      if (match !== undefined) {
        size = match.length;
        frozen[n] = 1;
      } else {
        const unit = norm.charCodeAt(pos);
        if (unit >= 0xd800 && unit <= 0xdbff) size = 2; // a surrogate pair (lone ones were replaced)
      }
      start[n] = pos;
      len[n] = size;
      pos += size;
    }
    this.nSymbols = n;
  }

  /** Steps 3 and 4 for symbols first..end-1. */
  private encodeRange(first: number, end: number): void {
    const { prev, next, len, queue } = this;
    for (let i = first; i < end; i++) {
      prev[i] = i - 1;
      next[i] = i + 1;
    }
    prev[first] = -1;
    next[end - 1] = -1;

    queue.reset();
    for (let i = first + 1; i < end; i++) this.addPair(i - 1, i);
    while (queue.length > 0) {
      const p = queue.pop();
      const l = queue.left[p] as number;
      const r = queue.right[p] as number;
      const ll = len[l] as number;
      const lr = len[r] as number;
      // Stale entry: one side was merged away or grew since the pair was queued.
      if (ll === 0 || lr === 0 || ll + lr !== queue.size[p]) continue;
      len[l] = ll + lr;
      len[r] = 0;
      const after = next[r] as number;
      next[l] = after;
      if (after >= 0) prev[after] = l;
      this.addPair(prev[l] as number, l);
      this.addPair(l, after);
    }

    for (let i = first; i !== -1; i = next[i] as number) {
      const s = this.start[i] as number;
      this.emit(this.norm.slice(s, s + (len[i] as number)));
    }
  }

  /** Queues the merge of symbols l and r if their concatenation is a mergeable piece. */
  private addPair(l: number, r: number): void {
    if (l < 0 || r < 0 || this.frozen[l] === 1 || this.frozen[r] === 1) return;
    const ll = this.len[l] as number;
    const size = ll + (this.len[r] as number);
    if (size > this.vocab.maxMergeableLength) return;
    const s = this.start[l] as number;
    const piece = this.norm.slice(s, s + size);
    const id = this.vocab.mergeable.get(piece);
    if (id === undefined) return;
    this.queue.push(l, r, size, this.vocab.scores[id] as number);
    if (this.vocab.types[id] === TokenType.UNUSED) {
      this.unusedMerges ??= new Map();
      this.unusedMerges.set(piece, [piece.slice(0, ll), piece.slice(ll)]);
    }
  }

  /** Step 4: the ids of one final symbol. */
  private emit(piece: string): void {
    const { vocab, out } = this;
    const id = vocab.mergeable.get(piece);
    if (id !== undefined) {
      const halves = vocab.types[id] === TokenType.UNUSED ? this.unusedMerges?.get(piece) : undefined;
      if (halves !== undefined) {
        this.emit(halves[0]);
        this.emit(halves[1]);
      } else {
        out.push(id);
        this.prevWasUnk = false;
      }
    } else if (vocab.byteFallback) {
      const bytes: number[] = [];
      for (const ch of piece) pushUtf8(bytes, ch.codePointAt(0) as number);
      for (const b of bytes) out.push(vocab.byteIds[b] as number);
      this.prevWasUnk = false;
    } else if (!this.prevWasUnk) {
      out.push(vocab.unk); // a run of unknown symbols gives one <unk>
      this.prevWasUnk = true;
    }
  }
}
