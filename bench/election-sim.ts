/**
 * Runs the election simulation over many seeds and prints invariant violations (must be 0),
 * failover and detection times in simulated ms, per rule and detection means, and the LAN
 * messages a settled LAN sends per second per node.
 *
 *   node dist/bench/run.js election [--seeds N]
 *   node dist/bench/run.js election --seed S [--cell rule/means/fault]   (replay, full trace)
 *   add --no-guard to run with config.guardOldLease off (faster crash failover, unsafe on router reboot)
 *   add --probe-interval MS and/or --probe-misses N to run with those settings instead of the
 *   defaults (made into the election's knobs as `frontdoor run` does)
 *
 * --seeds N: N random fault schedules, and N/10 failovers for each rule x means x fault cell.
 */
import { defaultSettings } from '../src/config/settings.js';
import type { Settings } from '../src/config/settings.js';
import type { DetectionMeans, ElectionConfigInit, ElectionRule } from '../src/election/config.js';
import { electionFromSettings } from '../src/election/config.js';
import type { FailoverResult, RandomRunResult } from '../test/election/scenarios.js';
import { bootAll, runFailover, runRandomSchedule } from '../test/election/scenarios.js';
import { mulberry32, World } from '../test/election/sim.js';

const rules: ElectionRule[] = ['random', 'ports', 'device'];
const meansSets: Record<string, DetectionMeans> = {
  all: { withdrawal: true, silence: true, probe: true },
  withdrawal: { withdrawal: true, silence: false, probe: false },
  silence: { withdrawal: false, silence: true, probe: false },
  probe: { withdrawal: false, silence: false, probe: true },
};
const faults = ['graceful', 'crash'] as const;
/** --no-guard: measure what config.guardOldLease costs (and what it prevents). */
const guardOldLease = !process.argv.includes('--no-guard');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The probe knobs of the settings given (--probe-interval, --probe-misses), else of the defaults. */
function probeKnobs(): Pick<ElectionConfigInit, 'probeIntervalMs' | 'probeTimeoutMs' | 'probeMisses'> {
  const s: Settings = defaultSettings();
  const interval = arg('--probe-interval');
  const misses = arg('--probe-misses');
  if (interval !== undefined) s.probeInterval = Number(interval);
  if (misses !== undefined) s.probeMisses = Number(misses);
  const { probeIntervalMs, probeTimeoutMs, probeMisses } = electionFromSettings(s);
  return { probeIntervalMs, probeTimeoutMs, probeMisses };
}
const probe = probeKnobs();

/** The parameters of random schedule `seed`, derived from the seed alone so it replays. */
function randomParams(seed: number) {
  const r = mulberry32(seed ^ 0x5eed);
  return {
    seed,
    nodes: 2 + Math.floor(r() * 7),
    loss: r() * 0.3,
    config: { ...probe, rule: rules[seed % 3]!, guardOldLease },
  };
}

