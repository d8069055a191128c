/**
 * Opening model files for reading: a missing or unreadable file is ERR_IO naming it, and the
 * handle is always closed.
 */
import { type FileHandle, open } from 'node:fs/promises';

import { LlamaCudaError } from '../errors.js';

/** Runs `fn` with the open file and its size. */
export async function withFile<T>(file: string, fn: (handle: FileHandle, size: number) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new LlamaCudaError('ERR_IO', `cannot open ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const { size } = await handle.stat();
    return await fn(handle, size);
  } finally {
    await handle.close();
  }
}

/** Up to `n` bytes from the start of the file (fewer when the file is shorter). */
export async function readHead(handle: FileHandle, n: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(n);
  const { bytesRead } = await handle.read(bytes, 0, n, 0);
  return bytes.subarray(0, bytesRead);
}

/** The first four bytes as a little-endian u32 (0 when the file is shorter). */
export async function readMagic(file: string): Promise<number> {
  return withFile(file, async (handle) => {
    const head = await readHead(handle, 4);
    return head.length === 4 ? new DataView(head.buffer, head.byteOffset).getUint32(0, true) : 0;
  });
}
