import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const APP_SOURCES = join(ROOT, 'app');
export const APP_DIST = join(ROOT, 'dist', 'app');
const APP_INDEX = join(APP_DIST, 'index.html');

/** The newest modification time under `dir` (ignoring `exclude`), in ms. */
function newestMtime(dir: string, exclude: (path: string) => boolean): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (exclude(path)) continue;
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path, exclude) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The browser tests drive the built app: build dist/app (vite build) when it is missing or older
 * than any file of app/ (its tests excluded), as `npm run build` would.
 */
export async function ensureDashboardBuilt(): Promise<void> {
  const fresh = () => existsSync(APP_INDEX) && statSync(APP_INDEX).mtimeMs >= newestMtime(APP_SOURCES, (path) => path === join(APP_SOURCES, 'test'));
  if (fresh()) return;
  // Browser test files run in parallel workers: one builds while the others wait for it.
  await takeBuildLock();
  try {
    if (fresh()) return;
    const build = spawnSync('npx', ['vite', 'build', '--config', join(APP_SOURCES, 'vite.config.ts'), '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`vite build failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
}

const BUILD_LOCK = join(ROOT, 'dist', '.app-build.lock');
/** A lock older than this was left by a killed run. */
const BUILD_LOCK_STALE_MS = 300_000;

async function takeBuildLock(): Promise<void> {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(BUILD_LOCK);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const since = statSync(BUILD_LOCK, { throwIfNoEntry: false })?.mtimeMs;
      if (since !== undefined && Date.now() - since > BUILD_LOCK_STALE_MS) rmSync(BUILD_LOCK, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
