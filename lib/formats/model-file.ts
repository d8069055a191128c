/**
 * Opens a model file of any supported format and returns what the engine needs: the config,
 * where every tensor is, and (for GGUF) the metadata holding the tokenizer.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import { readMagic } from './file-io.js';
import { GGUF_MAGIC, type GgufFile, readGguf } from './gguf.js';
import { configFromGguf } from './gguf-llama.js';
import { readLlama2c } from './llama2c.js';
import type { TensorInfo } from './tensor-info.js';

export type ModelFormat = 'gguf' | 'llama2c';

export interface ModelFile {
  readonly format: ModelFormat;
  readonly path: string;
  readonly config: LlamaConfig;
  readonly tensors: readonly TensorInfo[];
  /** GGUF only: the parsed header (metadata holds the tokenizer). */
  readonly gguf?: GgufFile;
  /** A human name (general.name or the file name). */
  readonly name: string;
}

export async function detectFormat(file: string): Promise<ModelFormat> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    throw new LlamaCudaError('ERR_IO', `cannot open model ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (info.isDirectory()) {
    throw new LlamaCudaError('ERR_UNSUPPORTED', `${file} is a folder: Hugging Face model folders are not supported yet; use a GGUF or llama2.c file`);
  }
  // version-0 llama2.c files have no magic: the header and size checks decide
  return (await readMagic(file)) === GGUF_MAGIC ? 'gguf' : 'llama2c';
}

export async function openModelFile(file: string): Promise<ModelFile> {
  const format = await detectFormat(file);
  if (format === 'gguf') {
    const gguf = await readGguf(file);
    const config = configFromGguf(gguf);
    const general = gguf.metadata.get('general.name')?.value;
    return {
      format, path: gguf.path, config, tensors: gguf.tensors, gguf,
      name: typeof general === 'string' ? general : path.basename(file),
    };
  }
  let ckpt;
  try {
    ckpt = await readLlama2c(file);
  } catch (err) {
    if (err instanceof LlamaCudaError && err.code === 'ERR_MODEL_FORMAT') {
      throw new LlamaCudaError(
        'ERR_MODEL_FORMAT',
        `${path.basename(file)} is not a model file this library reads: it does not start with the GGUF magic, and as a llama2.c checkpoint: ${err.message.replace(/^[^:]*: /, '')}`,
        { cause: err },
      );
    }
    throw err;
  }
  return { format, path: ckpt.path, config: ckpt.config, tensors: ckpt.tensors, name: path.basename(file) };
}
