import { createHash } from 'node:crypto';
import type { NodeInfo } from '../peers/messages.js';
import type { ElectionConfig, ElectionRule } from './config.js';

/**
 * The three takeover rules. Each only decides WHEN a node speaks up after the representative left;
 * the router still decides who holds the port, so a rule that orders nodes badly (two nodes with
 * different views of the directory) costs time, never safety.
 */

export interface Ranked {
  id: string;
  info: NodeInfo;
}

/**
 * Claim 13's device value, hashed: nodes are ordered by it without revealing the balena UUID or
 * machine-id itself to the LAN.
 */
export function deviceRank(deviceValue: string): string {
  return createHash('sha256').update(`frontdoor-rank:${deviceValue}`).digest('hex').slice(0, 16);
}

/**
 * Negative when `a` should take over before `b`. `ports` (claim 12): lowest public port first,
 * nodes without one last; `device` (claim 13): lowest hashed device value first. Ties and the
 * `random` rule fall back to the id so that every node orders the same set the same way.
 */
export function compareCandidates(rule: ElectionRule, a: Ranked, b: Ranked): number {
  if (rule === 'ports') {
    const pa = a.info.publicPort > 0 ? a.info.publicPort : Number.POSITIVE_INFINITY;
    const pb = b.info.publicPort > 0 ? b.info.publicPort : Number.POSITIVE_INFINITY;
    if (pa !== pb) return pa < pb ? -1 : 1;
  } else if (rule === 'device') {
    if (a.info.rank !== b.info.rank) return a.info.rank < b.info.rank ? -1 : 1;
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** 0 for the best-placed node among `known` (which should include `self`). */
export function rankOf(rule: ElectionRule, self: Ranked, known: readonly Ranked[]): number {
  let rank = 0;
  for (const other of known) {
    if (other.id !== self.id && compareCandidates(rule, other, self) < 0) rank++;
  }
  return rank;
}

/**
 * How long a node waits before sending its claim. `random` draws from a window that doubles after
 * each collision (capped at 8x, as Ethernet's back-off does, so a crowd thins out quickly);
 * `ports` and `device` wait one slot per better-placed node.
 */
export function takeoverDelayMs(
  config: Pick<ElectionConfig, 'rule' | 'backoffWindowMs' | 'rankSlotMs'>,
  self: Ranked,
  known: readonly Ranked[],
  attempt: number,
  random: () => number,
): number {
  if (config.rule === 'random') {
    return random() * config.backoffWindowMs * 2 ** Math.min(attempt, 3);
  }
  // After a failed round the order is the same, so spread retries within the slot to break a tie
  // between two nodes that both believe they are first.
  const jitter = attempt > 0 ? random() * config.rankSlotMs : 0;
  return rankOf(config.rule, self, known) * config.rankSlotMs + jitter;
}
