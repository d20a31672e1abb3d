/** A state word as a badge, green when it is one of `good`, red when one of `bad`. */
export function StatusBadge({ status, good, bad }: { status: string; good: string[]; bad: string[] }) {
  const tone = good.includes(status) ? ' ok' : bad.includes(status) ? ' bad' : '';
  return <span className={`badge${tone}`}>{status.replace(/_/g, ' ')}</span>;
}
