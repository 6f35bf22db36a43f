import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseForm } from '../../src/portal/app.js';

/** The login form's parser: what browsers send, what scanners send, and anything at all. */

const SEEDS: Array<[string, Record<string, string> | undefined]> = [
  ['', {}],
  ['password=secret', { password: 'secret' }],
  ['password=a+b%20c', { password: 'a b c' }],
  ['password=%E2%82%AC%F0%9F%93%B7', { password: '€📷' }],
  ['password=first&password=second', { password: 'first' }],
  ['password=100%', { password: '100%' }],
  ['password=%zz&user=admin', { password: '%zz', user: 'admin' }],
  ['novalue&password=', { novalue: '', password: '' }],
  ['a=1&b=2&c=3&d=4&e=5', { a: '1', b: '2', c: '3', d: '4', e: '5' }],
  ['a=1&b=2&c=3&d=4&e=5&f=6', undefined],
];

describe('parseForm (application/x-www-form-urlencoded)', () => {
  it('reads what browsers and scanners send (seed corpus)', () => {
    for (const [text, want] of SEEDS) {
      const got = parseForm(text, 5);
      assert.deepEqual(got === undefined ? undefined : Object.fromEntries(got), want, JSON.stringify(text));
    }
  });

  it('gives back what a browser encoded, for any names and values', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(fc.string({ minLength: 1 }), fc.string()), { maxLength: 5, selector: (t) => t[0] }), (fields) => {
        const text = new URLSearchParams(fields).toString();
        assert.deepEqual([...(parseForm(text, 5) ?? new Map())], fields);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws, and never takes more fields than allowed', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.integer({ min: 1, max: 8 }), (text, max) => {
        const got = parseForm(text, max);
        if (got !== undefined) assert.ok(got.size <= max);
      }),
      { numRuns: 2000 },
    );
  });
});
