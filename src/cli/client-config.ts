import { devSecretsPath, readDevSecrets } from './dev-secrets.js';

/** Where the CLI's client commands (`tollgate events ...`) find a running Tollgate, and as whom. */
export interface ClientConfig {
  baseUrl: string;
  adminToken: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:8787';

export class ClientConfigError extends Error {}

export interface ClientConfigSources {
  /** --url and --token, when given. */
  url?: string;
  token?: string;
  /** The environment (TOLLGATE_URL, TOLLGATE_ADMIN_TOKEN), passed in by the CLI entry. */
  env: { TOLLGATE_URL?: string; TOLLGATE_ADMIN_TOKEN?: string };
  /** The data directory of `tollgate dev`, next to which its secrets file lives. */
  dataDir: string;
}

/** Flags first, then the environment, then (for the token) the secrets `tollgate dev` saved. */
export function resolveClientConfig(sources: ClientConfigSources): ClientConfig {
  const rawUrl = sources.url || sources.env.TOLLGATE_URL || DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new ClientConfigError(`Not a URL: "${rawUrl}" (from ${sources.url ? '--url' : 'TOLLGATE_URL'})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClientConfigError(`The Tollgate URL must be http:// or https:// (got "${rawUrl}")`);
  }
  const secretsFile = devSecretsPath(sources.dataDir);
  const adminToken = sources.token || sources.env.TOLLGATE_ADMIN_TOKEN || readDevSecrets(secretsFile).adminToken;
  if (!adminToken) {
    throw new ClientConfigError(
      `No admin token: pass --token, set TOLLGATE_ADMIN_TOKEN, or run "tollgate dev" first (it saves one in ${secretsFile}).`,
    );
  }
  return { baseUrl: url.href.replace(/\/+$/, ''), adminToken };
}
