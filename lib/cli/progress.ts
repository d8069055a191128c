/**
 * A progress bar on stderr for long loads, drawn only on a terminal and only once a load has
 * taken a moment (short loads print nothing).
 */
import type { LoadProgress } from '../load-model.js';

/** `detail` replaces the default "loaded/total MiB" text after the percentage. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, detail?: (p: LoadProgress) => string): {
  update: (p: LoadProgress) => void;
  done: () => void;
} {
  const start = performance.now();
  let drawn = false;
  const width = 30;
  return {
    update(p) {
      if (!stream.isTTY || performance.now() - start < 300) return;
      drawn = true;
      const filled = Math.round(p.fraction * width);
      const mb = (n: number): string => (n / 2 ** 20).toFixed(0);
      const text = detail !== undefined ? detail(p) : `${mb(p.loadedBytes)}/${mb(p.totalBytes)} MiB`;
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(p.fraction * 100).toFixed(0).padStart(3)}% ${text}`);
    },
    done() {
      if (drawn) stream.write('\n');
    },
  };
}
