import type { ElectionConfig, ElectionConfigInit } from '../../src/election/config.js';
import type { WorldOptions } from './sim.js';
import { World } from './sim.js';

/**
 * Scenarios shared by the tests (test/election/sim.test.ts) and the benchmark
 * (bench/election-sim.ts): start, wait, one fault or a random schedule of them, then a quiet
 * period at the end of which liveness and directory convergence are checked.
 */

/**
 * How long after the last fault the LAN must have exactly one representative, from the config:
 * the crashed holder's lease, the slowest enabled detection, a few takeover rounds, a claimant
 * giving up, and a start. Deliberately generous: it is a bound, not an expectation.
 */
export function settleBoundMs(cfg: ElectionConfig, nodes: number): number {
  const d = cfg.detection;
  const detection = Math.max(
    d.silence ? cfg.silenceTimeoutMs : 0,
    d.probe ? cfg.probeIntervalMs * (cfg.probeMisses + 1) + cfg.probeTimeoutMs : 0,
    cfg.leaderlessTimeoutMs,
  );
  const round =
    cfg.rule === 'random' ? cfg.backoffWindowMs * 8 + cfg.collisionWindowMs : cfg.rankSlotMs * (nodes + 1) + cfg.collisionWindowMs;
  return (
    cfg.leaseMs +
    cfg.routerTimeoutMs * (cfg.routerGiveUpAfter + 1) +
    detection +
    cfg.leaderlessTimeoutMs +
    3 * round +
    2 * cfg.yieldTimeoutMs +
    cfg.startupListenMs +
    5_000
  );
}

/** Long enough for crashed nodes to leave every directory and restarted ones to be heard. */
export function directoryBoundMs(cfg: ElectionConfig, nodes: number): number {
  return Math.max(settleBoundMs(cfg, nodes), cfg.directoryTtlMs + 2 * cfg.refreshIntervalMs + 1_000);
}

export function bootAll(world: World, at = 0, spreadMs = 0): void {
  for (const h of world.hosts) {
    const t = at + (spreadMs > 0 ? world.rng() * spreadMs : 0);
    world.at(t, `boot ${h.id}`, () => world.boot(h.index));
  }
}

export interface FailoverOptions extends Omit<WorldOptions, 'config'> {
  config?: ElectionConfigInit;
  fault: 'graceful' | 'crash';
  /** When the representative is hit; it has settled by then. */
  faultAt?: number;
}

export interface FailoverResult {
  world: World;
  /** When the representative was hit, in sim ms. */
  faultAt: number;
  /** From the fault to the first moment another node serves (router-confirmed), in sim ms. */
  failoverMs: number | undefined;
  old: string | undefined;
  flaps: number;
}

/** Starts the LAN, hits whoever is representative at `faultAt`, and runs a quiet period. */
export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const world = new World(o);
  const faultAt = o.faultAt ?? 12_000 + world.rng() * 10_000;
  bootAll(world);
  let old: string | undefined;
  world.at(faultAt, `fault ${o.fault} representative`, () => {
    const i = world.representativeIndex();
    if (i === undefined) return;
    old = world.hosts[i]!.id;
    if (o.fault === 'graceful') world.stop(i, true);
    else world.crash(i);
  });
  const end = faultAt + directoryBoundMs(world.config, o.nodes);
  await world.runUntil(end);
  world.checkSettled();
  const failoverMs = world.failoverAfter(faultAt, old);
  return { world, faultAt, failoverMs, old, flaps: world.flapsAfter(faultAt + (failoverMs ?? 0) + 1) };
}

export interface RandomRunOptions extends Omit<WorldOptions, 'config'> {
  config?: ElectionConfigInit;
  /** Faults happen in [10 s, horizon); everything heals at the horizon. */
  horizonMs?: number;
  faults?: number;
}

export interface RandomRunResult {
  world: World;
  healedAt: number;
  faultsApplied: string[];
}

function pick<T>(rng: () => number, xs: readonly T[]): T | undefined {
  return xs.length === 0 ? undefined : xs[Math.floor(rng() * xs.length)];
}

/**
 * A random fault schedule: crashes, graceful stops, restarts, partitions (the router on either
 * side), nodes cut off from the router, router reboots and loss up to 30 %, all drawn from the
 * world's PRNG. At the horizon partitions heal and router links come back (loss stays), and at
 * least one node is up; then the quiet period.
 */
export async function runRandomSchedule(o: RandomRunOptions): Promise<RandomRunResult> {
  const world = new World(o);
  const rng = world.rng;
  const horizon = o.horizonMs ?? 60_000;
  const count = o.faults ?? 1 + Math.floor(rng() * 6);
  const applied: string[] = [];
  bootAll(world, 0, rng() < 0.5 ? 0 : 3_000);
  const kinds = ['crash', 'graceful', 'restart', 'partition', 'cut', 'reboot', 'loss'] as const;
  const times = Array.from({ length: count }, () => 10_000 + rng() * (horizon - 15_000)).sort((a, b) => a - b);
  for (const t of times) {
    const kind = pick(rng, kinds)!;
    world.at(t, `fault ${kind}`, () => {
      const up = world.upIndexes();
      const rep = world.representativeIndex();
      // Half the time aim at the representative: that is where the interesting failures are.
      const victim = rep !== undefined && rng() < 0.5 ? rep : pick(rng, up);
      switch (kind) {
        case 'crash':
        case 'graceful':
          if (up.length < 2 || victim === undefined) return;
          if (kind === 'crash') world.crash(victim);
          else world.stop(victim, true);
          applied.push(`${Math.round(t)} ${kind} n${victim}`);
          return;
        case 'restart': {
          const down = world.hosts.filter((h) => h.status === 'crashed' || h.status === 'stopped').map((h) => h.index);
          const i = pick(rng, down);
          if (i === undefined) return;
          world.boot(i);
          applied.push(`${Math.round(t)} restart n${i}`);
          return;
        }
        case 'partition': {
          const a: number[] = [];
          const b: number[] = [];
          for (const h of world.hosts) (rng() < 0.5 ? a : b).push(h.index);
          const routerGroup = rng() < 0.5 ? 0 : 1;
          world.partition([a, b], routerGroup);
          const healIn = 2_000 + rng() * 20_000;
          world.at(Math.min(t + healIn, horizon), 'heal partition', () => world.heal());
          applied.push(`${Math.round(t)} partition ${JSON.stringify([a, b])} router:${routerGroup} for ${Math.round(healIn)}`);
          return;
        }
        case 'cut': {
          if (victim === undefined) return;
          const address = world.hosts[victim]!.address;
          world.router.cut.add(address);
          const back = 2_000 + rng() * 30_000;
          world.at(Math.min(t + back, horizon), `router link back n${victim}`, () => world.router.cut.delete(address));
          applied.push(`${Math.round(t)} cut n${victim} from router for ${Math.round(back)}`);
          return;
        }
        case 'reboot':
          world.router.reboot();
          applied.push(`${Math.round(t)} router reboot`);
          return;
        case 'loss':
          world.loss = rng() * 0.3;
          applied.push(`${Math.round(t)} loss ${world.loss.toFixed(2)}`);
          return;
      }
    });
  }
  world.at(horizon, 'heal everything', () => {
    world.heal();
    world.router.cut.clear();
    if (world.upIndexes().length === 0) {
      const i = world.hosts.find((h) => h.status !== 'stopping')?.index;
      if (i !== undefined) world.boot(i);
    }
  });
  await world.runUntil(horizon + directoryBoundMs(world.config, o.nodes));
  world.checkSettled();
  return { world, healedAt: horizon, faultsApplied: applied };
}
