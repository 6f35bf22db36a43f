import { isIPv4 } from 'node:net';
import { systemClock } from '../../runtime/clock.js';
import type { Clock } from '../../runtime/clock.js';
import { silentLogger } from '../../runtime/log.js';
import type { Logger } from '../../runtime/log.js';
import { BadResponseError, ListingUnsupportedError, PortConflictError, UnsupportedError } from '../errors.js';
import { checkMappingRequest, checkPort } from '../mapping-request.js';
import type { BindOptions, Mapping, MappingRequest, PortMapper, TransportProtocol } from '../types.js';
import {
  encodeExternalAddressRequest,
  encodeMapRequest,
  NATPMP_PORT,
  NatPmpOpcode,
  natPmpResultError,
  parseNatPmpResponse,
} from './codec.js';
import type { NatPmpMapResponse, NatPmpResponse } from './codec.js';
import { announceReset, EpochTracker } from './epoch-tracker.js';
import { UdpRequester } from './udp-requester.js';

/** Defaults in one place. */
export const NATPMP_DEFAULTS = {
  /** Overall bound per request. RFC 6886 would retry for 64 s; failover cannot wait that long. */
  timeoutMs: 2000,
  /** RFC 6886 3.1: first resend after 250 ms, then doubling. */
  initialRetryMs: 250,
  /**
   * NAT-PMP and PCP have no permanent mappings (lifetime 0 means delete), so a request for a
   * "permanent" lease asks for the RFC 6886 3.3 recommended 7200 s; the caller renews it.
   */
  permanentLeaseSeconds: 7200,
} as const;

export interface NatPmpClientComponents {
  logger?: Logger;
  clock?: Clock;
}

export interface NatPmpClientInit {
  /** The router's LAN address (IPv4). */
  gateway: string;
  /** Our address on the LAN: requests come from it and mappings point to it. */
  localAddress: string;
  /** The gateway's port; 5351 except for the emulator. */
  port?: number;
  timeoutMs?: number;
  initialRetryMs?: number;
  /** Called when the router's epoch shows it lost its mappings (rebooted). */
  onReset?: (reason: string) => void;
}

/**
 * NAT-PMP (RFC 6886) as a PortMapper. NAT-PMP cannot list the table and never refuses a taken
 * port; `claim` turns the router's substitute port into a PortConflictError.
 */
export class NatPmpClient implements PortMapper {
  readonly protocol = 'natpmp' as const;
  readonly canList = false;
  readonly gateway: string;
  readonly localAddress: string;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly requester: UdpRequester<NatPmpResponse>;
  private readonly epochs = new EpochTracker({ minRate: 7 / 8, checkFastServer: false });
  private readonly onReset: ((reason: string) => void) | undefined;
  private resetCount = 0;
  /** What this client was made from, for bindTo. */
  private readonly made: { components: NatPmpClientComponents; init: NatPmpClientInit };

  constructor(components: NatPmpClientComponents, init: NatPmpClientInit) {
    if (!isIPv4(init.gateway)) throw new TypeError(`NAT-PMP gateway must be an IPv4 address: ${init.gateway}`);
    if (!isIPv4(init.localAddress)) throw new TypeError(`NAT-PMP local address must be IPv4: ${init.localAddress}`);
    this.made = { components, init };
    this.gateway = init.gateway;
    this.localAddress = init.localAddress;
    this.log = (components.logger ?? silentLogger).child('natpmp');
    this.clock = components.clock ?? systemClock;
    this.onReset = init.onReset;
    this.requester = new UdpRequester<NatPmpResponse>(
      { logger: this.log, clock: this.clock },
      {
        gateway: init.gateway,
        port: init.port ?? NATPMP_PORT,
        localAddress: init.localAddress,
        timeoutMs: init.timeoutMs ?? NATPMP_DEFAULTS.timeoutMs,
        initialRetryMs: init.initialRetryMs ?? NATPMP_DEFAULTS.initialRetryMs,
        protocol: 'NAT-PMP',
      },
      parseNatPmpResponse,
    );
  }

  /** How many times the router was seen to lose its state. */
  get resets(): number {
    return this.resetCount;
  }

  async externalAddress(signal?: AbortSignal): Promise<string> {
    const what = 'NAT-PMP external address';
    const answer = await this.exchange(encodeExternalAddressRequest(), matchesAddressAnswer, what, signal);
    if (answer.kind === 'other-version') throw otherVersionError(answer.serverVersion, what);
    if (answer.resultCode !== 0) throw natPmpResultError(answer.resultCode, what);
    if (answer.kind !== 'address') throw new BadResponseError(`${what}: success without an address`);
    return answer.externalAddress;
  }

