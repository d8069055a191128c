import { defineConfig } from 'vitest/config';

export default defineConfig({
  // lib/*.cts (CommonJS helpers shared by the ESM and CJS builds) are TypeScript too
  oxc: { include: /\.(m|c)?tsx?$/ },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/gpu/**', 'node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['./test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
