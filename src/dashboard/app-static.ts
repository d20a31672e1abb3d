import { statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply } from 'fastify';
import { AppError } from '../platform/errors.js';
import type { HttpServer } from '../platform/http.js';

/** Where `npm run build` writes the browser app (vite): <package>/dist/app, from src/ or dist/ alike. */
export const DEFAULT_APP_DIR = fileURLToPath(new URL('../../dist/app/', import.meta.url));

/**
 * The app's own headers, on /app only (Swagger UI at /docs and GraphiQL keep theirs): scripts and
 * styles only from Tollgate's origin (no inline script), no framing, no Referer (a portal link's
 * page never leaks its URL), no MIME sniffing.
 */
const APP_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

/** Vite names built assets by content hash: they never change, so browsers keep them. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Serves the dashboard (docs/dashboard.md) from appDir at /app: files as they are, and index.html
 * for any path without a file extension that is not a file (client-side routes). GET / leads there.
 */
export async function registerAppRoutes(app: HttpServer, appDir: string) {
  const root = resolve(appDir);
  // The build writes .br and .gz beside each text file (app/vite.config.ts): sent when the browser accepts them.
  await app.register(fastifyStatic, { serve: false, dotfiles: 'ignore', preCompressed: true });
  const hidden = { schema: { hide: true } };
  app.get('/', hidden, async (_req, reply) => reply.redirect('/app/'));
  app.get('/app', hidden, async (_req, reply) => sendAppFile(reply, root, ''));
  app.get('/app/*', hidden, async (req, reply) => sendAppFile(reply, root, (req.params as { '*': string })['*']));
}

function sendAppFile(reply: FastifyReply, root: string, path: string) {
  if (!isFile(join(root, 'index.html'))) {
    throw new AppError('dashboard_not_built', `The dashboard is not built (no ${join(root, 'index.html')}): run \`npm run build\``);
  }
  reply.headers(APP_HEADERS);
  const file = extname(path) !== '' || isFile(inside(root, path)) ? path : 'index.html';
  reply.header('cache-control', file.startsWith('assets/') ? IMMUTABLE : 'no-cache');
  return reply.sendFile(file, root, { cacheControl: false });
}

/** The path under root, or root itself when it would escape (then it is no file: index.html is served). */
function inside(root: string, path: string): string {
  const full = resolve(root, path);
  return full.startsWith(root + sep) ? full : root;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
