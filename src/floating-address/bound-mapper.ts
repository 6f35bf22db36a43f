import { isIPv4 } from 'node:net';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
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
  /** Ignored: the bound client logs where `base` does. */
  logger?: Logger;
  /** Ignored: the bound client runs on `base`'s clock. */
  clock?: Clock;
  /** Per request; default `base`'s. */
  requestTimeoutMs?: number;
  /** Ignored: the bound client asks `base`'s router port. */
  natpmpPort?: number;
  /** NAT-PMP/PCP only: called when the router's epoch shows it lost its mappings. */
  onReset?: (reason: string) => void;
}

/** `base.bindTo(address)` for the floating address, which is IPv4 (floating-address.ts takes it with `ip -4`). */
export function mapperBoundTo(base: PortMapper, address: string, opts: BoundMapperOptions = {}): PortMapper {
  if (!isIPv4(address)) throw new TypeError(`a floating address must be IPv4: ${address}`);
  return base.bindTo(address, { onReset: opts.onReset, timeoutMs: opts.requestTimeoutMs });
}
