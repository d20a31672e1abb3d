import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/platform/config.js';

describe('database settings', () => {
  it('leave the embedded buffer cache to its default unless TOLLGATE_PGLITE_SHARED_BUFFERS_MB says otherwise', () => {
    expect(loadConfig({}).pgliteSharedBuffersMb).toBeUndefined();
    expect(loadConfig({ TOLLGATE_PGLITE_SHARED_BUFFERS_MB: '256' }).pgliteSharedBuffersMb).toBe(256);
  });

  it('refuse a buffer cache that is not a whole number of MB from 1 to 1024', () => {
    for (const value of ['0', '2048', '32MB', '1.5', '-4']) {
      expect(() => loadConfig({ TOLLGATE_PGLITE_SHARED_BUFFERS_MB: value }), value).toThrow(/TOLLGATE_PGLITE_SHARED_BUFFERS_MB must be an integer from 1 to 1024/);
    }
  });
});
