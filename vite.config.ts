import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

// The studio and watch pages; `onair serve` serves the build from web/dist.
export default defineConfig({
  root: here('./web'),
  plugins: [svelte()],
  resolve: { alias: { '@onair/shared': here('./shared/src/index.ts') } },
  worker: { format: 'es' },
  build: {
    outDir: here('./web/dist'),
    emptyOutDir: true,
    target: 'es2022',
  },
});
