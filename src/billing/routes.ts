import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../platform/db.js';
import { noBodyIsEmpty, sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf, runIdempotent } from '../platform/idempotency.js';
import { ListOf } from '../platform/lists.js';
import { IdempotencyHeader, IdParam, Problem, responses } from '../platform/schemas.js';
import type { InvoiceAction } from './invoice-rules.js';
import type { InvoiceService } from './invoice-service.js';
import { BillingSettings, BillingSettingsPut, Invoice, InvoiceListQuery, MarkPaid, MyInvoiceListQuery, NoParameters } from './schemas.js';

const InvoiceId = IdParam('inv');
const CustomerId = IdParam('cus');


const ACTIONS: Array<{ action: InvoiceAction; summary: string }> = [
  { action: 'finalize', summary: 'Finalize a draft invoice: it gets the next number and never changes again' },
  { action: 'void', summary: 'Void a finalized (or uncollectible) invoice' },
  { action: 'mark_uncollectible', summary: 'Mark a finalized invoice uncollectible' },
];

const PdfResponse = {
  200: { description: 'The invoice as a PDF', content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } } },
  '4xx': Problem,
  '5xx': Problem,
};

function sendPdf(reply: FastifyReply, id: string, pdf: Buffer) {
  return reply.type('application/pdf').header('content-disposition', `inline; filename="${id}.pdf"`).send(pdf);
}

export function registerBillingRoutes(app: HttpServer, db: Db, invoices: InvoiceService, operatorName: string) {
  const tags = ['invoices'];
  app.get('/v1/invoices', { schema: { tags, summary: 'List invoices, newest first', querystring: InvoiceListQuery, response: responses(ListOf(Invoice)) } }, async (req) =>
    invoices.list({ limit: req.query.limit ?? 20, cursor: req.query.cursor, customerId: req.query.customer, status: req.query.status, period: req.query.period }),
  );
  app.get('/v1/invoices/:id', { schema: { tags, summary: 'Get an invoice with its lines', params: InvoiceId, response: responses(Invoice) } }, async (req) =>
    invoices.get(req.params.id),
  );
  app.get('/v1/invoices/:id/pdf', { schema: { tags, summary: 'The invoice as a PDF (operator, customer, period, lines, tax, totals)', params: InvoiceId, response: PdfResponse } }, async (req, reply) =>
    sendPdf(reply, req.params.id, await invoices.pdf(req.params.id, operatorName)),
  );
  for (const { action, summary } of ACTIONS) {
    app.post(`/v1/invoices/:id/${action}`, { preValidation: noBodyIsEmpty, schema: { tags, summary, headers: IdempotencyHeader, params: InvoiceId, body: NoParameters, response: responses(Invoice) } }, async (req, reply) =>
      sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await invoices.act(tx, req.params.id, action) }))),
    );
  }
  app.post('/v1/invoices/:id/mark_paid', { preValidation: noBodyIsEmpty, schema: { tags, summary: 'Record a payment received outside Tollgate (manual provider)', headers: IdempotencyHeader, params: InvoiceId, body: MarkPaid, response: responses(Invoice) } }, async (req, reply) =>
    sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await invoices.act(tx, req.params.id, 'mark_paid', req.body.reference ?? null) }))),
  );

  const settingsTags = ['billing settings'];
  app.get('/v1/customers/:id/billing_settings', { schema: { tags: settingsTags, summary: "A customer's tax rate and billing anchor day", params: CustomerId, response: responses(BillingSettings) } }, async (req) =>
    invoices.settings(req.params.id),
  );
  app.put('/v1/customers/:id/billing_settings', { schema: { tags: settingsTags, summary: "Replace a customer's billing settings (omitted fields take their defaults)", params: CustomerId, body: BillingSettingsPut, response: responses(BillingSettings) } }, async (req) =>
    invoices.putSettings(req.params.id, req.body),
  );

  const config = { auth: 'customer' as const };
  const me = (req: FastifyRequest) => (req.principal as { customerId: string }).customerId;
  app.get('/v1/me/invoices', { config, schema: { tags: ['me'], summary: 'My invoices, newest first', querystring: MyInvoiceListQuery, response: responses(ListOf(Invoice)) } }, async (req) =>
    invoices.list({ limit: req.query.limit ?? 20, cursor: req.query.cursor, customerId: me(req), status: req.query.status, period: req.query.period }),
  );
  app.get('/v1/me/invoices/:id', { config, schema: { tags: ['me'], summary: 'One of my invoices', params: InvoiceId, response: responses(Invoice) } }, async (req) =>
    invoices.get(req.params.id, me(req)),
  );
  app.get('/v1/me/invoices/:id/pdf', { config, schema: { tags: ['me'], summary: 'One of my invoices as a PDF', params: InvoiceId, response: PdfResponse } }, async (req, reply) =>
    sendPdf(reply, req.params.id, await invoices.pdf(req.params.id, operatorName, me(req))),
  );
}
