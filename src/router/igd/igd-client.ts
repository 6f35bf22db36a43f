import { isIP } from 'node:net';
import { systemClock } from '../../runtime/clock.js';
import type { Clock } from '../../runtime/clock.js';
import { silentLogger } from '../../runtime/log.js';
import type { Logger } from '../../runtime/log.js';
import { throwIfAborted } from '../abort.js';
import {
  AbortedError,
  BadResponseError,
  NoGatewayError,
  NotAuthorizedError,
  PortConflictError,
  PortRefusedError,
  NoWanAddressError,
  RouterError,
  UnsupportedError,
  UpnpError,
} from '../errors.js';
import { checkMappingRequest } from '../mapping-request.js';
import type { BindOptions, Mapping, MappingProtocolName, MappingRequest, PortMapper, TransportProtocol } from '../types.js';
import { MAX_DESCRIPTION_CHARS, parseDeviceDescription } from './description.js';
import type { IgdDescription } from './description.js';
import { httpRequest } from './http-request.js';
import { pinControlUrl } from './location-policy.js';
import type { LocationCandidate } from './location-policy.js';
import { entryToMapping, MAX_LISTED_MAPPINGS, parsePortListing } from './port-listing.js';
import { parseUptime } from './status-info.js';
import { soapCall } from './soap.js';
import type { SoapArgs } from './soap.js';

/** UPnP error codes this client acts on (UPnP IGD WANIPConnection v1/v2, UDA). */
const E = {
  INVALID_ACTION: 401,
  INVALID_ARGS: 402,
  ACTION_FAILED: 501,
  OPTIONAL_ACTION_NOT_IMPLEMENTED: 602,
  NOT_AUTHORIZED: 606,
  ARRAY_INDEX_INVALID: 713,
  NO_SUCH_ENTRY: 714,
  WILDCARD_NOT_PERMITTED_IN_EXT_PORT: 716,
  CONFLICT: 718,
  SAME_PORT_VALUES_REQUIRED: 724,
  ONLY_PERMANENT_LEASES: 725,
  EXTERNAL_PORT_ONLY_WILDCARD: 727,
  NO_PORT_MAPS_AVAILABLE: 728,
  CONFLICT_WITH_OTHER_MECHANISMS: 729,
  PORT_MAPPING_NOT_FOUND: 730,
} as const;

export interface IgdClientComponents {
  logger?: Logger;
  clock?: Clock;
}

export interface IgdClientInit {
  description: IgdDescription;
  /** The address requests leave from; also the default internal client. */
  localAddress: string;
  /** The router's LAN address; defaults to the host of the control URL. */
  gateway?: string;
  /** Per SOAP exchange; miniupnpd answers in 5-35 ms. Default 3000 ms. */
  timeoutMs?: number;
  /** IGDv1 claimAny: how many successive ports to try. Default 16. */
  claimAnyAttempts?: number;
  /** Most entries `list` returns. Default 1024. */
  maxListEntries?: number;
}

export interface IgdConnectOptions extends IgdClientComponents, Omit<IgdClientInit, 'description'> {
  /** The device description URL, as chosen by location-policy. */
  location: string;
  signal?: AbortSignal;
}

/**
 * A UPnP IGD v1/v2 client for one WAN*Connection service. Thin on purpose: one SOAP exchange per
 * method (a retry only where a router quirk calls for one), UPnP faults turned into the typed
 * errors of ../errors.ts.
 */
export class IgdClient implements PortMapper {
  readonly protocol: MappingProtocolName;
  readonly gateway: string;
  readonly localAddress: string;
  readonly canList = true;
  readonly description: IgdDescription;
  /** The chosen WAN*Connection service, for GatewayProbe records. */
  readonly controlUrl: string;
  readonly serviceType: string;

  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly claimAnyAttempts: number;
  private readonly maxListEntries: number;
  private readonly closer = new AbortController();
  /** Set after a 725: this router takes only permanent leases, so we stop asking for others. */
  private permanentLeasesOnly = false;
  /** Set when GetListOfPortMappings or AddAnyPortMapping turned out missing despite IGDv2. */
  private noListOfPortMappings = false;
  private noAddAnyPortMapping = false;
  /** What this client was made from, for bindTo. */
  private readonly made: { components: IgdClientComponents; init: IgdClientInit };

