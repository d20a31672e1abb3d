import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';

/** One request a receiver got, verified with the `standardwebhooks` library against `secrets`. */
export interface Received {
  id: string;
  verified: boolean;
  body: any;
  headers: IncomingHttpHeaders;
}

/** How the receiver answers the next request: a status, after an optional delay. */
export type Behaviour = (request: { id: string; count: number }) => { status: number; delayMs?: number; body?: string };

/**
 * A real local webhook receiver (node:http) that verifies every request with the official
 * `standardwebhooks` library, as a customer's server would. Its behaviour can change at any time.
 */
export async function startReceiver(secrets: string[] = []) {
  const received: Received[] = [];
  let behaviour: Behaviour = () => ({ status: 200 });
  let count = 0;
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', async () => {
      const id = String(req.headers['webhook-id'] ?? '');
      const answer = behaviour({ id, count: ++count });
      const verified = secrets.some((s) => {
        try {
          new Webhook(s).verify(raw, req.headers as Record<string, string>);
          return true;
        } catch {
          return false;
        }
      });
      if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
      if (answer.status >= 200 && answer.status < 300) received.push({ id, verified, body: JSON.parse(raw), headers: req.headers });
      if (!res.destroyed) res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body ?? `status ${answer.status}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received,
    secrets,
    /** Every request seen, accepted or not. */
    requests: () => count,
    behave(next: Behaviour) {
      behaviour = next;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
export type Receiver = Awaited<ReturnType<typeof startReceiver>>;
