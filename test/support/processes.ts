import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { LogCapture } from './log-capture.js';

/** Tollgate's CLI run as a child process, the way a user or an orchestrator runs it. */

const children: Array<{ child: ChildProcess; logs: LogCapture[]; args: string[] }> = [];

/**
 * Kills whatever a test left running (call from afterEach/afterAll), then fails when any child's
 * log lines hold a secret the tests created or sent, as the in-process harness does on close.
 */
export function killChildren(): void {
  const leaks = childLogLeaks();
  for (const { child } of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  if (leaks.length > 0) throw new Error(`secrets in child processes' logs:\n${leaks.slice(0, 5).join('\n')}`);
}

/** The log lines of running or finished children that hold a recorded secret. */
export function childLogLeaks(): string[] {
  return children.flatMap(({ logs, args }) =>
    logs.flatMap((capture) => capture.leaks({ logLinesOnly: true })).map((leak) => `tollgate ${args.join(' ')}: ${leak.secret} in ${leak.line.slice(0, 500)}`),
  );
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { DATABASE_URL: _db, TOLLGATE_ADMIN_TOKEN: _token, ...rest } = process.env;
  // Rate limits off unless a test asks: tests send requests far faster than the defaults allow.
  return { ...rest, LOG_LEVEL: 'warn', TOLLGATE_RATE_LIMIT_PER_KEY: '0', TOLLGATE_RATE_LIMIT_FAILED_AUTH: '0', ...extra };
}

/** `entry`: a compiled CLI (dist/cli.js) run by plain Node, e.g. from an assembled image layout in `cwd`. */
export function tollgate(args: string[], env: Record<string, string>, options: { cwd?: string; entry?: string } = {}) {
  const command = options.entry ? [options.entry] : ['--import', 'tsx', 'src/cli.ts'];
  const child = spawn(process.execPath, [...command, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd });
  // One capture per stream: a line is never spliced from the two.
  const logs = [new LogCapture(), new LogCapture()];
  children.push({ child, logs, args });
  let output = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => ((output += d), (stdout += d), logs[0].write(d)));
  child.stderr!.on('data', (d) => ((output += d), (stderr += d), logs[1].write(d)));
  // Killed by a signal: -1, and the signal is noted in the output (an assertion on the code shows why).
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => {
      if (signal) output += `\n[killed by ${signal}]\n`;
      resolve(code ?? -1);
    }),
  );
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