  constructor(components: IgdClientComponents, init: IgdClientInit) {
    this.made = { components, init };
    this.log = (components.logger ?? silentLogger).child('igd');
    this.clock = components.clock ?? systemClock;
    this.description = init.description;
    this.protocol = init.description.protocol;
    this.controlUrl = init.description.service.controlUrl;
    this.serviceType = init.description.service.serviceType;
    this.localAddress = init.localAddress;
    this.gateway = init.gateway ?? new URL(init.description.service.controlUrl).hostname;
    this.timeoutMs = init.timeoutMs ?? 3000;
    this.claimAnyAttempts = Math.max(1, init.claimAnyAttempts ?? 16);
    this.maxListEntries = Math.max(0, init.maxListEntries ?? MAX_LISTED_MAPPINGS);
  }

  /** Fetches and parses the device description at `location`, then makes a client for it. */
  static async connect(opts: IgdConnectOptions): Promise<IgdClient> {
    const clock = opts.clock ?? systemClock;
    const res = await httpRequest({
      url: opts.location,
      method: 'GET',
      localAddress: opts.localAddress,
      maxBytes: MAX_DESCRIPTION_CHARS,
      timeoutMs: opts.timeoutMs ?? 3000,
      clock,
      what: 'device description',
      signal: opts.signal,
    });
    if (res.status !== 200) {
      throw new RouterError('FD_ROUTER_ERROR', `device description ${opts.location}: HTTP ${res.status}`);
    }
    const parsed = parseDeviceDescription(res.body, opts.location);
    const services = parsed.services.map((s) => ({ ...s, controlUrl: pinControlUrl(s.controlUrl, opts.location) }));
    const description: IgdDescription = { ...parsed, service: services[0]!, services };
    const client = new IgdClient(
      { logger: opts.logger, clock },
      {
        description,
        localAddress: opts.localAddress,
        gateway: opts.gateway,
        timeoutMs: opts.timeoutMs,
        claimAnyAttempts: opts.claimAnyAttempts,
        maxListEntries: opts.maxListEntries,
      },
    );
    client.log.info('UPnP gateway found', {
      protocol: description.protocol,
      service: description.service.serviceType,
      controlUrl: description.service.controlUrl,
      model: `${description.manufacturer} ${description.modelName}`.trim(),
    });
    return client;
  }

  /**
   * Tries the description URLs in order (as `chooseLocations` ranks them: the LOCATION as
   * announced, then rewritten onto the responder's address) and returns the first client that
   * connects. Rejects with the last failure, or NoGatewayError when there was nothing to try; an
   * abort ends the walk at once.
   */
  static async connectFirst(
    candidates: ReadonlyArray<string | LocationCandidate>,
    opts: Omit<IgdConnectOptions, 'location'>,
  ): Promise<IgdClient> {
    let last: unknown = new NoGatewayError('no UPnP device description to try');
    const log = (opts.logger ?? silentLogger).child('igd');
    for (const c of candidates) {
      const location = typeof c === 'string' ? c : c.url;
      throwIfAborted(opts.signal);
      try {
        return await IgdClient.connect({ ...opts, location });
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        log.debug('device description unusable, trying the next one', { location, error: err });
        last = err;
      }
    }
    throw last;
  }

  async externalAddress(signal?: AbortSignal): Promise<string> {
    const out = await this.call('GetExternalIPAddress', [], signal);
    const address = (out.get('NewExternalIPAddress') ?? '').trim();
    if (address === '' || address === '0.0.0.0') {
      // miniupnpd also answers '' when its WAN address is private or reserved (double NAT).
      throw new NoWanAddressError('the router reports no external address: its WAN link is down or its WAN address is not public');
    }
    if (isIP(address) === 0) {
      throw new BadResponseError(`GetExternalIPAddress: not an IP address: ${JSON.stringify(address.slice(0, 64))}`);
    }
    return address;
  }

  /** GetStatusInfo's uptime; undefined from a router without the action or the field. */
  async tableAge(signal?: AbortSignal): Promise<number | undefined> {
    let out: ReadonlyMap<string, string>;
    try {
      out = await this.call('GetStatusInfo', [], signal);
    } catch (err) {
      if (isMissingAction(err)) return undefined;
      throw err;
    }
    return parseUptime(out.get('NewUptime'));
  }

