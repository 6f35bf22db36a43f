import { performance } from 'node:perf_hooks';
import type { Logger } from '../runtime/log.js';
import { type Discovery, type DiscoverOptions, discoverGateway, type ProtocolFamily } from './discover.js';
import { DoubleNatError, PortConflictError, type WanAddressClass } from './errors.js';
import { classifyWanAddress } from './wan-address.js';
import type { Mapping, MappingProtocolName, PortMapper } from './types.js';

/**
 * What `frontdoor doctor` finds out, in the order a user needs it: is there a router that maps
 * ports, is its WAN address reachable from the internet, does a real claim work, who holds the
 * well-known port. Everything is measured, nothing assumed.
 */

export type DoctorStatus = 'ok' | 'no-gateway' | 'double-nat' | 'mapping-failed';

export interface ProtocolCheck {
  protocol: ProtocolFamily;
  answered: boolean;
  /** The exact variant that answered (upnp-igd2, upnp-igd1, natpmp, pcp). */
  variant?: MappingProtocolName;
  elapsedMs?: number;
  error?: string;
}

export interface DoctorReport {
  status: DoctorStatus;
  /** One sentence: what works, or why not and what to do. */
  verdict: string;
  gateway: string;
  localAddress: string;
  protocols: ProtocolCheck[];
  using?: MappingProtocolName;
  wanAddress?: string;
  wanAddressClass?: WanAddressClass;
  testClaim?: {
    externalPort: number;
    internalPort: number;
    ok: boolean;
    grantedLeaseSeconds?: number;
    elapsedMs: number;
    /** Whether the new mapping showed up in the router's table (UPnP only). */
    listed?: boolean;
    released?: boolean;
    error?: string;
  };
  publicPort: { port: number; holder?: string; description?: string; free?: boolean };
  /** Whether the router forwards the ACME challenge port (asked only with `challengePort`). */
  challengePort?: { port: number; ok: boolean; error?: string };
  /** The router's table; undefined when the protocol cannot list it (listingNote says so). */
  table?: Mapping[];
  listingNote?: string;
}

export interface DiagnoseOptions extends Omit<DiscoverOptions, 'logger'> {
  publicPort: number;
  /** Accept a loopback WAN address (the embedded emulator). */
  allowLoopbackWan?: boolean;
  /** The test claim's external port; random in 49152-65000 by default. */
  testPort?: number;
  /** Also try the ACME http-01 port (--acme-challenge-port), mapped and released at once. */
  challengePort?: number;
  logger?: Logger;
}

const TEST_LEASE_SECONDS = 120;

export const PROTOCOL_NAMES: Record<string, string> = {
  upnp: 'UPnP IGD',
  natpmp: 'NAT-PMP',
  pcp: 'PCP',
  'upnp-igd2': 'UPnP IGD v2',
  'upnp-igd1': 'UPnP IGD v1',
};

