import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';

/**
 * A local stand-in for the Stripe API endpoints Tollgate calls (driven through the official SDK):
 * customers, Checkout Sessions (payment and setup mode), PaymentIntents (created and confirmed
 * off-session, retrieved) and SetupIntents (retrieved).
 * Like Stripe, it refuses parameters it does not know (400 invalid_request_error) and replays a
 * request with the same Idempotency-Key (declines included).
 */

const KNOWN_PARAMS: Record<string, RegExp[]> = {
  'POST /v1/customers': [/^name$/, /^email$/, /^metadata\[[a-z_]{1,40}\]$/],
  'POST /v1/checkout/sessions': [
    /^mode$/, /^customer$/, /^client_reference_id$/, /^success_url$/, /^cancel_url$/,
    /^metadata\[[a-z_]{1,40}\]$/,
    /^line_items\[\d+\]\[quantity\]$/,
    /^line_items\[\d+\]\[price_data\]\[(currency|unit_amount)\]$/,
    /^line_items\[\d+\]\[price_data\]\[product_data\]\[name\]$/,
    /^payment_intent_data\[setup_future_usage\]$/,
    /^payment_intent_data\[metadata\]\[[a-z_]{1,40}\]$/,
    /^payment_method_types\[\d+\]$/,
    /^setup_intent_data\[metadata\]\[[a-z_]{1,40}\]$/,
  ],
  'POST /v1/payment_intents': [
    /^amount$/, /^currency$/, /^customer$/, /^payment_method$/, /^confirm$/, /^off_session$/, /^description$/, /^metadata\[[a-z_]{1,40}\]$/,
  ],
  'GET /v1/payment_intents/{id}': [],
  'GET /v1/setup_intents/{id}': [],
};
/** Required parameters; a Checkout Session's depend on its mode, and each mode refuses the other's. */
function missingOrMisplaced(route: string, params: Record<string, string>): string | null {
  const has = (prefix: string) => Object.keys(params).some((k) => k.startsWith(prefix));
  if (route === 'POST /v1/payment_intents') return ['amount', 'currency'].find((n) => !(n in params)) ?? null;
  if (route !== 'POST /v1/checkout/sessions') return null;
  const common = ['mode', 'success_url'].find((n) => !(n in params));
  if (common) return common;
  if (params.mode === 'payment') return !('line_items[0][quantity]' in params) ? 'line_items[0][quantity]' : has('setup_intent_data') ? 'setup_intent_data' : null;
  if (params.mode === 'setup') return !has('payment_method_types') ? 'payment_method_types' : has('line_items') ? 'line_items' : has('payment_intent_data') ? 'payment_intent_data' : null;
  return 'mode';
}

/** The route as the tables above name it: an object id in the path becomes {id}. */
const routeOf = (method: string | undefined, path: string) => `${method} ${path.replace(/^(\/v1\/(payment|setup)_intents)\/[^/]+$/, '$1/{id}')}`;

export interface StandInRequest {
  route: string;
  params: Record<string, string>;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
}

export interface StripeStandIn {
  url: string;
  requests: StandInRequest[];
  /** Answers the next `count` requests with a 500 (Stripe having trouble). */
  failNext(count: number): void;
  /** The next `count` PaymentIntents created are declined (402 card_error with the intent). */
  declineNext(count: number, declineCode?: string): void;
  /** The status a confirmed PaymentIntent gets when not declined (default succeeded). */
  confirmAs(status: 'succeeded' | 'processing'): void;
  /** Runs before the reply to each PaymentIntent creation (a test delivers a webhook first). */
  beforeIntentReply: ((intent: PaymentIntentObject) => Promise<void>) | null;
  /** PaymentIntents by id: those created here, and any a test puts in (for retrieve). */
  paymentIntents: Map<string, PaymentIntentObject>;
  /** SetupIntents made with setup-mode sessions, by id: a test completes one (sets its card) before the webhook. */
  setupIntents: Map<string, SetupIntentObject>;
  /** How many requests a route got, e.g. 'POST /v1/payment_intents'. */
  count(route: string): number;
  close(): Promise<void>;
}

export type PaymentIntentObject = Record<string, unknown> & { id: string; status: string; amount: number; currency: string; metadata: Record<string, string> };
export type SetupIntentObject = Record<string, unknown> & { id: string; status: string; payment_method: string | null; metadata: Record<string, string> };

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

function metadataOf(params: Record<string, string>, prefix: string) {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    const m = new RegExp(`^${prefix.replace(/[[\]]/g, '\\$&')}\\[([a-z_]+)\\]$`).exec(k);
    if (m) out[m[1]!] = v;
  }
  return out;
}

interface IntentControls {
  declines: { count: number; code: string };
  confirmStatus: 'succeeded' | 'processing';
  intents: Map<string, PaymentIntentObject>;
}

