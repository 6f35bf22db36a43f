import type { Clock, Timer } from '../../src/runtime/clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when a test says so. Timers fire in time order (ties in the order they
 * were set), each seeing `now()` equal to its own due time, so code under test observes the same
 * sequence of instants it would on the system clock, just without the waiting.
 */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const entry: Pending = {
      at: this.current + Math.max(0, Number.isFinite(ms) ? ms : 0),
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.pending.push(entry);
    return {
      cancel: () => {
        if (entry.cancelled) return;
        entry.cancelled = true;
        this.pending = this.pending.filter((p) => p !== entry);
      },
    };
  }

  /** Timers set and neither fired nor cancelled. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way, including timers that fired
   * timers set for a moment inside the window.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    const target = this.current + ms;
    for (;;) {
      const next = this.nextDue(target);
      if (next === undefined) break;
      this.pending = this.pending.filter((p) => p !== next);
      next.cancelled = true;
      this.current = next.at;
      next.fn();
    }
    this.current = target;
  }

  /** Advances to the time of the next pending timer and fires it (and any due at the same time). */
  runNext(): boolean {
    const next = this.nextDue(Number.POSITIVE_INFINITY);
    if (next === undefined) return false;
    this.advance(next.at - this.current);
    return true;
  }

  private nextDue(limit: number): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.pending) {
      if (p.at > limit) continue;
      if (best === undefined || p.at < best.at || (p.at === best.at && p.seq < best.seq)) best = p;
    }
    return best;
  }
}
