import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The dashboard is served by Tollgate at /app from dist/app (see src/dashboard/). `npm run dev:app`
// serves it with hot reload and forwards the API to a `tollgate dev` on 127.0.0.1:8787.
const api = 'http://127.0.0.1:8787';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/app/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/app', import.meta.url)),
    emptyOutDir: true,
    // The CSP allows no inline script: the module preload polyfill would be one.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
  server: { proxy: { '/v1': api, '/graphql': api } },
});