  async claim(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    checkMappingRequest(req);
    return this.addPortMapping(req, req.externalPort, req.internalPort, signal);
  }

  async claimAny(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    checkMappingRequest(req);
    if (this.protocol === 'upnp-igd2' && !this.noAddAnyPortMapping) {
      try {
        return await this.addAnyPortMapping(req, signal);
      } catch (err) {
        if (!isMissingAction(err)) throw err;
        this.noAddAnyPortMapping = true;
        this.log.warn('router lists IGDv2 but lacks AddAnyPortMapping; trying ports one by one');
      }
    }
    return this.claimSuccessive(req, signal);
  }

  async release(mapping: Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>, signal?: AbortSignal): Promise<void> {
    try {
      await this.call(
        'DeletePortMapping',
        [
          ['NewRemoteHost', ''],
          ['NewExternalPort', mapping.externalPort],
          ['NewProtocol', mapping.protocol],
        ],
        signal,
      );
    } catch (err) {
      if (err instanceof UpnpError && err.upnpCode === E.NO_SUCH_ENTRY) return;
      if (err instanceof UpnpError && err.upnpCode === E.NOT_AUTHORIZED) {
        throw new NotAuthorizedError(
          `the router refused to delete the mapping of port ${mapping.externalPort}/${mapping.protocol} ` +
            '(UPnP 606): in secure mode a host may only delete its own mappings',
          { cause: err },
        );
      }
      throw err;
    }
  }

  async list(signal?: AbortSignal): Promise<Mapping[]> {
    if (this.protocol === 'upnp-igd2' && !this.noListOfPortMappings) {
      try {
        return await this.listRanges(signal);
      } catch (err) {
        if (!(err instanceof UpnpError || err instanceof BadResponseError)) throw err;
        if (isMissingAction(err)) this.noListOfPortMappings = true;
        this.log.debug('GetListOfPortMappings failed, reading the table entry by entry', { error: err });
      }
    }
    return this.listByIndex(signal);
  }

  /**
   * The same description and chosen service: no second fetch. What this client learnt of the
   * router's quirks (permanent leases only, missing actions) is learnt again by the new one.
   * UPnP has no epoch, so `onReset` is never called.
   */
  bindTo(localAddress: string, opts: BindOptions = {}): IgdClient {
    const { components, init } = this.made;
    return new IgdClient(components, { ...init, localAddress, gateway: this.gateway, timeoutMs: opts.timeoutMs ?? init.timeoutMs });
  }

  close(): void {
    if (!this.closer.signal.aborted) this.closer.abort(new AbortedError('the IGD client was closed'));
  }

  private async call(action: string, args: SoapArgs, signal?: AbortSignal): Promise<ReadonlyMap<string, string>> {
    throwIfAborted(this.closer.signal);
    throwIfAborted(signal);
    return soapCall({
      controlUrl: this.controlUrl,
      serviceType: this.serviceType,
      action,
      args,
      localAddress: this.localAddress,
      timeoutMs: this.timeoutMs,
      clock: this.clock,
      signal: signal ? AbortSignal.any([this.closer.signal, signal]) : this.closer.signal,
    });
  }

  private mappingArgs(req: MappingRequest, externalPort: number, internalPort: number, lease: number): SoapArgs {
    return [
      ['NewRemoteHost', ''],
      ['NewExternalPort', externalPort],
      ['NewProtocol', req.protocol],
      ['NewInternalPort', internalPort],
      ['NewInternalClient', req.internalClient ?? this.localAddress],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', req.description],
      ['NewLeaseDuration', lease],
    ];
  }

  /**
   * The lease we ask for is the caller's. Quirk: IGDv2 routers (miniupnpd among them) turn a
   * lease of 0 into one week, as the v2 spec asks; we do not second-guess that in either way.
   */
  private leaseFor(req: MappingRequest): number {
    return this.permanentLeasesOnly ? 0 : req.leaseSeconds;
  }

