/**
 * One run of the start bench: a fresh real-router test bed, the pollers up first, then 3
 * `frontdoor run` started at the same moment, and what followed: when the internet client's
 * portal first answered and first listed every node, whether two nodes were ever representative
 * at once until the fleet settled, then each node's memory and CPU over an idle window. It
 * measures; bench/start.ts prints and test/bench/start.test.ts judges.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultSettings } from '../../src/config/settings.js';
import { electionFromSettings, settledTableAgeMs } from '../../src/election/config.js';
import type { ChildProcess } from 'node:child_process';
import { createTestbed } from '../../test/testbed/testbed.js';
import type { Host, Testbed } from '../../test/testbed/testbed.js';
import { FaultFleet } from '../../test/fault/fixtures/fault-fleet.js';
import type { FaultFleetOptions } from '../../test/fault/fixtures/fault-fleet.js';
import { cpuPercent, sampleCpu, statusBytes } from '../camera/proc.js';
import { monoMs } from '../failover/outage.js';
import type { PollSample } from '../poll-line.js';
import { PortalPoller } from '../soak/poller.js';
import { representativeOverlaps } from './representatives.js';
import type { RepresentativeOverlaps } from './representatives.js';

const ROUTER_UP_MS = settledTableAgeMs(electionFromSettings(defaultSettings())) + 1000;

/** frontdoor's own settings (what a user runs) or the test suite's fast election (FAST). */
export type StartSettings = 'defaults' | 'fleet';

export interface StartRunOptions {
  /** The `dist/src/cli.js` to run. */
  cli: string;
  nodes: number;
  settings: StartSettings;
  /** How long the settled fleet is left alone while its CPU time is counted. */
  idleMs: number;
  /** The internet client's poll of the well-known port. */
  wanPollMs: number;
  /** Each node's own /api/status, for the two-representatives watch. */
  lanPollMs: number;
  /** Longest wait for the listing, and then for the fleet to settle. */
  timeoutMs: number;
  /**
   * How long the router has been up when the nodes start (ms from miniupnpd's start): a home
   * router has been up for hours, while one that has just started makes the nodes wait a lease
   * before claiming (docs/election.md). Default: just over a lease and the listen at frontdoor's
   * defaults, the shortest wait after which the router counts as up a while. 0: at once.
   */
  routerUpMs: number;
  log: (line: string) => void;
}

export const START_DEFAULTS: Omit<StartRunOptions, 'cli'> = {
  nodes: 3,
  settings: 'defaults',
  idleMs: 30_000,
  wanPollMs: 20,
  lanPollMs: 50,
  timeoutMs: 60_000,
  routerUpMs: ROUTER_UP_MS,
  log: () => {},
};

export interface IdleNode {
  name: string;
  representative: boolean;
  /** VmRSS at the end of the idle window. */
  rssBytes: number;
  /** utime + stime over the idle window, % of one core. */
  cpuPct: number;
}

export interface StartRun {
  /** From the spawn of the nodes (ms) to the completion of the WAN portal's first answer. */
  firstAnswerMs?: number;
  /** ... to the first answer that named every node. */
  namedMs?: number;
  /** ... to the first answer that listed every node with its link: the listing. */
  listingMs?: number;
  /** The nodes the WAN portal was served by until the listing, in order of first answer. */
  servedBy: string[];
  overlaps: RepresentativeOverlaps;
  /** From the spawn until the watch stopped (the fleet settled). */
  watchedMs: number;
  /** After settling. */
  representative?: string;
  idle: IdleNode[];
  /** Share of the machine's CPU time (all cores) busy over the idle window, the nodes included. */
  machineBusyPct?: number;
  /** Set when the run could not be taken to the end; what it measured so far is kept. */
  error?: string;
}

const SECRET = 'start-bench-fleet-secret-6d0e2a91c4';

/** A FaultFleet whose nodes run another checkout's CLI (the reference build). */
class StartFleet extends FaultFleet {
  readonly #cli: string;

  constructor(tb: Testbed, opts: FaultFleetOptions, cli: string) {
    super(tb, opts);
    this.#cli = cli;
  }

