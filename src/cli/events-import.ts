import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { EventResult } from '../metering/model.js';
import { BatchRefused } from './events-api.js';
import { NO_MAPS, parseImportLine, type ImportMaps } from './import-line.js';

/**
 * `tollgate events import FILE.ndjson`: streams the file line by line and sends its events to
 * POST /v1/events in batches, one batch at a time and in file order (so charges are attributed in
 * the order of the file). Safe to re-run: the server reports events it already has as duplicates.
 */

export interface BatchLimits {
  eventsMax: number;
  /** Bytes of the JSON array sent: under the server's 1 MiB body limit. */
  bytesMax: number;
}

export const BATCH_LIMITS: BatchLimits = { eventsMax: 1_000, bytesMax: 1_000_000 };

export interface ImportCounts {
  lines: number;
  accepted: number;
  duplicate: number;
  rejected: number;
}

export interface ImportDeps {
  /** One result per serialized event, in order; throws BatchRefused when the whole request is refused. */
  post(events: string[]): Promise<EventResult[]>;
  onRejected(line: number, code: string, message: string): void;
  onProgress(doneBytes: number, lines: number): void;
}

type Outcome = { status: 'accepted' | 'duplicate' } | { status: 'rejected'; code: string; message: string };

/** A line read: an event to send (json), or a line already rejected on reading (outcome). */
interface PendingLine {
  line: number;
  json: string | null;
  bytes: number;
  outcome: Outcome | null;
}

/**
 * The lines waiting to be sent. Lines rejected on reading wait with the events around them, so
 * every outcome is reported in line order. `bytes` counts the array's brackets and commas.
 */
export class EventBatch {
  lines: PendingLine[] = [];
  events = 0;
  bytes = 2;

  constructor(private readonly limits: BatchLimits) {}

  /** Whether one more event of `bytes` may join; a batch also holds at most twice eventsMax lines in all. */
  fits(bytes: number): boolean {
    return this.events < this.limits.eventsMax && this.bytes + bytes + (this.events > 0 ? 1 : 0) <= this.limits.bytesMax && !this.crowded();
  }

  crowded(): boolean {
    return this.lines.length >= 2 * this.limits.eventsMax;
  }

  add(line: PendingLine): void {
    if (line.json !== null) {
      this.bytes += line.bytes + (this.events > 0 ? 1 : 0);
      this.events++;
    }
    this.lines.push(line);
  }

  take(): PendingLine[] {
    const taken = this.lines;
    this.lines = [];
    this.events = 0;
    this.bytes = 2;
    return taken;
  }
}

export function emptyCounts(): ImportCounts {
  return { lines: 0, accepted: 0, duplicate: 0, rejected: 0 };
}

/** Fills `counts` as batches complete, so a caller still has them when a fatal error stops the import. */
export async function importLines(
  lines: AsyncIterable<string>,
  deps: ImportDeps,
  counts: ImportCounts,
  options: { maps?: ImportMaps; limits?: BatchLimits } = {},
): Promise<ImportCounts> {
  const limits = options.limits ?? BATCH_LIMITS;
  const batch = new EventBatch(limits);
  let lineNumber = 0;
  let doneBytes = 0;
  for await (const raw of lines) {
    lineNumber++;
    doneBytes += Buffer.byteLength(raw) + 1;
    // A byte order mark is not part of the first event.
    const text = lineNumber === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
    const pending = readLine(lineNumber, text, options.maps ?? NO_MAPS, limits);
    if (pending === null) continue;
    counts.lines++;
    if (pending.json !== null ? !batch.fits(pending.bytes) : batch.crowded()) await flush(batch, deps, counts);
    batch.add(pending);
    deps.onProgress(doneBytes, lineNumber);
  }
  await flush(batch, deps, counts);
  deps.onProgress(doneBytes, lineNumber);
  return counts;
}

/** null for a blank line. */
function readLine(line: number, text: string, maps: ImportMaps, limits: BatchLimits): PendingLine | null {
  const parsed = parseImportLine(text, maps);
  if (parsed.kind === 'blank') return null;
  if (parsed.kind === 'rejected') return { line, json: null, bytes: 0, outcome: { status: 'rejected', code: parsed.code, message: parsed.message } };
  const json = JSON.stringify(parsed.event);
  const bytes = Buffer.byteLength(json);
  if (bytes + 2 > limits.bytesMax) {
    return { line, json: null, bytes: 0, outcome: { status: 'rejected', code: 'payload_too_large', message: `event of ${bytes} bytes is above the request size limit` } };
  }
  return { line, json, bytes, outcome: null };
}

/** Sends the batch's events, then counts and reports every line of the batch in order. */
async function flush(batch: EventBatch, deps: ImportDeps, counts: ImportCounts): Promise<void> {
  const lines = batch.take();
  const sent = lines.filter((l) => l.json !== null);
  const outcomes = sent.length > 0 ? await sendEvents(sent.map((l) => l.json!), deps) : [];
  sent.forEach((l, i) => (l.outcome = outcomes[i]!));
  for (const { line, outcome } of lines) {
    if (outcome === null) throw new Error(`line ${line} has no outcome`);
    if (outcome.status === 'rejected') {
      counts.rejected++;
      deps.onRejected(line, outcome.code, outcome.message);
    } else if (outcome.status === 'accepted') counts.accepted++;
    else counts.duplicate++;
  }
}

/**
 * A request refused as a whole (one event with a NUL character makes the body a 400) is split in
 * halves until the refused events stand alone; those are rejected with the server's code.
 */
async function sendEvents(events: string[], deps: ImportDeps): Promise<Outcome[]> {
  try {
    return await deps.post(events);
  } catch (error) {
    if (!(error instanceof BatchRefused)) throw error;
    if (events.length === 1) return [{ status: 'rejected', code: error.code, message: error.message }];
    const half = Math.ceil(events.length / 2);
    return [...(await sendEvents(events.slice(0, half), deps)), ...(await sendEvents(events.slice(half), deps))];
  }
}

export function formatSummary(counts: ImportCounts): string {
  return `imported ${counts.lines}: ${counts.accepted} accepted, ${counts.duplicate} duplicate, ${counts.rejected} rejected`;
}

/** 0 when every line went in (or was there already), 2 when some lines were rejected. */
export function importExitCode(counts: ImportCounts): 0 | 2 {
  return counts.rejected > 0 ? 2 : 0;
}

/** The file's lines, streamed; and its size, for the progress bar. */
export function readLines(file: string): { lines: AsyncIterable<string>; totalBytes: number } {
  const stat = statSync(file);
  if (!stat.isFile()) throw new Error('not a file');
  const totalBytes = stat.size;
  const input = createReadStream(file, { encoding: 'utf8' });
  return { lines: createInterface({ input, crlfDelay: Infinity }), totalBytes };
}
