/**
 * Port mapping at the test bed's router from inside a LAN host (run through `tb.call`): one UPnP
 * IGD client bound to `localAddress`, so under miniupnpd's secure_mode a host may map the port to
 * any address it holds, a floating one (a VRRP virtual address) included. The SOAP exchange is
 * timed on the shared monotonic clock (outage.ts), device description fetch excluded.
 */
import { IgdClient } from '../../src/router/igd/igd-client.js';
import { monoMs } from './outage.js';

export interface MapArgs {
  /** The router's device description URL (`tb.rootDescUrl`): no SSDP search needed. */
  location: string;
  /** The address the request leaves from; the internal client of a claim. */
  localAddress: string;
  op: 'claim' | 'release';
  externalPort: number;
  /** Default: externalPort. */
  internalPort?: number;
  /** Default 3600 s. */
  leaseSeconds?: number;
  description?: string;
}

export interface MapResult {
  /** Just before the SOAP request was sent (CLOCK_MONOTONIC ms). */
  startedAt: number;
  /** When the router's answer was in. */
  doneAt: number;
  internalClient?: string;
}

export async function igdMap(a: MapArgs): Promise<MapResult> {
  const client = await IgdClient.connect({ location: a.location, localAddress: a.localAddress });
  try {
    const internalPort = a.internalPort ?? a.externalPort;
    const startedAt = monoMs();
    if (a.op === 'claim') {
      const m = await client.claim({
        externalPort: a.externalPort,
        internalPort,
        protocol: 'TCP',
        leaseSeconds: a.leaseSeconds ?? 3600,
        description: a.description ?? 'frontdoor failover bench',
      });
      return { startedAt, doneAt: monoMs(), internalClient: m.internalClient };
    }
    await client.release({ protocol: 'TCP', externalPort: a.externalPort, internalPort });
    return { startedAt, doneAt: monoMs() };
  } finally {
    client.close();
  }
}
