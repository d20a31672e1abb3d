import Stripe from 'stripe';
import { expect } from 'vitest';
import type { Clock } from '../../src/platform/clock.js';
import type { Fixture } from './fixtures.js';
import { STRIPE_WEBHOOK_SECRET, type ApiResponse, type TestServer } from './harness.js';

/** Stripe events as Stripe sends them to Tollgate's webhook, signed by the SDK's test helper. */

const signer = new Stripe('sk_test_signer_only');
let seq = 0;

export interface TopUp {
  id: string;
  sessionId: string;
  minor: number;
  body: any;
}

export interface DeliverOptions {
  timestamp?: number;
  secret?: string;
  signature?: string | null;
  tamper?: (payload: string) => string;
}

export function expectProblem(r: ApiResponse, status: number, code: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
}

export function stripeEvents(server: () => TestServer, clock: Clock) {
  const nowSeconds = () => Math.floor(clock.now().getTime() / 1000);
  const eventId = () => `evt_test_${process.pid}_${++seq}`;
  const event = (type: string, object: object) => ({ id: eventId(), object: 'event', type, created: nowSeconds(), data: { object } });

  return {
    nowSeconds,
    eventId,

    /** Sends a Stripe event to the webhook, signed (or not, or wrongly) as asked. */
    async deliver(payloadEvent: object, options: DeliverOptions = {}) {
      const payload = JSON.stringify(payloadEvent);
      const header = signer.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? STRIPE_WEBHOOK_SECRET, timestamp: options.timestamp ?? nowSeconds() });
      const headers: Record<string, string> = {};
      if (options.signature !== null) headers['stripe-signature'] = options.signature ?? header;
      return server().api.post('/v1/stripe/webhook', undefined, { token: null, rawBody: options.tamper ? options.tamper(payload) : payload, headers });
    },

    sessionCompleted(topUp: TopUp, intent: string, paymentStatus = 'paid') {
      return event('checkout.session.completed', {
        id: topUp.sessionId, object: 'checkout.session', payment_status: paymentStatus, payment_intent: intent, amount_total: topUp.minor, currency: 'usd', metadata: { tollgate_payment_id: topUp.id },
      });
    },
    intentSucceeded(payment: { id: string; minor: number }, intent: string, paymentMethod: string | null = null) {
      return event('payment_intent.succeeded', {
        id: intent, object: 'payment_intent', amount: payment.minor, amount_received: payment.minor, currency: 'usd', payment_method: paymentMethod, metadata: { tollgate_payment_id: payment.id },
      });
    },
    intentFailed(payment: { id: string; minor: number }, intent: string, declineCode = 'insufficient_funds') {
      return event('payment_intent.payment_failed', {
        id: intent, object: 'payment_intent', amount: payment.minor, amount_received: 0, currency: 'usd', status: 'requires_payment_method', metadata: { tollgate_payment_id: payment.id },
        last_payment_error: { type: 'card_error', code: 'card_declined', decline_code: declineCode, message: 'Your card has insufficient funds.' },
      });
    },
    chargeRefunded(intent: string, amountRefundedMinor: number, amountMinor: number) {
      return event('charge.refunded', {
        id: `ch_${intent}`, object: 'charge', amount: amountMinor, amount_refunded: amountRefundedMinor, payment_intent: intent, refunded: amountRefundedMinor === amountMinor,
      });
    },
    dispute(type: 'created' | 'updated' | 'closed', intent: string, amountMinor: number, status: string) {
      return event(`charge.dispute.${type}`, { id: `dp_${intent}`, object: 'dispute', amount: amountMinor, currency: 'usd', charge: `ch_${intent}`, payment_intent: intent, status, reason: 'fraudulent' });
    },

    /** A Checkout top-up of `c`, as the API answered it and as Stripe was asked for it. */
    async topUp(c: Fixture, amount: string): Promise<TopUp> {
      const r = await server().api.post(`/v1/customers/${c.customerId}/top_ups`, { amount });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const checkout = server().stripe!.requests.filter((q) => q.route === 'POST /v1/checkout/sessions' && q.idempotencyKey === r.body.id).at(-1)!;
      return { id: r.body.id, sessionId: r.body.url.split('/').pop(), minor: Number(checkout.params['line_items[0][price_data][unit_amount]']), body: r.body };
    },

    async paymentOf(id: string) {
      const r = await server().api.get('/v1/payments?limit=100');
      expect(r.status).toBe(200);
      return r.body.data.find((p: any) => p.id === id);
    },

    /** A customer's transactions, newest first, as [kind, amount, direction, reason]. */
    async transactions(customerId: string) {
      const r = await server().api.get(`/v1/customers/${customerId}/transactions?limit=100`);
      return r.body.data.map((t: any) => [t.kind, t.amount, t.direction, t.reason]);
    },
  };
}
