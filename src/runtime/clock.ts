/**
 * Time as a boundary. Everything that waits or reads the time takes a Clock, so that election
 * and failover run in deterministic simulations in milliseconds (see test/election/).
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; monotonic for the system clock. */
  now(): number;
  /** Calls `fn` after `ms`. The returned timer's cancel is idempotent. */
  setTimeout(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    // A pending timer must never keep a stopping process alive.
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolves after `ms` on `clock`, or rejects with the signal's reason when aborted. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timer.cancel();
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
