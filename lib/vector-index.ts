/**
 * VectorIndex: a small in-memory index of vectors with payloads, searched by cosine similarity
 * (exact: every stored vector is scored; fine for thousands to a few hundred thousand vectors).
 *
 * Vectors are stored L2-normalized in one growing Float32Array [size][dim], so a search is one
 * dot product per row; ties in score go to the vector added first.
 */
import { LlamaCudaError } from './errors.js';

export interface VectorHit<P> {
  readonly id: string;
  /** Cosine similarity with the query, in [-1, 1]. */
  readonly score: number;
  readonly payload: P;
}

/** VectorIndex.toJSON(): plain data, vectors as number arrays. */
export interface VectorIndexJson<P> {
  readonly dim: number;
  readonly entries: readonly { readonly id: string; readonly vector: readonly number[]; readonly payload: P }[];
}

export class VectorIndex<P = unknown> {
  readonly dim: number;
  private data: Float32Array;
  private readonly ids: string[] = [];
  private readonly payloads: P[] = [];
  private readonly byId = new Map<string, number>();

  constructor(dim: number) {
    if (!Number.isInteger(dim) || dim < 1) throw new LlamaCudaError('ERR_INVALID_ARG', `VectorIndex(dim): dim must be a positive integer, got ${dim}`);
    this.dim = dim;
    this.data = new Float32Array(dim * 16);
  }

  get size(): number {
    return this.ids.length;
  }

  /** Adds a vector (normalized here; the caller's array is not kept). Ids are unique. */
  add(id: string, vector: ArrayLike<number>, payload: P): void {
    if (typeof id !== 'string') throw new LlamaCudaError('ERR_INVALID_ARG', 'VectorIndex.add: id must be a string');
    if (this.byId.has(id)) throw new LlamaCudaError('ERR_INVALID_ARG', `VectorIndex.add: id "${id}" is already in the index`);
    const unit = this.unit(vector, `vector "${id}"`);
    const row = this.ids.length;
    if ((row + 1) * this.dim > this.data.length) {
      const grown = new Float32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(unit, row * this.dim);
    this.ids.push(id);
    this.payloads.push(payload);
    this.byId.set(id, row);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The k stored vectors most similar to `query` (cosine), best first. */
  search(query: ArrayLike<number>, k: number): VectorHit<P>[] {
    if (!Number.isInteger(k) || k < 0) throw new LlamaCudaError('ERR_INVALID_ARG', `VectorIndex.search: k must be a non-negative integer, got ${k}`);
    const q = this.unit(query, 'the query');
    const n = this.ids.length;
    const scores = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let dot = 0;
      const base = r * this.dim;
      for (let d = 0; d < this.dim; d++) dot += (this.data[base + d] as number) * (q[d] as number);
      scores[r] = dot;
    }
    // partial selection would be faster for huge n; a sort of indices is exact and simple
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
    return order.slice(0, Math.min(k, n)).map((r) => ({ id: this.ids[r]!, score: scores[r] as number, payload: this.payloads[r]! }));
  }

  toJSON(): VectorIndexJson<P> {
    return {
      dim: this.dim,
      entries: this.ids.map((id, r) => ({ id, vector: Array.from(this.data.subarray(r * this.dim, (r + 1) * this.dim)), payload: this.payloads[r]! })),
    };
  }

  static fromJSON<P>(json: VectorIndexJson<P>): VectorIndex<P> {
    if (typeof json !== 'object' || json === null || !Array.isArray(json.entries)) throw new LlamaCudaError('ERR_INVALID_ARG', 'VectorIndex.fromJSON: not an index');
    const index = new VectorIndex<P>(json.dim);
    for (const e of json.entries) index.add(e.id, e.vector, e.payload);
    return index;
  }

  private unit(v: ArrayLike<number>, what: string): Float64Array {
    if (v === null || typeof v !== 'object' || v.length !== this.dim) {
      throw new LlamaCudaError('ERR_INVALID_ARG', `${what} must have ${this.dim} values, got ${v?.length ?? typeof v}`);
    }
    let ss = 0;
    for (let d = 0; d < this.dim; d++) {
      const x = v[d] as number;
      if (!Number.isFinite(x)) throw new LlamaCudaError('ERR_INVALID_ARG', `${what} has a non-finite value at ${d}`);
      ss += x * x;
    }
    if (ss === 0) throw new LlamaCudaError('ERR_INVALID_ARG', `${what} is all zeros: it has no direction`);
    const inv = 1 / Math.sqrt(ss);
    return Float64Array.from({ length: this.dim }, (_, d) => (v[d] as number) * inv);
  }
}
