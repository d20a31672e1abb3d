import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db, Queryable } from '../platform/db.js';
import { noBodyIsEmpty, sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf, runIdempotent } from '../platform/idempotency.js';
import { ListOf } from '../platform/lists.js';
import { IdempotencyHeader, IdParam, NoParameters, Problem, responses } from '../platform/schemas.js';
import type { InvoiceService } from './invoice-service.js';
import { BillingSettings, BillingSettingsPut, CreditNote, CreditNoteCreate, CreditNoteListQuery, Invoice, InvoiceListQuery, MarkPaid, MyInvoiceListQuery } from './schemas.js';

const InvoiceId = IdParam('inv');
const CustomerId = IdParam('cus');


const ACTIONS: Array<{ action: 'void' | 'mark_uncollectible'; summary: string }> = [
  { action: 'void', summary: 'Void a finalized (or uncollectible) invoice: what it still owes is credited back to the customer' },
  { action: 'mark_uncollectible', summary: 'Mark a finalized invoice uncollectible (the debt stays on the account)' },
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
  const finalizeSummary = 'Finalize a draft invoice: recomputed from the usage as it is now, posted to the ledger with credits applied, numbered, then immutable';
  app.post('/v1/invoices/:id/finalize', { preValidation: noBodyIsEmpty, schema: { tags, summary: finalizeSummary, headers: IdempotencyHeader, params: InvoiceId, body: NoParameters, response: responses(Invoice) } }, async (req, reply) => {
    // The catalog is read before the transaction: on PGlite's one connection, I/O inside it would wait on itself.
    const pricing = await invoices.pricingFor(req.params.id);
    const stored = await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await invoices.finalize(tx, req.params.id, pricing) }));
    if (stored.status === 200) invoices.announceFinalized(req.params.id);
    return sendStored(reply, stored);
  });
  for (const { action, summary } of ACTIONS) {
    const act = (tx: Queryable, id: string) => (action === 'void' ? invoices.void(tx, id) : invoices.markUncollectible(tx, id));
    app.post(`/v1/invoices/:id/${action}`, { preValidation: noBodyIsEmpty, schema: { tags, summary, headers: IdempotencyHeader, params: InvoiceId, body: NoParameters, response: responses(Invoice) } }, async (req, reply) =>
      sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await act(tx, req.params.id) }))),
    );
  }
  app.post('/v1/invoices/:id/mark_paid', { preValidation: noBodyIsEmpty, schema: { tags, summary: 'Record a payment received outside Tollgate (manual provider): the customer is credited what the invoice still owes', headers: IdempotencyHeader, params: InvoiceId, body: MarkPaid, response: responses(Invoice) } }, async (req, reply) =>
    sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await invoices.payInTransaction(tx, req.params.id, { provider: 'manual', reference: req.body.reference ?? null }) }))),
  );
  app.post('/v1/invoices/:id/credit_notes', { schema: { tags, summary: 'Issue a credit note on a finalized, paid or uncollectible invoice: the amount is credited back to the customer', headers: IdempotencyHeader, params: InvoiceId, body: CreditNoteCreate, response: responses(CreditNote, 201) } }, async (req, reply) =>
    sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await invoices.creditNote(tx, req.params.id, req.body) }))),
  );
  app.get('/v1/invoices/:id/credit_notes', { schema: { tags, summary: "An invoice's credit notes, newest first", params: InvoiceId, querystring: CreditNoteListQuery, response: responses(ListOf(CreditNote)) } }, async (req) =>
    invoices.creditNotes(req.params.id, req.query.limit ?? 20, req.query.cursor),
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
