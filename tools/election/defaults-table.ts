/**
 * docs/election.md's table of the election's defaults, made from defaultElectionConfig and the
 * settings each knob comes from (scripts/generate-config.mjs writes it; test/election checks it
 * is current). Build-only. The reasons are prose, kept here beside the values they explain.
 */
import { SETTINGS } from '../../src/config/settings.js';
import type { SettingSpec } from '../../src/config/settings.js';
import { defaultElectionConfig, KNOB_SETTING } from '../../src/election/config.js';
import type { ElectionConfig, SetKnob } from '../../src/election/config.js';

/** Why each knob has its default, in the table's order; a knob without one does not compile. */
const WHY: Record<keyof ElectionConfig, string> = {
  wellKnownPort: 'the public port of the portal',
  protocol: 'the portal is HTTP(S)',
  leaseMs: "with secure_mode a crashed holder's mapping stays until its lease ends: bounds crash failover",
  leaseMarginMs: 'routers count leases in whole seconds; the node gives up first',
  renewFraction: 'leaves room for several failed renewals before the deadline',
  routerTimeoutMs: 'UPnP answers in 5-35 ms; NAT-PMP resends take longer',
  retryIntervalMs: "claimant's retry while the old lease runs",
  routerGiveUpAfter: 'a claimant that cannot reach the router lets another try',
  startupListenMs: "a newcomer's reply makes the representative announce at once, a second goes out halfway, and one inquiry comes: shorter failed the safety check under loss (below)",
  inquiryIntervalMs: 'claim 4 and the heartbeat of claim 15',
  announceIntervalMs: 'claim 7',
  refreshIntervalMs: 'unasked replies keep directories alive during an election',
  directoryTtlMs: 'crashed nodes leave the directory (4 refreshes: loss-tolerant)',
  silenceTimeoutMs: 'five inquiries lost in a row at 30 % loss: 0.24 %',
  leaderlessTimeoutMs: 'a follower without any representative starts a takeover; must outlast a heartbeat gap',
  probeIntervalMs: 'claim 16; any message from the representative also counts as an answer; why this often: below',
  probeTimeoutMs: 'claim 16: a probe not answered within this is a miss',
  probeMisses: 'claim 16: misses in a row that mean the representative is gone',
  backoffWindowMs: 'claim 11',
  collisionWindowMs: 'claim 11; must exceed the LAN delay',
  rankSlotMs: 'claims 12, 13; must exceed the LAN delay',
  yieldTimeoutMs: "six missed repeats of a claimant's claim before resuming",
  guardOldLease: 'safe even when the router reboots (costs crash failover, see below)',
  heir: 'a graceful takeover without back-off or collision window',
  heirGraceMs: 'the others wait this much more, in case the heir is gone too',
  floating: 'see "Floating mode"',
  handoverTimeoutMs: "floating mode: how long a leaving representative serves while its heir takes over",
  detection: 'withdrawal (14), silence (15), probe (16)',
  rule: '`random` (11), `ports` (12), `device` (13)',
};

/** How a knob is made from its setting when it is not the setting itself (electionFromSettings). */
const DERIVED: Partial<Record<SetKnob, (flag: string) => string>> = {
  probeTimeoutMs: (f) => `80 % of ${f}`,
  leaderlessTimeoutMs: (f) => `${f}, at least 5 s`,
  startupListenMs: (f) => `1.5 × ${f}`,
};

/** Knobs a setting reaches outside electionFromSettings. */
const ELSEWHERE: Partial<Record<keyof ElectionConfig, string>> = {
  floating: 'on with `--floating-address`',
};

function settingOf(knob: keyof ElectionConfig): string {
  const key = (KNOB_SETTING as Partial<Record<keyof ElectionConfig, string>>)[knob];
  if (key === undefined) return ELSEWHERE[knob] ?? '-';
  const flag = `\`${(SETTINGS as readonly SettingSpec[]).find((s) => s.key === key)!.flag}\``;
  return DERIVED[knob as SetKnob]?.(flag) ?? flag;
}

/** Durations as the rest of the docs write them (20000 as "20 000"), the rule as code. */
function valueText(knob: keyof ElectionConfig, v: unknown): string {
  if (typeof v === 'number') return knob.endsWith('Ms') ? String(v).replace(/\B(?=(\d{3})+$)/g, ' ') : String(v);
  if (knob === 'rule') return `\`${String(v)}\``;
  if (typeof v === 'object' && v !== null) {
    const on = Object.entries(v as Record<string, boolean>).filter(([, x]) => x);
    return on.map(([k]) => k).join(', ') || 'none';
  }
  return String(v);
}

export function electionDefaultsMarkdown(): string {
  const rows = ['| knob | default | from the setting | why |', '| --- | --- | --- | --- |'];
  for (const [knob, why] of Object.entries(WHY) as Array<[keyof ElectionConfig, string]>) {
    rows.push(`| \`${knob}\` | ${valueText(knob, defaultElectionConfig[knob])} | ${settingOf(knob)} | ${why} |`);
  }
  return rows.join('\n');
}
