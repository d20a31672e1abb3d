import { parse, protocol, type PGlite } from '@electric-sql/pglite';

type Rows = Record<string, unknown>[];

const NO_FS_SYNC = { syncToFs: false } as const;

/**
 * Named prepared statements on PGlite, which its `query` does not offer: every `query` parses,
 * describes and plans its text anew (5.5-6.7 ms for the hot path's read of one customer, of which
 * 1.2 ms executing; 1.05-1.4 ms run from a kept generic plan: docs/performance.md). A statement is
 * parsed and described once under its name, then each run binds and executes it, as `query` itself
 * does with an unnamed one (the same wire messages, the same serializers and parsers).
 *
 * Only for statements run inside a transaction of the caller's (no file-system sync of their own),
 * one at a time, as PGlite's one connection runs everything.
 */
export class PglitePreparedStatements {
  /** Parameter type ids of each statement prepared on the connection, by name. */
  private readonly prepared = new Map<string, number[]>();

  constructor(private readonly db: PGlite) {}

  async run(name: string, text: string, params: unknown[]): Promise<Rows> {
    const { serialize } = protocol;
    try {
      let types = this.prepared.get(name);
      if (!types) {
        // A statement parsed before a failed describe exists without being remembered here; closing
        // a statement that does not exist is no error, so the parse below cannot meet a leftover.
        await this.send(serialize.close({ type: 'S', name }));
        await this.send(serialize.parse({ name, text }));
        types = parse.parseDescribeStatementResults(await this.send(serialize.describe({ type: 'S', name })));
        this.prepared.set(name, types);
      }
      const values = params.map((value, i) => (value === null || value === undefined ? null : this.serializerOf(types[i]!)(value)));
      const messages = [
        ...(await this.send(serialize.bind({ statement: name, values }))),
        ...(await this.send(serialize.describe({ type: 'P' }))),
        ...(await this.send(serialize.execute({}))),
      ];
      return parse.parseResults(messages, this.db.parsers)[0]!.rows as Rows;
    } finally {
      // Ends the extended-protocol exchange, after an error too (PGlite's own query does the same).
      await this.send(serialize.sync());
    }
  }

  /** To call after DEALLOCATE ALL, which drops the engine's prepared statements: each is parsed again on its next run. */
  forgetAll(): void {
    this.prepared.clear();
  }

  private serializerOf(typeId: number): (value: unknown) => string {
    return (this.db.serializers[typeId] as ((value: unknown) => string) | undefined) ?? String;
  }

  /**
   * Parses the engine's output as it is written, as PGlite's own `query` does: `execProtocol` also
   * gathers the whole output into a growing buffer and returns a copy of it, garbage here that the
   * server's memory holds until a collection.
   */
  private async send(message: Uint8Array) {
    return this.db.execProtocolStream(message, NO_FS_SYNC);
  }
}
