/**
 * The instant a cable is pulled, to the millisecond. `tb.linkDown` runs `ip` as a new process:
 * the link goes down somewhere in the 10-40 ms that takes, so the instant before the call would
 * overstate a crash outage by that much. Instead `ip -o monitor link` runs in the router's
 * namespace and the instant the kernel's "link down" event reaches us is the fault instant
 * (later than the real one by a pipe write, well under a millisecond on an idle loop).
 */
import type { ChildProcess } from 'node:child_process';
import type { Host, Testbed } from '../../test/testbed/testbed.js';
import { monoMs } from './outage.js';

interface LinkEvent {
  at: number;
  line: string;
}

class LinkWatch {
  readonly #events: LinkEvent[] = [];
  readonly #listeners = new Set<() => void>();

  constructor(child: ChildProcess) {
    let partial = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const at = monoMs();
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      // Link events are few (a handful per fault); all are kept.
      for (const line of lines) this.#events.push({ at, line });
      for (const f of this.#listeners) f();
    });
  }

  /** The first event after index `from` whose line matches, within `timeoutMs`. */
  next(from: number, pattern: RegExp, timeoutMs: number): Promise<LinkEvent | undefined> {
    return new Promise((resolve) => {
      const check = () => {
        const e = this.#events.slice(from).find((x) => pattern.test(x.line));
        if (e) {
          this.#listeners.delete(check);
          clearTimeout(timer);
          resolve(e);
        }
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        resolve(undefined);
      }, timeoutMs);
      this.#listeners.add(check);
      check();
    });
  }

  get length(): number {
    return this.#events.length;
  }
}

const watches = new WeakMap<Testbed, Promise<LinkWatch>>();

/** One monitor per test bed, subscribed (a probe link's creation seen) before it is used. */
function watchOf(tb: Testbed): Promise<LinkWatch> {
  let w = watches.get(tb);
  if (!w) {
    w = (async () => {
      const child = tb.spawn(tb.router, ['ip', '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const watch = new LinkWatch(child);
      const probe = `fdw${process.pid % 100000}`;
      for (let i = 0; i < 20; i++) {
        const mark = watch.length;
        await tb.exec(tb.router, ['ip', 'link', 'add', probe, 'type', 'veth', 'peer', 'name', `${probe}p`], { check: true });
        await tb.exec(tb.router, ['ip', 'link', 'del', probe], { check: true });
        if (await watch.next(mark, new RegExp(`\\b${probe}\\b`), 500)) return watch;
      }
      throw new Error('ip monitor link in the router namespace reported nothing');
    })();
    watches.set(tb, w);
  }
  return w;
}

/** Prepares the monitor ahead of the first `pullCable` (optional; pullCable does it too). */
export async function watchLinks(tb: Testbed): Promise<void> {
  await watchOf(tb);
}

/**
 * `tb.linkDown(host)`, returning the instant (monoMs) the router saw the host's bridge port go
 * down; the instant before the call if no event came (then overstated by `ip`'s start-up).
 */
export async function pullCable(tb: Testbed, host: Host): Promise<number> {
  const watch = await watchOf(tb);
  const mark = watch.length;
  const before = monoMs();
  // `7: h1@if2: <BROADCAST,MULTICAST> ...`: the port's flags without UP.
  const down = new RegExp(`^\\d+: ${host.bridgePort}(?:@\\S+)?: <(?![^>]*\\bUP\\b)[^>]*>`);
  const seen = watch.next(mark, down, 5000);
  await tb.linkDown(host);
  const e = await seen;
  return e && e.at >= before ? e.at : before;
}
