import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deviceRank } from '../../src/election/rules.js';
import type { PeerStatus } from '../../src/portal/status.js';
import { FaultFleet } from '../../test/fault/fixtures/fault-fleet.js';
import type { Scheme } from '../../test/fault/fixtures/fault-fleet.js';
import { exited, isRunning } from '../../test/testbed/command.js';
import { createTestbed } from '../../test/testbed/testbed.js';
import type { Availability } from './availability.js';
import { monoMs, PortalPoller } from './poller.js';
import { procStats } from './proc-stats.js';
import type { ProcStats } from './proc-stats.js';

/**
 * The soak: `nodes` frontdoor nodes in the real-router test bed for `durationMs`, the
 * representative stopped every `failoverEveryMs` (SIGTERM and SIGKILL in turn) and started again
 * `restartAfterMs` later, MJPEG viewers on the camera nodes and the portal polled from the WAN
 * every `pollMs`. It measures; the caller (bench/soak.ts prints, test/bench/soak-short.test.ts
 * asserts) judges.
 *
 * `--rule device` by default: the heir is then always the lowest-ranked live node, so after the
 * first failover the role alternates between the two lowest-ranked nodes and the other nodes run
 * for the whole soak. Their RSS and file descriptors at start and end are the figures that show
 * a leak; the cameras go on the two highest-ranked nodes, so the streams run for the whole soak
 * too.
 */

export interface SoakOptions {
  durationMs: number;
  nodes: number;
  failoverEveryMs: number;
  restartAfterMs: number;
  /** A floating address makes crash failover take about a second instead of a lease (6 s here). */
  floating: boolean;
  rule: 'device' | 'ports' | 'random';
  cameras: number;
  viewers: number;
  pollMs: number;
  scheme: Scheme;
  log: (line: string) => void;
}

export const SOAK_DEFAULTS: SoakOptions = {
  durationMs: 30 * 60_000,
  nodes: 5,
  failoverEveryMs: 60_000,
  restartAfterMs: 10_000,
  floating: true,
  rule: 'device',
  cameras: 2,
  viewers: 3,
  pollMs: 200,
  scheme: 'https',
  log: () => {},
};

export const FLOATING_ADDRESS = '192.168.77.100';
const SECRET = 'soak-bench-fleet-secret-1f7c3e9b5a2d';
const VIEWER = fileURLToPath(new URL('./mjpeg-viewer.js', import.meta.url));

export interface FailoverRecord {
  /** monoMs of the signal. */
  at: number;
  victim: string;
  sig: 'SIGTERM' | 'SIGKILL';
  /** The first node other than the victim the WAN poller got an answer from afterwards. */
  next: string | null;
  /** From the signal to that answer. */
  outageMs: number | null;
}

export interface NodeFigures {
  name: string;
  camera: boolean;
  /** Processes started for this host over the soak (1 = never restarted). */
  processes: number;
  start: ProcStats | undefined;
  end: ProcStats | undefined;
  /** start and end are the same process. */
  sameProcess: boolean;
}

export interface ViewerFigures {
  url: string;
  frames: number;
  bytes: number;
  connects: number;
  errors: Record<string, number>;
}

export interface SoakReport {
  options: Omit<SoakOptions, 'log'>;
  measuredMs: number;
  availability: Availability;
  failovers: FailoverRecord[];
  nodes: NodeFigures[];
  viewers: ViewerFigures[];
  /** Nodes that exited without being told to. */
  crashes: string[];
}

