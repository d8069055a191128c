/**
 * Every error this library throws on purpose is a LlamaCudaError with a stable `code`.
 * The codes are shared with native code (native/core/status.h), one table each side.
 */

export const ERROR_CODES = [
  'ERR_INVALID_ARG', // an option, shape or argument that cannot work
  'ERR_MODEL_FORMAT', // a model or tokenizer file that is malformed, truncated or unsupported
  'ERR_OUT_OF_MEMORY', // host or device allocation failed
  'ERR_IO', // a file could not be opened or read
  'ERR_CUDA', // a CUDA runtime error
  'ERR_BUSY', // a call while another is in flight on the same object
  'ERR_DISPOSED', // use after dispose()
  'ERR_CONTEXT_FULL', // a prompt or generation longer than the context
  'ERR_UNSUPPORTED', // valid, but this build or backend cannot do it
  'ERR_NATIVE_LOAD', // no native build could be loaded
  'ERR_ABORTED', // the caller's AbortSignal fired
  'ERR_INTERNAL', // a bug: please report it
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class LlamaCudaError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlamaCudaError';
    this.code = code;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * Rethrows an error from the native addon as a LlamaCudaError whose stack is `site`'s (an
 * Error created before the native call, so the stack points at the caller's code).
 */
export function nativeError(err: unknown, site: Error): LlamaCudaError {
  if (err instanceof LlamaCudaError) return err;
  const raw = err as { code?: unknown; message?: unknown };
  const code: ErrorCode = isErrorCode(raw?.code) ? raw.code : 'ERR_INTERNAL';
  const message = typeof raw?.message === 'string' ? raw.message : String(err);
  const wrapped = new LlamaCudaError(code, message, { cause: err });
  if (site.stack !== undefined) wrapped.stack = `${wrapped.name} [${code}]: ${message}\n${site.stack.split('\n').slice(1).join('\n')}`;
  return wrapped;
}