function failoverParams(cell: string, seed: number) {
  const [rule, means, fault] = cell.split('/') as [ElectionRule, string, (typeof faults)[number]];
  const r = mulberry32(seed ^ 0xfa11);
  return {
    seed,
    nodes: 2 + Math.floor(r() * 7),
    loss: r() < 0.5 ? 0 : r() * 0.3,
    fault,
    config: { ...probe, rule, detection: meansSets[means]!, guardOldLease },
  };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function probeArgs(): string {
  return ['--probe-interval', '--probe-misses'].map((n) => (arg(n) === undefined ? '' : ` ${n} ${arg(n)}`)).join('');
}

function printFailure(label: string, replay: string, world: RandomRunResult['world'], extra = ''): void {
  console.log(`\nFAIL ${label}${extra}`);
  for (const v of world.violations.slice(0, 5)) console.log(`  ${v.kind} at ${v.at.toFixed(1)}: ${v.detail}`);
  console.log(`  replay: node dist/bench/run.js election ${replay}${probeArgs()}`);
  console.log((world.firstViolationTrace ?? world.traceLines()).slice(-80).join('\n'));
}

async function replay(seed: number, cell: string | undefined): Promise<void> {
  let res: RandomRunResult | FailoverResult;
  if (cell === undefined) {
    const p = randomParams(seed);
    res = await runRandomSchedule({ ...p, verbose: true, traceLimit: 1e6 });
    console.log(JSON.stringify({ ...p, faults: res.faultsApplied }));
  } else {
    const p = failoverParams(cell, seed);
    res = await runFailover({ ...p, verbose: true, traceLimit: 1e6 });
    console.log(JSON.stringify({ ...p, old: res.old, failoverMs: res.failoverMs }));
  }
  console.log(res.world.traceLines().join('\n'));
  console.log(`violations: ${JSON.stringify(res.world.violations, null, 1)}`);
  process.exitCode = res.world.violations.length > 0 ? 1 : 0;
}

async function main(): Promise<void> {
  const one = arg('--seed');
  if (one !== undefined) {
    await replay(Number(one), arg('--cell'));
    return;
  }
  const seeds = Number(arg('--seeds') ?? 1000);
  const perCell = Math.max(10, Math.ceil(seeds / 10));
  const t0 = performance.now();
  let totalViolations = 0;
  let totalSeeds = 0;

  let bad = 0;
  let events = 0;
  for (let s = 0; s < seeds; s++) {
    const p = randomParams(s);
    const r = await runRandomSchedule(p);
    events += r.world.eventsRun;
    if (r.world.violations.length > 0) {
      bad++;
      totalViolations += r.world.violations.length;
      printFailure(`random schedule seed ${s}`, `--seed ${s}`, r.world, ` faults ${JSON.stringify(r.faultsApplied)}`);
    }
  }
  totalSeeds += seeds;
  console.log(`guardOldLease=${guardOldLease} probeIntervalMs=${probe.probeIntervalMs} probeTimeoutMs=${probe.probeTimeoutMs} probeMisses=${probe.probeMisses}`);
  console.log(
    `random fault schedules: seeds=${seeds} failing-seeds=${bad} events=${events} (2-8 nodes, loss 0-30 %, rules rotate)`,
  );

  console.log(`\nfailover, simulated ms from the fault to the next router-confirmed representative;`);
  console.log('detect: from the fault to the first follower that takes the representative as gone');
  console.log(`(${perCell} seeds per row, 2-8 nodes, half the seeds with loss up to 30 %)`);
  console.log('rule    means       fault     seeds viol none   median      p99      max  detect-median   detect-max');
  for (const rule of rules) {
    for (const means of Object.keys(meansSets)) {
      for (const fault of faults) {
        // A crash says nothing: withdrawal alone cannot see it (docs/election.md).
        if (means === 'withdrawal' && fault === 'crash') continue;
        const cell = `${rule}/${means}/${fault}`;
        const times: number[] = [];
        const detections: number[] = [];
        let viol = 0;
        let none = 0;
        for (let s = 0; s < perCell; s++) {
          const r = await runFailover(failoverParams(cell, s));
          // Withdrawal alone cannot see a lost withdraw: that is a limit of the means, counted
          // under "none", not a broken invariant. Safety and directory problems still count.
          const counted =
            means === 'withdrawal' ? r.world.violations.filter((v) => v.kind !== 'liveness') : r.world.violations;
          if (counted.length > 0) {
            viol++;
            totalViolations += counted.length;
            printFailure(`${cell} seed ${s}`, `--seed ${s} --cell ${cell}`, r.world);
          }
          if (r.failoverMs === undefined) none++;
          else times.push(r.failoverMs);
          const seen = r.world.departureAfter(r.faultAt);
          if (seen !== undefined) detections.push(seen.afterMs);
        }
        totalSeeds += perCell;
        times.sort((a, b) => a - b);
        detections.sort((a, b) => a - b);
        const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(0)).padStart(8);
        console.log(
          `${rule.padEnd(7)} ${means.padEnd(11)} ${fault.padEnd(9)} ${String(perCell).padStart(5)} ${String(viol).padStart(4)} ${String(none).padStart(4)} ${f(quantile(times, 0.5))} ${f(quantile(times, 0.99))} ${f(times.at(-1) ?? Number.NaN)} ${f(quantile(detections, 0.5)).padStart(14)} ${f(detections.at(-1) ?? Number.NaN).padStart(12)}`,
        );
      }
    }
  }
  await messageRates();
  await falseDepartures();
  console.log(
    `\ntotal seeds=${totalSeeds} invariant-violations=${totalViolations} wall=${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  process.exitCode = totalViolations > 0 ? 1 : 0;
}

/**
 * LAN messages per second per node on a settled LAN (no fault, no loss), counted over a minute
 * of simulated time after 30 s of settling, over 5 seeds. A broadcast counts once (one multicast
 * datagram); with the unicast fallback (the default) each also goes to every known peer, which
 * the "datagrams" column adds.
 */
async function messageRates(): Promise<void> {
  const from = 30_000;
  const to = 90_000;
  console.log(`\nLAN messages per second per node, settled LAN (all detection means, rule random, no loss, 5 seeds)`);
  console.log('nodes  messages  of-them-probes  datagrams  representative-messages');
  for (const nodes of [2, 3, 5, 8]) {
    let all = 0;
    let probes = 0;
    let broadcasts = 0;
    let rep = 0;
    const seeds = 5;
    for (let seed = 0; seed < seeds; seed++) {
      const world = new World({ seed, nodes, config: { ...probe, guardOldLease } });
      bootAll(world);
      await world.runUntil(from);
      const before = new Map(world.sent);
      const repId = world.hosts[world.representativeIndex() ?? -1]?.id;
      const repBefore = repId === undefined ? 0 : (world.sentBy.get(repId) ?? 0);
      await world.runUntil(to);
      for (const [kind, n] of world.sent) {
        const d = n - (before.get(kind) ?? 0);
        all += d;
        if (kind.endsWith(' probe') || kind.endsWith(' probe-ack')) probes += d;
        if (kind.startsWith('broadcast ')) broadcasts += d;
      }
      if (repId !== undefined) rep += (world.sentBy.get(repId) ?? 0) - repBefore;
    }
    const perNode = (x: number) => x / seeds / nodes / ((to - from) / 1000);
    const perRep = rep / seeds / ((to - from) / 1000);
    const datagrams = perNode(all) + perNode(broadcasts) * (nodes - 1);
    console.log(
      `${String(nodes).padStart(5)} ${perNode(all).toFixed(1).padStart(9)} ${perNode(probes).toFixed(1).padStart(15)} ${datagrams.toFixed(1).padStart(10)} ${perRep.toFixed(1).padStart(24)}`,
    );
  }
}

/**
 * Followers that take a live representative as gone, per follower per hour, on a LAN with no
 * fault: what a detection as fast as the probe's costs when datagrams are lost (the sim loses
 * each one independently). 5 nodes, 10 minutes of simulated time after settling, 3 seeds.
 */
async function falseDepartures(): Promise<void> {
  const from = 30_000;
  const to = from + 600_000;
  const nodes = 5;
  const seeds = 3;
  console.log(`\nfalse departures (no fault) per follower per hour, ${nodes} nodes, rule random, all means, ${seeds} seeds`);
  console.log('loss   departures/h  by-probe/h');
  for (const loss of [0, 0.01, 0.05, 0.1, 0.2, 0.3]) {
    let all = 0;
    let byProbe = 0;
    for (let seed = 0; seed < seeds; seed++) {
      const world = new World({ seed, nodes, loss, config: { ...probe, guardOldLease } });
      bootAll(world);
      await world.runUntil(to);
      const seen = world.departures.filter((d) => d.at >= from);
      all += seen.length;
      byProbe += seen.filter((d) => d.reason.includes('probe')).length;
    }
    const perHour = (x: number) => (x / seeds / (nodes - 1) / ((to - from) / 3_600_000)).toFixed(1);
    console.log(`${`${(loss * 100).toFixed(0)} %`.padStart(4)} ${perHour(all).padStart(14)} ${perHour(byProbe).padStart(11)}`);
  }
}

/** `npm run bench -- election [--seeds N] [--seed S] [--no-guard] [--probe-interval MS] [--probe-misses N]`; argv is read directly. */
export async function run(_args: string[]): Promise<void> {
  await main();
}

// Also runnable on its own: node dist/bench/election-sim.js --seeds 3000
if (import.meta.url === `file://${process.argv[1]}`) await main();
