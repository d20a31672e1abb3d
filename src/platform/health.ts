import type { HttpServer } from './http.js';

/** /healthz: the process is up. /readyz: the database answers and every migration is applied. */
export function registerHealthRoutes(app: HttpServer, checks: { live: () => boolean; ready: () => Promise<boolean> }) {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      if (await checks.ready()) return { status: 'ready' };
      return reply.status(503).send({ status: 'migrations pending' });
    } catch {
      return reply.status(503).send({ status: 'database unreachable' });
    }
  });
}
