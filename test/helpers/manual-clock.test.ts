import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from './manual-clock.js';

describe('ManualClock', () => {
  it('fires timers in time order, each seeing its own due time, including timers set by timers', () => {
    const clock = new ManualClock(100);
    const seen: Array<[string, number]> = [];
    clock.setTimeout(() => seen.push(['b', clock.now()]), 20);
    clock.setTimeout(() => {
      seen.push(['a', clock.now()]);
      clock.setTimeout(() => seen.push(['c', clock.now()]), 5);
    }, 10);
    clock.setTimeout(() => seen.push(['late', clock.now()]), 100);
    assert.equal(clock.pendingCount, 3);
    clock.advance(30);
    assert.deepEqual(seen, [
      ['a', 110],
      ['c', 115],
      ['b', 120],
    ]);
    assert.equal(clock.now(), 130);
    assert.equal(clock.pendingCount, 1);
  });

  it('cancel is idempotent and cancelled timers never fire', () => {
    const clock = new ManualClock();
    let fired = 0;
    const t = clock.setTimeout(() => fired++, 1);
    t.cancel();
    t.cancel();
    clock.advance(10);
    assert.equal(fired, 0);
    assert.equal(clock.pendingCount, 0);
    assert.throws(() => clock.advance(-1), RangeError);
  });

  it('ties fire in the order they were set; runNext jumps to the next timer', () => {
    const clock = new ManualClock();
    const order: number[] = [];
    clock.setTimeout(() => order.push(1), 50);
    clock.setTimeout(() => order.push(2), 50);
    assert.equal(clock.runNext(), true);
    assert.deepEqual(order, [1, 2]);
    assert.equal(clock.now(), 50);
    assert.equal(clock.runNext(), false);
  });
});
