import { RouterTimeoutError } from '../router/errors.js';
import type { Clock } from '../runtime/clock.js';

/**
 * Runs one router call with a deadline on the injected clock (not the process's timers, so the
 * simulation decides when a router is too slow). The call's own signal is aborted at the
 * deadline; a mapper that ignores the signal is still raced, and its late answer is dropped.
 */
export function callRouter<T>(
  clock: Clock,
  timeoutMs: number,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const ac = new AbortController();
    let settled = false;
    const timer = clock.setTimeout(() => {
      if (settled) return;
      settled = true;
      const err = new RouterTimeoutError(`${what}: no answer within ${timeoutMs} ms`);
      ac.abort(err);
      reject(err);
    }, timeoutMs);
    let p: Promise<T>;
    try {
      p = fn(ac.signal);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (v) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(v);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        reject(err);
      },
    );
  });
}
