import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { systemClock } from '../../runtime/clock.js';
import type { Clock } from '../../runtime/clock.js';
import { silentLogger } from '../../runtime/log.js';
import type { Logger } from '../../runtime/log.js';
import { BadResponseError, ListingUnsupportedError, PortConflictError, UnsupportedError } from '../errors.js';
import { checkMappingRequest, checkPort } from '../mapping-request.js';
import { NATPMP_PORT } from '../natpmp/codec.js';
import { announceReset, EpochTracker } from '../natpmp/epoch-tracker.js';
import { NATPMP_DEFAULTS, PROBE_DEFAULT_TIMEOUT_MS } from '../natpmp/natpmp-client.js';
import type { ProbeOptions } from '../natpmp/natpmp-client.js';
import { UdpRequester } from '../natpmp/udp-requester.js';
import type { BindOptions, Mapping, MappingRequest, PortMapper, TransportProtocol } from '../types.js';
import {
  encodePcpAnnounceRequest,
  encodePcpMapRequest,
  IPPROTO_TCP,
  IPPROTO_UDP,
  parsePcpResponse,
  PcpOpcode,
  PcpResult,
  pcpResultError,
} from './codec.js';
import type { PcpAnswer, PcpMapData, PcpResponse } from './codec.js';

/** Defaults in one place. */
export const PCP_DEFAULTS = {
  /** Overall bound per request (RFC 6887 8.1.1 would retry for much longer). */
  timeoutMs: 2000,
  /** Same resend schedule as NAT-PMP: 250 ms, doubling. */
  initialRetryMs: 250,
  /** Lifetime 0 deletes in PCP; a "permanent" request asks for 7200 s and is renewed. */
  permanentLeaseSeconds: 7200,
  /** How long the external address from a MAP answer is trusted without asking again. */
  externalAddressMaxAgeMs: 60_000,
  /** The throwaway mapping that reveals the external address (miniupnpd's minimum is 120 s). */
  addressProbeLifetimeSeconds: 120,
} as const;

export interface PcpClientComponents {
  logger?: Logger;
  clock?: Clock;
}

export interface PcpClientInit {
  /** The router's LAN address (IPv4). */
  gateway: string;
  /** Our address on the LAN: the PCP client address, and where mappings point. */
  localAddress: string;
  /** The server's port; 5351 except for the emulator. */
  port?: number;
  timeoutMs?: number;
  initialRetryMs?: number;
  externalAddressMaxAgeMs?: number;
  /** Called when the server's epoch shows it lost its mappings (RFC 6887 8.5). */
  onReset?: (reason: string) => void;
}

interface MapParams {
  nonce: Buffer;
  protocol: TransportProtocol;
  internalPort: number;
  suggestedExternalPort: number;
  lifetimeSeconds: number;
  preferFailure: boolean;
}

type GrantedMap = PcpAnswer & { map: PcpMapData };

/**
 * PCP (RFC 6887) MAP over IPv4 as a PortMapper. Like NAT-PMP it cannot list, and miniupnpd
 * grants another port even with PREFER_FAILURE (9091 for 9090), so `claim` compares and turns
 * a substitute into PortConflictError.
 */
export class PcpClient implements PortMapper {
  readonly protocol = 'pcp' as const;
  readonly canList = false;
  readonly gateway: string;
  readonly localAddress: string;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly requester: UdpRequester<PcpResponse>;
  private readonly epochs = new EpochTracker({ minRate: 15 / 16, checkFastServer: true });
  private readonly onReset: ((reason: string) => void) | undefined;
  private readonly externalAddressMaxAgeMs: number;
  /** RFC 6887 11.2: renewals and deletion must reuse the nonce that made the mapping. */
  private readonly nonces = new Map<string, Buffer>();
  private lastExternal: { address: string; at: number } | undefined;
  private resetCount = 0;
  /** What this client was made from, for bindTo. */
  private readonly made: { components: PcpClientComponents; init: PcpClientInit };

