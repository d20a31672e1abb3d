/** Latency samples in milliseconds and the percentiles the report prints. */
export interface Percentiles {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export class Samples {
  private values = new Float64Array(1024);
  private size = 0;

  add(ms: number) {
    if (this.size === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.size++] = ms;
  }

  percentiles(): Percentiles {
    const sorted = this.values.slice(0, this.size).sort();
    const at = (q: number) => (this.size === 0 ? 0 : round(sorted[Math.min(this.size - 1, Math.ceil(q * this.size) - 1)]!));
    return { count: this.size, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: at(1) };
  }
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** CPU seconds per unit, printed in `scale` units: 1,000 for ms (two decimals), 1,000,000 for µs (whole). */
export const cpuTimeIn = (secondsPerUnit: number, scale: number) => (secondsPerUnit * scale).toFixed(scale >= 1_000_000 ? 0 : 2);
