/**
 * Which tokenizer goes with a model file: the one the caller names (any format
 * loadTokenizerFile reads), else the one the file carries (GGUF metadata), else the tokenizer
 * files of a Hugging Face folder (tokenizer.json preferred over tokenizer.model: the first listed
 * is loaded), else a tokenizer file beside the model (llama2.c `tokenizer.bin`).
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import { GgufMetadata } from '../formats/gguf.js';
import type { ModelFile } from '../formats/model-file.js';
import { loadTokenizerFile } from './load.js';
import { Tokenizer } from './tokenizer.js';

export async function resolveTokenizer(file: ModelFile, explicit: string | undefined): Promise<Tokenizer> {
  if (explicit !== undefined) {
    return loadTokenizerFile(explicit, file.config.vocabSize);
  }
  if (file.gguf !== undefined) {
    return Tokenizer.fromGguf(new GgufMetadata(file.gguf.metadata, file.path), path.basename(file.path));
  }
  // Hugging Face folders list their tokenizer files, best first (undefined for other formats).
  const folderFiles = (file as { readonly tokenizerFiles?: readonly string[] }).tokenizerFiles;
  if (folderFiles !== undefined) {
    const first = folderFiles[0];
    if (first === undefined) {
      throw new LlamaCudaError(
        'ERR_INVALID_ARG',
        `${path.basename(file.path)} has no tokenizer.json or tokenizer.model: pass { tokenizer: 'path/to/tokenizer.json' } (--tokenizer on the CLI)`,
      );
    }
    return loadTokenizerFile(first, file.config.vocabSize);
  }
  const beside = path.join(path.dirname(file.path), 'tokenizer.bin');
  const found = await stat(beside).then(() => true, () => false);
  if (!found) {
    throw new LlamaCudaError(
      'ERR_INVALID_ARG',
      `${path.basename(file.path)} is a llama2.c checkpoint, which carries no tokenizer: pass { tokenizer: 'path/to/tokenizer.bin' } (--tokenizer on the CLI)`,
    );
  }
  return Tokenizer.fromLlama2cFile(beside, file.config.vocabSize);
}