  /** The epoch: seconds since the router last started with an empty table (RFC 6886 3.6). */
  async tableAge(signal?: AbortSignal): Promise<number | undefined> {
    const answer = await this.exchange(encodeExternalAddressRequest(), matchesAddressAnswer, 'NAT-PMP epoch', signal);
    return answer.kind === 'other-version' ? undefined : answer.epoch;
  }

  async claim(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    this.check(req, true);
    const what = `NAT-PMP map ${req.protocol} ${req.externalPort} -> ${this.localAddress}:${req.internalPort}`;
    const answer = await this.map(req.protocol, req.internalPort, req.externalPort, leaseFor(req), what, signal);
    if (answer.externalPort !== req.externalPort) {
      // NAT-PMP never refuses a taken port: it grants another one (miniupnpd: 8081 for 8080).
      await this.releaseStray(req.protocol, req.internalPort, answer.externalPort, signal);
      throw new PortConflictError(
        req.externalPort,
        `external port ${req.externalPort} is taken: the router offered ${answer.externalPort} instead (released)`,
        answer.externalPort,
      );
    }
    return this.toMapping(req, answer);
  }

  async claimAny(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    this.check(req, false);
    const what = `NAT-PMP map ${req.protocol} any -> ${this.localAddress}:${req.internalPort}`;
    const answer = await this.map(req.protocol, req.internalPort, req.externalPort, leaseFor(req), what, signal);
    return this.toMapping(req, answer);
  }

  async release(
    mapping: Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>,
    signal?: AbortSignal,
  ): Promise<void> {
    checkPort('internalPort', mapping.internalPort, 1);
    checkPort('externalPort', mapping.externalPort, 0);
    const what = `NAT-PMP release ${mapping.protocol} ${mapping.externalPort} -> ${mapping.internalPort}`;
    await this.map(mapping.protocol, mapping.internalPort, mapping.externalPort, 0, what, signal);
  }

  async list(_signal?: AbortSignal): Promise<Mapping[]> {
    throw new ListingUnsupportedError('NAT-PMP');
  }

  bindTo(localAddress: string, opts: BindOptions = {}): NatPmpClient {
    const { components, init } = this.made;
    return new NatPmpClient(components, { ...init, localAddress, timeoutMs: opts.timeoutMs ?? init.timeoutMs, onReset: opts.onReset });
  }

  close(): void {
    this.requester.close();
  }

  /**
   * One mapping request; lifetime 0 deletes. On deletion RFC 6886 3.4 wants the external port
   * field zero and gateways to ignore it; we send the mapped port anyway, because miniupnpd up
   * to 1.x replaced 0 by the internal port and deleted whatever held that external port, which
   * could be another host's mapping (the very lock we must not break). Conforming gateways
   * ignore the field, so nothing is lost.
   */
  private async map(
    protocol: TransportProtocol,
    internalPort: number,
    externalPort: number,
    lifetimeSeconds: number,
    what: string,
    signal?: AbortSignal,
  ): Promise<NatPmpMapResponse> {
    const opcode = protocol === 'TCP' ? NatPmpOpcode.mapTcp : NatPmpOpcode.mapUdp;
    const deleting = lifetimeSeconds === 0;
    const payload = encodeMapRequest({ protocol, internalPort, externalPort, lifetimeSeconds });
    const answer = await this.exchange(
      payload,
      (a) => matchesMapAnswer(a, opcode, internalPort, deleting),
      what,
      signal,
    );
    if (answer.kind === 'other-version') throw otherVersionError(answer.serverVersion, what);
    if (answer.resultCode !== 0) throw natPmpResultError(answer.resultCode, what);
    if (answer.kind !== 'map') throw new BadResponseError(`${what}: success without mapping fields`);
    return answer;
  }

  private async releaseStray(
    protocol: TransportProtocol,
    internalPort: number,
    externalPort: number,
    signal?: AbortSignal,
  ): Promise<void> {
    try {
      await this.map(protocol, internalPort, externalPort, 0, `NAT-PMP release offered port ${externalPort}`, signal);
    } catch (err) {
      this.log.warn('could not release the port the router offered instead; it lapses with its lease', {
        protocol,
        externalPort,
        error: err,
      });
    }
  }

  private async exchange(
    payload: Uint8Array,
    match: (a: NatPmpResponse) => boolean,
    what: string,
    signal?: AbortSignal,
  ): Promise<NatPmpResponse> {
    const answer = await this.requester.request(payload, match, what, signal);
    if (answer.kind !== 'other-version') this.observeEpoch(answer.epoch);
    return answer;
  }

