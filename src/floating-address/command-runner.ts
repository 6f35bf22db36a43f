import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

/**
 * The boundary between the floating address and the machine: `ip` and `arping` are run through
 * a CommandRunner, so the logic is tested with a fake and the real one is a thin wrapper.
 */

export interface CommandResult {
  /** Exit code; 128 + signal number when the command died of a signal. */
  code: number;
  stdout: string;
  stderr: string;
}

/** A command that has been started (exec succeeded) and may still be running. */
export interface StartedCommand {
  /** Settles when the command has exited, as `CommandRunner` would. */
  readonly result: Promise<CommandResult>;
}

/**
 * Runs `argv` to its end. Rejects only when the command could not run at all (the error carries
 * `code: 'ENOENT'` when it is not installed), ran out of time, or `signal` aborted it; a non-zero
 * exit is a result, not a rejection.
 */
export interface CommandRunner {
  (argv: readonly string[], signal?: AbortSignal): Promise<CommandResult>;
  /**
   * Optional: resolves as soon as the command runs (exec succeeded), without waiting for its
   * exit. `arping` sends its packet within milliseconds and then waits a whole second for replies
   * that an unsolicited ARP never gets; this lets callers wait for the first part only.
   */
  start?(argv: readonly string[], signal?: AbortSignal): Promise<StartedCommand>;
}

export interface CommandRunnerOptions {
  /** Per command; it is SIGKILLed after. Default 5000 ms. */
  timeoutMs?: number;
  /** Per stream; the rest is dropped. Default 64 KiB. */
  maxOutputBytes?: number;
}

/** Thrown (rejected) when a command ran out of time. */
export class CommandTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(message: string) {
    super(message);
    this.name = 'CommandTimeoutError';
  }
}

/**
 * The real runner: node:child_process, no shell, `LC_ALL=C` so the tools' messages (which the
 * floating address reads) are the English ones.
 */
export function createCommandRunner(opts: CommandRunnerOptions = {}): CommandRunner {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const max = opts.maxOutputBytes ?? 64 * 1024;
  const start = (argv: readonly string[], signal?: AbortSignal): Promise<StartedCommand> =>
    new Promise((resolveStarted, rejectStarted) => {
      const [cmd, ...args] = argv;
      if (cmd === undefined) {
        rejectStarted(new TypeError('empty command line'));
        return;
      }
      if (signal?.aborted) {
        rejectStarted(signal.reason);
        return;
      }
      let child: ChildProcess;
      try {
        child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      } catch (err) {
        rejectStarted(err);
        return;
      }
      let started = false;
      let resolveResult!: (r: CommandResult) => void;
      let rejectResult!: (e: unknown) => void;
      const result = new Promise<CommandResult>((res, rej) => {
        resolveResult = res;
        rejectResult = rej;
      });
      // A caller that only awaited the start must not see an unhandled rejection later.
      result.catch(() => {});
      const out = collect(child.stdout, max);
      const err = collect(child.stderr, max);
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        if (started) rejectResult(e);
        else rejectStarted(e);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        fail(new CommandTimeoutError(`${argv.join(' ')}: no exit within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      const onAbort = () => {
        child.kill('SIGKILL');
        fail(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      child.once('spawn', () => {
        started = true;
        resolveStarted({ result });
      });
      child.once('error', fail);
      // 'close' rather than 'exit': the output is complete only then.
      child.once('close', (code, sig) => {
        if (settled) return;
        settled = true;
        cleanup();
        const r: CommandResult = {
          code: code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0),
          stdout: out.text(),
          stderr: err.text(),
        };
        if (started) resolveResult(r);
        else resolveStarted({ result: Promise.resolve(r) });
      });
    });
  const run = async (argv: readonly string[], signal?: AbortSignal): Promise<CommandResult> =>
    (await start(argv, signal)).result;
  return Object.assign(run, { start });
}

function collect(stream: NodeJS.ReadableStream | null, max: number): { text(): string } {
  const chunks: Buffer[] = [];
  let size = 0;
  stream?.on('data', (c: Buffer) => {
    if (size >= max) return;
    const part = c.subarray(0, max - size);
    chunks.push(part);
    size += part.length;
  });
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}
