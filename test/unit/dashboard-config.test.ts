import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/platform/config.js';

describe('dashboard settings', () => {
  it('default to 12 h customer sessions, 8 h operator sessions, 60 idle minutes and no public URL', () => {
    expect(loadConfig({}).dashboard).toEqual({ publicUrl: undefined, customerSessionMs: 12 * 3_600_000, operatorSessionMs: 8 * 3_600_000, idleMs: 60 * 60_000 });
  });

  it('read TOLLGATE_PUBLIC_URL as an origin and the lifetimes as durations', () => {
    const { dashboard } = loadConfig({ TOLLGATE_PUBLIC_URL: 'https://billing.example.com/', TOLLGATE_CUSTOMER_SESSION_TTL: '2h', TOLLGATE_OPERATOR_SESSION_TTL: '30m', TOLLGATE_SESSION_IDLE_TIMEOUT: '15m' });
    expect(dashboard.publicUrl?.origin).toBe('https://billing.example.com');
    expect([dashboard.customerSessionMs, dashboard.operatorSessionMs, dashboard.idleMs]).toEqual([2 * 3_600_000, 30 * 60_000, 15 * 60_000]);
  });

  it('refuse a public URL with a path or another scheme, and lifetimes out of range', () => {
    for (const url of ['https://billing.example.com/tollgate', 'ftp://billing.example.com', 'billing.example.com', 'https://billing.example.com/?x=1']) {
      expect(() => loadConfig({ TOLLGATE_PUBLIC_URL: url }), url).toThrow(/TOLLGATE_PUBLIC_URL must be an http/);
    }
    expect(() => loadConfig({ TOLLGATE_SESSION_IDLE_TIMEOUT: '30s' })).toThrow(/TOLLGATE_SESSION_IDLE_TIMEOUT must be from 1m to 30d/);
    expect(() => loadConfig({ TOLLGATE_CUSTOMER_SESSION_TTL: '12 hours' })).toThrow(/TOLLGATE_CUSTOMER_SESSION_TTL must be a duration/);
  });
});