function isNoWan(e: unknown): boolean {
  return e instanceof Error && 'code' in e && e.code === 'FD_NO_WAN_ADDRESS';
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * What the representative will ask for a few seconds when it gets an ACME certificate: many
 * routers refuse ports below 1024 (miniupnpd: 606), and NAT-PMP/PCP offer another port instead.
 */
async function tryChallengePort(mapper: PortMapper, port: number, signal?: AbortSignal): Promise<NonNullable<DoctorReport['challengePort']>> {
  try {
    const m = await mapper.claim({ externalPort: port, internalPort: port, protocol: 'TCP', leaseSeconds: TEST_LEASE_SECONDS, description: 'frontdoor doctor acme test' }, signal);
    await mapper.release(m, signal).catch(() => {});
    return m.externalPort === port ? { port, ok: true } : { port, ok: false, error: `the router offered port ${m.externalPort} instead` };
  } catch (e) {
    return { port, ok: false, error: msg(e) };
  }
}

export async function diagnose(opts: DiagnoseOptions): Promise<DoctorReport> {
  const families = opts.protocols ?? ['upnp', 'natpmp', 'pcp'];
  let discovery: Discovery;
  try {
    discovery = await discoverGateway({ ...opts, ...(opts.logger ? { logger: opts.logger } : {}) });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    discovery = { gateway: opts.gateway, localAddress: opts.localAddress, probes: [], failures: [], mappers: [] };
  }
  const report: DoctorReport = {
    status: 'ok',
    verdict: '',
    gateway: opts.gateway,
    localAddress: opts.localAddress,
    protocols: families.map((f) => {
      const probe = discovery.probes.find((p) => (f === 'upnp' ? p.protocol.startsWith('upnp') : p.protocol === f));
      const failure = discovery.failures.find((x) => x.protocol === f);
      return probe
        ? { protocol: f, answered: true, variant: probe.protocol, elapsedMs: probe.elapsedMs }
        : { protocol: f, answered: false, ...(failure ? { error: failure.error.message } : {}) };
    }),
    publicPort: { port: opts.publicPort },
  };
  const mapper = discovery.mappers[0];
  try {
    if (!mapper) {
      report.status = 'no-gateway';
      report.verdict =
        `No port mapping service answered at ${opts.gateway} (UPnP, NAT-PMP and PCP were tried): ` +
        'enable UPnP IGD or NAT-PMP in the router settings, then run frontdoor doctor again.';
      return report;
    }
    report.using = mapper.protocol;
    let noWanAddress = false;

    try {
      report.wanAddress = await mapper.externalAddress(opts.signal);
      report.wanAddressClass = classifyWanAddress(report.wanAddress);
    } catch (e) {
      report.wanAddress = discovery.natpmpExternalAddress;
      if (report.wanAddress) report.wanAddressClass = classifyWanAddress(report.wanAddress);
      noWanAddress = isNoWan(e);
      opts.logger?.debug('external address failed', { error: e });
    }
    noWanAddress ||= discovery.failures.some((f) => isNoWan(f.error));

    // A real claim, then a look at the table, then the release: the only proof that matters.
    const port = opts.testPort ?? 49152 + Math.floor(Math.random() * 15000);
    const t0 = performance.now();
    let granted: Mapping | undefined;
    try {
      granted = await mapper.claim(
        {
          externalPort: port,
          internalPort: port,
          protocol: 'TCP',
          leaseSeconds: TEST_LEASE_SECONDS,
          description: 'frontdoor doctor test',
        },
        opts.signal,
      );
      report.testClaim = {
        externalPort: port,
        internalPort: port,
        ok: true,
        grantedLeaseSeconds: granted.leaseSeconds,
        elapsedMs: Math.round(performance.now() - t0),
      };
    } catch (e) {
      report.testClaim = {
        externalPort: port,
        internalPort: port,
        ok: false,
        elapsedMs: Math.round(performance.now() - t0),
        error: e instanceof PortConflictError ? `port ${port} is taken (${msg(e)})` : msg(e),
      };
    }

    if (mapper.canList) {
      try {
        report.table = await mapper.list(opts.signal);
        if (granted) {
          report.testClaim!.listed = report.table.some((m) => m.externalPort === port && m.protocol === 'TCP');
        }
        const holder = report.table.find((m) => m.externalPort === opts.publicPort && m.protocol === 'TCP');
        report.publicPort = holder
          ? { port: opts.publicPort, holder: holder.internalClient, description: holder.description, free: false }
          : { port: opts.publicPort, free: true };
        // The test mapping is ours and about to go: leave it out of what we show.
        report.table = report.table.filter((m) => !(granted && m.externalPort === port && m.protocol === 'TCP'));
      } catch (e) {
        report.listingNote = `the router did not list its mappings: ${msg(e)}`;
      }
    } else {
      report.listingNote = `${mapper.protocol === 'pcp' ? 'PCP' : 'NAT-PMP'} cannot list the router's mappings; enable UPnP on the router to see them`;
    }

    if (granted) {
      try {
        await mapper.release(granted, opts.signal);
        report.testClaim!.released = true;
      } catch (e) {
        report.testClaim!.released = false;
        opts.logger?.warn('could not release the test mapping; it expires by itself', {
          port,
          leaseSeconds: TEST_LEASE_SECONDS,
          error: e,
        });
      }
    }

    if (opts.challengePort !== undefined) report.challengePort = await tryChallengePort(mapper, opts.challengePort, opts.signal);

    const cls = report.wanAddressClass;
    const wanOk = cls === 'public' || (cls === 'loopback' && opts.allowLoopbackWan === true);
    if (report.wanAddress && cls && !wanOk) {
      report.status = 'double-nat';
      report.verdict = new DoubleNatError(report.wanAddress, cls).message;
    } else if (!report.wanAddress && noWanAddress) {
      // miniupnpd (and routers like it) hide a private or CGNAT WAN address and refuse to map.
      report.status = 'double-nat';
      report.verdict =
        'The router answers but reports no usable WAN address, so the internet cannot reach it: either its ' +
        "internet connection is down, or its WAN address is private or carrier-grade NAT (another router or your " +
        "provider's NAT sits in front of it). Check the router's internet status; if it is online, put the device " +
        'in front of it in bridge mode or ask your provider for a public IPv4 address.';
    } else if (!granted) {
      report.status = 'mapping-failed';
      report.verdict =
        `The router answers ${PROTOCOL_NAMES[mapper.protocol]} but refused a test mapping (${report.testClaim?.error}): ` +
        'check that the router allows port forwarding for this device (UPnP/NAT-PMP permissions).';
    } else {
      report.verdict =
        `Port mapping works: ${PROTOCOL_NAMES[mapper.protocol]} at ${opts.gateway} mapped ${report.wanAddress ?? 'the WAN address'}:${port} ` +
        `to this device${report.wanAddress ? '' : ' (the router did not tell its WAN address)'}.`;
    }
    return report;
  } finally {
    for (const m of discovery.mappers) m.close();
  }
}

export function exitCodeOf(status: DoctorStatus): number {
  return { ok: 0, 'no-gateway': 3, 'double-nat': 4, 'mapping-failed': 5 }[status];
}
