import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { TestbedError } from './testbed-error.js';

/**
 * Child processes of the test bed. Every child gets a bounded lifetime: it runs in its own
 * process group (so a kill reaches whatever it forks) and, through `setpriv --pdeathsig KILL`,
 * dies with this process even when this process is SIGKILLed and no exit handler runs. Without
 * that, a crashed test run would leave miniupnpd holding its namespace alive.
 */

const SETPRIV = '/usr/bin/setpriv';
let prefix: readonly string[] | undefined;

/** The argv prefix that ties a child's life to ours ([] when setpriv is missing). */
export function lifetimePrefix(): readonly string[] {
  prefix ??= existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--'] : [];
  return prefix;
}

export interface BoundedSpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio?: StdioOptions;
  /** Leave out the parent-death signal (FRONTDOOR_TESTBED_KEEP keeps the router up after we exit). */
  outlivesParent?: boolean;
}

export function spawnBounded(argv: readonly string[], opts: BoundedSpawnOptions = {}): ChildProcess {
  const full = [...(opts.outlivesParent ? [] : lifetimePrefix()), ...argv];
  const [cmd, ...args] = full;
  if (cmd === undefined) throw new TestbedError('TB_COMMAND_FAILED', 'empty command line');
  return spawn(cmd, args, {
    detached: true,
    stdio: opts.stdio ?? 'pipe',
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
}

export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Signals the child's whole process group; a child already reaped is left alone (its pid may be reused). */
export function killGroup(child: ChildProcess, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (!isRunning(child) || child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** Exit code, or null when the command died of a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Default 30 s. The whole process group is SIGKILLed when it runs out. */
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Per stream; the rest is dropped. Default 16 MiB. */
  maxOutputBytes?: number;
  /** Reject with TB_COMMAND_FAILED unless the exit code is 0. */
  check?: boolean;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

export function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const max = opts.maxOutputBytes ?? 16 * 1024 * 1024;
  const what = argv.join(' ');
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    let child: ChildProcess;
    try {
      child = spawnBounded(argv, { env: opts.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    } catch (err) {
      reject(err);
      return;
    }
    const out = collect(child.stdout, max);
    const err = collect(child.stderr, max);
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const timer = setTimeout(() => {
      killGroup(child);
      finish(() =>
        reject(
          new TestbedError(
            'TB_TIMEOUT',
            `${what}: did not finish within ${timeoutMs} ms\nstdout: ${out.text()}\nstderr: ${err.text()}`,
          ),
        ),
      );
    }, timeoutMs);
    timer.unref();
    const onAbort = () => {
      killGroup(child);
      finish(() => reject(opts.signal?.reason));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) =>
      finish(() => reject(new TestbedError('TB_COMMAND_FAILED', `${what}: ${e.message}`, { cause: e }))),
    );
    // 'close' rather than 'exit': the output streams are complete only then.
    child.once('close', (code, signal) => {
      const result: CommandResult = { stdout: out.text(), stderr: err.text(), code, signal };
      if (opts.check && code !== 0) {
        finish(() =>
          reject(
            new TestbedError(
              'TB_COMMAND_FAILED',
              `${what}: exit ${code ?? signal}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
            ),
          ),
        );
        return;
      }
      finish(() => resolve(result));
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {
        // the command may exit without reading its input; its exit code tells what happened
      });
      child.stdin.end(opts.input);
    }
  });
}

function collect(stream: NodeJS.ReadableStream | null, max: number): { text(): string } {
  const chunks: Buffer[] = [];
  let size = 0;
  stream?.on('data', (c: Buffer) => {
    if (size >= max) return;
    const part = size + c.length > max ? c.subarray(0, max - size) : c;
    chunks.push(part);
    size += part.length;
  });
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}

export interface WaitForOutputOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Resolves with the first line of the child's stdout or stderr that matches `pattern`: how a test
 * knows a server it spawned is listening, without sleeping. Rejects when the child exits first.
 */
export function waitForOutput(
  child: ChildProcess,
  pattern: RegExp,
  opts: WaitForOutputOptions = {},
): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    let seen = '';
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.off('data', onStdout);
      child.stderr?.off('data', onStderr);
      child.off('exit', onExit);
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    // One line buffer per stream: a partial stdout line must not be glued to stderr output.
    const lineReader = () => {
      let partial = '';
      return (c: Buffer) => {
        partial += c.toString('utf8');
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (seen.length < 64 * 1024) seen += `${line}\n`;
          if (pattern.test(line)) {
            done(() => resolve(line));
            return;
          }
        }
      };
    };
    const onStdout = lineReader();
    const onStderr = lineReader();
    const onExit = (code: number | null, sig: NodeJS.Signals | null) =>
      done(() =>
        reject(new TestbedError('TB_COMMAND_FAILED', `exited (${code ?? sig}) before printing ${pattern}:\n${seen}`)),
      );
    const onAbort = () => done(() => reject(opts.signal?.reason));
    const timer = setTimeout(
      () => done(() => reject(new TestbedError('TB_TIMEOUT', `no line matching ${pattern} within ${timeoutMs} ms:\n${seen}`))),
      timeoutMs,
    );
    timer.unref();
    if (!isRunning(child)) {
      onExit(child.exitCode, child.signalCode);
      return;
    }
    child.stdout?.on('data', onStdout);
    child.stderr?.on('data', onStderr);
    child.once('exit', onExit);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
