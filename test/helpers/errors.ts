/**
 * expectErrorCode(fn, code, pattern?): `fn` must throw an Error carrying `code` (a
 * LlamaCudaError, or a native error with the same `code` property), whose message matches
 * `pattern` when one is given.
 */
import { expect } from 'vitest';

export function expectErrorCode(fn: () => unknown, code: string, pattern?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected an error with code ${code}`).toBeInstanceOf(Error);
  expect((caught as { code?: unknown }).code).toBe(code);
  if (pattern !== undefined) expect((caught as Error).message).toMatch(pattern);
}
