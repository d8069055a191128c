/**
 * An independent, deliberately simple encoder with llama2.c's algorithm (run.c `encode`),
 * working on the raw pieces of a tokenizer.bin (ASCII spaces, no token types):
 * dummy prefix = the piece " ", one token per UTF-8 character (or its bytes as ids byte + 3),
 * then repeatedly merge the adjacent pair with the highest score (first such pair on ties)
 * until no pair is a piece. O(n^2): for short texts only. Written from the behaviour, as a
 * test oracle for the fast encoder.
 */
import { readFileSync } from 'node:fs';

export class Llama2cReferenceEncoder {
  private readonly ids = new Map<string, number>();
  private readonly scores: number[] = [];

  constructor(file: string, vocabSize: number) {
    const bytes = readFileSync(file);
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    let pos = 4;
    for (let id = 0; id < vocabSize; id++) {
      this.scores.push(bytes.readFloatLE(pos));
      const len = bytes.readInt32LE(pos + 4);
      const piece = decoder.decode(bytes.subarray(pos + 8, pos + 8 + len));
      if (!this.ids.has(piece)) this.ids.set(piece, id);
      pos += 8 + len;
    }
  }

  encode(text: string, bos = true): number[] {
    const tokens: number[] = [];
    const pieces: string[] = [];
    const add = (piece: string, id: number): void => {
      tokens.push(id);
      pieces.push(piece);
    };
    if (text.length > 0) add(' ', this.ids.get(' ') as number);
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id !== undefined) add(ch, id);
      else for (const b of new TextEncoder().encode(ch)) add(`<byte ${b}>`, b + 3);
    }
    for (;;) {
      let best = -Infinity;
      let at = -1;
      let bestId = -1;
      for (let i = 0; i + 1 < tokens.length; i++) {
        const id = this.ids.get((pieces[i] as string) + (pieces[i + 1] as string));
        if (id !== undefined && (this.scores[id] as number) > best) {
          best = this.scores[id] as number;
          at = i;
          bestId = id;
        }
      }
      if (at < 0) break;
      pieces.splice(at, 2, (pieces[at] as string) + (pieces[at + 1] as string));
      tokens.splice(at, 2, bestId);
    }
    return bos ? [1, ...tokens] : tokens;
  }
}
