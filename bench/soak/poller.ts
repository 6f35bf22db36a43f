import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, isRunning } from '../../test/testbed/command.js';
import type { NsRef, Testbed } from '../../test/testbed/testbed.js';
import { monoMs } from '../failover/outage.js';
import { parsePollLine } from '../poll-line.js';
import type { PollSample } from '../poll-line.js';
import { summarize } from './availability.js';
import type { Availability } from './availability.js';

const POLLER = fileURLToPath(new URL('../poll-process.js', import.meta.url));

export interface PollerOptions {
  /** e.g. http://203.0.114.1:8080/api/status (the scheme is the one parameter that picks TLS). */
  url: string;
  password: string;
  /** Default 200 ms. */
  intervalMs?: number;
  /** Default 1000 ms. */
  timeoutMs?: number;
  /** Default the test bed's WAN namespace. */
  where?: NsRef;
  /** Reuse connections (poll-process.ts `keep-alive`); default a new one per request. */
  keepAlive?: boolean;
}

/**
 * The portal poller process in the WAN namespace, and the samples it sent back. `summary(from,
 * to)` gives the availability over a window (CLOCK_MONOTONIC ms, `monoMs()`).
 */
export class PortalPoller {
  readonly samples: PollSample[] = [];
  readonly #child: ChildProcess;
  readonly #stderr: string[] = [];
  #ready: Promise<void>;

  constructor(tb: Testbed, o: PollerOptions) {
    this.#child = tb.spawn(o.where ?? tb.wan, [process.execPath, POLLER, o.url, String(o.intervalMs ?? 200), String(o.timeoutMs ?? 1000), o.keepAlive ? 'keep-alive' : 'close'], {
      env: { ...process.env, FRONTDOOR_POLL_PASSWORD: o.password },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let partial = '';
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#child.stdout?.on('data', (c: Buffer) => {
        const parts = (partial + c.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        for (const p of parts) {
          if (p.startsWith('{"ready"')) resolve();
          const s = parsePollLine(p);
          if (s) this.samples.push(s);
        }
      });
      this.#child.once('exit', () => reject(new Error(`portal poller exited: ${this.#stderr.join('')}`)));
    });
    this.#ready.catch(() => {});
    this.#child.stderr?.on('data', (c: Buffer) => {
      if (this.#stderr.length < 50) this.#stderr.push(c.toString('utf8'));
    });
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  /** The samples started within [from, to]. */
  window(from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): PollSample[] {
    return this.samples.filter((s) => s.sent >= from && s.sent <= to);
  }

  summary(from?: number, to?: number): Availability {
    return summarize(this.window(from, to));
  }

  /** The latest good answer's node, if the latest answer was good. */
  latest(): PollSample | undefined {
    return this.samples.at(-1);
  }

  async stop(): Promise<void> {
    if (!isRunning(this.#child)) return;
    const gone = exited(this.#child);
    this.#child.stdin?.end('stop\n');
    const late = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(late);
  }
}

export { monoMs };
