import type { FastifyBaseLogger } from 'fastify';

/**
 * Runs `pass` every `intervalMs`, one pass at a time, until stopped; a pass that found work runs
 * again at once. Errors are logged and the next pass retries.
 */
export class Poller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly log: FastifyBaseLogger,
    private readonly pass: () => Promise<number>,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(this.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass()
        .catch((err) => {
          this.log.error({ err }, `${this.name} failed`);
          return 0;
        })
        .then((done) => {
          this.running = null;
          this.schedule(done > 0 ? 0 : this.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}