  /** Runs an add action; on 725 retries once with a permanent lease and remembers. */
  private async withLeaseRetry<T>(
    req: MappingRequest,
    run: (lease: number) => Promise<T>,
  ): Promise<{ result: T; lease: number }> {
    const lease = this.leaseFor(req);
    try {
      return { result: await run(lease), lease };
    } catch (err) {
      if (!(err instanceof UpnpError && err.upnpCode === E.ONLY_PERMANENT_LEASES && lease !== 0)) throw err;
      // Quirk: IGDv1 routers (old Linksys/Netgear firmware, some ISP boxes) answer 725
      // OnlyPermanentLeasesSupported to any finite lease. We then map permanently and rely on
      // release (and on renewing as if it were leased) instead.
      this.permanentLeasesOnly = true;
      this.log.warn('router accepts only permanent port mappings (UPnP 725); leases will be 0');
      return { result: await run(0), lease: 0 };
    }
  }

  private async addPortMapping(
    req: MappingRequest,
    externalPort: number,
    internalPort: number,
    signal?: AbortSignal,
  ): Promise<Mapping> {
    try {
      const { lease } = await this.withLeaseRetry(req, (l) =>
        this.call('AddPortMapping', this.mappingArgs(req, externalPort, internalPort, l), signal),
      );
      return this.mapping(req, externalPort, internalPort, lease);
    } catch (err) {
      throw this.addError(err, 'AddPortMapping', req, externalPort, internalPort);
    }
  }

  private async addAnyPortMapping(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    let reserved: number;
    let leaseUsed: number;
    try {
      const { result, lease } = await this.withLeaseRetry(req, (l) =>
        this.call('AddAnyPortMapping', this.mappingArgs(req, req.externalPort, req.internalPort, l), signal),
      );
      leaseUsed = lease;
      const port = (result.get('NewReservedPort') ?? '').trim();
      reserved = /^\d{1,5}$/.test(port) ? Number(port) : 0;
    } catch (err) {
      if (isMissingAction(err)) throw err;
      throw this.addError(err, 'AddAnyPortMapping', req, req.externalPort, req.internalPort);
    }
    if (reserved < 1 || reserved > 65535) {
      throw new BadResponseError('AddAnyPortMapping: NewReservedPort is not a port');
    }
    return this.mapping(req, reserved, req.internalPort, leaseUsed);
  }

  /** IGDv1 has no AddAnyPortMapping: walk up from the hint, skipping ports other hosts hold. */
  private async claimSuccessive(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    let port = req.externalPort;
    let sameTried = false;
    for (let i = 0; i < this.claimAnyAttempts; i++) {
      try {
        return await this.addPortMapping(req, port, req.internalPort, signal);
      } catch (err) {
        if (isSamePortValuesRequired(err) && !sameTried && port !== req.internalPort) {
          // 724: the router maps only external == internal. For claimAny the external port is
          // free to choose, so the internal port is the one port left to try.
          sameTried = true;
          return await this.addPortMapping(req, req.internalPort, req.internalPort, signal);
        }
        if (!(err instanceof PortConflictError)) throw err;
      }
      port = port >= 65535 ? 1024 : port + 1;
    }
    throw new PortConflictError(
      req.externalPort,
      `no free external port among ${this.claimAnyAttempts} tried from ${req.externalPort}`,
    );
  }

  private mapping(req: MappingRequest, externalPort: number, internalPort: number, lease: number): Mapping {
    return {
      protocol: req.protocol,
      externalPort,
      internalClient: req.internalClient ?? this.localAddress,
      internalPort,
      leaseSeconds: lease,
      description: req.description,
      enabled: true,
      remoteHost: '',
      via: this.protocol,
    };
  }

