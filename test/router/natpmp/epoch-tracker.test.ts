import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EpochTracker } from '../../../src/router/natpmp/epoch-tracker.js';

const natpmp = () => new EpochTracker({ minRate: 7 / 8, checkFastServer: false });
const pcp = () => new EpochTracker({ minRate: 15 / 16, checkFastServer: true });

describe('EpochTracker (RFC 6886 3.6, RFC 6887 8.5)', () => {
  it('accepts the first answer and an epoch that keeps pace', () => {
    const t = natpmp();
    assert.equal(t.observe(1000, 0), undefined);
    assert.equal(t.observe(1060, 60_000), undefined);
    assert.equal(t.observe(1060, 60_100), undefined);
  });

  it('flags an epoch that went back (the router rebooted)', () => {
    const t = natpmp();
    t.observe(1000, 0);
    const reason = t.observe(4, 5_000);
    assert.match(reason ?? '', /went back/);
  });

  it('allows 2 s of slack and the 7/8 rate, no more (NAT-PMP)', () => {
    // 80 s passed on our clock: at least 1000 + 70 - 2 = 1068 is expected.
    const ok = natpmp();
    ok.observe(1000, 0);
    assert.equal(ok.observe(1068, 80_000), undefined);
    const slow = natpmp();
    slow.observe(1000, 0);
    assert.notEqual(slow.observe(1067, 80_000), undefined);
  });

  it('uses 15/16 for PCP', () => {
    // 160 s passed: at least 1000 + 150 - 2 = 1148 is expected.
    const ok = pcp();
    ok.observe(1000, 0);
    assert.equal(ok.observe(1148, 160_000), undefined);
    const slow = pcp();
    slow.observe(1000, 0);
    assert.notEqual(slow.observe(1147, 160_000), undefined);
  });

  it('for PCP also flags an epoch that ran far ahead of our clock', () => {
    const t = pcp();
    t.observe(1000, 0);
    assert.match(t.observe(5000, 10_000) ?? '', /only/);
    // NAT-PMP does not apply that test.
    const n = natpmp();
    n.observe(1000, 0);
    assert.equal(n.observe(5000, 10_000), undefined);
  });

  it('takes the new answer as baseline after a reset, and forgets it on clear()', () => {
    const t = natpmp();
    t.observe(1000, 0);
    assert.notEqual(t.observe(1, 1_000), undefined);
    assert.equal(t.observe(11, 11_000), undefined);
    t.clear();
    assert.equal(t.observe(0, 12_000), undefined);
  });
});
