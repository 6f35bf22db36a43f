import { isIPv4 } from 'node:net';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { IgdClient } from '../router/igd/igd-client.js';
import { NatPmpClient } from '../router/natpmp/natpmp-client.js';
import { PcpClient } from '../router/pcp/pcp-client.js';
import type { PortMapper } from '../router/types.js';

/**
 * A router client like `base` (same protocol, same router, same UPnP service) whose requests
 * leave from `address`. Routers in secure mode map a port only to the address a request came
 * from; a client bound to the floating address makes the floating address the mapping's internal
 * client, and the next holder, bound to the same address, may renew the same mapping.
 *
 * The address must be on this host (take it first): the client's sockets bind to it.
 */

export interface BoundMapperOptions {
  logger?: Logger;
  clock?: Clock;
  /** Per request, as DiscoverOptions.requestTimeoutMs. Default 3000 ms. */
  requestTimeoutMs?: number;
  /** NAT-PMP/PCP only: the router's port, as DiscoverOptions.natpmpPort (5351 unless emulated). */
  natpmpPort?: number;
  /** NAT-PMP/PCP only: called when the router's epoch shows it lost its mappings. */
  onReset?: (reason: string) => void;
}

export function mapperBoundTo(base: PortMapper, address: string, opts: BoundMapperOptions = {}): PortMapper {
  if (!isIPv4(address)) throw new TypeError(`a floating address must be IPv4: ${address}`);
  const components = { logger: opts.logger, clock: opts.clock };
  const timeoutMs = opts.requestTimeoutMs ?? 3000;
  if (base instanceof NatPmpClient) {
    return new NatPmpClient(components, {
      gateway: base.gateway,
      localAddress: address,
      port: opts.natpmpPort,
      timeoutMs,
      onReset: opts.onReset,
    });
  }
  if (base instanceof PcpClient) {
    return new PcpClient(components, {
      gateway: base.gateway,
      localAddress: address,
      port: opts.natpmpPort,
      timeoutMs,
      onReset: opts.onReset,
    });
  }
  if (isIgdClient(base)) {
    // The base's own class: igd-client.js (and its XML parser) is loaded lazily by discovery, and
    // a UPnP base means it is loaded already. The description is reused: no second fetch.
    const Igd = base.constructor as typeof IgdClient;
    return new Igd(components, {
      description: base.description,
      localAddress: address,
      gateway: base.gateway,
      timeoutMs,
    });
  }
  throw new TypeError(`cannot bind a ${base.protocol} client of type ${base.constructor?.name ?? typeof base} to another address`);
}

function isIgdClient(m: PortMapper): m is IgdClient {
  return (
    (m.protocol === 'upnp-igd2' || m.protocol === 'upnp-igd1') &&
    'description' in m &&
    typeof (m as { description?: unknown }).description === 'object' &&
    m.constructor?.name === 'IgdClient'
  );
}
