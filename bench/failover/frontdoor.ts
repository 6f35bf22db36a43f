/**
 * frontdoor as a failover subject: `frontdoor run` on every host, as a fleet would run it, with
 * the floating address (docs/floating-address.md) so a crash does not wait for the dead holder's
 * router lease. The meter polls the portal's /api/status on the well-known port, whose "name" is
 * the serving node (h1, h2, ...).
 *
 * graceful = SIGTERM to the representative's process (it releases, drops the address and names
 * its heir in the withdraw); crash = the representative's cable pulled, the same instant as for
 * keepalived (link-watch.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, isRunning, killGroup } from '../../test/testbed/command.js';
import type { Host, Testbed } from '../../test/testbed/testbed.js';
import { pullCable, watchLinks } from './link-watch.js';
import { monoMs } from './outage.js';
import type { FailoverCase, FailoverSubject } from './subject.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
export const FLOATING = '192.168.77.100';
const BENCH_PASSWORD = 'failover-bench-password';

export interface FrontdoorSubjectOptions {
  /** Default FLOATING; 'off' measures the plain router-lease design. */
  floating?: string;
  extraArgs?: readonly string[];
}

export function frontdoorSubject(o: FrontdoorSubjectOptions = {}): FailoverSubject {
  const floating = o.floating ?? FLOATING;
  const procs = new Map<string, ChildProcess>();
  const start = (tb: Testbed, h: Host) => {
    const child = tb.spawn(h, [
      process.execPath,
      CLI,
      'run',
      '--name',
      h.name,
      '--device-id',
      `bench-${h.name}`,
      '--secret',
      'failover bench secret',
      '--password',
      BENCH_PASSWORD,
      '--floating-address',
      floating,
      '--router-protocols',
      'upnp',
      '--data-dir',
      `${tb.tmpDir}/${h.name}`,
      '--log-format',
      'json',
      '--log-level',
      'warn',
      // Plain HTTP, as the keepalived reference serves: the bench measures the takeover, and a
      // TLS handshake per poll would be the same on both sides of the failover anyway.
      '--tls',
      'off',
      ...(o.extraArgs ?? []),
    ]);
    procs.set(h.name, child);
    return child;
  };
  const status = async (tb: Testbed, h: Host): Promise<{ role: string; name: string } | undefined> => {
    const r = await tb.exec(h, ['curl', '-s', '-u', `admin:${BENCH_PASSWORD}`, '--max-time', '1', `http://${h.address}:8081/api/status`], {
      check: false,
      timeoutMs: 3000,
    });
    try {
      return JSON.parse(r.stdout) as { role: string; name: string };
    } catch {
      return undefined;
    }
  };
  const settled = async (tb: Testbed, ms: number) => {
    const end = monoMs() + ms;
    while (monoMs() < end) {
      const live = tb.hosts.filter((h) => running(procs.get(h.name)));
      const st = await Promise.all(live.map((h) => status(tb, h)));
      if (st.every((s) => s && (s.role === 'follower' || s.role === 'representative')) && st.filter((s) => s?.role === 'representative').length === 1) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`frontdoor did not settle within ${ms} ms`);
  };
  return {
    name: floating === 'off' ? 'frontdoor-lease' : 'frontdoor',
    path: '/api/status',
    // The portal is locked; the meter logs in with basic auth like a script would.
    auth: `admin:${BENCH_PASSWORD}`,
    describe: {
      graceful: 'SIGTERM to the representative (withdraw names the heir)',
      crash: `representative's cable pulled (floating address ${floating})`,
    },
    async start(tb) {
      await watchLinks(tb);
      for (const h of tb.hosts) start(tb, h);
      await settled(tb, 20_000);
    },
    async current(tb) {
      const st = await Promise.all(tb.hosts.map((h) => (running(procs.get(h.name)) ? status(tb, h) : undefined)));
      const reps = tb.hosts.filter((_, i) => st[i]?.role === 'representative');
      return reps.length === 1 ? reps[0] : undefined;
    },
    async graceful(_tb, host) {
      const at = monoMs();
      procs.get(host.name)?.kill('SIGTERM');
      return at;
    },
    async crash(tb, host) {
      return pullCable(tb, host);
    },
    async restore(tb, host, kind: FailoverCase) {
      if (kind === 'crash') {
        await tb.linkUp(host);
      } else {
        const old = procs.get(host.name);
        if (old && isRunning(old)) await within(exited(old), 10_000).catch(() => killGroup(old, 'SIGKILL'));
        start(tb, host);
      }
      await settled(tb, 20_000);
    },
    async stop() {
      for (const p of procs.values()) if (isRunning(p)) p.kill('SIGTERM');
      await Promise.all([...procs.values()].map((p) => within(exited(p), 5000).catch(() => killGroup(p, 'SIGKILL'))));
    },
  };
}

function running(p: ChildProcess | undefined): boolean {
  return p !== undefined && isRunning(p);
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
