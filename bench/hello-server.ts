// The HTTP ceiling: Fastify answering a JSON POST with a small JSON reply, nothing else. Run
// pinned to the same core as the Tollgate server and driven by the same load generator.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/hello', async (req) => ({ hello: 'world', got: (req.body as { n?: number }).n ?? 0 }));
const address = await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });
process.stdout.write(`listening ${address}\n`);