  protected override spawnNode(_index: number, host: Host, args: readonly string[]): ChildProcess {
    return this.tb.spawn(host, [process.execPath, this.#cli, ...args]);
  }
}

export async function runStart(partial: Partial<StartRunOptions> & { cli: string }): Promise<StartRun> {
  const o: StartRunOptions = { ...START_DEFAULTS, ...partial };
  const run: StartRun = { servedBy: [], overlaps: { certain: [], possible: [] }, watchedMs: 0, idle: [] };
  const tb = await createTestbed({ mode: 'igd2', hosts: o.nodes });
  const routerUp = monoMs();
  // The suite's fleets' TLS: HTTPS with the fleet's self-made certificate.
  const fleet = new StartFleet(tb, { secret: SECRET, scheme: 'https', fast: o.settings === 'fleet' }, o.cli);
  const indices = tb.hosts.map((_, i) => i);
  const names = indices.map((i) => `h${i + 1}`);
  let wan: PortalPoller | undefined;
  const lan: PortalPoller[] = [];
  try {
    wan = new PortalPoller(tb, { url: fleet.wanUrl('/api/status'), password: fleet.password, intervalMs: o.wanPollMs });
    for (const i of indices) {
      lan.push(
        new PortalPoller(tb, { url: fleet.lanUrl(i, '/api/status'), password: fleet.password, intervalMs: o.lanPollMs, where: tb.hosts[i]!, keepAlive: true }),
      );
    }
    await Promise.all([wan.ready(), ...lan.map((p) => p.ready())]);

    const upFor = o.routerUpMs - (monoMs() - routerUp);
    if (upFor > 0) await sleep(upFor);
    const t0 = monoMs();
    fleet.startAll(indices);
    await waitForListing(run, wan, names, t0, o.timeoutMs, () => fleet.assertNoCrash());
    await wan.stop();
    const settled = await fleet.settled(o.timeoutMs);
    run.representative = settled.rep;
    await Promise.all(lan.map((p) => p.stop()));
    run.watchedMs = monoMs() - t0;
    run.overlaps = representativeOverlaps(new Map(indices.map((i) => [names[i]!, lan[i]!.window()] as const)));
    o.log(
      `listing ${fmtMaybe(run.listingMs)} (first answer ${fmtMaybe(run.firstAnswerMs)}, all named ${fmtMaybe(run.namedMs)}, served by ${run.servedBy.join(' then ')}); ` +
        `settled with ${settled.rep} at ${Math.round(run.watchedMs)} ms; two representatives: ${run.overlaps.certain.length} certain, ${run.overlaps.possible.length} possible`,
    );

    const pids = indices.map((i) => fleet.pidOf(i));
    const machineBefore = machineTicks();
    const before = sampleCpu(pids);
    await new Promise((r) => setTimeout(r, o.idleMs));
    const after = sampleCpu(pids);
    const machineAfter = machineTicks();
    fleet.assertNoCrash();
    if (indices.some((i) => fleet.pidOf(i) !== pids[i])) throw new Error('a node was restarted during the idle window');
    run.idle = indices.map((i) => ({
      name: names[i]!,
      representative: names[i] === settled.rep,
      rssBytes: statusBytes(pids[i]!, 'VmRSS') ?? Number.NaN,
      cpuPct: cpuPercent(before, after, i),
    }));
    if (machineBefore && machineAfter) {
      const total = machineAfter.total - machineBefore.total;
      run.machineBusyPct = total > 0 ? (100 * (machineAfter.busy - machineBefore.busy)) / total : undefined;
    }
    const reps = await fleet.representatives();
    if (reps.length !== 1 || reps[0] !== settled.rep) o.log(`after the idle window the representatives are ${reps.join(',') || 'none'} (was ${settled.rep})`);
    o.log(
      `idle ${Math.round(o.idleMs / 1000)} s: ${run.idle.map((n) => `${n.name}${n.representative ? ' (rep)' : ''} ${mb(n.rssBytes)} MB ${n.cpuPct.toFixed(2)} %`).join(', ')}; ` +
        `machine ${run.machineBusyPct === undefined ? '?' : run.machineBusyPct.toFixed(0)} % busy`,
    );
  } catch (err) {
    run.error = (err as Error).message;
    // The whole message: a node that exited brings its last log lines (a reference build refusing a flag).
    o.log(`stopped: ${run.error.split('\n').slice(0, 30).join('\n    ')}`);
    if (run.watchedMs === 0 && lan.length === indices.length) {
      run.overlaps = representativeOverlaps(new Map(indices.map((i) => [names[i]!, lan[i]!.window()] as const)));
    }
  } finally {
    await Promise.all([wan?.stop(), ...lan.map((p) => p.stop())]);
    await fleet.stopAll();
    await tb.close();
  }
  return run;
}

/**
 * Waits for the WAN poller's first answer listing every node with a link, noting in `r` the
 * moments (from `t0`) of the first answer, of the first naming every node, and of the listing.
 */
async function waitForListing(r: StartRun, wan: PortalPoller, names: readonly string[], t0: number, timeoutMs: number, check: () => void): Promise<void> {
  let seen = 0;
  const deadline = t0 + timeoutMs;
  const has = (list: readonly string[] | undefined) => list !== undefined && names.every((n) => list.includes(n));
  for (;;) {
    // In the order they completed: the first sample to meet a condition is its moment.
    const samples: readonly PollSample[] = wan.samples;
    for (; seen < samples.length; seen++) {
      const s = samples[seen]!;
      if (s.name === undefined) continue;
      if (!r.servedBy.includes(s.name)) r.servedBy.push(s.name);
      r.firstAnswerMs ??= s.done - t0;
      if (has(s.listed)) r.namedMs ??= s.done - t0;
      if (has(s.linked)) {
        r.listingMs = s.done - t0;
        return;
      }
    }
    check();
    if (monoMs() > deadline) {
      const last = samples.findLast((s) => s.name !== undefined) ?? samples.at(-1);
      throw new Error(`the WAN portal did not list ${names.join(', ')} within ${timeoutMs} ms (last answer: ${last ? JSON.stringify(last) : 'none'})`);
    }
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** The machine's CPU time so far, all cores, in ticks (/proc/stat): busy = all but idle and iowait. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already counted in user).
    const fields = cpu.slice(0, 8);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

export function mb(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

function fmtMaybe(ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`;
}
