/**
 * llama2.c's `tokenizer.bin`: int32 max_token_length, then for each id: float32 score,
 * int32 byte length, the UTF-8 bytes of the piece (no NUL). All little-endian. The number of
 * pieces is not in the file: it is the model's vocab_size.
 *
 * The export replaced SentencePiece's `▁` with an ASCII space and stored BOS / EOS as
 * "\n<s>\n" / "\n</s>\n"; both are undone here. The file has no token types, so they are
 * inferred: id 0 unknown, ids 1 and 2 control, `<0xXX>` pieces bytes, the rest normal (empty
 * pieces control), as llama.cpp's llama2.c converter does.
 *
 * What cannot be recovered: a piece that held a literal `▁`, and any normalization that the
 * SentencePiece model did (Llama 2 does none).
 */
import { LlamaCudaError } from '../errors.js';
import { SPACE_SYMBOL, TokenType, Vocab, inferTokenType } from './vocab.js';

const UNK_ID = 0;
const BOS_ID = 1;
const EOS_ID = 2;

function formatError(source: string, message: string): LlamaCudaError {
  return new LlamaCudaError('ERR_MODEL_FORMAT', `${source}: not a valid llama2.c tokenizer file: ${message}`);
}

/** `vocabSize` comes from the model header; `source` names the file in error messages. */
export function vocabFromLlama2c(bytes: Uint8Array, vocabSize: number, source = 'tokenizer.bin'): Vocab {
  if (!Number.isInteger(vocabSize) || vocabSize < 3) {
    throw new LlamaCudaError('ERR_INVALID_ARG', `${source}: vocabSize must be an integer of at least 3 (unk, bos, eos), got ${String(vocabSize)}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.byteLength;
  if (size < 4) throw formatError(source, `the file is ${size} bytes, too short for its header`);
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength < 0) throw formatError(source, `max_token_length is ${maxTokenLength}`);

  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const pieces: string[] = new Array<string>(vocabSize);
  const scores = new Float32Array(vocabSize);
  let pos = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (pos + 8 > size) {
      throw formatError(source, `truncated: the file ends at byte ${size} inside the entry of token ${id} (expected ${vocabSize} tokens)`);
    }
    scores[id] = view.getFloat32(pos, true);
    const len = view.getInt32(pos + 4, true);
    pos += 8;
    if (len < 0) throw formatError(source, `token ${id} has a negative length ${len} (at byte ${pos - 4})`);
    if (len > maxTokenLength) throw formatError(source, `token ${id} is ${len} bytes, longer than max_token_length ${maxTokenLength}`);
    if (pos + len > size) {
      throw formatError(source, `token ${id} (${len} bytes at byte ${pos}) runs past the end of the file (${size} bytes)`);
    }
    pieces[id] = decoder.decode(bytes.subarray(pos, pos + len));
    pos += len;
  }
  if (pos !== size) {
    throw formatError(source, `${size - pos} bytes are left after ${vocabSize} tokens: is vocabSize ${vocabSize} the model's vocabulary size?`);
  }

  const special = { unk: UNK_ID, bos: BOS_ID, eos: EOS_ID };
  const types = new Uint8Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    let piece = pieces[id] as string;
    if (id === BOS_ID || id === EOS_ID) piece = piece.replace(/^\n|\n$/g, '');
    const type = inferTokenType(id, piece, special);
    if (type === TokenType.NORMAL) piece = piece.replaceAll(' ', SPACE_SYMBOL);
    pieces[id] = piece;
    types[id] = type;
  }
  return new Vocab({ source, pieces, scores, types, ...special, addBos: true, addEos: false });
}
