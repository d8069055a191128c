/**
 * A fresh temporary folder per test file, removed when the file's tests end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { afterAll } from 'vitest';

export function useTmpDir(prefix = 'llama-cuda-test-'): (name: string) => string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return (name: string) => path.join(dir, name);
}
