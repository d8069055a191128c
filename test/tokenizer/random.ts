/** Seeded random data for the tokenizer property tests. */

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(rng: () => number, lo: number, hiExclusive: number): number {
  return lo + Math.floor(rng() * (hiExclusive - lo));
}

export function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[randomInt(rng, 0, items.length)] as T;
}

const WORDS = ['the', 'Once', 'upon', 'a', 'time', 'Hello', 'world', 'tokenizer', 'ção', 'naïve', 'Straße', '東京', 'привет', 'مرحبا', '123', '3.14', '<s>', '</s>', '[INST]', 'def', 'x=1;'];
const WHITESPACE = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\u00a0', '\u3000', ' \n ', '\u2581'];

/** Any Unicode scalar value (no surrogates), drawn from a few ranges that matter to the tokenizer. */
function randomCodePoint(rng: () => number): number {
  switch (randomInt(rng, 0, 8)) {
    case 0: return randomInt(rng, 0x20, 0x7f); // ASCII printable
    case 1: return randomInt(rng, 0x00, 0x20); // control characters, NUL included
    case 2: return randomInt(rng, 0x0300, 0x0370); // combining marks
    case 3: return randomInt(rng, 0x00a0, 0x0800); // Latin-1 .. Arabic
    case 4: return randomInt(rng, 0x4e00, 0x9fff); // CJK
    case 5: return randomInt(rng, 0x1f300, 0x1fa00); // emoji (astral)
    case 6: return randomInt(rng, 0x10000, 0x110000); // any astral plane
    default: {
      const cp = randomInt(rng, 0x0800, 0x10000); // any BMP, skipping surrogates
      return cp >= 0xd800 && cp <= 0xdfff ? cp + 0x800 : cp;
    }
  }
}

/**
 * A random string of roughly `maxParts` words, whitespace runs and random characters
 * (astral ones, combining marks, emoji with ZWJ / VS16, control characters, U+2581).
 */
export function randomText(rng: () => number, maxParts: number): string {
  let s = '';
  const parts = randomInt(rng, 0, maxParts + 1);
  for (let i = 0; i < parts; i++) {
    const r = rng();
    if (r < 0.35) s += pick(rng, WORDS);
    else if (r < 0.6) s += pick(rng, WHITESPACE);
    else if (r < 0.9) s += String.fromCodePoint(randomCodePoint(rng));
    else s += pick(rng, ['e\u0301', '👩\u200d💻', '❤\ufe0f', '🇵🇹', '👍🏽', '\ufeff', '\u200b']);
  }
  return s;
}

/** Whether a string holds an unpaired surrogate. */
export function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}
