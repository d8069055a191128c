/**
 * A progress bar on stderr for long loads, drawn only on a terminal and only once a load has
 * taken a moment (short loads print nothing).
 */
import type { LoadProgress } from '../load-model.js';

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): {
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
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(p.fraction * 100).toFixed(0).padStart(3)}% ${mb(p.loadedBytes)}/${mb(p.totalBytes)} MiB`);
    },
    done() {
      if (drawn) stream.write('\n');
    },
  };
}
