import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Tollgate's CLI run as a child process, the way a user or an orchestrator runs it. */

const children: ChildProcess[] = [];

/** Kills whatever a test left running (call from afterEach/afterAll). */
export function killChildren(): void {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { DATABASE_URL: _db, TOLLGATE_ADMIN_TOKEN: _token, ...rest } = process.env;
  // Rate limits off unless a test asks: tests send requests far faster than the defaults allow.
  return { ...rest, LOG_LEVEL: 'warn', TOLLGATE_RATE_LIMIT_PER_KEY: '0', TOLLGATE_RATE_LIMIT_FAILED_AUTH: '0', ...extra };
}

export function tollgate(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => ((output += d), (stdout += d)));
  child.stderr!.on('data', (d) => ((output += d), (stderr += d)));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  /** Like exited, once stdout and stderr are read to their end too (a command's whole output). */
  const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const waitFor = async (pattern: RegExp, timeoutMs = 90_000) => {
    const start = Date.now();
    while (!pattern.test(output)) {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output}`);
      if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${pattern}: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return output;
  };
  return { child, exited, closed, waitFor, output: () => output, stdout: () => stdout, stderr: () => stderr };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
