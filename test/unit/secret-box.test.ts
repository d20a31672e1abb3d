import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSecretBox } from '../../src/platform/secret-box.js';

describe('secret box', () => {
  const box = createSecretBox('admin-token-for-tests-0123456789', 'idempotent-replies');

  it('opens what it sealed, and the sealed text never contains the plain text', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 8 }), (plain) => {
        const sealed = box.seal(plain);
        expect(sealed.includes(plain)).toBe(false);
        expect(box.open(sealed)).toBe(plain);
      }),
    );
  });

  it('refuses text sealed under another key, another purpose, or altered', () => {
    const sealed = box.seal('tg_secret_value');
    expect(createSecretBox('another-admin-token-0123456789', 'idempotent-replies').open(sealed)).toBeNull();
    expect(createSecretBox('admin-token-for-tests-0123456789', 'other').open(sealed)).toBeNull();
    const altered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
    expect(box.open(altered)).toBeNull();
    expect(box.open('garbage')).toBeNull();
  });
});
