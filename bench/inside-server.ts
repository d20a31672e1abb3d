// How long the server itself took over a measured window, from the histograms of its own /metrics
// scraped at the window's start and end (bench/gc.ts): its answers to authorize and settle, and
// the ledger's batch commits. Against the generator's latency, it says which part of a tail is
// inside the server (a batch waiting, a commit, a collection pause while a request was open) and
// which is outside it (the kernel, the network stack, the generator's own event loop).
import { matching, type Sample } from '../test/support/prometheus.js';

export interface InsideServer {
  /** The server's answers to authorize and settle: 99th percentile ms and the share over 10 ms. */
  requestP99Ms: number | null;
  requestsOver10ms: number | null;
  /** The ledger's group-commit batches (one transaction each). */
  commitP99Ms: number | null;
  commitsOver10ms: number | null;
}

const HOT_PATH_ROUTES = ['/v1/authorize', '/v1/reservations/:id/settle'];

/** Cumulative counts by upper bound (seconds), summed over every series that `keep` admits. */
function cumulative(samples: Sample[], name: string, keep: (labels: Record<string, string>) => boolean): Map<number, number> {
  const counts = new Map<number, number>();
  for (const s of matching(samples, `${name}_bucket`)) {
    if (!keep(s.labels)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    counts.set(le, (counts.get(le) ?? 0) + s.value);
  }
  return counts;
}

/** The observations made between two scrapes, as cumulative buckets in bound order. */
export function bucketsBetween(before: Sample[], after: Sample[], name: string, keep: (labels: Record<string, string>) => boolean = () => true): Array<{ le: number; count: number }> {
  const start = cumulative(before, name, keep);
  return [...cumulative(after, name, keep)].map(([le, count]) => ({ le, count: count - (start.get(le) ?? 0) })).sort((a, b) => a.le - b.le);
}

/**
 * The q-quantile of cumulative buckets, in seconds, interpolated linearly within its bucket as
 * PromQL's histogram_quantile does (past the last finite bound: that bound). Null without observations.
 */
export function quantile(buckets: Array<{ le: number; count: number }>, q: number): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower;
      return lower + ((le - lower) * (rank - below)) / (count - below || 1);
    }
    lower = le;
    below = count;
  }
  return lower;
}

/** The share of observations over `bound` seconds, which must be one of the histogram's bounds. */
export function shareOver(buckets: Array<{ le: number; count: number }>, bound: number): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  const within = buckets.find((b) => b.le === bound);
  return total === 0 || !within ? null : (total - within.count) / total;
}

export function insideServer(before: Sample[], after: Sample[]): InsideServer {
  const requests = bucketsBetween(before, after, 'tollgate_http_request_duration_seconds', (l) => l.method === 'POST' && HOT_PATH_ROUTES.includes(l.route!));
  const commits = bucketsBetween(before, after, 'tollgate_batch_commit_seconds', (l) => l.batcher === 'ledger');
  const ms = (seconds: number | null) => (seconds === null ? null : seconds * 1000);
  return {
    requestP99Ms: ms(quantile(requests, 0.99)),
    requestsOver10ms: shareOver(requests, 0.01),
    commitP99Ms: ms(quantile(commits, 0.99)),
    commitsOver10ms: shareOver(commits, 0.01),
  };
}