  constructor(components: PcpClientComponents, init: PcpClientInit) {
    if (!isIPv4(init.gateway)) throw new TypeError(`PCP gateway must be an IPv4 address: ${init.gateway}`);
    if (!isIPv4(init.localAddress)) throw new TypeError(`PCP local address must be IPv4: ${init.localAddress}`);
    this.made = { components, init };
    this.gateway = init.gateway;
    this.localAddress = init.localAddress;
    this.log = (components.logger ?? silentLogger).child('pcp');
    this.clock = components.clock ?? systemClock;
    this.onReset = init.onReset;
    this.externalAddressMaxAgeMs = init.externalAddressMaxAgeMs ?? PCP_DEFAULTS.externalAddressMaxAgeMs;
    this.requester = new UdpRequester<PcpResponse>(
      { logger: this.log, clock: this.clock },
      {
        gateway: init.gateway,
        port: init.port ?? NATPMP_PORT,
        localAddress: init.localAddress,
        timeoutMs: init.timeoutMs ?? PCP_DEFAULTS.timeoutMs,
        initialRetryMs: init.initialRetryMs ?? PCP_DEFAULTS.initialRetryMs,
        protocol: 'PCP',
      },
      parsePcpResponse,
    );
  }

  /** How many times the server was seen to lose its state. */
  get resets(): number {
    return this.resetCount;
  }

  /**
   * PCP has no "external address" request. The address comes from the last MAP answer while
   * fresh; otherwise from a throwaway MAP of this client's own UDP socket port (a port this
   * process holds and which, being connected to the gateway, accepts nothing from outside),
   * deleted again at once with its nonce.
   */
  async externalAddress(signal?: AbortSignal): Promise<string> {
    const last = this.lastExternal;
    if (last && this.clock.now() - last.at <= this.externalAddressMaxAgeMs) return last.address;
    return (await this.probeMap(signal)).map.externalAddress;
  }

  /**
   * The epoch (RFC 6887 8.5: restarts when the server loses its state), from a fresh exchange:
   * an epoch counted on from an older answer would hide a reboot since, which is what the
   * caller asks about.
   */
  async tableAge(signal?: AbortSignal): Promise<number | undefined> {
    return (await this.probeMap(signal)).epoch;
  }

  /** A throwaway MAP of this client's own socket port, deleted at once: the answer's address and epoch. */
  private async probeMap(signal?: AbortSignal): Promise<GrantedMap> {
    const internalPort = await this.requester.ensureOpen(signal);
    const params: MapParams = {
      nonce: randomBytes(12),
      protocol: 'UDP',
      internalPort,
      suggestedExternalPort: 0,
      lifetimeSeconds: PCP_DEFAULTS.addressProbeLifetimeSeconds,
      preferFailure: false,
    };
    const what = 'PCP external address';
    const granted = this.accept(await this.mapRaw(params, what, signal), what);
    await this.releaseQuietly(params, granted.map.externalPort, signal);
    return granted;
  }

  async claim(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    this.check(req, true);
    const what = `PCP map ${req.protocol} ${req.externalPort} -> ${this.localAddress}:${req.internalPort}`;
    const params: MapParams = {
      nonce: this.nonceFor(req.protocol, req.internalPort),
      protocol: req.protocol,
      internalPort: req.internalPort,
      suggestedExternalPort: req.externalPort,
      lifetimeSeconds: leaseFor(req),
      preferFailure: true,
    };
    let answer = await this.mapRaw(params, what, signal);
    if (answer.kind === 'pcp' && answer.resultCode === PcpResult.unsuppOption) {
      // PREFER_FAILURE (code 2) is mandatory-to-process (RFC 6887 7.3), so a server without it
      // answers UNSUPP_OPTION; ask again without it and compare ports ourselves.
      params.preferFailure = false;
      answer = await this.mapRaw(params, what, signal);
    }
    const granted = this.accept(answer, what, { askedPort: req.externalPort, preferFailure: params.preferFailure });
    if (granted.map.externalPort !== req.externalPort) {
      // miniupnpd ignores PREFER_FAILURE for a port held by another host (measured: 9091 for 9090).
      await this.releaseQuietly(params, granted.map.externalPort, signal);
      throw new PortConflictError(
        req.externalPort,
        `external port ${req.externalPort} is taken: the router offered ${granted.map.externalPort} instead (released)`,
        granted.map.externalPort,
      );
    }
    return this.toMapping(req, granted);
  }

  async claimAny(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    this.check(req, false);
    const what = `PCP map ${req.protocol} any -> ${this.localAddress}:${req.internalPort}`;
    const params: MapParams = {
      nonce: this.nonceFor(req.protocol, req.internalPort),
      protocol: req.protocol,
      internalPort: req.internalPort,
      suggestedExternalPort: req.externalPort,
      lifetimeSeconds: leaseFor(req),
      preferFailure: false,
    };
    return this.toMapping(req, this.accept(await this.mapRaw(params, what, signal), what));
  }

