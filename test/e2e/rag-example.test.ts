/**
 * examples/rag on stories260K: the seed's arXiv dump parses into its records, a chunk asked for
 * by its own title comes back first, the prompt fits the context, and the command streams an
 * answer end to end. (The example imports the built package, 'llama-cuda' = dist/, which the
 * test setup keeps current.)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { type LlamaModel, type VectorIndex, loadModel } from '../../lib/index.js';
import { describeWithShared, repoRoot, sharedPath, sharedRoot } from '../helpers/shared-data.js';
// @ts-expect-error plain JavaScript example, no declarations
import * as rag from '../../examples/rag/pipeline.mjs';

interface ArxivRecord {
  doi: string;
  chunkId: string;
  chunk: string;
  title: string;
}
interface Hit {
  id: string;
  score: number;
  payload: ArxivRecord;
}
const pipeline = rag as {
  parseArxivDump(text: string): ArxivRecord[];
  buildIndex(model: unknown, records: ArxivRecord[]): Promise<VectorIndex<ArxivRecord>>;
  retrieve(model: unknown, index: unknown, question: string, k: number): Promise<Hit[]>;
  buildMessages(model: unknown, question: string, hits: Hit[], answerTokens: number): { messages: { role: string; content: string }[]; promptTokens: number; passages: number; passageTokens: number };
  answer(model: unknown, messages: unknown, options: { maxTokens: number; onText: (t: string) => void }): Promise<{ tokens: number[]; finishReason: string }>;
};

const GGUF = 'models/stories260K/stories260K.gguf';
const seedName = (): string => readdirSync(sharedPath('seeds')).find((f) => /^003_.*\.txt$/.test(f)) ?? '003_missing.txt';
const SEED = `seeds/${seedName()}`;

describeWithShared([GGUF, SEED], 'examples/rag on stories260K', () => {
  let model: LlamaModel;
  let records: ArxivRecord[];
  let index: VectorIndex<ArxivRecord>;
  beforeAll(async () => {
    // a 512-position session for the chat prompt; embeddings stay within the 128 trained positions
    model = await loadModel(sharedPath(GGUF), { device: 'cpu', contextLength: 512 });
    records = pipeline.parseArxivDump(readFileSync(sharedPath(SEED), 'utf8'));
    index = await pipeline.buildIndex(model, records);
  });
  afterAll(() => model.dispose());

  it('parses the dataset dump: 100 chunks of two papers, fields in place', () => {
    expect(records).toHaveLength(100);
    expect(records.filter((r) => r.title.startsWith('GQA'))).toHaveLength(18);
    expect(index.size).toBe(100);
    const titles = new Set(records.map((r) => r.title));
    expect([...titles].sort()).toEqual(['GQA: Training Generalized Multi-Query Transformer Models from Multi-Head Checkpoints', 'Llama 2: Open Foundation and Fine-Tuned Chat Models']);
    expect(records[0]).toMatchObject({ doi: '2305.13245', chunkId: '5' });
    expect(records[0]!.chunk).toMatch(/^a particularly good trade-off for larger models\. 3 Experiments/);
    expect(records.every((r) => /^\d{4}\.\d{5}$/.test(r.doi) && /^\d+$/.test(r.chunkId) && r.chunk.length > 0)).toBe(true);
  });

  it('a chunk asked for by its own title comes back first', async () => {
    for (const title of new Set(records.map((r) => r.title))) {
      const hits = await pipeline.retrieve(model, index, title, 5);
      expect(hits[0]!.payload.title, `question: ${title}`).toBe(title);
      expect(hits[0]!.score).toBeGreaterThanOrEqual(hits[4]!.score);
      if (title.startsWith('GQA')) {
        // 18 of the 100 chunks are the GQA paper's: five of them first by chance is ~0.02%
        expect(hits.map((h) => h.payload.title)).toEqual(Array(5).fill(title));
      }
    }
  });

  it('the prompt fits the context with the answer; the answer streams', async () => {
    const question = 'How are the key and value heads of a multi-head checkpoint converted to grouped-query attention?';
    const hits = await pipeline.retrieve(model, index, question, 3);
    const built = pipeline.buildMessages(model, question, hits, 48);
    expect(built.promptTokens + 48).toBeLessThanOrEqual(model.contextLength);
    expect(built.passages).toBeGreaterThan(0);
    expect(built.messages[1]!.content).toContain(`Question: ${question}`);
    expect(built.messages[1]!.content).toContain(`[1] ${hits[0]!.payload.title}`);
    let streamed = '';
    const result = await pipeline.answer(model, built.messages, { maxTokens: 48, onText: (t) => (streamed += t) });
    expect(result.tokens.length).toBeGreaterThan(0);
    expect(streamed.length).toBeGreaterThan(0);
  });

  it('runs end to end as a command', () => {
    const r = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'examples', 'rag', 'rag.mjs'), '--model', sharedPath(GGUF), '--question', 'Llama 2: Open Foundation and Fine-Tuned Chat Models', '--max-tokens', '24', '--ctx-size', '512', '--device', 'cpu'],
      { encoding: 'utf8', timeout: 120_000, env: { ...process.env, LLAMA_CUDA_SHARED: sharedRoot() } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/indexed 100 chunks/);
    expect(r.stderr).toMatch(/retrieved:\n {2}[\d.]+ {2}Llama 2: Open Foundation and Fine-Tuned Chat Models \(arXiv 2307\.09288, chunk \d+\)/);
    expect(r.stderr).toMatch(/prompt: \d+ tokens, [1-3] passage\(s\)/);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
  });
});
