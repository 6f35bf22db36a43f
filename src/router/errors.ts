/**
 * Errors of the router layer. Callers decide on `code` (stable, machine-readable) or on the
 * class, never on message text: a port conflict is not a network failure, and a double NAT is
 * not a conflict.
 */

import { CodedError } from '../runtime/errors.js';

export type RouterErrorCode =
  | 'FD_PORT_CONFLICT'
  | 'FD_DOUBLE_NAT'
  | 'FD_NO_WAN_ADDRESS'
  | 'FD_NO_GATEWAY'
  | 'FD_NOT_AUTHORIZED'
  | 'FD_PORT_REFUSED'
  | 'FD_LISTING_UNSUPPORTED'
  | 'FD_UNSUPPORTED'
  | 'FD_ROUTER_ERROR'
  | 'FD_BAD_RESPONSE'
  | 'FD_ROUTER_TIMEOUT'
  | 'FD_ABORTED';

export class RouterError extends CodedError<RouterErrorCode> {}

/** Any failure as a RouterError: kept as it is when it is one, wrapped (with `what` said) when not. */
export function asRouterError(e: unknown, what: string): RouterError {
  if (e instanceof RouterError) return e;
  return new RouterError('FD_ROUTER_ERROR', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * The external port is held by another mapping. The router's table is the lock on the
 * well-known port, so this is the answer "someone else is representative", not a failure.
 * NAT-PMP and PCP never refuse a taken port (they grant another one); the clients turn that
 * silent substitution into this error after releasing the stray mapping.
 */
export class PortConflictError extends RouterError {
  readonly externalPort: number;
  /** The port the router offered instead (NAT-PMP/PCP), if any; it has been released. */
  readonly offeredPort: number | undefined;
  constructor(externalPort: number, message?: string, offeredPort?: number, options?: ErrorOptions) {
    super('FD_PORT_CONFLICT', message ?? `external port ${externalPort} is mapped to another host`, options);
    this.externalPort = externalPort;
    this.offeredPort = offeredPort;
  }
}

export type WanAddressClass = 'public' | 'private' | 'cgnat' | 'reserved' | 'loopback' | 'unknown';

/** The router's own WAN address is not reachable from the internet: a second NAT sits above it. */
export class DoubleNatError extends RouterError {
  readonly wanAddress: string;
  readonly addressClass: WanAddressClass;
  constructor(wanAddress: string, addressClass: WanAddressClass, options?: ErrorOptions) {
    super(
      'FD_DOUBLE_NAT',
      `the router's WAN address ${wanAddress} is ${describeClass(addressClass)}, so the internet cannot reach it: ` +
        'another router or your provider (carrier-grade NAT) sits in front of it. Put that device in bridge mode, ' +
        'forward the ports on it too, or ask your provider for a public IPv4 address.',
      options,
    );
    this.wanAddress = wanAddress;
    this.addressClass = addressClass;
  }
}

function describeClass(c: WanAddressClass): string {
  switch (c) {
    case 'private':
      return 'a private (RFC 1918) address';
    case 'cgnat':
      return 'a carrier-grade NAT (100.64.0.0/10) address';
    case 'reserved':
      return 'a reserved address';
    case 'loopback':
      return 'a loopback address (an emulated router)';
    default:
      return 'not a public address';
  }
}

/**
 * The router answers but tells no WAN address: its internet link is down, or (miniupnpd, and
 * many routers like it) it hides a private or carrier-grade NAT address it cannot forward from:
 * GetExternalIPAddress gives an empty string, NAT-PMP result 3 Network Failure.
 */
export class NoWanAddressError extends RouterError {
  constructor(message: string, options?: ErrorOptions) {
    super('FD_NO_WAN_ADDRESS', message, options);
  }
}

/** Nothing answered: no UPnP IGD, NAT-PMP or PCP on this network, or it is switched off. */
export class NoGatewayError extends RouterError {
  constructor(message?: string, options?: ErrorOptions) {
    super(
      'FD_NO_GATEWAY',
      message ??
        'no router answered UPnP, NAT-PMP or PCP: enable UPnP (or NAT-PMP) in the router settings',
      options,
    );
  }
}

/** The router refused the action for this client (UPnP 606/402-ish, NAT-PMP 2, PCP NOT_AUTHORIZED). */
export class NotAuthorizedError extends RouterError {
  constructor(message: string, options?: ErrorOptions) {
    super('FD_NOT_AUTHORIZED', message, options);
  }
}

/** The router will not map this port at all (below 1024, outside its allowed range). */
export class PortRefusedError extends RouterError {
  readonly externalPort: number;
  constructor(externalPort: number, message?: string, options?: ErrorOptions) {
    super('FD_PORT_REFUSED', message ?? `the router refuses to map external port ${externalPort}`, options);
    this.externalPort = externalPort;
  }
}

/** NAT-PMP and PCP have no way to read the router's table; we say so rather than pretend. */
export class ListingUnsupportedError extends RouterError {
  constructor(protocol: string, options?: ErrorOptions) {
    super('FD_LISTING_UNSUPPORTED', `${protocol} cannot list the router's port mappings`, options);
  }
}

export class UnsupportedError extends RouterError {
  constructor(message: string, options?: ErrorOptions) {
    super('FD_UNSUPPORTED', message, options);
  }
}

/** A UPnP SOAP fault that is not one of the typed cases above. */
export class UpnpError extends RouterError {
  readonly upnpCode: number;
  readonly upnpDescription: string;
  constructor(upnpCode: number, upnpDescription: string, action: string, options?: ErrorOptions) {
    super('FD_ROUTER_ERROR', `${action} failed: UPnP error ${upnpCode} ${upnpDescription}`.trim(), options);
    this.upnpCode = upnpCode;
    this.upnpDescription = upnpDescription;
  }
}

/** A NAT-PMP or PCP result code that is not one of the typed cases above. */
export class ResultCodeError extends RouterError {
  readonly protocol: 'natpmp' | 'pcp';
  readonly resultCode: number;
  constructor(protocol: 'natpmp' | 'pcp', resultCode: number, message: string, options?: ErrorOptions) {
    super('FD_ROUTER_ERROR', message, options);
    this.protocol = protocol;
    this.resultCode = resultCode;
  }
}

/** Bytes from the router (or anyone pretending to be it) that do not parse. */
export class BadResponseError extends RouterError {
  constructor(message: string, options?: ErrorOptions) {
    super('FD_BAD_RESPONSE', message, options);
  }
}

export class RouterTimeoutError extends RouterError {
  constructor(message: string, options?: ErrorOptions) {
    super('FD_ROUTER_TIMEOUT', message, options);
  }
}

export class AbortedError extends RouterError {
  constructor(message = 'the operation was aborted', options?: ErrorOptions) {
    super('FD_ABORTED', message, options);
  }
}