  /**
   * Deletes with the nonce that made the mapping. A mapping made by another client instance
   * (another nonce) cannot be deleted: the server answers NOT_AUTHORIZED (RFC 6887 11.2).
   */
  async release(
    mapping: Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>,
    signal?: AbortSignal,
  ): Promise<void> {
    checkPort('internalPort', mapping.internalPort, 1);
    checkPort('externalPort', mapping.externalPort, 0);
    const what = `PCP release ${mapping.protocol} ${mapping.externalPort} -> ${mapping.internalPort}`;
    const params: MapParams = {
      nonce: this.nonceFor(mapping.protocol, mapping.internalPort),
      protocol: mapping.protocol,
      internalPort: mapping.internalPort,
      suggestedExternalPort: mapping.externalPort,
      lifetimeSeconds: 0,
      preferFailure: false,
    };
    const answer = await this.mapRaw(params, what, signal);
    // miniupnpd answers NO_RESOURCES when no mapping matches: already gone, which is success here.
    if (answer.kind === 'pcp' && answer.resultCode === PcpResult.noResources) return;
    this.accept(answer, what);
  }

  async list(_signal?: AbortSignal): Promise<Mapping[]> {
    throw new ListingUnsupportedError('PCP');
  }

  /** The new client has its own nonces: a mapping is renewed or deleted by the client that made it. */
  bindTo(localAddress: string, opts: BindOptions = {}): PcpClient {
    const { components, init } = this.made;
    return new PcpClient(components, { ...init, localAddress, timeoutMs: opts.timeoutMs ?? init.timeoutMs, onReset: opts.onReset });
  }

  close(): void {
    this.requester.close();
  }

  private nonceFor(protocol: TransportProtocol, internalPort: number): Buffer {
    const key = `${protocol}/${internalPort}`;
    let nonce = this.nonces.get(key);
    if (!nonce) {
      nonce = randomBytes(12);
      this.nonces.set(key, nonce);
    }
    return nonce;
  }

  /** One MAP exchange; the answer is returned whatever its result code. */
  private async mapRaw(params: MapParams, what: string, signal?: AbortSignal): Promise<PcpResponse> {
    const payload = encodePcpMapRequest({
      clientAddress: this.localAddress,
      nonce: params.nonce,
      protocol: params.protocol,
      internalPort: params.internalPort,
      suggestedExternalPort: params.suggestedExternalPort,
      lifetimeSeconds: params.lifetimeSeconds,
      preferFailure: params.preferFailure,
    });
    const proto = params.protocol === 'TCP' ? IPPROTO_TCP : IPPROTO_UDP;
    const deleting = params.lifetimeSeconds === 0;
    const answer = await this.requester.request(
      payload,
      (a) => matchesMapAnswer(a, params.nonce, proto, params.internalPort, deleting),
      what,
      signal,
    );
    if (answer.kind === 'pcp') this.observeEpoch(answer.epoch);
    return answer;
  }

  /** Turns an answer into the granted mapping or a typed error. */
  private accept(
    answer: PcpResponse,
    what: string,
    context: { askedPort?: number; preferFailure?: boolean } = {},
  ): GrantedMap {
    if (answer.kind === 'other-version') throw otherVersionError(answer.serverVersion, what);
    if (answer.resultCode !== PcpResult.success) throw pcpResultError(answer.resultCode, what, context);
    if (!answer.map) throw new BadResponseError(`${what}: success without MAP data`);
    if (answer.lifetimeSeconds > 0) {
      this.lastExternal = { address: answer.map.externalAddress, at: this.clock.now() };
    }
    return answer as GrantedMap;
  }

  private async releaseQuietly(params: MapParams, externalPort: number, signal?: AbortSignal): Promise<void> {
    const del: MapParams = { ...params, lifetimeSeconds: 0, preferFailure: false, suggestedExternalPort: externalPort };
    try {
      const answer = await this.mapRaw(del, `PCP release offered port ${externalPort}`, signal);
      if (answer.kind === 'pcp' && answer.resultCode === PcpResult.noResources) return;
      this.accept(answer, 'PCP release');
    } catch (err) {
      this.log.warn('could not delete a mapping the router granted; it lapses with its lifetime', {
        protocol: params.protocol,
        externalPort,
        error: err,
      });
    }
  }

