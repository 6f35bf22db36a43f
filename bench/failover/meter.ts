/**
 * The bench's side of the WAN-side outage meter: starts poll-process.js in the test bed's
 * internet client, keeps the timeline it reports, and answers "is the service steady on host X"
 * and "how long was the outage after a fault at T on host X" (outage.ts holds the definitions).
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isRunning, killGroup } from '../../test/testbed/command.js';
import type { Testbed } from '../../test/testbed/testbed.js';
import { computeOutage, isSteady, monoMs } from './outage.js';
import type { Outage, Sample } from './outage.js';

const METER = fileURLToPath(new URL('../poll-process.js', import.meta.url));

export interface MeterOptions {
  /** Default `http://<router's WAN address>:8080/`. */
  url?: string;
  /** Default 20 ms. */
  intervalMs?: number;
  /** Per request; default 150 ms. */
  timeoutMs?: number;
}

export class MeterError extends Error {
  override readonly name = 'MeterError';
}

export class OutageMeter {
  readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Every outcome so far, in the order they completed. */
  readonly samples: Sample[] = [];
  /** Time from a ping written to the meter to its stamp there (clock check), ms. */
  pingMs = Number.NaN;
  readonly #child: ChildProcess;
  readonly #listeners = new Set<() => void>();
  readonly #pongs = new Map<number, number>();
  #ready = false;
  #stderr = '';
  #exited = false;

  private constructor(child: ChildProcess, url: string, intervalMs: number, timeoutMs: number) {
    this.#child = child;
    this.url = url;
    this.intervalMs = intervalMs;
    this.timeoutMs = timeoutMs;
    let partial = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) this.#line(l);
      for (const f of this.#listeners) f();
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => {
      if (this.#stderr.length < 8192) this.#stderr += c;
    });
    child.once('exit', () => {
      this.#exited = true;
      for (const f of this.#listeners) f();
    });
  }

  /** Starts the meter in the test bed's internet client and checks that its clock is ours. */
  static async start(tb: Testbed, opts: MeterOptions = {}): Promise<OutageMeter> {
    const url = opts.url ?? `http://${tb.wanAddress}:8080/`;
    const intervalMs = opts.intervalMs ?? 20;
    const timeoutMs = opts.timeoutMs ?? 150;
    const child = tb.spawn(tb.wan, [process.execPath, METER, url, String(intervalMs), String(timeoutMs)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const meter = new OutageMeter(child, url, intervalMs, timeoutMs);
    try {
      await meter.#checkClock();
    } catch (err) {
      meter.stop();
      throw err;
    }
    return meter;
  }

  /**
   * The meter stamps with CLOCK_MONOTONIC in another namespace; a ping must come back stamped
   * after it was sent and before it arrived, or fault instants taken here would not compare.
   */
  async #checkClock(): Promise<void> {
    await this.waitFor(() => (this.#ready ? true : undefined), 10_000, 'the meter to start');
    const id = 1;
    const before = monoMs();
    this.#child.stdin?.write(`ping ${id}\n`);
    const at = await this.waitFor(() => this.#pongs.get(id), 10_000, 'the meter to answer a ping');
    const after = monoMs();
    if (!(at >= before && at <= after)) {
      throw new MeterError(`the meter's clock is not ours: ping sent at ${before}, stamped ${at}, back at ${after}`);
    }
    this.pingMs = at - before;
  }

  #line(l: string): void {
    if (!l.trim()) return;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(l) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof v['ready'] === 'number') {
      this.#ready = true;
      return;
    }
    if (typeof v['pong'] === 'number' && typeof v['at'] === 'number') {
      this.#pongs.set(v['pong'], v['at']);
      return;
    }
    if (typeof v['s'] !== 'number' || typeof v['d'] !== 'number') return;
    const s: Sample = { sent: v['s'], done: v['d'], ok: typeof v['h'] === 'string' };
    if (typeof v['h'] === 'string') s.host = v['h'];
    if (typeof v['e'] === 'string') s.err = v['e'];
    this.samples.push(s);
  }

  /**
   * Resolves with the first defined value of `check`, evaluated now and after every batch of
   * samples; rejects after `timeoutMs` (with the recent timeline) or when the meter dies.
   */
  waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (fn: () => void) => {
        this.#listeners.delete(listener);
        clearTimeout(timer);
        fn();
      };
      const listener = () => {
        let v: T | undefined;
        try {
          v = check();
        } catch (err) {
          done(() => reject(err));
          return;
        }
        if (v !== undefined) done(() => resolve(v));
        else if (this.#exited) done(() => reject(new MeterError(`the meter exited while waiting for ${what}\n${this.#stderr}`)));
      };
      timer = setTimeout(
        () => done(() => reject(new MeterError(`no ${what} within ${timeoutMs} ms; recent samples:\n${this.describeRecent()}`))),
        timeoutMs,
      );
      this.#listeners.add(listener);
      listener();
    });
  }

  /** Waits until, for `windowMs`, every request got a good answer from `host`. */
  waitSteady(host: string, windowMs = 1000, timeoutMs = 30_000): Promise<void> {
    return this.waitFor(
      () => (isSteady(this.samples, host, windowMs) ? true : undefined),
      timeoutMs,
      `${windowMs} ms of answers from ${host} only`,
    ).then(() => undefined);
  }

  /** Waits until another host than `failedHost` has answered after `faultAt`; the outage then. */
  waitRecovery(faultAt: number, failedHost: string, timeoutMs = 30_000): Promise<Outage> {
    let checked = this.#firstDoneAfter(faultAt);
    return this.waitFor(
      () => {
        // Only the new samples can end the outage; the full computation runs once.
        for (; checked < this.samples.length; checked++) {
          const s = this.samples[checked]!;
          if (s.ok && s.host !== failedHost && s.done >= faultAt) {
            const recent = this.samples.slice(this.#firstDoneAfter(faultAt - 60_000));
            return computeOutage(recent, faultAt, failedHost);
          }
        }
        return undefined;
      },
      timeoutMs,
      `answer from a host other than ${failedHost} after the fault`,
    );
  }

  #firstDoneAfter(t: number): number {
    let i = this.samples.length;
    while (i > 0 && this.samples[i - 1]!.done >= t) i--;
    return i;
  }

  /** The last ~2 s of the timeline, one line per run of equal outcomes, for error messages. */
  describeRecent(ms = 2000): string {
    const last = this.samples.at(-1);
    if (!last) return `(no samples yet) ${this.#stderr}`;
    const out: string[] = [];
    let run: { what: string; from: number; to: number; n: number } | undefined;
    for (const s of this.samples) {
      if (s.done < last.done - ms) continue;
      const what = s.ok ? `answer ${s.host}` : `failed ${s.err}`;
      if (run && run.what === what) {
        run.to = s.done;
        run.n++;
      } else {
        if (run) out.push(`${run.from.toFixed(0)}..${run.to.toFixed(0)} ${run.what} x${run.n}`);
        run = { what, from: s.done, to: s.done, n: 1 };
      }
    }
    if (run) out.push(`${run.from.toFixed(0)}..${run.to.toFixed(0)} ${run.what} x${run.n}`);
    return out.join('\n');
  }

  /** Ends the meter process (idempotent). */
  stop(): void {
    if (!isRunning(this.#child)) return;
    this.#child.stdin?.end('stop\n');
    const t = setTimeout(() => killGroup(this.#child), 1000);
    t.unref();
  }
}
