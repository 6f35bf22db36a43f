import { TestbedError } from './testbed-error.js';

/**
 * What the simulated router is: the miniupnpd configuration per mode, the nftables skeleton
 * miniupnpd writes into, and the WAN addresses. Facts measured on miniupnpd-nftables 2.3.1 are in
 * /work/shared/notes/real-router.md.
 */

export type TestbedMode = 'igd2' | 'igd1' | 'pmp-only' | 'none' | 'insecure' | 'cgnat' | 'private-wan';

export const TESTBED_MODES: readonly TestbedMode[] = [
  'igd2',
  'igd1',
  'pmp-only',
  'none',
  'insecure',
  'cgnat',
  'private-wan',
];

export const WAN_IFNAME = 'ext0';
export const WAN_CLIENT_IFNAME = 'wan0';
export const LAN_IFNAME = 'br0';
export const HOST_IFNAME = 'eth0';
export const LAN_PREFIX = '192.168.77';
export const GATEWAY = `${LAN_PREFIX}.1`;
export const FIRST_HOST = 10;
export const HTTP_PORT = 5000;
export const PMP_PORT = 5351;

/**
 * Ports below 1024 refused, as on a real router (UPnP 606 for them); everything the LAN asks above
 * that allowed.
 */
export const DEFAULT_ALLOW: readonly string[] = [
  `allow 1024-65535 ${LAN_PREFIX}.0/24 1024-65535`,
  'deny 0-65535 0.0.0.0/0 0-65535',
];

export interface WanSetup {
  address: string;
  prefixLength: number;
  /** The internet client in the `wan` namespace, on the same link. */
  clientAddress: string;
}

/**
 * 203.0.114.0/24 is not one of the TEST-NETs: miniupnpd refuses to forward from an address it
 * considers reserved, and TEST-NET-3 (203.0.113.0/24) is one of them. It exists only inside the
 * namespaces.
 */
export function wanForMode(mode: TestbedMode): WanSetup {
  switch (mode) {
    case 'cgnat':
      return { address: '100.64.0.1', prefixLength: 10, clientAddress: '100.64.0.2' };
    case 'private-wan':
      return { address: '10.0.0.1', prefixLength: 24, clientAddress: '10.0.0.2' };
    default:
      return { address: '203.0.114.1', prefixLength: 24, clientAddress: '203.0.114.2' };
  }
}

/** `none` is a router with no port-mapping service at all: it still routes and masquerades. */
export function runsDaemon(mode: TestbedMode): boolean {
  return mode !== 'none';
}

export interface RouterSettings {
  /** Permission lines (`allow|deny ext-range ip/mask int-range`); default DEFAULT_ALLOW. */
  allow?: readonly string[];
  /** Extra `key=value` lines, appended last so they override the mode's lines. */
  miniupnpdConf?: readonly string[];
  /** PCP lifetime bounds (miniupnpd defaults: 120 s and 86400 s). */
  minLifetime?: number;
  maxLifetime?: number;
}

export interface ConfigInput extends RouterSettings {
  mode: TestbedMode;
  uuid: string;
}

export function buildMiniupnpdConfig(input: ConfigInput): string {
  if (!runsDaemon(input.mode)) throw new TestbedError('TB_BAD_CONFIG', `mode ${input.mode} runs no miniupnpd`);
  const lines = [
    `ext_ifname=${WAN_IFNAME}`,
    `listening_ip=${LAN_IFNAME}`,
    `http_port=${HTTP_PORT}`,
    `enable_upnp=${input.mode === 'pmp-only' ? 'no' : 'yes'}`,
    'enable_natpmp=yes',
    `secure_mode=${input.mode === 'insecure' ? 'no' : 'yes'}`,
    // The key is force_igd_desc_v1: `force_igd_v1` is rejected and the daemon does not start.
    ...(input.mode === 'igd1' ? ['force_igd_desc_v1=yes'] : []),
    'upnp_table_name=filter',
    'upnp_nat_table_name=nat',
    'upnp_forward_chain=miniupnpd',
    'upnp_nat_chain=prerouting_miniupnpd',
    'upnp_nat_postrouting_chain=postrouting_miniupnpd',
    'system_uptime=no',
    `uuid=${input.uuid}`,
    ...(input.minLifetime === undefined ? [] : [`min_lifetime=${lifetime(input.minLifetime)}`]),
    ...(input.maxLifetime === undefined ? [] : [`max_lifetime=${lifetime(input.maxLifetime)}`]),
    ...(input.allow ?? DEFAULT_ALLOW),
    ...(input.miniupnpdConf ?? []),
  ];
  for (const line of lines) {
    // One setting per line: a newline inside a value would smuggle in another setting.
    if (/[\r\n\0]/.test(line)) throw new TestbedError('TB_BAD_CONFIG', `config line contains a line break: ${JSON.stringify(line)}`);
  }
  return `${lines.join('\n')}\n`;
}

function lifetime(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new TestbedError('TB_BAD_CONFIG', `bad lifetime ${n}`);
  return n;
}

/**
 * The log lines miniupnpd prints once each service's socket is bound, read from the config as the
 * daemon will read it (the last `enable_*` line wins, enabled unless it says `no`).
 */
export function readinessMarkers(configText: string): string[] {
  let upnp = true;
  let natpmp = true;
  for (const raw of configText.split('\n').slice(0, 10_000)) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (line.startsWith('#') || eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === 'enable_upnp') upnp = value !== 'no';
    if (key === 'enable_natpmp') natpmp = value !== 'no';
  }
  return [
    ...(upnp ? [`HTTP listening on port ${HTTP_PORT}`] : []),
    ...(natpmp ? [`Listening for NAT-PMP/PCP traffic on port ${PMP_PORT}`] : []),
  ];
}

/**
 * The firewall miniupnpd writes into. The Debian package ships no working init for this, so we
 * build it: forward policy drop with the LAN and established traffic let through, masquerade on
 * the WAN side, and the empty chains miniupnpd fills (named in its config above).
 */
export function nftRuleset(): string {
  return `table inet filter {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "${LAN_IFNAME}" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
}
table inet nat {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "${WAN_IFNAME}" masquerade
    jump postrouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`;
}

/** Empties the chains miniupnpd owns: with a daemon restart, a router reboot. */
export const NFT_FLUSH = `flush chain inet filter miniupnpd
flush chain inet nat prerouting_miniupnpd
flush chain inet nat postrouting_miniupnpd
`;

/**
 * The forwarding rules in `nft list chain inet nat prerouting_miniupnpd` output: the lines holding
 * a `dnat`. Bounded, for a log line in a failing test.
 */
export function parseNftDnatRules(text: string, max = 1000): string[] {
  const rules: string[] = [];
  for (const line of text.split('\n')) {
    if (rules.length >= max) break;
    const t = line.trim();
    if (/\bdnat\b/.test(t)) rules.push(t.slice(0, 500));
  }
  return rules;
}
