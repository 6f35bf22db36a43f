import { type Clock, systemClock } from '../runtime/clock.js';
import { type Logger, silentLogger } from '../runtime/log.js';
import { abortReason } from './abort.js';
import { asRouterError, NoGatewayError, type RouterError } from './errors.js';
import type { IgdClient } from './igd/igd-client.js';
import { chooseLocations } from './igd/location-policy.js';
import { searchIgd } from './igd/ssdp.js';
import { NatPmpClient, probeNatPmp } from './natpmp/natpmp-client.js';
import { PcpClient, probePcp } from './pcp/pcp-client.js';
import type { GatewayProbe, MappingProtocolName, PortMapper } from './types.js';

/**
 * Finds out what the router offers without making the user wait: NAT-PMP, PCP and SSDP (multicast
 * and unicast to the gateway) are probed at once on sockets bound to our LAN address. NAT-PMP
 * answers in milliseconds; SSDP stops as soon as the gateway gave an IGD:2 answer. Once anything
 * answered, slower protocols get a short grace period and no more: UPnP is preferred (only it can
 * list the table), but not at the price of seconds. A UPnP device that has answered the search
 * is waited for (up to the overall timeout): on a loaded Pi fetching its description can take
 * longer than the grace, and falling back to NAT-PMP would lose the table for good.
 */

export type ProtocolFamily = 'upnp' | 'natpmp' | 'pcp';

export interface DiscoverOptions {
  gateway: string;
  localAddress: string;
  protocols?: readonly ProtocolFamily[];
  /** When nothing answers at all. */
  timeoutMs?: number;
  /** Once one protocol answered, how long the others may still take (default 1500 ms). */
  graceMs?: number;
  /** Per-request timeout of the clients made. */
  requestTimeoutMs?: number;
  ssdpPort?: number;
  natpmpPort?: number;
  /**
   * The description URL that worked last time (see gateway-memory.ts): fetched at once, beside
   * the search, so a restarting node need not wait for SSDP.
   */
  knownLocation?: string;
  /** Multicast M-SEARCH too (default true; loopback tests turn it off). */
  multicast?: boolean;
  /** Called when a NAT-PMP/PCP client sees the router's epoch go back (it rebooted). */
  onReset?: (reason: string) => void;
  signal?: AbortSignal;
  logger?: Logger;
  clock?: Clock;
}

export interface ProbeFailure {
  protocol: ProtocolFamily;
  error: RouterError;
}

export interface Discovery {
  gateway: string;
  localAddress: string;
  /** What answered, best first. */
  probes: GatewayProbe[];
  failures: ProbeFailure[];
  /** One client per protocol that answered, best first; the first is the one to use. */
  mappers: PortMapper[];
  /** NAT-PMP's answer carries the WAN address; kept so doctor can compare protocols. */
  natpmpExternalAddress?: string;
}

const PREFERENCE: MappingProtocolName[] = ['upnp-igd2', 'upnp-igd1', 'pcp', 'natpmp'];

