/**
 * Opens a model file of any supported format and returns what the engine needs: the config,
 * where every tensor is, and (for GGUF) the metadata holding the tokenizer. A Hugging Face
 * model folder (config.json + safetensors) is given as the folder, or as one of its
 * config.json / *.safetensors / model.safetensors.index.json files.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';

import { LlamaCudaError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import { readMagic } from './file-io.js';
import { GGUF_MAGIC, type GgufFile, readGguf } from './gguf.js';
import { configFromGguf } from './gguf-llama.js';
import { HF_CONFIG_FILE, HF_WEIGHTS_INDEX, type HfModelFolder, readHfFolder } from './hf-folder.js';
import { readLlama2c } from './llama2c.js';
import type { TensorInfo } from './tensor-info.js';

export type ModelFormat = 'gguf' | 'llama2c' | 'hf';

export interface ModelFile {
  readonly format: ModelFormat;
  readonly path: string;
  readonly config: LlamaConfig;
  readonly tensors: readonly TensorInfo[];
  /** GGUF only: the parsed header (metadata holds the tokenizer). */
  readonly gguf?: GgufFile;
  /** A human name (general.name or the file name). */
  readonly name: string;
  /** Hugging Face folders only: the folder's details (torch_dtype, weight files, tied embeddings...). */
  readonly hf?: HfModelFolder;
  /**
   * Hugging Face folders only: the tokenizer files in the folder (absolute paths), in order of
   * preference: tokenizer.json, tokenizer.model. Empty when the folder has none.
   */
  readonly tokenizerFiles?: readonly string[];
}

/** The folder of a Hugging Face model when `file` is one, or one of its own files; else undefined. */
function hfFolderOf(file: string, isDirectory: boolean): string | undefined {
  if (isDirectory) return file;
  const base = path.basename(file);
  return base === HF_CONFIG_FILE || base === HF_WEIGHTS_INDEX || base.endsWith('.safetensors') ? path.dirname(file) : undefined;
}

export async function detectFormat(file: string): Promise<ModelFormat> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    throw new LlamaCudaError('ERR_IO', `cannot open model ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (hfFolderOf(file, info.isDirectory()) !== undefined) return 'hf';
  // version-0 llama2.c files have no magic: the header and size checks decide
  return (await readMagic(file)) === GGUF_MAGIC ? 'gguf' : 'llama2c';
}

export async function openModelFile(file: string): Promise<ModelFile> {
  const format = await detectFormat(file);
  if (format === 'hf') {
    const dir = hfFolderOf(file, (await stat(file)).isDirectory())!;
    const hf = await readHfFolder(dir);
    return { format, path: hf.path, config: hf.config, tensors: hf.tensors, name: path.basename(hf.path), hf, tokenizerFiles: hf.tokenizerFiles };
  }
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