  private addError(err: unknown, action: string, req: MappingRequest, externalPort: number, internalPort: number): unknown {
    if (!(err instanceof UpnpError)) return err;
    const opts = { cause: err };
    switch (err.upnpCode) {
      case E.CONFLICT:
      case E.CONFLICT_WITH_OTHER_MECHANISMS:
        // Quirk: miniupnpd built for IGDv1 answers 718 (not 606) in secure mode when the internal
        // client is not the requester; with the default internal client that cannot happen.
        return new PortConflictError(externalPort, undefined, undefined, opts);
      case E.NOT_AUTHORIZED:
        // Quirk: miniupnpd answers 606 when its allow/deny rules refuse the port (by default
        // everything below 1024), and also when secure mode refuses another host's address.
        if (externalPort < 1024) return new PortRefusedError(externalPort, undefined, opts);
        return new NotAuthorizedError(
          `the router refused ${action} of port ${externalPort} to ${req.internalClient ?? this.localAddress} ` +
            '(UPnP 606): in secure mode a host may only map ports to its own address',
          opts,
        );
      case E.INVALID_ARGS:
        // Some routers answer 402 rather than 606 to a port below 1024.
        return externalPort < 1024 ? new PortRefusedError(externalPort, undefined, opts) : err;
      case E.SAME_PORT_VALUES_REQUIRED:
        return new UnsupportedError(
          'the router maps only external port = internal port (UPnP 724 SamePortValuesRequired); ' +
            `asked ${externalPort} -> ${internalPort}: listen on port ${externalPort}, or use claimAny`,
          opts,
        );
      case E.WILDCARD_NOT_PERMITTED_IN_EXT_PORT:
        return new UpnpError(err.upnpCode, 'WildCardNotPermittedInExtPort: the router needs a specific external port', action, opts);
      case E.EXTERNAL_PORT_ONLY_WILDCARD:
        return new UnsupportedError(
          `the router maps only wildcard external ports (UPnP 727), so port ${externalPort} cannot be chosen`,
          opts,
        );
      case E.NO_PORT_MAPS_AVAILABLE:
        return new UpnpError(err.upnpCode, 'NoPortMapsAvailable: the router has no free port mapping left', action, opts);
      default:
        return err;
    }
  }

  /** IGDv2 GetListOfPortMappings over the whole port range, both protocols, paged. */
  private async listRanges(signal?: AbortSignal): Promise<Mapping[]> {
    const out: Mapping[] = [];
    const page = 1000;
    for (const protocol of ['TCP', 'UDP'] as TransportProtocol[]) {
      let start = 1;
      while (start <= 65535 && out.length < this.maxListEntries) {
        let listing: string;
        try {
          const res = await this.call(
            'GetListOfPortMappings',
            [
              ['NewStartPort', start],
              ['NewEndPort', 65535],
              ['NewProtocol', protocol],
              ['NewManage', 1],
              ['NewNumberOfPorts', page],
            ],
            signal,
          );
          listing = res.get('NewPortListing') ?? '';
        } catch (err) {
          // 730 PortMappingNotFound is how the spec says "nothing in this range".
          if (err instanceof UpnpError && err.upnpCode === E.PORT_MAPPING_NOT_FOUND) break;
          throw err;
        }
        const entries = parsePortListing(listing, this.protocol, this.maxListEntries - out.length);
        out.push(...entries);
        if (entries.length < page) break;
        const last = Math.max(...entries.map((m) => m.externalPort));
        if (last < start) break;
        start = last + 1;
      }
    }
    return out;
  }

  /** GetGenericPortMappingEntry from index 0 to the end of the table, bounded. */
  private async listByIndex(signal?: AbortSignal): Promise<Mapping[]> {
    const out: Mapping[] = [];
    for (let index = 0; index < this.maxListEntries; index++) {
      let fields: ReadonlyMap<string, string>;
      try {
        fields = await this.call('GetGenericPortMappingEntry', [['NewPortMappingIndex', index]], signal);
      } catch (err) {
        // 713 SpecifiedArrayIndexInvalid is the standard end of the table; some routers say 714,
        // 402 Invalid Args or 501 Action Failed instead.
        if (err instanceof UpnpError && isEndOfTable(err.upnpCode)) break;
        if (err instanceof UpnpError && err.upnpCode === E.NOT_AUTHORIZED) {
          throw new NotAuthorizedError("the router does not let this host read its port mapping table (UPnP 606)", {
            cause: err,
          });
        }
        throw err;
      }
      const m = entryToMapping(fields, this.protocol);
      if (m) out.push(m);
    }
    return out;
  }
}

function isSamePortValuesRequired(err: unknown): boolean {
  return err instanceof UnsupportedError && err.cause instanceof UpnpError && err.cause.upnpCode === E.SAME_PORT_VALUES_REQUIRED;
}

function isEndOfTable(code: number): boolean {
  return code === E.ARRAY_INDEX_INVALID || code === E.NO_SUCH_ENTRY || code === E.INVALID_ARGS || code === E.ACTION_FAILED;
}

function isMissingAction(err: unknown): boolean {
  return (
    err instanceof UpnpError && (err.upnpCode === E.INVALID_ACTION || err.upnpCode === E.OPTIONAL_ACTION_NOT_IMPLEMENTED)
  );
}

