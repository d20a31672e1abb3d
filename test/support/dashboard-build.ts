import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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
export function ensureDashboardBuilt(): void {
  const sourcesMtime = newestMtime(APP_SOURCES, (path) => path === join(APP_SOURCES, 'test'));
  if (existsSync(APP_INDEX) && statSync(APP_INDEX).mtimeMs >= sourcesMtime) return;
  const build = spawnSync('npx', ['vite', 'build', '--config', join(APP_SOURCES, 'vite.config.ts'), '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`vite build failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
}
