/**
 * `npm run bench -- start [--runs 5] [--idle 30s] [--nodes 3] [--settings defaults|fleet]
 * [--router-up 22.5s|0] [--reference PATH]` (or START_RUNS=N): 3 nodes started at the same moment in a fresh
 * real-router test bed per run; how long until the internet client's portal lists them all,
 * whether two nodes were ever representative at once on the way, and each node's RSS and CPU
 * once the fleet is idle. `--settings defaults` runs the nodes as a user would (frontdoor's own
 * election and router settings), `fleet` with the test suite's fast election (FAST in
 * test/agent/fixtures/fleet.ts). `--reference` runs the same measurements with another
 * checkout's build (its `dist/src/cli.js`) in the same runs, one after the other in alternating
 * order, and prints both columns. Needs root (network namespaces). What is measured:
 * bench/start/measure.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canRunTestbed } from '../test/testbed/testbed.js';
import { monoMs } from './failover/outage.js';
import { parseDuration } from './soak.js';
import { mb, runStart, START_DEFAULTS } from './start/measure.js';
import type { StartRun, StartSettings } from './start/measure.js';
import { TWO_REPRESENTATIVES_DEFINITION } from './start/representatives.js';
import { median } from './stats.js';

/** The issue's goals: the bench says whether they are met. */
export const START_GOALS = { listingMs: 1000, rssBytes: 55 * 1024 * 1024, cpuPct: 0.5 };

/** Measured when the issue was opened (test bed, 3 nodes); the bench prints it beside the figures. */
const ISSUE_FIGURES = 'listing after 4.8 s (a node listens 3 s before it claims), idle nodes 59-73 MB RSS and about 1 % of a core';

const THIS_CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const THIS_CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

export interface Subject {
  label: string;
  cli: string;
  runs: StartRun[];
}

