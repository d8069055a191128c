export { Tokenizer } from './tokenizer.js';
export type { EncodeOptions } from './bpe.js';
export { type DecodeOptions, StreamingDecoder, UNKNOWN_SURFACE } from './decode.js';
export { loadTokenizerFile } from './load.js';
export { SPACE_SYMBOL, TokenType, Vocab, type VocabSpec } from './vocab.js';
