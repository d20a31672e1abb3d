/**
 * A one-line progress bar on a terminal (stderr), redrawn at most every `redrawMs`. Messages
 * printed through `log` clear the bar first, so they never mix with it. On anything that is not
 * a terminal it draws nothing and `log` just writes.
 */

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const BAR_WIDTH = 30;

export class ProgressBar {
  private drawn = false;
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private doneBytes = 0;
  private lines = 0;

  constructor(
    private readonly stream: ProgressStream,
    private readonly totalBytes: number,
    private readonly nowMs: () => number = Date.now,
    private readonly redrawMs = 100,
    /** What the count after the bar counts. */
    private readonly unit = 'lines',
  ) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  update(doneBytes: number, lines: number): void {
    this.doneBytes = doneBytes;
    this.lines = lines;
    if (!this.enabled || this.nowMs() - this.lastDrawMs < this.redrawMs) return;
    this.draw();
  }

  log(text: string): void {
    this.clear();
    this.stream.write(text.endsWith('\n') ? text : `${text}\n`);
    if (this.enabled) this.draw();
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  private draw(): void {
    this.lastDrawMs = this.nowMs();
    this.stream.write(`\r\x1b[K${renderProgress(this.doneBytes, this.totalBytes, this.lines, this.stream.columns || 80, this.unit)}`);
    this.drawn = true;
  }
}

/** "[##########--------------------]  33% 1,234 lines", cut to the terminal's width. */
export function renderProgress(doneBytes: number, totalBytes: number, lines: number, columns: number, unit = 'lines'): string {
  const fraction = totalBytes > 0 ? Math.min(1, doneBytes / totalBytes) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const text = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${percent} ${lines.toLocaleString('en-US')} ${unit}`;
  return text.slice(0, Math.max(0, columns - 1));
}
