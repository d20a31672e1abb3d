import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTEN_BACKLOG } from '../../src/platform/http.js';
import { ADMIN_TOKEN } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';

/**
 * `tollgate serve` asks the kernel for a queue of LISTEN_BACKLOG connections waiting to be accepted,
 * not Node's 511: a burst of new connections larger than the queue has its handshakes dropped and
 * retried a second later. Read back from the listening socket itself (`ss`, Linux: its Send-Q is
 * the backlog, capped by net.core.somaxconn; where that cap is 511 or less, 511 and LISTEN_BACKLOG
 * look the same and the test cannot tell them apart). The listener does not depend on the database:
 * it runs once, in the PGlite run.
 */
const kernelCap = process.platform === 'linux' ? Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')) : 0;

describe.runIf(testEngine === 'pglite' && kernelCap > 511)('the production listener', () => {
  // Made in beforeAll: a suite that does not run leaves no directory behind.
  let dataDir: string;
  beforeAll(() => void (dataDir = mkdtempSync(join(tmpdir(), 'tollgate-backlog-'))));
  afterAll(() => {
    killChildren();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps up to LISTEN_BACKLOG connections waiting for accept', async () => {
    const port = await freePort();
    const server = tollgate(['serve'], { TOLLGATE_DATA_DIR: dataDir, TOLLGATE_PORT: String(port), TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'info' });
    await server.waitFor(/Server listening/);
    const [listening] = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n');
    const backlog = Number(listening!.trim().split(/\s+/)[2]);
    expect(backlog).toBe(Math.min(LISTEN_BACKLOG, kernelCap));
  }, 60_000);
});
