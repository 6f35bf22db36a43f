/**
 * What the failover bench measures: a "subject" is one way of keeping a LAN service reachable on
 * the router's public port while hosts come and go (keepalived's floating address; frontdoor).
 * The harness (harness.ts) gives every subject a fresh test bed, the same WAN-side meter and the
 * same faults, and reports the outages side by side.
 */
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { waitForOutput } from '../../test/testbed/command.js';
import type { Host, Testbed } from '../../test/testbed/testbed.js';

/**
 * - graceful: the serving host's service is stopped the ordinary way (SIGTERM), as on a reboot
 *   or an update;
 * - crash: the serving host vanishes without a word (its cable pulled: `tb.linkDown`).
 */
export type FailoverCase = 'graceful' | 'crash';
export const FAILOVER_CASES: readonly FailoverCase[] = ['graceful', 'crash'];

export interface FailoverSubject {
  /** As printed in the table ("keepalived", "frontdoor"). */
  readonly name: string;
  /** LAN hosts the test bed needs; default 3. */
  readonly hosts?: number;
  /** The public port the meter polls at the router's WAN address; default 8080. */
  readonly publicPort?: number;
  /** The path the meter polls; default '/'. */
  readonly path?: string;
  /** `user:password` for HTTP basic auth, when the service is locked. */
  readonly auth?: string;
  /** How each case is done, for the table ("SIGTERM keepalived on the master"). */
  readonly describe?: Partial<Record<FailoverCase, string>>;
  /**
   * Brings everything up in `tb`: one service per host whose answer's first line is the host's
   * name (`Host.name`, e.g. `h1`; `startLabelServers` does that), and the public port mapped at
   * the router to whoever serves. Resolves once a host serves (the harness then waits until the
   * meter sees steady answers from `current()`).
   */
  start(tb: Testbed): Promise<void>;
  /** The host serving now, or undefined while that is unclear (nobody, or two at once). */
  current(tb: Testbed): Promise<Host | undefined>;
  /**
   * Inject the fault on `host` and return at once, without waiting for its effects. Returns the
   * fault instant on the monotonic clock (`monoMs()`, outage.ts) when it knows it better than the
   * harness, which otherwise takes the instant just before the call.
   */
  graceful(tb: Testbed, host: Host): Promise<number | undefined>;
  crash(tb: Testbed, host: Host): Promise<number | undefined>;
  /**
   * Undo the fault on `host` (start the service again, plug the cable back in) and resolve once
   * the subject has settled: `host` is back in the group and whatever hand-over that causes is
   * done (keepalived: `host` has preempted and holds the address again; a subject without
   * preemption: `host` has rejoined as a standby). The next trial then waits for steady answers
   * from the host `current()` names and faults that one.
   */
  restore(tb: Testbed, host: Host, kind: FailoverCase): Promise<void>;
  /** Stops what it started (the test bed's close kills the rest). */
  stop(tb: Testbed): Promise<void>;
}

const LABEL_SERVER = fileURLToPath(new URL('./label-server.js', import.meta.url));

/**
 * Starts on each host an HTTP server on 0.0.0.0:`port` answering the host's name; resolves once
 * all listen. They are killed by `tb.close()`.
 */
export async function startLabelServers(tb: Testbed, hosts: readonly Host[], port = 8080): Promise<ChildProcess[]> {
  const children = hosts.map((h) => tb.spawn(h, [process.execPath, LABEL_SERVER, h.name, String(port)]));
  await Promise.all(children.map((c) => waitForOutput(c, /^listening /, { timeoutMs: 10_000 })));
  return children;
}

/** Which hosts have `address` on their interface now (`ip -4 -o addr`, in each namespace). */
export async function holdersOf(tb: Testbed, address: string, hosts: readonly Host[] = tb.hosts): Promise<Host[]> {
  const held = await Promise.all(
    hosts.map(async (h) => {
      const r = await tb.exec(h, ['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname], { timeoutMs: 5000 });
      return r.stdout.split('\n').some((l) => l.includes(` ${address}/`));
    }),
  );
  return hosts.filter((_, i) => held[i]);
}
