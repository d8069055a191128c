/**
 * UTF-8 helpers shared by the encoder (byte fallback) and both decoders.
 *
 * Validity follows Unicode's well-formed byte sequences (no overlong forms, no surrogates,
 * nothing above U+10FFFF), which is what SentencePiece's decoder accepts. Invalid input is
 * replaced one byte at a time (each bad byte becomes one U+FFFD), as SentencePiece does;
 * this differs from TextDecoder, which replaces a whole "maximal subpart" with one U+FFFD.
 */

export const REPLACEMENT_CHARACTER = '\uFFFD';

/** Status of the sequence starting at bytes[start] (bytes up to `end` are known). */
export const UTF8_INCOMPLETE = 0; // a valid prefix of a character that needs more bytes
export const UTF8_INVALID = -1; // no continuation can make a valid character

/**
 * Length of the valid character starting at bytes[start], or UTF8_INCOMPLETE if the bytes
 * before `end` are a proper prefix of some valid character, or UTF8_INVALID.
 */
export function utf8CharStatus(bytes: ArrayLike<number>, start: number, end: number): number {
  const b0 = bytes[start] as number;
  if (b0 < 0x80) return 1;
  let need: number; // total length of the character
  let lo = 0x80; // allowed range of the second byte (Unicode Table 3-7)
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) need = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 3;
    if (b0 === 0xe0) lo = 0xa0; // overlong below U+0800
    else if (b0 === 0xed) hi = 0x9f; // surrogates U+D800..U+DFFF
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 4;
    if (b0 === 0xf0) lo = 0x90; // overlong below U+10000
    else if (b0 === 0xf4) hi = 0x8f; // above U+10FFFF
  } else return UTF8_INVALID;
  for (let i = 1; i < need; i++) {
    if (start + i >= end) return UTF8_INCOMPLETE;
    const b = bytes[start + i] as number;
    if (i === 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf) return UTF8_INVALID;
  }
  return need;
}

/** The code point of a sequence that utf8CharStatus reported valid with length `len`. */
export function utf8CodePoint(bytes: ArrayLike<number>, start: number, len: number): number {
  const b0 = bytes[start] as number;
  if (len === 1) return b0;
  let cp = b0 & (len === 2 ? 0x1f : len === 3 ? 0x0f : 0x07);
  for (let i = 1; i < len; i++) cp = (cp << 6) | ((bytes[start + i] as number) & 0x3f);
  return cp;
}

/**
 * Decodes bytes: each valid character as itself, each byte that does not start a valid
 * complete character as U+FFFD (SentencePiece's byte-piece decoding). With `holdIncomplete`,
 * stops before a trailing sequence that more bytes could still complete (for streaming).
 * Returns the text and how many bytes it consumed.
 */
export function decodeUtf8Prefix(bytes: ArrayLike<number>, holdIncomplete: boolean): { text: string; consumed: number } {
  let text = '';
  let i = 0;
  while (i < bytes.length) {
    const len = utf8CharStatus(bytes, i, bytes.length);
    if (len === UTF8_INCOMPLETE && holdIncomplete) break;
    if (len > 0) {
      text += String.fromCodePoint(utf8CodePoint(bytes, i, len));
      i += len;
    } else {
      text += REPLACEMENT_CHARACTER;
      i += 1;
    }
  }
  return { text, consumed: i };
}

/** Decodes a complete run of bytes (see decodeUtf8Prefix). */
export function decodeUtf8Lossy(bytes: ArrayLike<number>): string {
  return decodeUtf8Prefix(bytes, false).text;
}

/** Appends the UTF-8 bytes of code point `cp` to `out`. */
export function pushUtf8(out: number[], cp: number): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}
