import { ConfigError } from '../config/errors.js';
import { defaultSettings, SETTINGS } from '../config/settings.js';
import type { SettingSpec, Settings } from '../config/settings.js';
import type { TransportProtocol } from '../router/types.js';
import { ElectionConfigError } from './errors.js';

/**
 * Every timing knob of the election in one place, like memberlist's DefaultLANConfig. The
 * defaults are for one home LAN (sub-millisecond to tens of milliseconds between nodes, one
 * router answering in 5-35 ms); docs/election.md has the table and the reasoning. A knob a user
 * can set takes its default from the setting's (src/config/settings.ts), so the election run by
 * `frontdoor run`, the simulation and the docs all start from the same values.
 */

/** How the nodes decide who takes over the well-known port (claims 11, 12, 13). */
export type ElectionRule = 'random' | 'ports' | 'device';

/** Which signs of the representative's departure a follower acts on (claims 14, 15, 16). */
export interface DetectionMeans {
  /** Claim 14: the representative says it is leaving. Fast, but says nothing about crashes. */
  withdrawal: boolean;
  /** Claim 15: no inquiry (or any other word) from the representative for `silenceTimeoutMs`. */
  silence: boolean;
  /** Claim 16: `probeMisses` probes in a row unanswered. */
  probe: boolean;
}

export interface ElectionConfig {
  /** The public port whose router mapping makes its holder the representative. */
  wellKnownPort: number;
  protocol: TransportProtocol;
  /**
   * Lease asked for the well-known mapping. With secure_mode a crashed representative's mapping
   * cannot be deleted by anyone else, so this bounds crash failover when nothing faster exists.
   */
  leaseMs: number;
  /**
   * The node believes in its lease this much less than it was granted: routers count leases in
   * whole seconds and expire them on their own timer, so the node must give up first.
   */
  leaseMarginMs: number;
  /** Renew when this fraction of the lease has passed: half leaves room for several retries. */
  renewFraction: number;
  /** A router call that has not answered by then is a failure (UPnP answers in 5-35 ms). */
  routerTimeoutMs: number;
  /** Retry interval of a claim the router refused or did not answer (old lease not yet expired). */
  retryIntervalMs: number;
  /** A claimant whose router calls time out this many times in a row lets another node try. */
  routerGiveUpAfter: number;
  /**
   * A starting node listens this long for a representative before claiming the port itself:
   * after a router reboot the port is free, and a newcomer that did not hear the representative
   * would take it from one that does not know yet. The newcomer's first reply makes a
   * representative announce at once and a second reply goes out halfway; one and a half inquiry
   * intervals add at least one inquiry. Shorter failed the simulation's safety check under 30 %
   * loss (500 and 1000 ms: 2 of 1000 seeds; 1500 ms: none of 4000; docs/election.md).
   */
  startupListenMs: number;
  /** Claim 4 (and the heartbeat of claim 15): how often the representative sends `inquiry`. */
  inquiryIntervalMs: number;
  /** Claim 7: how often the representative sends `announce` with its port and WAN address. */
  announceIntervalMs: number;
  /** Every node sends an unasked `reply` this often, so directories survive an election. */
  refreshIntervalMs: number;
  /** A node not heard from for this long leaves the directory (crashes send no withdraw). */
  directoryTtlMs: number;
  /** Claim 15: silence after which the representative is taken as gone. */
  silenceTimeoutMs: number;
  /** A follower that knows no representative at all starts a takeover after this long. */
  leaderlessTimeoutMs: number;
  /** Claim 16: how often a follower probes the representative. */
  probeIntervalMs: number;
  /** Claim 16: a probe not answered within this is a miss. */
  probeTimeoutMs: number;
  /** Claim 16: misses in a row that mean the representative is gone. */
  probeMisses: number;
  /** Claim 11: a random back-off is drawn from [0, this) (doubled after each collision, up to 8x). */
  backoffWindowMs: number;
  /** Claim 11: another claim within this after ours is a collision; must exceed the LAN delay. */
  collisionWindowMs: number;
  /** Claims 12, 13: delay per rank step; must exceed the LAN delay so the better rank is heard. */
  rankSlotMs: number;
  /** A node that yielded to a claimer resumes if it hears neither its claim nor its announce for this long. */
  yieldTimeoutMs: number;
  /**
   * Without a withdraw, take the port only once the old representative's own lease must have
   * ended (last heard + lease + one inquiry interval). The router enforces the lease anyway,
   * unless it reboots: then it would hand the port to a second node while a cut-off
   * representative still believes in its lease. Off trades that corner for faster crash failover.
   */
  guardOldLease: boolean;
  /**
   * The representative names an heir in every inquiry and announce (the rule applied in advance:
   * a random member, the lowest public port, the lowest device value). When the representative
   * leaves, the heir claims at once, without back-off or collision window; the others hold back
   * `heirGraceMs` more, then elect among themselves as usual, in case the heir is gone too.
   */
  heir: boolean;
  heirGraceMs: number;
  /**
   * The well-known port is mapped to a floating LAN address the representative holds
   * (docs/floating-address.md). The router then sees one internal client whoever holds it, so it
   * cannot be the lock: nodes start through the LAN claim instead of asking the router first, a
   * takeover does not wait for the old lease, and two representatives (a healed partition)
   * settle by term: the older term steps down and drops the address.
   */
  floating: boolean;
  /** Floating mode: how long a leaving representative keeps serving while its heir takes over. */
  handoverTimeoutMs: number;
  detection: DetectionMeans;
  rule: ElectionRule;
}

