import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { Http01Challenges, challengeToken } from '../../src/acme/challenges.js';

const PREFIX = '/.well-known/acme-challenge/';
/** What a CA sends: base64url, 43 characters for 256 bits (Let's Encrypt's). */
const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Base64url strings of min..max characters (built from bytes: far quicker than a string of 300 picked units). */
const token = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Array.from(b, (x) => BASE64URL[x & 63]).join(''));

describe('ACME http-01 challenges', () => {
  it('answers exactly the token that was put, under the well-known path, until it is removed', () => {
    const c = new Http01Challenges();
    assert.equal(c.answer(`${PREFIX}${TOKEN}`), undefined, 'nothing before put');
    c.put(TOKEN, `${TOKEN}.thumbprint`);
    assert.equal(c.pending, 1);
    assert.equal(c.answer(`${PREFIX}${TOKEN}`), `${TOKEN}.thumbprint`);
    assert.equal(c.answer(`${PREFIX}${TOKEN.slice(0, -1)}`), undefined, 'a prefix of the token is another token');
    assert.equal(c.answer(`${PREFIX}${TOKEN}x`), undefined);
    assert.equal(c.answer(`/${TOKEN}`), undefined);
    c.remove(TOKEN);
    assert.equal(c.pending, 0);
    assert.equal(c.answer(`${PREFIX}${TOKEN}`), undefined, 'nothing after remove');
    c.remove(TOKEN);
    assert.equal(c.pending, 0, 'removing twice is harmless');
  });

  it('keeps several challenges apart, and a second put of a token replaces its answer', () => {
    const c = new Http01Challenges();
    const other = 'A'.repeat(16);
    c.put(TOKEN, 'one');
    c.put(other, 'two');
    assert.equal(c.answer(`${PREFIX}${TOKEN}`), 'one');
    assert.equal(c.answer(`${PREFIX}${other}`), 'two');
    c.put(other, 'three');
    assert.equal(c.pending, 2);
    assert.equal(c.answer(`${PREFIX}${other}`), 'three');
    c.remove(TOKEN);
    assert.equal(c.answer(`${PREFIX}${other}`), 'three');
  });

  it('is no challenge: other paths, query strings, traversal, encoded slashes, tokens too short or too long', () => {
    const c = new Http01Challenges();
    c.put(TOKEN, 'answer');
    const paths = [
      '/',
      '',
      PREFIX,
      PREFIX.slice(0, -1),
      `/.well-known/acme-challenge${TOKEN}`,
      `//.well-known/acme-challenge/${TOKEN}`,
      `/.well-known/ACME-challenge/${TOKEN}`,
      `/prefix${PREFIX}${TOKEN}`,
      `${PREFIX}${TOKEN}?x=1`,
      `${PREFIX}${TOKEN}?`,
      `${PREFIX}${TOKEN}#frag`,
      `${PREFIX}${TOKEN}/`,
      `${PREFIX}../${TOKEN}`,
      `${PREFIX}../../etc/passwd`,
      `/.well-known/acme-challenge/..%2F${TOKEN}`,
      `${PREFIX}${TOKEN}%2F`,
      `${PREFIX}%2E%2E%2F${TOKEN}`,
      `${PREFIX}${TOKEN.slice(0, 20)}/${TOKEN.slice(20)}`,
      `${PREFIX}${TOKEN}\n`,
      `${PREFIX}${TOKEN} `,
      `${PREFIX}${TOKEN}=`,
      `${PREFIX}${'a'.repeat(15)}`,
      `${PREFIX}${'a'.repeat(257)}`,
    ];
    for (const p of paths) {
      assert.equal(c.answer(p), undefined, JSON.stringify(p));
      assert.equal(challengeToken(p), undefined, JSON.stringify(p));
    }
    assert.equal(challengeToken(`${PREFIX}${'a'.repeat(16)}`), 'a'.repeat(16), 'the shortest');
    assert.equal(challengeToken(`${PREFIX}${'a'.repeat(256)}`), 'a'.repeat(256), 'the longest');
  });

  it('put() refuses what is not a token, and keeps nothing of it', () => {
    const c = new Http01Challenges();
    for (const bad of ['', 'short', 'a'.repeat(15), 'a'.repeat(257), `${TOKEN}/`, `../${TOKEN}`, `${TOKEN}?x`, `${TOKEN}=`, `${TOKEN}\n`]) {
      assert.throws(() => c.put(bad, 'x'), /not an ACME token/, JSON.stringify(bad));
    }
    assert.equal(c.pending, 0);
  });

  it('for any path, the token is undefined or the base64url suffix after the well-known prefix', () => {
    // Any code unit a request line can carry matters less than the ones near a token: ASCII, and a
    // few that a careless check would let through. (unit 'binary' costs fast-check a second to set up.)
    const near = fc.string({ unit: fc.constantFrom(...'aZ09-_./%?#= \n\u0000é\u2215'), maxLength: 300 });
    const path = fc.oneof(
      fc.string({ unit: 'binary-ascii', maxLength: 300 }),
      fc.string({ unit: 'binary-ascii', maxLength: 300 }).map((s) => PREFIX + s),
      near.map((s) => PREFIX + s),
      token(0, 300).map((s) => PREFIX + s),
      fc.tuple(token(0, 40), fc.constantFrom('/', '?', '#', '.', '%', '=', ' ', '\n', '\u0000', 'é'), token(0, 40)).map(([a, c, b]) => PREFIX + a + c + b),
    );
    fc.assert(
      fc.property(path, (p) => {
        const t = challengeToken(p);
        if (t === undefined) {
          // Undefined only when the path is not prefix + token.
          assert.ok(!(p.startsWith(PREFIX) && /^[A-Za-z0-9_-]{16,256}$/.test(p.slice(PREFIX.length))), p);
          return;
        }
        assert.match(t, /^[A-Za-z0-9_-]{16,256}$/);
        assert.ok(p.startsWith(PREFIX));
        assert.equal(t, p.slice(PREFIX.length));
      }),
      { numRuns: 1000 },
    );
  });

  it('any base64url token of 16 to 256 characters is put and found', () => {
    fc.assert(
      fc.property(token(16, 256), fc.string({ maxLength: 100 }), (t, answer) => {
        const c = new Http01Challenges();
        c.put(t, answer);
        assert.equal(challengeToken(PREFIX + t), t);
        assert.equal(c.answer(PREFIX + t), answer);
        c.remove(t);
        assert.equal(c.answer(PREFIX + t), undefined);
      }),
      { numRuns: 1000 },
    );
  });
});
