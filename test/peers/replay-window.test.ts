import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { ReplayWindow, WINDOW_SIZE } from '../../src/peers/replay-window.js';
import type { ReplayVerdict } from '../../src/peers/replay-window.js';
import { RUNS } from './arbitraries.js';

const NOW = 1_700_000_000_000;

function msg(seq: number, opts: { id?: string; boot?: string; sentAt?: number } = {}) {
  return { from: { id: opts.id ?? 'pi-a', boot: opts.boot ?? 'b1' }, seq, sentAt: opts.sentAt ?? NOW };
}

describe('ReplayWindow', () => {
  it('accepts a fresh sequence and rejects its duplicates', () => {
    const w = new ReplayWindow();
    for (let s = 1; s <= 5; s++) assert.equal(w.accept(msg(s), NOW), 'ok');
    for (let s = 1; s <= 5; s++) assert.equal(w.accept(msg(s), NOW), 'duplicate');
  });

  it('accepts reordering within 64 and rejects what falls behind the window', () => {
    const w = new ReplayWindow();
    assert.equal(w.accept(msg(100), NOW), 'ok');
    // 99 .. 37 are the 63 slots behind 100: all still open.
    for (let s = 99; s > 100 - WINDOW_SIZE; s--) assert.equal(w.accept(msg(s), NOW), 'ok', `seq ${s}`);
    assert.equal(w.accept(msg(100 - WINDOW_SIZE), NOW), 'too-old');
    assert.equal(w.accept(msg(70), NOW), 'duplicate');
    // A jump ahead slides the window: what was open is now too old.
    assert.equal(w.accept(msg(200), NOW), 'ok');
    assert.equal(w.accept(msg(136), NOW), 'too-old');
    assert.equal(w.accept(msg(137), NOW), 'ok');
    assert.equal(w.accept(msg(137), NOW), 'duplicate');
  });

  it('keeps the bitmap across a shift smaller than the window', () => {
    const w = new ReplayWindow();
    w.accept(msg(10), NOW);
    w.accept(msg(8), NOW);
    assert.equal(w.accept(msg(12), NOW), 'ok');
    assert.equal(w.accept(msg(8), NOW), 'duplicate');
    assert.equal(w.accept(msg(10), NOW), 'duplicate');
    assert.equal(w.accept(msg(9), NOW), 'ok');
    assert.equal(w.accept(msg(11), NOW), 'ok');
  });

  it('tracks each boot and each sender apart', () => {
    const w = new ReplayWindow();
    assert.equal(w.accept(msg(1), NOW), 'ok');
    assert.equal(w.accept(msg(1, { boot: 'b2' }), NOW), 'ok');
    assert.equal(w.accept(msg(1, { id: 'pi-b' }), NOW), 'ok');
    assert.equal(w.accept(msg(1, { boot: 'b2' }), NOW), 'duplicate');
  });

  it('rejects sentAt outside +-maxSkewMs of our clock, and does not record it', () => {
    const w = new ReplayWindow({ maxSkewMs: 120_000 });
    assert.equal(w.accept(msg(1, { sentAt: NOW - 120_001 }), NOW), 'skew');
    assert.equal(w.accept(msg(1, { sentAt: NOW + 120_001 }), NOW), 'skew');
    assert.equal(w.accept(msg(1, { sentAt: NOW - 120_000 }), NOW), 'ok');
    assert.equal(w.accept(msg(2, { sentAt: NOW + 120_000 }), NOW), 'ok');
    assert.equal(w.size().boots, 1);
  });

  it('after our restart, an earlier capture is refused by the clock alone', () => {
    const captured = msg(5, { sentAt: NOW });
    const before = new ReplayWindow();
    assert.equal(before.accept(captured, NOW), 'ok');
    const restarted = new ReplayWindow();
    assert.equal(restarted.accept(captured, NOW + 121_000), 'skew');
  });

  it('holds at most maxSenders senders and maxBootsPerSender boots, forgetting the least recent', () => {
    const w = new ReplayWindow({ maxSenders: 256, maxBootsPerSender: 4 });
    for (let i = 0; i < 10_000; i++) w.accept(msg(1, { id: `pi-${i}` }), NOW);
    assert.deepEqual(w.size(), { senders: 256, boots: 256 });
    for (let b = 0; b < 50; b++) w.accept(msg(1, { id: 'pi-9999', boot: `boot-${b}` }), NOW);
    assert.deepEqual(w.size(), { senders: 256, boots: 256 - 1 + 4 });
    // The latest senders and boots are still known, the earliest forgotten.
    assert.equal(w.accept(msg(1, { id: 'pi-9998' }), NOW), 'duplicate');
    assert.equal(w.accept(msg(1, { id: 'pi-9999', boot: 'boot-49' }), NOW), 'duplicate');
    assert.equal(w.accept(msg(1, { id: 'pi-9999', boot: 'boot-45' }), NOW), 'ok');
    assert.equal(w.accept(msg(1, { id: 'pi-0' }), NOW), 'ok');
  });

  it('a sender heard recently is not evicted by a crowd of new ones', () => {
    const w = new ReplayWindow({ maxSenders: 3 });
    w.accept(msg(1, { id: 'keep' }), NOW);
    w.accept(msg(1, { id: 'x1' }), NOW);
    w.accept(msg(2, { id: 'keep' }), NOW);
    w.accept(msg(1, { id: 'x2' }), NOW);
    w.accept(msg(1, { id: 'x3' }), NOW);
    assert.equal(w.accept(msg(2, { id: 'keep' }), NOW), 'duplicate');
    assert.equal(w.accept(msg(1, { id: 'x1' }), NOW), 'ok');
  });

  it('agrees with a model that remembers every seq (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 300 }), (seqs) => {
        const w = new ReplayWindow();
        const seen = new Set<number>();
        let top = -1;
        for (const s of seqs) {
          const expected: ReplayVerdict =
            top >= 0 && s <= top && top - s >= WINDOW_SIZE ? 'too-old' : seen.has(s) ? 'duplicate' : 'ok';
          assert.equal(w.accept(msg(s), NOW), expected, `seq ${s} after top ${top}`);
          if (expected === 'ok') {
            seen.add(s);
            top = Math.max(top, s);
          }
        }
      }),
      RUNS,
    );
  });

  it('refuses a nonsensical configuration', () => {
    assert.throws(() => new ReplayWindow({ maxSkewMs: 0 }), RangeError);
    assert.throws(() => new ReplayWindow({ maxSenders: Number.NaN }), RangeError);
  });
});
