/**
 * Runs the election simulation over many seeds and prints invariant violations (must be 0) and
 * failover times in simulated ms, per rule and detection means.
 *
 *   node .build-election/bench/election-sim.js [--seeds N]
 *   node .build-election/bench/election-sim.js --seed S [--cell rule/means/fault]   (replay, full trace)
 *   add --no-guard to run with config.guardOldLease off (faster crash failover, unsafe on router reboot)
 *
 * --seeds N: N random fault schedules, and N/10 failovers for each rule x means x fault cell.
 */
import type { DetectionMeans, ElectionRule } from '../src/election/config.js';
import type { FailoverResult, RandomRunResult } from '../test/election/scenarios.js';
import { runFailover, runRandomSchedule } from '../test/election/scenarios.js';
import { mulberry32 } from '../test/election/sim.js';

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

/** The parameters of random schedule `seed`, derived from the seed alone so it replays. */
function randomParams(seed: number) {
  const r = mulberry32(seed ^ 0x5eed);
  return {
    seed,
    nodes: 2 + Math.floor(r() * 7),
    loss: r() * 0.3,
    config: { rule: rules[seed % 3]!, guardOldLease },
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
    config: { rule, detection: meansSets[means]!, guardOldLease },
  };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function printFailure(label: string, replay: string, world: RandomRunResult['world'], extra = ''): void {
  console.log(`\nFAIL ${label}${extra}`);
  for (const v of world.violations.slice(0, 5)) console.log(`  ${v.kind} at ${v.at.toFixed(1)}: ${v.detail}`);
  console.log(`  replay: node .build-election/bench/election-sim.js ${replay}`);
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
  console.log(`guardOldLease=${guardOldLease}`);
  console.log(
    `random fault schedules: seeds=${seeds} failing-seeds=${bad} events=${events} (2-8 nodes, loss 0-30 %, rules rotate)`,
  );

  console.log(`\nfailover, simulated ms from the fault to the next router-confirmed representative`);
  console.log(`(${perCell} seeds per row, 2-8 nodes, half the seeds with loss up to 30 %)`);
  console.log('rule    means       fault     seeds viol none   median      p99      max');
  for (const rule of rules) {
    for (const means of Object.keys(meansSets)) {
      for (const fault of faults) {
        // A crash says nothing: withdrawal alone cannot see it (docs/election.md).
        if (means === 'withdrawal' && fault === 'crash') continue;
        const cell = `${rule}/${means}/${fault}`;
        const times: number[] = [];
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
        }
        totalSeeds += perCell;
        times.sort((a, b) => a - b);
        const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(0)).padStart(8);
        console.log(
          `${rule.padEnd(7)} ${means.padEnd(11)} ${fault.padEnd(9)} ${String(perCell).padStart(5)} ${String(viol).padStart(4)} ${String(none).padStart(4)} ${f(quantile(times, 0.5))} ${f(quantile(times, 0.99))} ${f(times.at(-1) ?? Number.NaN)}`,
        );
      }
    }
  }
  console.log(
    `\ntotal seeds=${totalSeeds} invariant-violations=${totalViolations} wall=${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  process.exitCode = totalViolations > 0 ? 1 : 0;
}

/** `npm run bench -- election [--seeds N] [--seed S] [--no-guard]`; argv is read directly. */
export async function run(_args: string[]): Promise<void> {
  await main();
}

// Also runnable on its own: node dist/bench/election-sim.js --seeds 3000
if (import.meta.url === `file://${process.argv[1]}`) await main();
