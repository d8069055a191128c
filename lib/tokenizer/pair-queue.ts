/**
 * Max-heap of candidate merges for the BPE encoder, stored as parallel typed arrays (no object
 * per pair: a long text pushes hundreds of thousands of them). Order: higher score first; equal
 * scores pop the leftmost pair first, as SentencePiece's agenda does.
 */
export class PairQueue {
  left = new Int32Array(64);
  right = new Int32Array(64);
  /** Length of the merged piece in UTF-16 units, to detect stale entries. */
  size = new Int32Array(64);
  score = new Float64Array(64);
  private heap = new Int32Array(64);
  private count = 0;
  private nPairs = 0;

  get length(): number {
    return this.count;
  }

  /** Empties the queue, keeping its buffers. */
  reset(): void {
    this.count = 0;
    this.nPairs = 0;
  }

  push(left: number, right: number, size: number, score: number): void {
    if (this.nPairs === this.left.length) this.grow();
    const p = this.nPairs++;
    this.left[p] = left;
    this.right[p] = right;
    this.size[p] = size;
    this.score[p] = score;
    let i = this.count++;
    this.heap[i] = p;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const q = this.heap[parent] as number;
      if (!this.before(p, q)) break;
      this.heap[i] = q;
      i = parent;
    }
    this.heap[i] = p;
  }

  /** Removes and returns the best pair's index (into left/right/size/score); the queue must not be empty. */
  pop(): number {
    const heap = this.heap;
    const top = heap[0] as number;
    const last = heap[--this.count] as number;
    const n = this.count;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const r = child + 1;
      if (r < n && this.before(heap[r] as number, heap[child] as number)) child = r;
      const c = heap[child] as number;
      if (!this.before(c, last)) break;
      heap[i] = c;
      i = child;
    }
    if (n > 0) heap[i] = last;
    return top;
  }

  /** Whether pair a pops before pair b. */
  private before(a: number, b: number): boolean {
    const sa = this.score[a] as number;
    const sb = this.score[b] as number;
    return sa > sb || (sa === sb && (this.left[a] as number) < (this.left[b] as number));
  }

  private grow(): void {
    const cap = this.left.length * 2;
    const grow32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.left = grow32(this.left);
    this.right = grow32(this.right);
    this.size = grow32(this.size);
    this.heap = grow32(this.heap);
    const s = new Float64Array(cap);
    s.set(this.score);
    this.score = s;
  }
}
