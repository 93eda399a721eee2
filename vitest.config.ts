import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: { alias: { '@onair/shared': here('./shared/src/index.ts') } },
  test: {
    include: ['shared/src/**/*.test.ts', 'bridge/src/**/*.test.ts', 'bridge/test/**/*.test.ts', 'web/src/**/*.test.ts'],
    globalSetup: ['bridge/test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers and encoders; two cores are shared with them.
    maxWorkers: 2,
  },
});
