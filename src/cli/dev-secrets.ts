import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * The secrets `tollgate dev` keeps next to its data directory (`.tollgate/dev-secrets.json` by
 * default), so a restart keeps the same admin token and the CLI's client commands find it.
 */
export interface DevSecrets {
  adminToken?: string;
  demoKey?: string;
}

export function devSecretsPath(dataDir: string): string {
  return join(dirname(resolve(dataDir)), 'dev-secrets.json');
}

/** The saved secrets, or none when `tollgate dev` never ran with this data directory. */
export function readDevSecrets(file: string): DevSecrets {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DevSecrets) : {};
}

/** Readable only by the owner: the file holds the admin token. */
export function writeDevSecrets(file: string, secrets: DevSecrets): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
}