  private observeEpoch(epoch: number): void {
    const reason = this.epochs.observe(epoch, this.clock.now());
    if (reason === undefined) return;
    this.resetCount++;
    this.lastExternal = undefined;
    announceReset(this.log, this.gateway, reason, this.onReset);
  }

  private check(req: MappingRequest, exact: boolean): void {
    checkMappingRequest(req, exact ? 1 : 0);
    if (req.internalClient !== undefined && req.internalClient !== this.localAddress) {
      // THIRD_PARTY would do it, but servers refuse it by default (miniupnpd: UNSUPP_OPTION).
      throw new UnsupportedError(`PCP maps only to the requesting host (${this.localAddress}), not to ${req.internalClient}`);
    }
  }

  private toMapping(req: MappingRequest, granted: GrantedMap): Mapping {
    return {
      protocol: req.protocol,
      externalPort: granted.map.externalPort,
      internalClient: this.localAddress,
      internalPort: granted.map.internalPort,
      // What the server granted, not what we asked (miniupnpd raised 60 s to 120 s).
      leaseSeconds: granted.lifetimeSeconds,
      description: req.description,
      enabled: true,
      remoteHost: '',
      via: 'pcp',
    };
  }
}

/**
 * Answers that belong to one MAP request: same nonce, protocol and internal port; a success
 * must agree on create vs delete, so a claim and a release in flight together cannot swap
 * answers. A header-only error (no MAP data echoed) cannot be told apart and goes to the
 * oldest pending MAP.
 */
export function matchesMapAnswer(
  a: PcpResponse,
  nonce: Uint8Array,
  protocol: number,
  internalPort: number,
  deleting: boolean,
): boolean {
  if (a.opcode !== PcpOpcode.map) return false;
  if (a.kind === 'other-version') return true;
  if (!a.map) return a.resultCode !== PcpResult.success;
  if (!a.map.nonce.equals(nonce) || a.map.protocol !== protocol || a.map.internalPort !== internalPort) return false;
  if (a.resultCode !== PcpResult.success) return true;
  return deleting ? a.lifetimeSeconds === 0 : a.lifetimeSeconds > 0;
}

export function otherVersionError(serverVersion: number, what: string): UnsupportedError {
  return new UnsupportedError(
    serverVersion === 0
      ? `${what}: the router speaks NAT-PMP only, not PCP`
      : `${what}: the router speaks PCP version ${serverVersion} only`,
  );
}

function leaseFor(req: MappingRequest): number {
  return req.leaseSeconds === 0 ? PCP_DEFAULTS.permanentLeaseSeconds : req.leaseSeconds;
}

export interface PcpProbeResult {
  epoch: number;
  elapsedMs: number;
  /** The PCP version of the answer (2). */
  version: number;
}

/**
 * Sends a PCP ANNOUNCE (RFC 6887 14.1) on a throwaway socket. Resolves on the first valid
 * answer; rejects with RouterTimeoutError when nothing answered, NoGatewayError on ICMP port
 * unreachable, UnsupportedError when the server speaks only NAT-PMP or another PCP version,
 * or the typed error of another result code.
 */
export async function probePcp(opts: ProbeOptions): Promise<PcpProbeResult> {
  const clock = opts.clock ?? systemClock;
  const started = clock.now();
  const what = `PCP probe of ${opts.gateway}`;
  const requester = new UdpRequester<PcpResponse>(
    { logger: (opts.logger ?? silentLogger).child('pcp-probe'), clock },
    {
      gateway: opts.gateway,
      port: opts.port ?? NATPMP_PORT,
      localAddress: opts.localAddress,
      timeoutMs: opts.timeoutMs ?? PROBE_DEFAULT_TIMEOUT_MS,
      initialRetryMs: NATPMP_DEFAULTS.initialRetryMs,
      protocol: 'PCP',
    },
    parsePcpResponse,
  );
  try {
    const answer = await requester.request(
      encodePcpAnnounceRequest(opts.localAddress),
      (a) => a.opcode === PcpOpcode.announce,
      what,
      opts.signal,
    );
    if (answer.kind === 'other-version') throw otherVersionError(answer.serverVersion, what);
    if (answer.resultCode !== PcpResult.success) throw pcpResultError(answer.resultCode, what);
    return { epoch: answer.epoch, elapsedMs: clock.now() - started, version: answer.version };
  } finally {
    requester.close();
  }
}