/**
 * The setting each knob is made from: `frontdoor run` and defaultElectionConfig both go through
 * electionFromSettings, so the election's defaults are the settings' defaults. Also how an
 * invalid knob is named to the user.
 */
export const KNOB_SETTING = {
  wellKnownPort: 'publicPort',
  leaseMs: 'lease',
  routerTimeoutMs: 'routerTimeout',
  startupListenMs: 'inquiryInterval',
  inquiryIntervalMs: 'inquiryInterval',
  silenceTimeoutMs: 'silenceTimeout',
  leaderlessTimeoutMs: 'silenceTimeout',
  probeIntervalMs: 'probeInterval',
  probeTimeoutMs: 'probeInterval',
  probeMisses: 'probeMisses',
  detection: 'detection',
  rule: 'rule',
} as const satisfies Partial<Record<keyof ElectionConfig, keyof Settings>>;

/** The knobs a setting decides. */
export type SetKnob = keyof typeof KNOB_SETTING;

/** The knobs no setting reaches, with the reason for each value in docs/election.md. */
const FIXED_KNOBS = {
  protocol: 'TCP',
  leaseMarginMs: 500,
  renewFraction: 0.5,
  retryIntervalMs: 500,
  routerGiveUpAfter: 3,
  announceIntervalMs: 5_000,
  refreshIntervalMs: 5_000,
  directoryTtlMs: 20_000,
  backoffWindowMs: 500,
  collisionWindowMs: 150,
  rankSlotMs: 200,
  yieldTimeoutMs: 3_000,
  guardOldLease: true,
  heir: true,
  heirGraceMs: 1_000,
  floating: false,
  handoverTimeoutMs: 2_000,
} as const satisfies Omit<ElectionConfig, SetKnob>;

/**
 * How long a router must have kept its table before a free well-known port is free for everyone:
 * a lease (any belief from before a table loss has ended by then) plus the listen, for slack.
 * Younger, nobody claims it (docs/election.md, "Why it is safe").
 */
export function settledTableAgeMs(cfg: Pick<ElectionConfig, 'leaseMs' | 'startupListenMs'>): number {
  return cfg.leaseMs + cfg.startupListenMs;
}

/**
 * The knobs the settings decide, unchecked (electionSettings checks them). docs/election.md says
 * in words how the derived ones are made (tools/election/defaults-table.ts): change both together.
 */
