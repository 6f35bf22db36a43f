/**
 * The one boundary between frontdoor and the home router. Election, directory and doctor talk to
 * a `PortMapper`; whether UPnP IGD v1/v2, NAT-PMP or PCP is underneath is this folder's business.
 */

export type MappingProtocolName = 'upnp-igd2' | 'upnp-igd1' | 'natpmp' | 'pcp';
export type TransportProtocol = 'TCP' | 'UDP';

export interface MappingRequest {
  /** The external (WAN) port wanted; for `claimAny` a hint that may be ignored. */
  externalPort: number;
  /** The port on the LAN host. */
  internalPort: number;
  /**
   * The LAN address the router forwards to. Defaults to the address the client's socket is bound
   * to (routers in secure mode accept only the requester's own address).
   */
  internalClient?: string;
  protocol: TransportProtocol;
  /** Lease in seconds; 0 asks for a permanent mapping (the router may not honour either). */
  leaseSeconds: number;
  description: string;
}

export interface Mapping {
  protocol: TransportProtocol;
  externalPort: number;
  internalClient: string;
  internalPort: number;
  /** Lease the router granted, in seconds; 0 = permanent (or unknown, for a listed entry). */
  leaseSeconds: number;
  description: string;
  enabled: boolean;
  /** '' means any remote host. */
  remoteHost: string;
  /** The protocol that made or reported this entry. */
  via: MappingProtocolName;
}

export interface PortMapper {
  readonly protocol: MappingProtocolName;
  /** The router's LAN address we talk to. */
  readonly gateway: string;
  /** The local address requests are sent from (and the default internal client). */
  readonly localAddress: string;
  /** The router's WAN (external) address, as the router says it. */
  externalAddress(signal?: AbortSignal): Promise<string>;
  /**
   * Map exactly `req.externalPort`. Throws PortConflictError when another host holds it;
   * renewing a mapping we already hold is the same call.
   */
  claim(req: MappingRequest, signal?: AbortSignal): Promise<Mapping>;
  /** Map any free external port (AddAnyPortMapping on IGDv2, the router's offer elsewhere). */
  claimAny(req: MappingRequest, signal?: AbortSignal): Promise<Mapping>;
  /** Remove a mapping we made. Removing one that is already gone is not an error. */
  release(mapping: Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>, signal?: AbortSignal): Promise<void>;
  /**
   * The router's whole table. NAT-PMP and PCP cannot list: they throw ListingUnsupportedError.
   */
  list(signal?: AbortSignal): Promise<Mapping[]>;
  /** Whether `list` can work, so callers need not try. */
  readonly canList: boolean;
  /**
   * How long, in whole seconds, the router says it has kept its mapping table: the NAT-PMP or
   * PCP epoch (which restarts whenever the router loses its mappings), or UPnP's uptime
   * (GetStatusInfo). Undefined when the router does not say. The election claims at once on a
   * router whose table is older than any representative's belief could outlast a lost table.
   */
  tableAge?(signal?: AbortSignal): Promise<number | undefined>;
  /**
   * A new client of the same kind for the same router (same protocol, gateway, port and, for
   * UPnP, the same service, with no second description fetch) whose requests leave from
   * `localAddress`, which must be on this host: its sockets bind to it. Routers in secure mode
   * map a port only to the address a request came from, so this is how a mapping is made to
   * point at another address of ours (the floating one). Each client rebuilds itself, so this
   * works whatever wraps or renames the class. `this` is left as it was.
   */
  bindTo(localAddress: string, opts?: BindOptions): PortMapper;
  /** Frees sockets. Idempotent. */
  close(): void;
}

export interface BindOptions {
  /**
   * NAT-PMP/PCP: called when the router's epoch, as the bound client sees it, shows it lost its
   * mappings. Not taken over from the original client, whose own callback already reports a reset.
   */
  onReset?: (reason: string) => void;
  /** Per request; default the original client's. */
  timeoutMs?: number;
}

/** What one probe of the network found; kept so later starts need not wait. */
export interface GatewayProbe {
  protocol: MappingProtocolName;
  gateway: string;
  /** Milliseconds from the start of discovery to this answer. */
  elapsedMs: number;
  /** UPnP only: the device description URL and the control URL of the WAN*Connection service. */
  location?: string;
  controlUrl?: string;
  serviceType?: string;
}
