/**
 * Finds stop strings in streamed text without ever emitting part of one: text that could be
 * the start of a stop string is held back until the next piece decides.
 */
export class StopMatcher {
  private readonly stops: readonly string[];
  private held = '';

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /**
   * Adds text; returns what can be emitted now, and whether a stop string was found (then
   * `text` is everything before it and the stop string and what follows are dropped).
   */
  push(text: string): { text: string; stopped: boolean } {
    const buffer = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = buffer.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.held = '';
      return { text: buffer.slice(0, cut), stopped: true };
    }
    const keep = this.longestStopPrefixSuffix(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Releases held text (at the end of generation). */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of some stop string. */
  private longestStopPrefixSuffix(buffer: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, buffer.length); len > best; len--) {
        if (buffer.endsWith(s.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