export function electionFromSettings(s: Settings): Pick<ElectionConfig, SetKnob> {
  return {
    wellKnownPort: s.publicPort,
    rule: s.rule,
    leaseMs: s.lease,
    inquiryIntervalMs: s.inquiryInterval,
    silenceTimeoutMs: s.silenceTimeout,
    probeIntervalMs: s.probeInterval,
    probeTimeoutMs: Math.max(1, Math.round(s.probeInterval * 0.8)),
    probeMisses: s.probeMisses,
    routerTimeoutMs: s.routerTimeout,
    detection: {
      withdrawal: s.detection.includes('withdrawal'),
      silence: s.detection.includes('silence'),
      probe: s.detection.includes('probe'),
    },
    // The leaderless wait must outlast a heartbeat gap; keep it tied to the heartbeat the user set.
    leaderlessTimeoutMs: Math.max(5000, s.silenceTimeout),
    startupListenMs: Math.round(1.5 * s.inquiryInterval),
  };
}

/** What `frontdoor run` runs with when no setting is given. */
export const defaultElectionConfig: Readonly<ElectionConfig> = deepFreeze({ ...FIXED_KNOBS, ...electionFromSettings(defaultSettings()) });

function deepFreeze(cfg: ElectionConfig): Readonly<ElectionConfig> {
  Object.freeze(cfg.detection);
  return Object.freeze(cfg);
}

/**
 * The election's knobs from the settings, checked: a knob that does not pass is reported as the
 * setting it comes from (ConfigError naming the flag), since that is what the user can change.
 */
export function electionSettings(s: Settings): Pick<ElectionConfig, SetKnob> {
  const init = electionFromSettings(s);
  try {
    electionConfig(init);
  } catch (err) {
    if (err instanceof ElectionConfigError) {
      const knob = err.setting.split('.')[0] ?? err.setting;
      if (knob === 'renewFraction') {
        const least = Math.ceil((2 * (s.routerTimeout + 500) + 1000) / 1000);
        throw new ConfigError(
          '--lease',
          `${s.lease / 1000} s leaves no time for a failed renewal and a retry before the lease ends: with --router-timeout ${s.routerTimeout} ms it must be at least ${least} s`,
        );
      }
      throw new ConfigError(settingFlag(knob) ?? err.setting, err.message);
    }
    throw err;
  }
  return init;
}

function settingFlag(knob: string): string | undefined {
  const key: string | undefined = (KNOB_SETTING as Record<string, string>)[knob];
  return (SETTINGS as readonly SettingSpec[]).find((s) => s.key === key)?.flag;
}

export type ElectionConfigInit = Partial<Omit<ElectionConfig, 'detection'>> & { detection?: Partial<DetectionMeans> };

/** Defaults overlaid with `init`, validated. */
export function electionConfig(init: ElectionConfigInit = {}): ElectionConfig {
  const cfg: ElectionConfig = {
    ...defaultElectionConfig,
    ...init,
    detection: { ...defaultElectionConfig.detection, ...init.detection },
  };
  validateElectionConfig(cfg);
  return cfg;
}

const durations = [
  'leaseMs',
  'routerTimeoutMs',
  'retryIntervalMs',
  'startupListenMs',
  'inquiryIntervalMs',
  'announceIntervalMs',
  'refreshIntervalMs',
  'directoryTtlMs',
  'silenceTimeoutMs',
  'leaderlessTimeoutMs',
  'probeIntervalMs',
  'probeTimeoutMs',
  'backoffWindowMs',
  'collisionWindowMs',
  'rankSlotMs',
  'yieldTimeoutMs',
  'heirGraceMs',
  'handoverTimeoutMs',
] as const satisfies ReadonlyArray<keyof ElectionConfig>;

