/**
 * `p`, or a rejection with `reason()` as soon as `signal` aborts, whichever comes first. For work
 * that cannot itself be aborted (a shared socket being opened, a library call without a signal):
 * the caller stops waiting, `p` runs on and its outcome is dropped.
 */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal, reason: () => unknown = () => signal.reason): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    // Always subscribed, so a late rejection of `p` is never unhandled.
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
