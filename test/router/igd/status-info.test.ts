import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadResponseError } from '../../../src/router/errors.js';
import { parseUptime } from '../../../src/router/igd/status-info.js';
import { RUNS } from './fixtures.js';

describe('parseUptime (GetStatusInfo NewUptime)', () => {
  it('seed corpus: what routers send, and what they must not', () => {
    assert.equal(parseUptime('0'), 0);
    assert.equal(parseUptime('  4294967295\n'), 4_294_967_295);
    assert.equal(parseUptime(undefined), undefined);
    assert.equal(parseUptime(''), undefined);
    for (const bad of ['4294967296', '-1', '1.5', '1e3', '0x10', '12 34', '١٢']) {
      assert.throws(() => parseUptime(bad), BadResponseError, bad);
    }
  });

  it('any ui4 in decimal comes back as itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_294_967_295 }), fc.constantFrom('', ' ', '\n\t'), (n, pad) => parseUptime(`${pad}${n}${pad}`) === n),
      { numRuns: RUNS },
    );
  });

  it('any string: a whole number of seconds in range, nothing, or a BadResponseError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          const v = parseUptime(s);
          return v === undefined ? s.trim() === '' : Number.isInteger(v) && v >= 0 && v <= 4_294_967_295;
        } catch (err) {
          return err instanceof BadResponseError;
        }
      }),
      { numRuns: RUNS },
    );
  });
});