export async function discoverGateway(opts: DiscoverOptions): Promise<Discovery> {
  const protocols = opts.protocols ?? ['upnp', 'natpmp', 'pcp'];
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? silentLogger;
  const timeoutMs = opts.timeoutMs ?? 3000;
  // 1.5 s, not less: on a loaded machine miniupnpd's SSDP answer came more than 500 ms after its
  // PCP answer, the node settled on PCP, and PCP's 120 s minimum lifetime then held a crashed
  // representative's port for two minutes. A router without UPnP costs this once per start.
  const graceMs = opts.graceMs ?? 1500;
  const start = clock.now();
  const elapsed = () => Math.round(clock.now() - start);

  if (opts.signal?.aborted) throw abortReason(opts.signal);
  // One controller ends every probe: the caller's signal, the overall timeout, or the grace
  // period after the first answer.
  const stop = new AbortController();
  const onAbort = () => stop.abort(abortReason(opts.signal!));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // Reasons worded for one protocol's line in a report ("UPnP IGD: no answer within 3000 ms").
  const overall = clock.setTimeout(() => stop.abort(new NoGatewayError(`no answer within ${timeoutMs} ms`)), timeoutMs);
  let grace: ReturnType<Clock['setTimeout']> | undefined;
  // Probes that never showed a sign of life end with the grace period; a UPnP device that
  // answered the search only with the overall timeout.
  const silent = new AbortController();
  const quiet = AbortSignal.any([stop.signal, silent.signal]);
  const upnpSilent = new AbortController();
  const upnpQuiet = AbortSignal.any([stop.signal, upnpSilent.signal]);
  let upnpAlive = false;
  const answered = () => {
    grace ??= clock.setTimeout(() => {
      const late = new NoGatewayError(`no answer while another protocol answered (waited ${graceMs} ms more)`);
      silent.abort(late);
      if (!upnpAlive) upnpSilent.abort(late);
    }, graceMs);
  };

  const probes: GatewayProbe[] = [];
  const failures: ProbeFailure[] = [];
  const mappers: PortMapper[] = [];
  let natpmpExternalAddress: string | undefined;
  const base = { gateway: opts.gateway, localAddress: opts.localAddress };
  const requestTimeoutMs = opts.requestTimeoutMs ?? 3000;

  const tasks: Promise<void>[] = [];
  if (protocols.includes('natpmp')) {
    tasks.push(
      probeNatPmp({ ...base, port: opts.natpmpPort, timeoutMs, signal: quiet })
        .then((r) => {
          natpmpExternalAddress = r.externalAddress;
          probes.push({ protocol: 'natpmp', gateway: opts.gateway, elapsedMs: elapsed() });
          mappers.push(
            new NatPmpClient(
              { logger: log, clock },
              { ...base, port: opts.natpmpPort, timeoutMs: requestTimeoutMs, onReset: opts.onReset },
            ),
          );
          answered();
        })
        .catch((e: unknown) => {
          failures.push({ protocol: 'natpmp', error: asRouterError(e, 'NAT-PMP') });
        }),
    );
  }
  if (protocols.includes('pcp')) {
    tasks.push(
      probePcp({ ...base, port: opts.natpmpPort, timeoutMs, signal: quiet })
        .then(() => {
          probes.push({ protocol: 'pcp', gateway: opts.gateway, elapsedMs: elapsed() });
          mappers.push(
            new PcpClient(
              { logger: log, clock },
              { ...base, port: opts.natpmpPort, timeoutMs: requestTimeoutMs, onReset: opts.onReset },
            ),
          );
          answered();
        })
        .catch((e: unknown) => {
          failures.push({ protocol: 'pcp', error: asRouterError(e, 'PCP') });
        }),
    );
  }
  if (protocols.includes('upnp')) {
    // The XML side of UPnP takes tens of milliseconds to load: let it load while the router answers.
    const igd = import('./igd/igd-client.js');
    const connect = async (location: string, timeout: number) =>
      (await igd).IgdClient.connect({
        location,
        localAddress: opts.localAddress,
        gateway: opts.gateway,
        timeoutMs: timeout,
        logger: log,
        signal: stop.signal,
      });
    const use = (client: IgdClient, location: string) => {
      probes.push({
        protocol: client.protocol,
        gateway: opts.gateway,
        elapsedMs: elapsed(),
        location,
        controlUrl: client.controlUrl,
        serviceType: client.serviceType,
      });
      mappers.push(client);
      answered();
    };
    tasks.push(
      (async () => {
        const searchDone = new AbortController();
        const known = opts.knownLocation;
        const remembered = known
          ? connect(known, Math.min(requestTimeoutMs, 1000)).then(
              (client) => {
                upnpAlive = true;
                searchDone.abort(new NoGatewayError('found through the remembered location'));
                return client;
              },
              (e: unknown) => {
                log.debug('remembered UPnP location failed; searching', { location: known, error: e });
                return undefined;
              },
            )
          : undefined;
        const search = searchIgd({
          ...base,
          timeoutMs,
          ssdpPort: opts.ssdpPort,
          multicast: opts.multicast,
          signal: AbortSignal.any([upnpQuiet, searchDone.signal]),
          logger: log,
          clock,
          onResponse: () => {
            upnpAlive = true;
          },
        }).catch((e: unknown) => {
          if (searchDone.signal.aborted) return [];
          throw e;
        });
        const [client, responses] = await Promise.all([remembered, search]);
        if (client) {
          use(client, known!);
          return;
        }
        let lastError: RouterError | undefined;
        for (const candidate of chooseLocations(responses, base)) {
          if (candidate.url === known) continue;
          try {
            use(await connect(candidate.url, requestTimeoutMs), candidate.url);
            return;
          } catch (e) {
            lastError = asRouterError(e, `UPnP description at ${candidate.url}`);
            log.debug('UPnP device unusable', { location: candidate.url, error: lastError });
            if (stop.signal.aborted) break;
          }
        }
        throw lastError ?? new NoGatewayError('no UPnP Internet Gateway Device answered');
      })().catch((e: unknown) => {
        failures.push({ protocol: 'upnp', error: asRouterError(e, 'UPnP') });
      }),
    );
  }

  try {
    await Promise.all(tasks);
  } finally {
    overall.cancel();
    grace?.cancel();
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (opts.signal?.aborted) {
    for (const m of mappers) m.close();
    throw abortReason(opts.signal);
  }
  const rank = (p: MappingProtocolName) => PREFERENCE.indexOf(p);
  probes.sort((a, b) => rank(a.protocol) - rank(b.protocol));
  mappers.sort((a, b) => rank(a.protocol) - rank(b.protocol));
  return {
    gateway: opts.gateway,
    localAddress: opts.localAddress,
    probes,
    failures,
    mappers,
    ...(natpmpExternalAddress ? { natpmpExternalAddress } : {}),
  };
}

/** The best mapper of a discovery, or a NoGatewayError naming what was tried. */
export function bestMapper(d: Discovery): PortMapper {
  const m = d.mappers[0];
  if (m) return m;
  const tried = d.failures.map((f) => `${f.protocol}: ${f.error.message}`).join('; ');
  throw new NoGatewayError(
    `the router at ${d.gateway} answered neither UPnP, NAT-PMP nor PCP${tried ? ` (${tried})` : ''}: ` +
      'enable UPnP (or NAT-PMP) in the router settings',
  );
}
