/**
 * Finds the longest of a small set of pieces (special or user-defined tokens) that starts at a
 * given position of a string. Candidates are grouped by their first UTF-16 unit and kept
 * longest first, so a lookup costs one map access plus a few startsWith calls.
 */
export interface PieceMatch {
  readonly id: number;
  /** Length of the matched piece in UTF-16 units. */
  readonly length: number;
}

export class PieceMatcher {
  private readonly byFirstUnit = new Map<number, { piece: string; id: number }[]>();

  /** `entries`: [piece, id] pairs; empty pieces are ignored, and the first id of a piece wins. */
  constructor(entries: Iterable<readonly [string, number]>) {
    const seen = new Set<string>();
    for (const [piece, id] of entries) {
      if (piece.length === 0 || seen.has(piece)) continue;
      seen.add(piece);
      const key = piece.charCodeAt(0);
      let list = this.byFirstUnit.get(key);
      if (list === undefined) this.byFirstUnit.set(key, (list = []));
      list.push({ piece, id });
    }
    for (const list of this.byFirstUnit.values()) list.sort((a, b) => b.piece.length - a.piece.length);
  }

  get isEmpty(): boolean {
    return this.byFirstUnit.size === 0;
  }

  /** The longest piece that occurs in `text` at `pos`, if any. */
  matchAt(text: string, pos: number): PieceMatch | undefined {
    const list = this.byFirstUnit.get(text.charCodeAt(pos));
    if (list === undefined) return undefined;
    for (const { piece, id } of list) {
      if (text.startsWith(piece, pos)) return { id, length: piece.length };
    }
    return undefined;
  }
}