/** `--name value` or `--name=value`. */
function option(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) return args[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

/**
 * What node code a checkout runs: the last commit that changed its src/, `+changes` when src/
 * differs from it; empty when git cannot say. (The build in dist/ is taken to be of that src/.)
 */
function revision(dir: string): string {
  const git = (args: string[]) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8', timeout: 5000 });
  const last = git(['log', '-1', '--format=%h', '--', 'src']);
  if (last.status !== 0 || last.stdout.trim() === '') return '';
  const changed = git(['status', '--porcelain', '--', 'src']).stdout.trim() !== '';
  return `src ${last.stdout.trim()}${changed ? '+changes' : ''}`;
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

export async function run(args: string[]): Promise<void> {
  const can = canRunTestbed();
  if (!can.ok) {
    console.log(`start benchmark skipped: needs root and network namespaces (${can.reason})`);
    return;
  }
  const runs = Number(option(args, 'runs') ?? process.env['START_RUNS'] ?? 5);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
  const idleMs = parseDuration(option(args, 'idle') ?? String(START_DEFAULTS.idleMs));
  if (!(idleMs >= 1000)) throw new Error(`the idle window must be at least 1 s, got ${idleMs} ms`);
  const nodes = Number(option(args, 'nodes') ?? START_DEFAULTS.nodes);
  if (!Number.isInteger(nodes) || nodes < 2) throw new Error(`nodes must be an integer of at least 2, got ${nodes}`);
  const settings = option(args, 'settings') ?? START_DEFAULTS.settings;
  if (settings !== 'defaults' && settings !== 'fleet') throw new Error(`settings must be defaults or fleet, got ${settings}`);
  const routerUp = option(args, 'router-up');
  const routerUpMs = routerUp === undefined ? START_DEFAULTS.routerUpMs : routerUp === '0' ? 0 : parseDuration(routerUp);
  if (!(routerUpMs >= 0)) throw new Error(`--router-up must be a duration, got ${routerUp}`);
  const subjects: Subject[] = [{ label: `this ${revision(THIS_CHECKOUT)}`.trim(), cli: THIS_CLI, runs: [] }];
  const reference = option(args, 'reference');
  if (reference !== undefined) {
    const cli = resolve(reference, 'dist/src/cli.js');
    if (!existsSync(cli)) throw new Error(`${cli} not found: build the reference first (npm run build in ${reference})`);
    subjects.push({ label: `reference ${revision(reference)}`.trim(), cli, runs: [] });
  }
  const load = { start: loadavg(), end: '' };
  const t0 = monoMs();
  console.log(
    `start: ${runs} run${runs === 1 ? '' : 's'} of ${subjects.map((s) => s.label).join(' and ')}, ${nodes} nodes, ${settings} settings, idle ${idleMs / 1000} s, router up ${(routerUpMs / 1000).toFixed(1)} s at the start; load average ${load.start}`,
  );
  for (let i = 0; i < runs; i++) {
    // Alternating order: a machine whose load drifts over the bench weighs on both alike.
    const order = i % 2 === 0 ? subjects : [...subjects].reverse();
    for (const s of order) {
      const r = await runStart({ cli: s.cli, nodes, settings, idleMs, routerUpMs, log: (l) => console.log(`  ${s.label} #${i + 1}: ${l}`) });
      s.runs.push(r);
    }
  }
  load.end = loadavg();
  console.log('');
  console.log(report(subjects, { nodes, settings, idleMs, routerUpMs, load }));
  console.log(`whole bench: ${((monoMs() - t0) / 1000).toFixed(1)} s`);
  if (subjects.some((s) => s.runs.some((r) => r.error))) process.exitCode = 1;
}

export function report(
  subjects: readonly Subject[],
  o: { nodes: number; settings: StartSettings; idleMs: number; routerUpMs: number; load: { start: string; end: string } },
): string {
  const runs = Math.max(...subjects.map((s) => s.runs.length));
  const COL = Math.max(24, ...subjects.map((s) => s.label.length + 2));
  const lines = [
    `start: ${o.nodes} nodes started at once, ${runs} run${runs === 1 ? '' : 's'}, each in a fresh test bed (miniupnpd, igd2) with fresh data directories; HTTPS; ${o.settings === 'defaults' ? "frontdoor's default settings" : "the test suite's fast election settings"}`,
    `  the nodes start when the router (miniupnpd) has been up ${(o.routerUpMs / 1000).toFixed(1)} s${o.routerUpMs >= START_DEFAULTS.routerUpMs ? ', longer than a lease and the listen: as a home router that has been up a while' : ': a router that has just started, so the first claim waits until its table is a lease and the listen old'} (--router-up)`,
    '  listing = from the spawn of the nodes to the first answer from https://<router WAN>:8080/api/status (a new connection every 20 ms',
    '  from the internet) that lists every node with its link; first answer = the first answer at all',
    `  ${TWO_REPRESENTATIVES_DEFINITION}; watched every 50 ms from the spawn until the fleet settled`,
    `  idle = ${o.idleMs / 1000} s once the fleet settled and the pollers stopped: RSS = VmRSS at its end (MB = MiB), CPU = utime+stime over it, % of one core`,
    '',
    `${''.padEnd(34)}${subjects.map((s) => s.label.padStart(COL)).join('')}${'goal'.padStart(12)}`,
  ];
  const row = (label: string, cell: (s: Subject) => string, goal = '') => lines.push(`${label.padEnd(34)}${subjects.map((s) => cell(s).padStart(COL)).join('')}${goal.padStart(12)}`);
  const series = (s: Subject, f: (r: StartRun) => number | undefined) => s.runs.flatMap((r) => {
    const v = f(r);
    return v === undefined || Number.isNaN(v) ? [] : [v];
  });
  const spread = (xs: number[], unit: (v: number) => string) => (xs.length === 0 ? '-' : `${unit(median(xs))} (${unit(Math.min(...xs))}-${unit(Math.max(...xs))})`);
  const ms = (v: number) => `${Math.round(v)}`;
  row('listing, ms: median (min-max)', (s) => spread(series(s, (r) => r.listingMs), ms), `<= ${START_GOALS.listingMs}`);
  row('  runs that reached it', (s) => `${series(s, (r) => r.listingMs).length} of ${s.runs.length}`);
  row('  all named (links or not), ms', (s) => spread(series(s, (r) => r.namedMs), ms));
  row('  first answer, ms', (s) => spread(series(s, (r) => r.firstAnswerMs), ms));
  row('  nodes serving the portal', (s) => spread(series(s, (r) => r.servedBy.length), ms));
  row('two representatives: certain', (s) => `${s.runs.reduce((n, r) => n + r.overlaps.certain.length, 0)}`, '0');
  row('  possible (polling cannot tell)', (s) => `${s.runs.reduce((n, r) => n + r.overlaps.possible.length, 0)}`);
  const nodes = (s: Subject, rep: boolean | undefined) => s.runs.flatMap((r) => r.idle.filter((n) => rep === undefined || n.representative === rep));
  const mbs = (v: number) => mb(v);
  const pct = (v: number) => v.toFixed(2);
  row('idle RSS, MB: representative', (s) => spread(nodes(s, true).map((n) => n.rssBytes), mbs), `<= ${mb(START_GOALS.rssBytes).replace(/\.0$/, '')}`);
  row('  followers', (s) => spread(nodes(s, false).map((n) => n.rssBytes), mbs));
  row('idle CPU, %: representative', (s) => spread(nodes(s, true).map((n) => n.cpuPct), pct), `<= ${START_GOALS.cpuPct}`);
  row('  followers', (s) => spread(nodes(s, false).map((n) => n.cpuPct), pct));
  row('machine busy over idle, %', (s) => spread(series(s, (r) => r.machineBusyPct), (v) => v.toFixed(0)));
  lines.push('  (idle rows: median over the nodes of all runs, min-max; machine busy = all cores, everything running on it)');
  lines.push(`load average: ${o.load.start} at the start, ${o.load.end} at the end (/proc/loadavg; this machine has its cores shared)`);
  for (const s of subjects) {
    for (const [i, r] of s.runs.entries()) if (r.error) lines.push(`${s.label} #${i + 1} ERROR: ${r.error.split('\n')[0]}`);
  }
  lines.push(`when the issue was opened: ${ISSUE_FIGURES}`);
  for (const s of subjects) lines.push(`${s.label} against the goals: ${verdicts(s).join(', ')}`);
  return lines.join('\n');
}

/** Each goal met or not, on the medians (RSS and CPU: the representative's and the followers' both). */
export function verdicts(s: Subject): string[] {
  const listing = s.runs.flatMap((r) => (r.listingMs === undefined ? [] : [r.listingMs]));
  const out: string[] = [];
  const missed = s.runs.length - listing.length;
  if (listing.length === 0) out.push('listing: no figure');
  else {
    const m = median(listing);
    out.push(`listing ${Math.round(m)} ms ${m <= START_GOALS.listingMs && missed === 0 ? 'met' : 'MISSED'}${missed ? ` (${missed} of ${s.runs.length} runs without)` : ''}`);
  }
  const certain = s.runs.reduce((n, r) => n + r.overlaps.certain.length, 0);
  out.push(`two representatives ${certain === 0 ? 'never (met)' : `${certain} ${certain === 1 ? 'time' : 'times'} (MISSED)`}`);
  const idle = s.runs.flatMap((r) => r.idle);
  const worst = (f: (n: StartRun['idle'][number]) => number) => {
    const per = [true, false].map((rep) => idle.filter((n) => n.representative === rep).map(f).filter((v) => !Number.isNaN(v)));
    return per.every((xs) => xs.length === 0) ? undefined : Math.max(...per.filter((xs) => xs.length > 0).map(median));
  };
  const rss = worst((n) => n.rssBytes);
  out.push(rss === undefined ? 'RSS: no figure' : `RSS ${mb(rss)} MB ${rss <= START_GOALS.rssBytes ? 'met' : 'MISSED'}`);
  const cpu = worst((n) => n.cpuPct);
  out.push(cpu === undefined ? 'CPU: no figure' : `CPU ${cpu.toFixed(2)} % ${cpu <= START_GOALS.cpuPct ? 'met' : 'MISSED'}`);
  return out;
}
