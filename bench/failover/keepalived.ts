/**
 * The reference subject: what a user can do today with standard tools. keepalived (VRRP) on every
 * host moves a virtual address (192.168.77.100) to the live host with the highest priority; the
 * router forwards the public port to that address, mapped once over UPnP from the address itself
 * (secure_mode allows a host to map to any address it holds). Each host serves its name on
 * 0.0.0.0:8080, so the meter sees who holds the address.
 *
 * graceful = SIGTERM to the master's keepalived (it sends a priority-0 advert and drops the
 * address; the label server keeps running, but packets for the address no longer reach it);
 * crash = the master's cable pulled. Measured once by hand (shared notes, real-router.md):
 * 774 ms and 3807 ms median.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exited, isRunning, killGroup } from '../../test/testbed/command.js';
import type { Host, Testbed } from '../../test/testbed/testbed.js';
import { pullCable, watchLinks } from './link-watch.js';
import { monoMs } from './outage.js';
import type { MapResult } from './router-map.js';
import { holdersOf, startLabelServers } from './subject.js';
import type { FailoverCase, FailoverSubject } from './subject.js';

export const KEEPALIVED = process.env['FRONTDOOR_KEEPALIVED'] ?? '/usr/sbin/keepalived';
const ROUTER_MAP = new URL('./router-map.js', import.meta.url);

export interface KeepalivedOptions {
  /** Default 192.168.77.100. */
  vip?: string;
  /** One per host, highest first = the first master; default [100, 90, 80]. */
  priorities?: readonly number[];
  /** VRRP advertisement interval, seconds; default 1. */
  advertInt?: number;
  port?: number;
}

/** The keepalived.conf of one host: one VRRP instance, multicast adverts on the LAN interface. */
export function keepalivedConfig(host: Host, o: { vip: string; priority: number; advertInt: number; master: boolean }): string {
  return `global_defs {
    router_id fdbench_${host.name}
}
vrrp_instance FDBENCH {
    state ${o.master ? 'MASTER' : 'BACKUP'}
    interface ${host.ifname}
    virtual_router_id 77
    priority ${o.priority}
    advert_int ${o.advertInt}
    virtual_ipaddress {
        ${o.vip}/24 dev ${host.ifname}
    }
}
`;
}

export function keepalivedSubject(opts: KeepalivedOptions = {}): FailoverSubject {
  const vip = opts.vip ?? '192.168.77.100';
  const priorities = opts.priorities ?? [100, 90, 80];
  const advertInt = opts.advertInt ?? 1;
  const port = opts.port ?? 8080;
  const procs = new Map<string, ChildProcess>();

  const files = (tb: Testbed, h: Host) => {
    const base = join(tb.tmpDir, `keepalived-${h.name}`);
    return { conf: `${base}.conf`, log: `${base}.log`, pids: [`${base}.pid`, `${base}-vrrp.pid`, `${base}-checkers.pid`] };
  };

  const startOne = async (tb: Testbed, h: Host): Promise<void> => {
    const f = files(tb, h);
    // keepalived refuses to start while a pid file names a live process; a killed one leaves them.
    await Promise.all(f.pids.map((p) => rm(p, { force: true })));
    const fd = openSync(f.log, 'a');
    try {
      // -n foreground, -l log to the console (our log file), -D detailed, -G no syslog, -P VRRP only.
      const child = tb.spawn(
        h,
        [KEEPALIVED, '-n', '-l', '-D', '-G', '-P', '-f', f.conf, '-p', f.pids[0]!, '-r', f.pids[1]!, '-c', f.pids[2]!],
        { stdio: ['ignore', fd, fd] },
      );
      procs.set(h.name, child);
    } finally {
      closeSync(fd);
    }
  };

  const stopOne = async (h: Host, graceMs = 10_000): Promise<void> => {
    const child = procs.get(h.name);
    if (!child) return;
    if (isRunning(child)) {
      child.kill('SIGTERM');
      const late = setTimeout(() => killGroup(child), graceMs);
      await exited(child);
      clearTimeout(late);
    }
    procs.delete(h.name);
  };

  const hostsOf = (tb: Testbed) => tb.hosts.slice(0, priorities.length);

  const logs = (tb: Testbed) =>
    hostsOf(tb)
      .map((h) => {
        try {
          return `--- ${files(tb, h).log}\n${readFileSync(files(tb, h).log, 'utf8').split('\n').slice(-15).join('\n')}`;
        } catch {
          return '';
        }
      })
      .join('\n');

  /** Until `host`, and only it, holds the address; fails early when a keepalived has exited. */
  const waitHolder = async (tb: Testbed, host: Host, timeoutMs: number): Promise<void> => {
    const hosts = hostsOf(tb);
    const deadline = monoMs() + timeoutMs;
    for (;;) {
      const held = await holdersOf(tb, vip, hosts);
      if (held.length === 1 && held[0] === host) return;
      const dead = hosts.find((h) => !procs.get(h.name) || !isRunning(procs.get(h.name)!));
      if (dead || monoMs() > deadline) {
        const why = dead
          ? `${dead.name}'s keepalived exited`
          : `${host.name} did not take ${vip} within ${timeoutMs} ms (holders: ${held.map((x) => x.name).join(',') || 'none'})`;
        throw new Error(`keepalived: ${why}\n${logs(tb)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const subject: FailoverSubject = {
    name: 'keepalived',
    hosts: priorities.length,
    publicPort: port,
    describe: {
      graceful: `SIGTERM keepalived on master (VRRP ${priorities.join('/')}, advert ${advertInt} s)`,
      crash: "master's link down",
    },

    async start(tb) {
      const hosts = hostsOf(tb);
      if (hosts.length < priorities.length) throw new Error(`keepalived needs ${priorities.length} hosts, the test bed has ${tb.hosts.length}`);
      await Promise.all([startLabelServers(tb, hosts, port), watchLinks(tb)]);
      await Promise.all(
        hosts.map((h, i) =>
          writeFile(files(tb, h).conf, keepalivedConfig(h, { vip, priority: priorities[i]!, advertInt, master: i === 0 })),
        ),
      );
      for (const h of hosts) await startOne(tb, h);
      const master = hosts[0]!;
      await waitHolder(tb, master, 15_000);
      // The public port to the floating address, asked for from that address (secure_mode).
      await tb.call<MapResult>(master, ROUTER_MAP, 'igdMap', [
        { location: tb.rootDescUrl, localAddress: vip, op: 'claim', externalPort: port, internalPort: port, leaseSeconds: 3600 },
      ]);
    },

    async current(tb) {
      const held = await holdersOf(tb, vip, hostsOf(tb));
      return held.length === 1 ? held[0] : undefined;
    },

    async graceful(_tb, host) {
      const child = procs.get(host.name);
      if (!child || !isRunning(child)) throw new Error(`keepalived is not running on ${host.name}`);
      const t = monoMs();
      // The main process only, as `systemctl stop keepalived` does (KillMode=process).
      child.kill('SIGTERM');
      return t;
    },

    crash(tb, host) {
      return pullCable(tb, host);
    },

    async restore(tb, host, kind: FailoverCase) {
      if (kind === 'crash') {
        await tb.linkUp(host);
      } else {
        await stopOne(host);
        await startOne(tb, host);
      }
      // Settled when it has preempted again (keepalived preempts by default): the first master
      // is the one faulted in every trial.
      await waitHolder(tb, host, 30_000);
    },

    async stop(tb) {
      await Promise.all(hostsOf(tb).map((h) => stopOne(h, 3000)));
    },
  };
  return subject;
}
