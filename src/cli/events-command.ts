import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ClientConfigError, resolveClientConfig, type ClientConfigSources } from './client-config.js';
import { CliFatal, EventsApi } from './events-api.js';
import { exportEvents, type ExportFilters, type ExportFormat } from './events-export.js';
import { emptyCounts, formatSummary, importExitCode, importLines, readLines } from './events-import.js';
import { defaultHttpDeps, NetworkError, type RetryInfo } from './fetch-with-retry.js';
import { parseMapPairs } from './import-line.js';
import { fileSink, streamSink, type OutputSink } from './output-sink.js';
import { ProgressBar } from './progress-bar.js';

export const EVENTS_USAGE = `Usage: tollgate events export [options]
       tollgate events import [options] FILE.ndjson

export   Writes usage events, newest first (the order of GET /v1/events), to stdout or --output.
  --format ndjson|csv   ndjson (default): one event per line, exactly the API's item. csv: a header
                        row, then id, source, event_id, type, time, received_at, customer_id,
                        product_id, product, api_key_id, currency, status, amount, charged,
                        uncollected, quantities (JSON), metadata (JSON); RFC 4180 quoting.
  --customer ID  --product KEY  --source SOURCE  --status charged|unpriced|settled
  --from TIME  --to TIME   on the event time, --to exclusive (RFC 3339)
  --output FILE         the file appears only once the export is complete

import   Sends one CloudEvent per line (or an event line written by "events export") to
         POST /v1/events, in batches of 1,000 and in file order. Safe to re-run: events already
         recorded come back as duplicates. Rejected lines go to stderr (line number, code,
         message), then "imported N: A accepted, D duplicate, R rejected" to stdout.
         Exit code 0: nothing rejected; 2: some lines rejected; 1: stopped by an error.
         Settle records (source tollgate/reservations) are refused as reserved_source.
  --map-customer FROM=TO   send FROM's events for customer TO (an id or external_id): customers
                           and API keys have other ids in another Tollgate (repeatable)
  --map-api-key FROM=TO    the same for API key ids; an empty TO sends the events without a key

Both talk to a running Tollgate:
  --url URL       default TOLLGATE_URL, else http://127.0.0.1:8787
  --token TOKEN   default TOLLGATE_ADMIN_TOKEN, else the admin token "tollgate dev" saved in
                  .tollgate/dev-secrets.json (beside TOLLGATE_DATA_DIR)
`;

export interface EventsCommandContext {
  env: ClientConfigSources['env'];
  dataDir: string;
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean; columns?: number };
}

const CONNECTION_OPTIONS = { url: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

/** `tollgate events export|import ...`; returns the exit code. */
export async function runEventsCommand(argv: string[], context: EventsCommandContext): Promise<number> {
  const [action, ...rest] = argv;
  try {
    if (action === 'export') return await runExport(rest, context);
    if (action === 'import') return await runImport(rest, context);
    if (action === '--help' || action === '-h' || action === 'help') {
      context.stdout.write(EVENTS_USAGE);
      return 0;
    }
    context.stderr.write(`${action === undefined ? 'Missing' : `Unknown`} events command${action ? ` "${action}"` : ''}.\n\n${EVENTS_USAGE}`);
    return 1;
  } catch (error) {
    const usageError = (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') || error instanceof UsageError;
    const known = usageError || error instanceof ClientConfigError || error instanceof CliFatal || error instanceof NetworkError;
    context.stderr.write(`${known ? (error as Error).message : ((error as Error).stack ?? String(error))}\n${usageError ? `\n${EVENTS_USAGE}` : ''}`);
    return 1;
  }
}

class UsageError extends Error {}

async function runExport(argv: string[], context: EventsCommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...CONNECTION_OPTIONS,
      format: { type: 'string', default: 'ndjson' },
      customer: { type: 'string' },
      product: { type: 'string' },
      source: { type: 'string' },
      status: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
    allowPositionals: true,
  });
  if (values.help) return help(context);
  if (positionals.length > 0) throw new UsageError(`events export takes no arguments (got "${positionals.join(' ')}")`);
  if (values.format !== 'ndjson' && values.format !== 'csv') throw new UsageError(`--format must be ndjson or csv (got "${values.format}")`);
  const config = resolveClientConfig({ url: values.url, token: values.token, env: context.env, dataDir: context.dataDir });
  const api = new EventsApi(config, defaultHttpDeps((info) => context.stderr.write(`${retryMessage(info)}\n`)));
  const filters: ExportFilters = { customer: values.customer, product: values.product, source: values.source, status: values.status, from: values.from, to: values.to };
  const sink: OutputSink = values.output ? fileSink(values.output) : streamSink(context.stdout);
  try {
    const written = await exportEvents((query) => api.page(query), filters, values.format as ExportFormat, (chunk) => sink.write(chunk));
    await sink.commit();
    if (values.output) context.stderr.write(`exported ${written} events to ${values.output}\n`);
    return 0;
  } catch (error) {
    await sink.abort();
    // The reader of our stdout went away (`| head`): it has what it wanted.
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return 0;
    throw error;
  }
}

async function runImport(argv: string[], context: EventsCommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...CONNECTION_OPTIONS, 'map-customer': { type: 'string', multiple: true }, 'map-api-key': { type: 'string', multiple: true } },
    allowPositionals: true,
  });
  if (values.help) return help(context);
  if (positionals.length !== 1) throw new UsageError('events import takes one FILE.ndjson');
  let maps;
  try {
    maps = { customers: parseMapPairs(values['map-customer'] ?? [], '--map-customer'), apiKeys: parseMapPairs(values['map-api-key'] ?? [], '--map-api-key') };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const config = resolveClientConfig({ url: values.url, token: values.token, env: context.env, dataDir: context.dataDir });
  const file = positionals[0]!;
  let source;
  try {
    source = readLines(file);
  } catch (error) {
    throw new CliFatal(`Cannot read ${file}: ${(error as Error).message}`);
  }
  const progress = new ProgressBar(context.stderr, source.totalBytes);
  const api = new EventsApi(config, defaultHttpDeps((info) => progress.log(retryMessage(info))));
  const counts = emptyCounts();
  try {
    await importLines(
      source.lines,
      {
        post: (events) => api.post(events),
        onRejected: (line, code, message) => progress.log(`line ${line}: ${code}: ${message}`),
        onProgress: (doneBytes, lines) => progress.update(doneBytes, lines),
      },
      counts,
      { maps },
    );
  } catch (error) {
    progress.clear();
    const message = error instanceof CliFatal || error instanceof NetworkError || isFsError(error) ? (error as Error).message : ((error as Error).stack ?? String(error));
    context.stderr.write(`import stopped: ${message}\nbefore it stopped: ${formatSummary(counts)} (re-running the import is safe)\n`);
    return 1;
  }
  progress.clear();
  context.stdout.write(`${formatSummary(counts)}\n`);
  return importExitCode(counts);
}

/** A file that could not be read while streaming: its message says what and where. */
function isFsError(error: unknown): boolean {
  return typeof (error as NodeJS.ErrnoException)?.syscall === 'string';
}

function help(context: EventsCommandContext): number {
  context.stdout.write(EVENTS_USAGE);
  return 0;
}

function retryMessage(info: RetryInfo): string {
  return `${info.reason}; retrying in ${(info.delayMs / 1000).toFixed(1)} s (attempt ${info.attempt + 1} of ${info.attemptsMax})`;
}