/** Throws ElectionConfigError naming the first bad setting. */
export function validateElectionConfig(cfg: ElectionConfig): void {
  const bad = (setting: string, why: string): never => {
    throw new ElectionConfigError(setting, why);
  };
  if (!Number.isInteger(cfg.wellKnownPort) || cfg.wellKnownPort < 1 || cfg.wellKnownPort > 65535) {
    bad('wellKnownPort', `must be a port number 1-65535, got ${cfg.wellKnownPort}`);
  }
  if (cfg.protocol !== 'TCP' && cfg.protocol !== 'UDP') bad('protocol', `must be TCP or UDP, got ${cfg.protocol}`);
  for (const k of durations) {
    const v = cfg[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad(k, `must be a positive number of ms, got ${v}`);
  }
  // Routers take leases in whole seconds; a fraction would be rounded by each client differently.
  if (cfg.leaseMs % 1000 !== 0) bad('leaseMs', `must be whole seconds, got ${cfg.leaseMs} ms`);
  if (!(cfg.leaseMarginMs >= 0) || cfg.leaseMarginMs >= cfg.leaseMs / 2) {
    bad('leaseMarginMs', `must be >= 0 and below half the lease, got ${cfg.leaseMarginMs}`);
  }
  if (!(cfg.renewFraction > 0 && cfg.renewFraction < 1)) bad('renewFraction', `must be in (0, 1), got ${cfg.renewFraction}`);
  // A renewal that times out once must still leave time for a retry before the node's deadline.
  const renewAt = cfg.leaseMs * cfg.renewFraction;
  if (renewAt + cfg.routerTimeoutMs + cfg.retryIntervalMs > cfg.leaseMs - cfg.leaseMarginMs) {
    bad('renewFraction', 'leaves no time for one failed renewal and a retry before the lease ends');
  }
  if (!Number.isInteger(cfg.routerGiveUpAfter) || cfg.routerGiveUpAfter < 1) {
    bad('routerGiveUpAfter', `must be an integer >= 1, got ${cfg.routerGiveUpAfter}`);
  }
  if (!Number.isInteger(cfg.probeMisses) || cfg.probeMisses < 1) bad('probeMisses', `must be an integer >= 1, got ${cfg.probeMisses}`);
  if (cfg.probeTimeoutMs > cfg.probeIntervalMs) bad('probeTimeoutMs', 'must not exceed probeIntervalMs');
  // Followers would suspect a live representative between two of its inquiries.
  if (cfg.silenceTimeoutMs <= cfg.inquiryIntervalMs * 2) bad('silenceTimeoutMs', 'must exceed two inquiry intervals');
  if (cfg.leaderlessTimeoutMs <= cfg.inquiryIntervalMs) bad('leaderlessTimeoutMs', 'must exceed one inquiry interval');
  if (cfg.startupListenMs <= cfg.inquiryIntervalMs) bad('startupListenMs', 'must exceed one inquiry interval');
  // Yielders must outlast the gap between a claimant's repeated claims, or they resume too early.
  if (cfg.yieldTimeoutMs < 2 * cfg.retryIntervalMs) bad('yieldTimeoutMs', 'must be at least two retry intervals');
  if (cfg.directoryTtlMs <= 2 * cfg.refreshIntervalMs) bad('directoryTtlMs', 'must exceed two refresh intervals');
  if (typeof cfg.guardOldLease !== 'boolean') bad('guardOldLease', 'must be true or false');
  if (typeof cfg.heir !== 'boolean') bad('heir', 'must be true or false');
  if (typeof cfg.floating !== 'boolean') bad('floating', 'must be true or false');
  for (const k of ['withdrawal', 'silence', 'probe'] as const) {
    if (typeof cfg.detection?.[k] !== 'boolean') bad(`detection.${k}`, 'must be true or false');
  }
  if (!cfg.detection.withdrawal && !cfg.detection.silence && !cfg.detection.probe) {
    bad('detection', 'at least one of withdrawal, silence, probe must be enabled');
  }
  if (cfg.rule !== 'random' && cfg.rule !== 'ports' && cfg.rule !== 'device') {
    bad('rule', `must be random, ports or device, got ${String(cfg.rule)}`);
  }
}