  private observeEpoch(epoch: number): void {
    const reason = this.epochs.observe(epoch, this.clock.now());
    if (reason === undefined) return;
    this.resetCount++;
    announceReset(this.log, this.gateway, reason, this.onReset);
  }

  private check(req: MappingRequest, exact: boolean): void {
    checkMappingRequest(req, exact ? 1 : 0);
    if (req.internalClient !== undefined && req.internalClient !== this.localAddress) {
      throw new UnsupportedError(
        `NAT-PMP maps only to the requesting host (${this.localAddress}), not to ${req.internalClient}`,
      );
    }
  }

  private toMapping(req: MappingRequest, answer: NatPmpMapResponse): Mapping {
    return {
      protocol: req.protocol,
      externalPort: answer.externalPort,
      internalClient: this.localAddress,
      internalPort: answer.internalPort,
      leaseSeconds: answer.lifetimeSeconds,
      description: req.description,
      enabled: true,
      remoteHost: '',
      via: 'natpmp',
    };
  }
}

/** Answers that belong to an external-address request (opcode 0). */
export function matchesAddressAnswer(a: NatPmpResponse): boolean {
  return a.opcode === NatPmpOpcode.externalAddress;
}

/**
 * Answers that belong to one mapping request: same opcode (so same protocol) and internal port;
 * a success must also agree on create vs delete (a deletion answers lifetime 0), so a claim and
 * a release of the same port in flight at once cannot swap answers.
 */
export function matchesMapAnswer(a: NatPmpResponse, opcode: number, internalPort: number, deleting: boolean): boolean {
  if (a.opcode !== opcode) return false;
  if (a.kind === 'error' || a.kind === 'other-version') return true;
  if (a.kind !== 'map' || a.internalPort !== internalPort) return false;
  if (a.resultCode !== 0) return true;
  return deleting ? a.lifetimeSeconds === 0 : a.lifetimeSeconds > 0;
}

export function otherVersionError(serverVersion: number, what: string): UnsupportedError {
  return new UnsupportedError(`${what}: the router speaks PCP version ${serverVersion}, not NAT-PMP`);
}

function leaseFor(req: MappingRequest): number {
  return req.leaseSeconds === 0 ? NATPMP_DEFAULTS.permanentLeaseSeconds : req.leaseSeconds;
}

export interface ProbeOptions {
  gateway: string;
  localAddress: string;
  /** The gateway's port; 5351 except for the emulator. */
  port?: number;
  /** Overall bound, resends included (default 1000 ms: discovery should not linger). */
  timeoutMs?: number;
  signal?: AbortSignal;
  clock?: Clock;
  logger?: Logger;
}

export const PROBE_DEFAULT_TIMEOUT_MS = 1000;

export interface NatPmpProbeResult {
  externalAddress: string;
  epoch: number;
  elapsedMs: number;
}

/**
 * Asks the gateway for its external address (NAT-PMP opcode 0) on a throwaway socket. Resolves
 * on the first valid answer; rejects with RouterTimeoutError when nothing answered, with
 * NoGatewayError when the router answered ICMP port unreachable, or with the typed error of a
 * non-zero result code.
 */
export async function probeNatPmp(opts: ProbeOptions): Promise<NatPmpProbeResult> {
  const clock = opts.clock ?? systemClock;
  const started = clock.now();
  const what = `NAT-PMP probe of ${opts.gateway}`;
  const requester = new UdpRequester<NatPmpResponse>(
    { logger: (opts.logger ?? silentLogger).child('natpmp-probe'), clock },
    {
      gateway: opts.gateway,
      port: opts.port ?? NATPMP_PORT,
      localAddress: opts.localAddress,
      timeoutMs: opts.timeoutMs ?? PROBE_DEFAULT_TIMEOUT_MS,
      initialRetryMs: NATPMP_DEFAULTS.initialRetryMs,
      protocol: 'NAT-PMP',
    },
    parseNatPmpResponse,
  );
  try {
    const answer = await requester.request(encodeExternalAddressRequest(), matchesAddressAnswer, what, opts.signal);
    if (answer.kind === 'other-version') throw otherVersionError(answer.serverVersion, what);
    if (answer.resultCode !== 0) throw natPmpResultError(answer.resultCode, what);
    if (answer.kind !== 'address') throw new BadResponseError(`${what}: success without an address`);
    return { externalAddress: answer.externalAddress, epoch: answer.epoch, elapsedMs: clock.now() - started };
  } finally {
    requester.close();
  }
}
