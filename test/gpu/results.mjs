// Rows for bench/results (design.md §5), appended by GPU tests and benchmarks to
// $GPU_OUT/rows.jsonl; bench/gpu/run.mjs gathers them into <date>-<device>.json.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

export function recordRow(row) {
  const out = process.env.GPU_OUT;
  if (!out) return;
  const full = { backend: 'cuda', ceiling: null, ratio: null, notes: '', ...row };
  appendFileSync(join(out, 'rows.jsonl'), `${JSON.stringify(full)}\n`);
}
