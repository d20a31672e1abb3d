import { tokensEqual } from '../accounts/key-secret.js';
import { AppError } from '../platform/errors.js';
import type { HttpServer } from '../platform/http.js';
import type { Metrics } from './metrics.js';

/**
 * Request rate, errors and latency per route (the route template, so ids in URLs do not make a
 * series each), and GET /metrics in the Prometheus text format. /metrics is open unless a token is
 * configured: Prometheus usually scrapes over the cluster's network, which the NetworkPolicy limits.
 */
export function registerMetricsRoutes(app: HttpServer, metrics: Metrics, token: string | undefined) {
  const requests = metrics.counter('tollgate_http_requests_total', 'HTTP requests answered, by method, route template and status code', ['method', 'route', 'status']);
  const seconds = metrics.histogram('tollgate_http_request_duration_seconds', 'Time to answer an HTTP request, by method and route template', ['method', 'route']);
  app.addHook('onResponse', async (request, reply) => {
    // Unmatched URLs (404s, scans) share one series.
    const route = request.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    seconds.observe({ method: request.method, route }, reply.elapsedTime / 1_000);
  });

  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (token !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (!match || !tokensEqual(match[1]!, token)) throw new AppError('unauthorized', 'Send Authorization: Bearer <TOLLGATE_METRICS_TOKEN>');
    }
    return reply.type(metrics.contentType).send(await metrics.text());
  });
}
