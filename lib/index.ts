/**
 * llama-cuda: Llama 2 inference for Node.js.
 *
 *   import { loadModel } from 'llama-cuda';
 *   const model = await loadModel('llama-2-7b-chat.Q4_0.gguf');
 *   for await (const chunk of model.generate('[INST] Hi [/INST]', { maxTokens: 200 })) process.stdout.write(chunk.text);
 *   await model.dispose();
 */
export { loadModel, loadTokenizer, type LoadModelOptions, type LoadProgress } from './load-model.js';
export { LlamaModel, type ModelInfo, type SequenceOptions } from './model/llama-model.js';
export { LlamaSequence, type EvaluateOptions } from './model/sequence.js';
export type { LlamaConfig, RopePairing, RopeScaling } from './model/config.js';
export type { LoraAdapterOptions, LoraInfo, LoraMode } from './lora/types.js';
export { quantizeModelFile, type QuantizeFileOptions, type QuantizeFileResult, type QuantizeFileType } from './quantize-file.js';
export { buildLlama2ChatTokens, type ChatMessage, type ChatOptions, type ChatRole } from './chat.js';
export type { PerplexityOptions, PerplexityProgress, PerplexityResult } from './perplexity.js';
export type { EmbedOptions, Pooling } from './embed.js';
export { VectorIndex, type VectorHit, type VectorIndexJson } from './vector-index.js';
export { convertGqa, type ConvertGqaOptions, type ConvertGqaResult } from './convert-gqa.js';
export { inspectModel, type InspectOptions, type ModelReport, type TensorTypeRow, type TokenizerSummary, type WeightStorage } from './inspect.js';
export type { DeviceMemory, MemoryEstimate } from './model/memory.js';
export type { GenerateChunk, GenerateOptions, GenerateResult, GenerateTimings, FinishReason } from './generate.js';
export { Sampler, type SamplerOptions } from './sampler.js';
export { Tokenizer, type EncodeOptions, type DecodeOptions, StreamingDecoder, loadTokenizerFile } from './tokenizer/index.js';
export { LlamaCudaError, type ErrorCode, ERROR_CODES } from './errors.js';
export { backendInfo, type BackendInfo } from './backend-info.js';
export type { DeviceRequest } from './native.js';
export type { KvCacheType, NativeVariant } from './addon-types.js';
