import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/**
 * Where a command writes its output: stdout, or a file that appears complete or not at all
 * (written to a temporary name beside it, renamed at the end, removed on failure).
 */
export interface OutputSink {
  write(chunk: string): Promise<void>;
  /** Flushes; for a file, puts it in place. */
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** A reader that went away (`| head`) shows as an EPIPE error from `write`. */
export function streamSink(stream: Writable): OutputSink {
  let failure: Error | null = null;
  stream.on('error', (error) => (failure = error));
  return {
    write: async (chunk) => {
      if (failure) throw failure;
      await writeWithBackpressure(stream, chunk);
    },
    // The callback of an empty write runs once everything before it is flushed: exiting after it loses nothing.
    commit: () => new Promise((resolve, reject) => stream.write('', (error) => (error ? reject(error) : resolve()))),
    abort: async () => undefined,
  };
}

export function fileSink(path: string): OutputSink {
  const temporary = `${path}.partial-${process.pid}`;
  const stream = createWriteStream(temporary, { flags: 'wx' });
  let failure: Error | null = null;
  stream.on('error', (error) => (failure = error));
  const finished = async () => {
    if (!stream.closed) {
      stream.end();
      await once(stream, 'close');
    }
    if (failure) throw failure;
  };
  return {
    write: async (chunk) => {
      if (failure) throw failure;
      await writeWithBackpressure(stream, chunk);
    },
    commit: async () => {
      await finished();
      await rename(temporary, path);
    },
    abort: async () => {
      await finished().catch(() => undefined);
      await unlink(temporary).catch(() => undefined);
    },
  };
}

async function writeWithBackpressure(stream: Writable, chunk: string): Promise<void> {
  if (!stream.write(chunk)) await once(stream, 'drain');
}
