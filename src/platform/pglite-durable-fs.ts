import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite, type postgresMod } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

type Module = postgresMod.PostgresMod;
/** What Emscripten's NODEFS keeps of an open file: Node's descriptor. */
interface OpenFile {
  nfd?: number;
}
/** The parts of NODEFS used here (not in PGlite's types). */
interface NodeFsInternals {
  stream_ops: { fsync?: (stream: OpenFile) => number };
  /** Runs a Node fs call, turning its error into the errno Emscripten hands back to C. */
  tryFSOperation<T>(operation: () => T): T;
}

/** Flushes one open file to the disk; fsyncSync unless a test watches the calls. */
export type SyncFile = (fd: number) => void;

/**
 * PGlite's data directory on the disk, with the fsync its Node file layer lacks.
 *
 * PGlite reads and writes its files through Emscripten's NODEFS, whose open files have no fsync:
 * PostgreSQL's fsync() returns at once, and its fdatasync() is a no-op in Emscripten whatever the
 * file layer. So PGlite starts with fsync off, and a commit it reports is only in the operating
 * system's file cache. Here each open file's fsync is Node's: with PostgreSQL's fsync on and
 * wal_sync_method=fsync (durableDataDir), a commit returns once its WAL is on the disk and a
 * checkpoint once the data files it wrote are, as on PostgreSQL itself.
 */
export class DurableNodeFS extends NodeFS {
  constructor(
    dataDir: string,
    private readonly syncFile: SyncFile = fsyncSync,
  ) {
    super(dataDir);
  }

  override async init(pg: PGlite, opts: Partial<Module>): Promise<{ emscriptenOpts: Partial<Module> }> {
    const { emscriptenOpts } = await super.init(pg, opts);
    const withFsync = (module: Module) => {
      const nodefs = module.NODEFS as unknown as NodeFsInternals;
      // Internals of Emscripten's NODEFS: a PGlite release without them must fail here, at open,
      // rather than leave commits unsynced or abort on the first fsync.
      if (typeof nodefs?.stream_ops !== 'object' || typeof nodefs.tryFSOperation !== 'function') {
        throw new Error('This PGlite version has no NODEFS stream_ops/tryFSOperation: Tollgate cannot make its commits durable');
      }
      // Emscripten's fsync(fd) answers what the open file's stream_ops.fsync returns, or the errno
      // of the error it throws; PostgreSQL then PANICs, as it must when an fsync fails. Directories
      // are opened through Node too (PostgreSQL syncs them after creating or renaming a file).
      nodefs.stream_ops.fsync = (stream) => {
        if (stream.nfd !== undefined) nodefs.tryFSOperation(() => this.syncFile(stream.nfd!));
        return 0;
      };
    };
    return { emscriptenOpts: { ...emscriptenOpts, preRun: [...(emscriptenOpts.preRun ?? []), withFsync] } };
  }
}

/**
 * What PGlite.create needs for a durable data directory (created if missing), and `opened`, to call
 * once it is open: a directory PGlite has just created is then synced whole (syncTree).
 * PostgreSQL runs with fsync on (PGlite's defaults start it with `-F`, off) and flushes its WAL with
 * fsync(), the one sync call Emscripten passes to the file layer.
 */
export function durableDataDir(dataDir: string, syncFile: SyncFile = fsyncSync) {
  mkdirSync(dataDir, { recursive: true });
  const created = !existsSync(join(dataDir, 'PG_VERSION'));
  return {
    fs: new DurableNodeFS(dataDir, syncFile),
    startParams: [...PGlite.defaultStartParams.filter((param) => param !== '-F'), '-c', 'fsync=on', '-c', 'wal_sync_method=fsync'],
    opened: () => {
      if (created) syncTree(dataDir, syncFile);
    },
  };
}

/**
 * Syncs every file and directory under `dir`, deepest first. PGlite writes a new data directory
 * (its initdb) without syncing any of it, and PostgreSQL only ever syncs files it changes later:
 * done once after creating one, as PostgreSQL's own initdb does before it reports success.
 */
function syncTree(dir: string, syncFile: SyncFile): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) syncTree(path, syncFile);
    else if (entry.isFile()) syncPath(path, syncFile);
  }
  syncPath(dir, syncFile);
}

function syncPath(path: string, syncFile: SyncFile) {
  const fd = openSync(path, 'r');
  try {
    syncFile(fd);
  } finally {
    closeSync(fd);
  }
}
