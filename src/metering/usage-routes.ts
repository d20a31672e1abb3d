import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../platform/http.js';
import { responses } from '../platform/schemas.js';
import { MyUsageQuery, UsageQuery, UsageReply } from './usage-schemas.js';
import type { UsageService } from './usage-service.js';

export function registerUsageRoutes(app: HttpServer, usage: UsageService) {
  app.get('/v1/usage', { schema: { tags: ['usage'], summary: 'Usage and charges per UTC window, from hourly rollups', querystring: UsageQuery, response: responses(UsageReply) } }, async (req) => {
    const { customer, ...query } = req.query;
    return usage.usage(customer ?? null, query);
  });

  const config = { auth: 'customer' as const };
  const me = (req: FastifyRequest) => (req.principal as { customerId: string }).customerId;
  app.get('/v1/me/usage', { config, schema: { tags: ['me'], summary: 'My usage and charges per UTC window', querystring: MyUsageQuery, response: responses(UsageReply) } }, async (req) =>
    usage.usage(me(req), req.query),
  );
}