export async function runSoak(partial: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const o: SoakOptions = { ...SOAK_DEFAULTS, ...partial };
  const log = o.log;
  const tb = await createTestbed({ mode: 'igd2', hosts: o.nodes });
  const args = ['--rule', o.rule, ...(o.floating ? ['--floating-address', FLOATING_ADDRESS] : []), '--log-level', 'warn'];
  const fleet = new FaultFleet(tb, { secret: SECRET, args, scheme: o.scheme, logLevel: 'info' });
  const indices = tb.hosts.map((_, i) => i);
  // Highest device rank = chosen last as heir: the cameras there run for the whole soak.
  const byRank = [...indices].sort((a, b) => (deviceRank(`dev-h${a + 1}`) < deviceRank(`dev-h${b + 1}`) ? -1 : 1));
  const cameraNodes = new Set(o.rule === 'device' ? byRank.slice(-o.cameras) : indices.slice(-o.cameras));
  const cameraArgs = ['--camera', 'test', '--camera-width', '320', '--camera-height', '240', '--camera-fps', '5'];
  let poller: PortalPoller | undefined;
  let viewers: ChildProcess | undefined;
  const viewerLines: ViewerFigures[] = [];
  const crashes: string[] = [];
  try {
    fleet.startAll(indices, (i) => (cameraNodes.has(i) ? cameraArgs : ['--camera', 'none']));
    const t0 = monoMs();
    // Generous: five nodes starting at once on a loaded CI machine (another test bed beside it)
    // have taken from 9 s to over a minute here.
    await fleet.settled(120_000);
    log(`${o.nodes} nodes settled in ${Math.round(monoMs() - t0)} ms; cameras on ${[...cameraNodes].map((i) => `h${i + 1}`).join(', ')}; rule ${o.rule}; ${o.floating ? `floating address ${FLOATING_ADDRESS}` : 'router lease only (6 s)'}; ${o.scheme}`);

    poller = new PortalPoller(tb, { url: fleet.wanUrl('/api/status'), password: fleet.password, intervalMs: o.pollMs });
    await poller.ready();
    const nodes = await fleet.wanJson<PeerStatus[]>('/api/nodes');
    const cams = (nodes ?? []).filter((n) => n.camera && n.url).map((n) => `${n.url!.replace(/^https?:/, `${o.scheme}:`)}camera.mjpg`);
    const urls = Array.from({ length: cams.length === 0 ? 0 : o.viewers }, (_, i) => cams[i % cams.length]!);
    if (urls.length > 0) {
      viewers = tb.spawn(tb.wan, [process.execPath, VIEWER, '5000', ...urls], {
        env: { ...process.env, FRONTDOOR_POLL_PASSWORD: fleet.password },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let partial = '';
      viewers.stdout?.on('data', (c: Buffer) => {
        const parts = (partial + c.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        for (const p of parts) {
          try {
            viewerLines.push(JSON.parse(p) as ViewerFigures);
          } catch {
            // not a report line
          }
        }
      });
    }
    // A few seconds for the viewers to connect and the cameras to go live: the baseline is a
    // fleet at work, not one starting up.
    await new Promise((r) => setTimeout(r, 5000));
    const start = new Map(indices.map((i) => [i, procStats(fleet.pidOf(i))] as const));
    const firstPid = new Map(indices.map((i) => [i, fleet.pidOf(i)] as const));
    log(`baseline: ${indices.map((i) => `h${i + 1} ${fmtStats(start.get(i))}`).join('; ')}`);

    const begin = monoMs();
    const end = begin + o.durationMs;
    const failovers: FailoverRecord[] = [];
    const restarts: Array<Promise<void>> = [];
    let n = 0;
    for (let next = begin + o.failoverEveryMs; next + 1000 < end; next += o.failoverEveryMs) {
      await sleepUntil(next);
      for (const name of unexpectedExits(fleet)) if (!crashes.includes(name)) crashes.push(name);
      const rep = (await fleet.representatives())[0];
      if (rep === undefined) {
        log(`failover ${n + 1}: no representative to stop at ${fmtS(monoMs() - begin)}; skipped`);
        continue;
      }
      const idx = Number(rep.slice(1)) - 1;
      const sig = n % 2 === 0 ? 'SIGTERM' : 'SIGKILL';
      n++;
      const at = monoMs();
      await fleet.stop(idx, sig);
      const rec: FailoverRecord = { at, victim: rep, sig, next: null, outageMs: null };
      failovers.push(rec);
      log(`failover ${n} at ${fmtS(at - begin)}: ${sig} ${rep}`);
      restarts.push(
        (async () => {
          await sleepUntil(at + o.restartAfterMs);
          if (!fleet.live().includes(idx)) fleet.start(idx, cameraNodes.has(idx) ? cameraArgs : ['--camera', 'none']);
        })(),
      );
    }
    await sleepUntil(end);
    await Promise.all(restarts);
    const measuredMs = monoMs() - begin;
    for (const name of unexpectedExits(fleet)) if (!crashes.includes(name)) crashes.push(name);
    const endStats = new Map(indices.map((i) => [i, procStats(fleet.pidOf(i))] as const));
    await poller.stop();
    if (viewers && isRunning(viewers)) {
      const gone = exited(viewers);
      viewers.stdin?.end();
      await gone;
    }
    const samples = poller.window(begin, end);
    for (const f of failovers) {
      const first = samples.filter((s) => s.sent >= f.at && s.name !== undefined && s.name !== f.victim).sort((a, b) => a.done - b.done)[0];
      f.next = first?.name ?? null;
      f.outageMs = first ? first.done - f.at : null;
    }
    const processes = (i: number) => fleet.history.filter((h) => h.index === i).length;
    return {
      options: { ...o, log: undefined } as unknown as Omit<SoakOptions, 'log'>,
      measuredMs,
      availability: poller.summary(begin, end),
      failovers,
      nodes: indices.map((i) => ({
        name: `h${i + 1}`,
        camera: cameraNodes.has(i),
        processes: processes(i),
        start: start.get(i),
        end: endStats.get(i),
        sameProcess: firstPid.get(i) !== undefined && firstPid.get(i) === fleet.pidOf(i),
      })),
      viewers: lastPerUrl(viewerLines, urls.length),
      crashes,
    };
  } finally {
    await poller?.stop();
    if (viewers && isRunning(viewers)) viewers.kill('SIGKILL');
    await fleet.stopAll();
    await tb.close();
  }
}

/** Names of nodes whose process ended without the soak stopping it (Fleet.assertNoCrash's check, collected). */
function unexpectedExits(fleet: FaultFleet): string[] {
  try {
    fleet.assertNoCrash();
    return [];
  } catch (err) {
    const m = /^(h\d+) exited by itself/.exec((err as Error).message);
    return m ? [m[1]!] : ['unknown'];
  }
}

/** The viewer process prints all its viewers at each report: the last `count` lines are the latest. */
function lastPerUrl(lines: readonly ViewerFigures[], count: number): ViewerFigures[] {
  return count === 0 ? [] : lines.slice(-count);
}

async function sleepUntil(t: number): Promise<void> {
  const ms = t - monoMs();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

export function fmtS(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function fmtStats(s: ProcStats | undefined): string {
  return s ? `RSS ${(s.rssKb / 1024).toFixed(1)} MiB, ${s.fds} fds (pid ${s.pid})` : 'not running';
}
