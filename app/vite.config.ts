import react from '@vitejs/plugin-react';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

// The dashboard is served by Tollgate at /app from dist/app (see src/dashboard/). `npm run dev:app`
// serves it with hot reload and forwards the API to a `tollgate dev` on 127.0.0.1:8787.
const api = 'http://127.0.0.1:8787';
const outDir = fileURLToPath(new URL('../dist/app', import.meta.url));

/**
 * Brotli and gzip copies of every text file of the build, made once at build time: Tollgate's
 * static server (@fastify/static, preCompressed) sends them to browsers that accept them, so the
 * app's ~800 kB of script travels as ~200 kB without compressing on every request.
 */
function precompress(): Plugin {
  const compressible = /\.(js|css|html|svg|json)$/;
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]));
  return {
    name: 'tollgate-precompress',
    apply: 'build',
    closeBundle() {
      for (const file of walk(outDir).filter((f) => compressible.test(f))) {
        const content = readFileSync(file);
        writeFileSync(`${file}.br`, brotliCompressSync(content, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
        writeFileSync(`${file}.gz`, gzipSync(content, { level: 9 }));
      }
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/app/',
  plugins: [react(), precompress()],
  build: {
    outDir,
    emptyOutDir: true,
    // The CSP allows no inline script: the module preload polyfill would be one.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
  server: { proxy: { '/v1': api, '/graphql': api } },
});
