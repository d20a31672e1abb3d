// CPU time used by the processes of a run while a scenario is measured, from /proc: what each hold
// or event costs the server, PostgreSQL and the load generator, so a run says which one limits it.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times. */
const TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU cores each process kept busy on average over a window: 1 is one core all the time. */
export interface CpuUse {
  server: number | null;
  /** Every process named postgres on this machine (backends and background workers); null where PostgreSQL is not local. */
  postgres: number | null;
  generator: number | null;
}

/** user + system CPU seconds of a process so far; null without /proc or once it is gone. */
function cpuSecondsOf(pid: number): number | null {
  try {
    // The command name (field 2) may hold spaces: the fields after it start past its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return null;
  }
}

function postgresPids(): number[] {
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

function postgresCpuSeconds(): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const pid of postgresPids()) {
    const s = cpuSecondsOf(pid);
    if (s !== null) seconds.set(pid, s);
  }
  return seconds;
}

/**
 * Starts measuring now; the returned function ends the window and answers the cores used. A
 * PostgreSQL process that started within the window counts from zero; one that ended is lost
 * (the server's pool keeps its connections for the whole scenario).
 */
export function watchCpu(pids: { server: number; generator: number | null }, postgresLocal: boolean): () => CpuUse {
  const started = performance.now();
  const server = cpuSecondsOf(pids.server);
  const generator = pids.generator === null ? null : cpuSecondsOf(pids.generator);
  const postgres = postgresLocal ? postgresCpuSeconds() : null;
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const cores = (before: number | null, after: number | null) => (before === null || after === null ? null : (after - before) / seconds);
    let postgresCores: number | null = null;
    if (postgres) {
      let used = 0;
      for (const [pid, after] of postgresCpuSeconds()) used += after - (postgres.get(pid) ?? 0);
      postgresCores = postgres.size > 0 ? used / seconds : null;
    }
    return {
      server: cores(server, cpuSecondsOf(pids.server)),
      postgres: postgresCores,
      generator: pids.generator === null ? null : cores(generator, cpuSecondsOf(pids.generator)),
    };
  };
}