/** A PaymentIntent created and confirmed at once (confirm=true, off_session=true), or declined. */
function createIntent(params: Record<string, string>, controls: IntentControls): { status: number; body: object; intent: PaymentIntentObject } {
  const declined = controls.declines.count > 0;
  if (declined) controls.declines.count--;
  const amount = Number(params.amount);
  const intent: PaymentIntentObject = {
    id: id('pi'),
    object: 'payment_intent',
    amount,
    amount_received: declined || controls.confirmStatus !== 'succeeded' ? 0 : amount,
    currency: params.currency!,
    customer: params.customer ?? null,
    payment_method: params.payment_method ?? null,
    description: params.description ?? null,
    metadata: metadataOf(params, 'metadata'),
    status: declined ? 'requires_payment_method' : params.confirm === 'true' ? controls.confirmStatus : 'requires_confirmation',
    last_payment_error: declined ? { type: 'card_error', code: 'card_declined', decline_code: controls.declines.code, message: 'Your card was declined.' } : null,
  };
  controls.intents.set(intent.id, intent);
  if (!declined) return { status: 200, body: intent, intent };
  return { status: 402, intent, body: { error: { type: 'card_error', code: 'card_declined', decline_code: controls.declines.code, message: 'Your card was declined.', payment_intent: intent } } };
}

function respond(route: string, params: Record<string, string>, setupIntents: Map<string, SetupIntentObject>): object {
  if (route === 'POST /v1/customers') {
    return { id: id('cus'), object: 'customer', name: params.name ?? null, email: params.email ?? null, metadata: metadataOf(params, 'metadata') };
  }
  const sessionId = `cs_test_${randomBytes(12).toString('hex')}`;
  if (params.mode === 'setup') {
    // The SetupIntent Stripe makes with the session; the card appears on it once the customer completes the page.
    const intent: SetupIntentObject = { id: id('seti'), object: 'setup_intent', status: 'requires_payment_method', customer: params.customer ?? null, payment_method: null, metadata: metadataOf(params, 'setup_intent_data[metadata]') };
    setupIntents.set(intent.id, intent);
    return {
      id: sessionId, object: 'checkout.session', mode: 'setup', customer: params.customer ?? null, client_reference_id: params.client_reference_id ?? null, status: 'open',
      setup_intent: intent.id, metadata: metadataOf(params, 'metadata'), url: `https://checkout.stripe.test/c/setup/${sessionId}`,
    };
  }
  return {
    id: sessionId,
    object: 'checkout.session',
    mode: params.mode,
    customer: params.customer ?? null,
    client_reference_id: params.client_reference_id ?? null,
    amount_total: Number(params['line_items[0][price_data][unit_amount]']),
    currency: params['line_items[0][price_data][currency]'],
    payment_status: 'unpaid',
    status: 'open',
    payment_intent: null,
    metadata: metadataOf(params, 'metadata'),
    url: `https://checkout.stripe.test/c/pay/${sessionId}`,
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startStripeStandIn(): Promise<StripeStandIn> {
  const requests: StandInRequest[] = [];
  const replies = new Map<string, { status: number; body: object }>();
  let failures = 0;
  const setupIntents = new Map<string, SetupIntentObject>();
  const controls: IntentControls = { declines: { count: 0, code: 'card_declined' }, confirmStatus: 'succeeded', intents: new Map() };
  const server: Server = createServer(async (req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const route = routeOf(req.method, path);
    const params = Object.fromEntries(new URLSearchParams(await readBody(req)));
    const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
    requests.push({ route, params, idempotencyKey, authorization: req.headers.authorization });
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': id('req') });
      res.end(JSON.stringify(body));
    };
    if (failures > 0) {
      failures--;
      return send(500, { error: { type: 'api_error', message: 'Stand-in failure' } });
    }
    const known = KNOWN_PARAMS[route];
    if (!known) return send(404, { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${route})` } });
    if (!/^Bearer sk_test_/.test(req.headers.authorization ?? '')) return send(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided' } });
    for (const name of Object.keys(params)) {
      if (!known.some((pattern) => pattern.test(name))) return send(400, { error: { type: 'invalid_request_error', code: 'parameter_unknown', param: name, message: `Received unknown parameter: ${name}` } });
    }
    const wrong = missingOrMisplaced(route, params);
    if (wrong) return send(400, { error: { type: 'invalid_request_error', code: 'parameter_invalid', param: wrong, message: `Missing or not allowed in this mode: ${wrong}.` } });
    const cacheKey = idempotencyKey ? `${route} ${idempotencyKey}` : null;
    const cached = cacheKey ? replies.get(cacheKey) : undefined;
    if (cached) return send(cached.status, cached.body);
    if (route === 'GET /v1/payment_intents/{id}') {
      const intent = controls.intents.get(path.split('/').pop()!);
      return intent ? send(200, intent) : send(404, { error: { type: 'invalid_request_error', code: 'resource_missing', message: 'No such payment_intent' } });
    }
    if (route === 'GET /v1/setup_intents/{id}') {
      const intent = setupIntents.get(path.split('/').pop()!);
      return intent ? send(200, intent) : send(404, { error: { type: 'invalid_request_error', code: 'resource_missing', message: 'No such setup_intent' } });
    }
    const reply = route === 'POST /v1/payment_intents' ? createIntent(params, controls) : { status: 200, body: respond(route, params, setupIntents) };
    if (cacheKey) replies.set(cacheKey, reply);
    if ('intent' in reply && standIn.beforeIntentReply) await standIn.beforeIntentReply(reply.intent);
    send(reply.status, reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  const standIn: StripeStandIn = {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    failNext: (count) => {
      failures = count;
    },
    declineNext: (count, declineCode = 'insufficient_funds') => {
      controls.declines = { count, code: declineCode };
    },
    confirmAs: (status) => {
      controls.confirmStatus = status;
    },
    beforeIntentReply: null,
    paymentIntents: controls.intents,
    setupIntents,
    count: (route) => requests.filter((r) => r.route === route).length,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return standIn;
}
