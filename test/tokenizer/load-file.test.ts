/**
 * loadTokenizerFile(): the format of a tokenizer file recognized by its content, the errors when
 * nothing fits, resolveTokenizer() choosing among an explicit file, GGUF metadata and a Hugging
 * Face folder's tokenizer files, and the `llama-cuda tokenize --tokenizer F` command on the
 * SentencePiece cases.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { GgufValueType } from '../../lib/formats/gguf.js';
import { encodeGgufHeader } from '../../lib/formats/gguf-writer.js';
import { type ModelFile, openModelFile } from '../../lib/formats/model-file.js';
import { loadTokenizer } from '../../lib/load-model.js';
import { Tokenizer, loadTokenizerFile } from '../../lib/tokenizer/index.js';
import { sniffTokenizerFormat, tokenizerFromBytes } from '../../lib/tokenizer/load.js';
import { resolveTokenizer } from '../../lib/tokenizer/resolve.js';
import { describeWithShared, repoRoot, sharedPath } from '../helpers/shared-data.js';
import { useTmpDir } from '../helpers/tmp.js';
import { FILES, llama2TokenizerJson, readSpCases } from './load.js';

const tmp = useTmpDir();

/** Rejects with a LlamaCudaError of `code` whose message matches `pattern`. */
async function expectRejection(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  const err: unknown = await promise.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${code}`).toBeInstanceOf(Error);
  expect((err as { code?: string }).code).toBe(code);
  expect((err as Error).message).toMatch(pattern);
}

// A tiny llama2.c tokenizer.bin: int32 max_token_length, then per piece: f32 score, i32 length, bytes.
function llama2cBin(maxTokenLength: number, pieces: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  (parts[0] as Buffer).writeInt32LE(maxTokenLength);
  pieces.forEach((p, i) => {
    const head = Buffer.alloc(8);
    head.writeFloatLE(-i, 0);
    const bytes = Buffer.from(p, 'utf8');
    head.writeInt32LE(bytes.length, 4);
    parts.push(head, bytes);
  });
  return Buffer.concat(parts);
}
const BIN_PIECES = ['<unk>', '\n<s>\n', '\n</s>\n', ' ', 'h', 'i', ' h', ' hi'];

describe('loadTokenizerFile (synthetic files)', () => {
  it('recognizes each format by its first bytes', () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(sniffTokenizerFormat(enc('GGUF\x03\x00\x00\x00'))).toBe('gguf');
    expect(sniffTokenizerFormat(enc('{"model": {}}'))).toBe('tokenizer.json');
    expect(sniffTokenizerFormat(enc('\ufeff \n\t{"model": {}}'))).toBe('tokenizer.json');
    expect(sniffTokenizerFormat(new Uint8Array([0x0a, 0x09, 0x0a, 0x05]))).toBe('sentencepiece');
    expect(sniffTokenizerFormat(llama2cBin(6, BIN_PIECES))).toBe('llama2c');
    expect(sniffTokenizerFormat(new Uint8Array(0))).toBe('llama2c');
  });

  it('reads a llama2.c tokenizer.bin given the vocabulary size, and says it needs one otherwise', async () => {
    const file = tmp('tokenizer.bin');
    writeFileSync(file, llama2cBin(6, BIN_PIECES));
    const tok = await loadTokenizerFile(file, BIN_PIECES.length);
    expect(tok.encode('hi hi')).toEqual([1, 7, 7]);
    expect(tok.vocab.source).toBe('tokenizer.bin');
    await expectRejection(loadTokenizerFile(file), 'ERR_MODEL_FORMAT', /tokenizer\.bin is not a tokenizer file this library reads .*needs the model's vocabulary size \(vocabSize\)/);
    await expectRejection(loadTokenizerFile(file, 5), 'ERR_MODEL_FORMAT', /as a llama2\.c tokenizer\.bin: .*is vocabSize 5 the model's vocabulary size/);
  });

  it('reads a llama2.c file that starts like a protobuf (max_token_length 10)', async () => {
    const file = tmp('ten.bin');
    writeFileSync(file, llama2cBin(10, BIN_PIECES));
    expect(readFileSync(file)[0]).toBe(0x0a);
    expect((await loadTokenizerFile(file, BIN_PIECES.length)).encode('hi hi')).toEqual([1, 7, 7]);
    await expectRejection(loadTokenizerFile(file), 'ERR_MODEL_FORMAT', /ten\.bin is not a tokenizer file .*as a SentencePiece model: ten\.bin: not a valid protobuf message: .*; reading it as a llama2\.c tokenizer\.bin needs the model's vocabulary size/);
    await expectRejection(loadTokenizerFile(file, 3), 'ERR_MODEL_FORMAT', /not a tokenizer file this library reads .*as a SentencePiece model: .*; as a llama2\.c tokenizer\.bin: /);
  });

  it('explains what it found in files of no known format', async () => {
    const junk = tmp('junk.dat');
    writeFileSync(junk, Buffer.from('\x01\x02\x03\x04 random bytes that are no tokenizer'));
    await expectRejection(loadTokenizerFile(junk, 32000), 'ERR_MODEL_FORMAT', /junk\.dat is not a tokenizer file this library reads \(GGUF, tokenizer\.json, SentencePiece tokenizer\.model, llama2\.c tokenizer\.bin\): it does not start with the GGUF magic.*; as a llama2\.c tokenizer\.bin: /);
    const empty = tmp('empty');
    writeFileSync(empty, Buffer.alloc(0));
    await expectRejection(loadTokenizerFile(empty, 32000), 'ERR_MODEL_FORMAT', /empty is not a tokenizer file .*too short/);
    const config = tmp('tokenizer_config.json');
    writeFileSync(config, JSON.stringify({ add_bos_token: true, tokenizer_class: 'LlamaTokenizer' }));
    await expectRejection(loadTokenizerFile(config), 'ERR_MODEL_FORMAT', /tokenizer_config\.json is JSON but not a Hugging Face tokenizer\.json \(it has no "model"/);
    const broken = tmp('broken.json');
    writeFileSync(broken, '{"model": {"type": "BPE", ');
    await expectRejection(loadTokenizerFile(broken), 'ERR_MODEL_FORMAT', /broken\.json starts like JSON but is not valid JSON/);
    const unsupported = tmp('wordpiece.json');
    writeFileSync(unsupported, JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }));
    await expectRejection(loadTokenizerFile(unsupported), 'ERR_UNSUPPORTED', /wordpiece\.json: the model type "WordPiece" is not supported/);
    const badGguf = tmp('bad.gguf');
    writeFileSync(badGguf, Buffer.from('GGUF\x03\x00\x00\x00garbage'));
    await expectRejection(loadTokenizerFile(badGguf), 'ERR_MODEL_FORMAT', /not a valid GGUF file/);
    const noTokenizer = tmp('weights-only.gguf');
    const meta = new Map([['general.name', { type: GgufValueType.STRING, value: 'x' }]]);
    writeFileSync(noTokenizer, encodeGgufHeader(meta, []).header);
    await expectRejection(loadTokenizerFile(noTokenizer), 'ERR_MODEL_FORMAT', /weights-only\.gguf: no tokenizer \(the key "tokenizer\.ggml\.model" is missing\)/);
  });

  it('reports a missing file as ERR_IO and bad arguments as ERR_INVALID_ARG', async () => {
    await expectRejection(loadTokenizerFile('/nonexistent/tokenizer.model'), 'ERR_IO', /cannot open \/nonexistent\/tokenizer\.model/);
    await expectRejection(loadTokenizerFile(''), 'ERR_INVALID_ARG', /path must be a non-empty string/);
    await expectRejection(loadTokenizerFile(tmp('x'), 0), 'ERR_INVALID_ARG', /vocabSize must be a positive integer, got 0/);
  });
});

// ---- the real Llama 2 files ----

describeWithShared([FILES.llama2Model, FILES.llama2Bin, FILES.vocabGguf, FILES.tinyRandomGguf, FILES.spCases], 'loadTokenizerFile on the Llama 2 tokenizer files', () => {
  const cases = readSpCases();
  let jsonFile: string;
  beforeAll(() => {
    jsonFile = tmp('tokenizer.json');
    writeFileSync(jsonFile, llama2TokenizerJson());
  });

  const expectSentencePiece = (tok: Tokenizer): void => {
    expect(tok.vocabSize).toBe(32000);
    for (const c of cases) if (tok.encode(c.text).join() !== c.ids.join()) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
  };

  it('reads every format, each giving SentencePiece\'s ids', async () => {
    const bom = tmp('bom-tokenizer.json');
    writeFileSync(bom, `\ufeff${llama2TokenizerJson()}`);
    const loaded: [string, Tokenizer][] = [
      ['tokenizer.model', await loadTokenizerFile(sharedPath(FILES.llama2Model))],
      ['tokenizer.json', await loadTokenizerFile(jsonFile)],
      ['bom-tokenizer.json', await loadTokenizerFile(bom, 32000)],
      ['ggml-vocab-llama-spm.gguf', await loadTokenizerFile(sharedPath(FILES.vocabGguf))],
      ['llama-2-tiny-random.gguf', await loadTokenizerFile(sharedPath(FILES.tinyRandomGguf), 32000)],
      ['tokenizer.bin', await loadTokenizerFile(sharedPath(FILES.llama2Bin), 32000)],
    ];
    for (const [name, tok] of loaded) {
      expect(tok.vocab.source).toBe(name);
      expectSentencePiece(tok);
    }
  });

  it('reads the same from bytes (GGUF headers included)', () => {
    for (const file of [FILES.llama2Model, FILES.vocabGguf]) {
      expectSentencePiece(tokenizerFromBytes(readFileSync(sharedPath(file)), path.basename(file)));
    }
    expectSentencePiece(tokenizerFromBytes(readFileSync(jsonFile), 'tokenizer.json'));
  });

  it('resolveTokenizer: an explicit file of any format, then GGUF metadata, then a folder\'s tokenizer files', async () => {
    const model = await openModelFile(sharedPath(FILES.tinyRandomGguf));
    expect((await resolveTokenizer(model, undefined)).vocab.source).toBe('llama-2-tiny-random.gguf');
    for (const file of [sharedPath(FILES.llama2Model), jsonFile, sharedPath(FILES.llama2Bin)]) {
      const tok = await resolveTokenizer(model, file);
      expect(tok.vocab.source).toBe(path.basename(file));
      expectSentencePiece(tok);
    }
    // A Hugging Face folder lists its tokenizer files, tokenizer.json first: the first is loaded.
    const folder = { format: 'hf', path: tmp('hf-model'), config: { vocabSize: 32000 }, tensors: [], name: 'hf-model' };
    const withFiles = { ...folder, tokenizerFiles: [jsonFile, sharedPath(FILES.llama2Model)] } as unknown as ModelFile;
    expect((await resolveTokenizer(withFiles, undefined)).vocab.source).toBe('tokenizer.json');
    const modelOnly = { ...folder, tokenizerFiles: [sharedPath(FILES.llama2Model)] } as unknown as ModelFile;
    expect((await resolveTokenizer(modelOnly, undefined)).vocab.source).toBe('tokenizer.model');
    const none = { ...folder, tokenizerFiles: [] } as unknown as ModelFile;
    await expectRejection(resolveTokenizer(none, undefined), 'ERR_INVALID_ARG', /hf-model has no tokenizer\.json or tokenizer\.model: pass \{ tokenizer: /);
    expect((await resolveTokenizer(none, sharedPath(FILES.llama2Model))).vocab.source).toBe('tokenizer.model');
  });

  it('loadTokenizer(model, { tokenizer }) takes the explicit file', async () => {
    const tok = await loadTokenizer(sharedPath(FILES.tinyRandomGguf), { tokenizer: sharedPath(FILES.llama2Model) });
    expect(tok.vocab.source).toBe('tokenizer.model');
    expectSentencePiece(tok);
  });

  function cliTokenize(tokenizerFile: string, input: string): { status: number | null; stdout: string; stderr: string } {
    const args = ['tokenize', '--model', sharedPath(FILES.tinyRandomGguf), '--tokenizer', tokenizerFile, '--jsonl'];
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'llama-cuda.js'), ...args], {
      encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, LLAMA_CUDA_BACKEND: 'cpu' },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('llama-cuda tokenize --tokenizer tokenizer.model --jsonl gives SentencePiece\'s ids for every case', () => {
    // the case file's own lines are the input ({"text", "ids"}: the command reads "text")
    const input = readFileSync(sharedPath(FILES.spCases), 'utf8');
    for (const file of [sharedPath(FILES.llama2Model), jsonFile]) {
      const r = cliTokenize(file, input);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(cases.length);
      lines.forEach((line, i) => {
        const c = cases[i] as { text: string; ids: number[] };
        const ids = (JSON.parse(line) as { ids: number[] }).ids;
        if (ids.join() !== c.ids.join()) expect(ids, `${path.basename(file)}: ${JSON.stringify(c.text)}`).toEqual(c.ids);
      });
    }
  });

  it('llama-cuda tokenize --tokenizer reports a bad tokenizer file with its error code', () => {
    const junk = tmp('junk.tok');
    writeFileSync(junk, 'not a tokenizer at all');
    const r = cliTokenize(junk, '{"text": "x"}\n');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error \[ERR_MODEL_FORMAT\]: junk\.tok is not a tokenizer file this library reads/);
  });
});
