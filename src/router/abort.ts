import { AbortedError, RouterTimeoutError } from './errors.js';

/**
 * A signal that aborts when `parent` does or after `ms`, whichever comes first. The timeout
 * reason is a RouterTimeoutError naming `what`, so callers can tell a slow router from a caller
 * that gave up.
 */
export function withTimeout(ms: number, what: string, parent?: AbortSignal): AbortSignal {
  const timeout = new AbortController();
  const t = setTimeout(() => timeout.abort(new RouterTimeoutError(`${what}: no answer within ${ms} ms`)), ms);
  t.unref?.();
  const signals = parent ? [parent, timeout.signal] : [timeout.signal];
  return AbortSignal.any(signals);
}

/** Throws the signal's reason (or an AbortedError) when it is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortReason(signal);
}

export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new AbortedError();
}
