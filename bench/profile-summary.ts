// npx tsx bench/profile-summary.ts <file.cpuprofile> [top]
// The self time of a V8 CPU profile (node --cpu-prof) by function and by where the code lives
// (a src/ module, a package in node_modules, node itself), heaviest first.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Profile;
const top = Number(process.argv[3] ?? 25);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function place(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const src = /\/(src|bench|dist)\/(.+)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  return url === '' ? '(native, gc, idle)' : url.startsWith('node:') ? url : '(other)';
}

function sum(key: (n: ProfileNode) => string) {
  const totals = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const k = key(byId.get(id)!);
    totals.set(k, (totals.get(k) ?? 0) + us);
  }
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, top);
}

const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
process.stdout.write(`${(total / 1e6).toFixed(1)} s sampled\n\nBy place:\n`);
for (const [k, us] of sum((n) => place(n.callFrame.url))) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write('\nBy function:\n');
for (const [k, us] of sum((n) => `${n.callFrame.functionName || '(anonymous)'}  ${place(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`)) process.stdout.write(`${pct(us)}  ${k}\n`);
