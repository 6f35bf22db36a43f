import type { ChildProcess } from 'node:child_process';

/**
 * The next message of some shape from a forked child, with a time limit (the portal and camera
 * benches). A message with an `error` field, or the child ending, rejects: the bench never waits
 * on a child that is gone.
 */
export function nextMessage<T>(child: ChildProcess, accept: (m: unknown) => m is T, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: unknown) => {
      if (typeof m === 'object' && m !== null && 'error' in m) done(new Error(`${what}: ${String((m as { error: unknown }).error)}`));
      else if (accept(m)) done(undefined, m);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => done(new Error(`${what}: process ended (${signal ?? `code ${code}`})`));
    function done(err: Error | undefined, m?: T) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m as T);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** A type guard for the message that carries `key` (the shapes are this bench's own). */
export function has<T>(key: string): (m: unknown) => m is T {
  return (m: unknown): m is T => typeof m === 'object' && m !== null && key in m;
}
