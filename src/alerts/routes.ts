import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../platform/http.js';
import { IdParam, responses } from '../platform/schemas.js';
import type { AlertsService } from './alerts-service.js';
import { AlertSettings, AlertSettingsPut } from './schemas.js';

const CustomerId = IdParam('cus');

export function registerAlertRoutes(app: HttpServer, alerts: AlertsService) {
  const tags = ['alerts'];
  app.get('/v1/customers/:id/alert_settings', { schema: { tags, summary: "A customer's balance and spend alert thresholds", params: CustomerId, response: responses(AlertSettings) } }, async (req) =>
    alerts.getSettings(req.params.id),
  );
  app.put('/v1/customers/:id/alert_settings', { schema: { tags, summary: "Replace a customer's alert thresholds (omitted or null: off); re-arms every alert", params: CustomerId, body: AlertSettingsPut, response: responses(AlertSettings) } }, async (req) =>
    alerts.putSettings(req.params.id, req.body),
  );

  const config = { auth: 'customer' as const };
  const me = (req: FastifyRequest) => (req.principal as { customerId: string }).customerId;
  app.get('/v1/me/alert_settings', { config, schema: { tags: ['me'], summary: 'My balance and spend alert thresholds', response: responses(AlertSettings) } }, async (req) => alerts.getSettings(me(req)));
  app.put('/v1/me/alert_settings', { config, schema: { tags: ['me'], summary: 'Replace my alert thresholds (omitted or null: off); re-arms every alert', body: AlertSettingsPut, response: responses(AlertSettings) } }, async (req) =>
    alerts.putSettings(me(req), req.body),
  );
}
