import { isIPv4 } from 'node:net';
import {
  BadResponseError,
  NotAuthorizedError,
  NoWanAddressError,
  ResultCodeError,
  UnsupportedError,
} from '../errors.js';
import type { RouterError } from '../errors.js';
import type { TransportProtocol } from '../types.js';

/**
 * NAT-PMP (RFC 6886) wire format. Pure functions: no sockets, no clock, so that every byte a
 * router (or anyone on the LAN) can send is covered by the property tests.
 */

/** The gateway's NAT-PMP (and PCP) port, RFC 6886 3.1. */
export const NATPMP_PORT = 5351;

export const NatPmpOpcode = {
  externalAddress: 0,
  mapUdp: 1,
  mapTcp: 2,
} as const;

export const NatPmpResult = {
  success: 0,
  unsupportedVersion: 1,
  notAuthorized: 2,
  networkFailure: 3,
  outOfResources: 4,
  unsupportedOpcode: 5,
} as const;

export interface NatPmpMapRequest {
  protocol: TransportProtocol;
  internalPort: number;
  /** Suggested external port; 0 lets the gateway choose. */
  externalPort: number;
  /** Seconds (RFC 6886 3.3). 0 deletes the mapping. */
  lifetimeSeconds: number;
}

/** Answer to opcode 0 (RFC 6886 3.2): 12 bytes. */
export interface NatPmpAddressResponse {
  kind: 'address';
  opcode: 0;
  resultCode: number;
  /** Seconds since the gateway's mapping table was (re)initialised. */
  epoch: number;
  /** Meaningless unless resultCode is 0 (the RFC says it is zero then). */
  externalAddress: string;
}

/** Answer to opcodes 1 and 2 (RFC 6886 3.3): 16 bytes, also for most errors. */
export interface NatPmpMapResponse {
  kind: 'map';
  opcode: 1 | 2;
  protocol: TransportProtocol;
  resultCode: number;
  epoch: number;
  internalPort: number;
  externalPort: number;
  lifetimeSeconds: number;
}

/**
 * An error answer that carries only the 8-byte header (miniupnpd answers "unsupported version"
 * and "unsupported opcode" this way).
 */
export interface NatPmpShortErrorResponse {
  kind: 'error';
  opcode: number;
  resultCode: number;
  epoch: number;
}

/**
 * A gateway that speaks only PCP answers a version-0 request with a PCP UNSUPP_VERSION packet
 * (RFC 6887 9), in PCP's layout. Recognised so the caller hears "unsupported", not "garbage".
 */
export interface NatPmpOtherVersionResponse {
  kind: 'other-version';
  serverVersion: number;
  opcode: number;
}

export type NatPmpResponse =
  | NatPmpAddressResponse
  | NatPmpMapResponse
  | NatPmpShortErrorResponse
  | NatPmpOtherVersionResponse;

export function encodeExternalAddressRequest(): Buffer {
  return Buffer.from([0, NatPmpOpcode.externalAddress]);
}

export function encodeMapRequest(req: NatPmpMapRequest): Buffer {
  checkPort(req.internalPort, 'internal port');
  checkPort(req.externalPort, 'external port');
  checkUint32(req.lifetimeSeconds, 'lifetime');
  const b = Buffer.alloc(12);
  b[0] = 0;
  b[1] = req.protocol === 'TCP' ? NatPmpOpcode.mapTcp : NatPmpOpcode.mapUdp;
  // bytes 2-3 reserved, zero
  b.writeUInt16BE(req.internalPort, 4);
  b.writeUInt16BE(req.externalPort, 6);
  b.writeUInt32BE(req.lifetimeSeconds, 8);
  return b;
}

/**
 * Parses one datagram from the gateway. Sizes are exact: RFC 6886 defines fixed-size answers,
 * and a datagram with trailing bytes is not one of them (we would rather time out than act on a
 * packet we only half understand). Throws BadResponseError for anything else.
 */
export function parseNatPmpResponse(buf: Uint8Array): NatPmpResponse {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 4) throw new BadResponseError(`NAT-PMP answer too short (${b.length} bytes)`);
  const version = b[0]!;
  const op = b[1]!;
  if ((op & 0x80) === 0) throw new BadResponseError(`NAT-PMP packet is a request (opcode ${op}), not an answer`);
  if (version !== 0) {
    // PCP layout: result code is the single byte 3; 1 = UNSUPP_VERSION.
    if (b[3] === NatPmpResult.unsupportedVersion && b.length >= 24 && b.length % 4 === 0) {
      return { kind: 'other-version', serverVersion: version, opcode: op & 0x7f };
    }
    throw new BadResponseError(`NAT-PMP answer has version ${version}, expected 0`);
  }
  const opcode = op & 0x7f;
  if (opcode > NatPmpOpcode.mapTcp) throw new BadResponseError(`NAT-PMP answer has unknown opcode ${op}`);
  if (b.length < 8) throw new BadResponseError(`NAT-PMP answer too short (${b.length} bytes)`);
  const resultCode = b.readUInt16BE(2);
  const epoch = b.readUInt32BE(4);
  if (b.length === 8) {
    if (resultCode === NatPmpResult.success) {
      throw new BadResponseError('NAT-PMP success answer without its body (8 bytes)');
    }
    return { kind: 'error', opcode, resultCode, epoch };
  }
  if (opcode === NatPmpOpcode.externalAddress) {
    if (b.length !== 12) throw new BadResponseError(`NAT-PMP address answer has ${b.length} bytes, expected 12`);
    const externalAddress = `${b[8]}.${b[9]}.${b[10]}.${b[11]}`;
    return { kind: 'address', opcode: 0, resultCode, epoch, externalAddress };
  }
  if (b.length !== 16) throw new BadResponseError(`NAT-PMP mapping answer has ${b.length} bytes, expected 16`);
  return {
    kind: 'map',
    opcode: opcode as 1 | 2,
    protocol: opcode === NatPmpOpcode.mapTcp ? 'TCP' : 'UDP',
    resultCode,
    epoch,
    internalPort: b.readUInt16BE(8),
    externalPort: b.readUInt16BE(10),
    lifetimeSeconds: b.readUInt32BE(12),
  };
}

/** Encodes a gateway's answer; used by tests and the router emulator. */
export function encodeNatPmpResponse(r: NatPmpResponse): Buffer {
  switch (r.kind) {
    case 'address': {
      if (!isIPv4(r.externalAddress)) throw new RangeError(`not an IPv4 address: ${r.externalAddress}`);
      const b = header(12, r.opcode, r.resultCode, r.epoch);
      const parts = r.externalAddress.split('.').map(Number);
      for (let i = 0; i < 4; i++) b[8 + i] = parts[i]!;
      return b;
    }
    case 'map': {
      checkPort(r.internalPort, 'internal port');
      checkPort(r.externalPort, 'external port');
      checkUint32(r.lifetimeSeconds, 'lifetime');
      const b = header(16, r.opcode, r.resultCode, r.epoch);
      b.writeUInt16BE(r.internalPort, 8);
      b.writeUInt16BE(r.externalPort, 10);
      b.writeUInt32BE(r.lifetimeSeconds, 12);
      return b;
    }
    case 'error':
      return header(8, r.opcode, r.resultCode, r.epoch);
    case 'other-version': {
      const b = Buffer.alloc(24);
      b[0] = r.serverVersion;
      b[1] = 0x80 | r.opcode;
      b[3] = NatPmpResult.unsupportedVersion;
      return b;
    }
  }
}

function header(size: number, opcode: number, resultCode: number, epoch: number): Buffer {
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 127) throw new RangeError(`bad opcode ${opcode}`);
  if (!Number.isInteger(resultCode) || resultCode < 0 || resultCode > 0xffff) {
    throw new RangeError(`bad result code ${resultCode}`);
  }
  checkUint32(epoch, 'epoch');
  const b = Buffer.alloc(size);
  b[1] = 0x80 | opcode;
  b.writeUInt16BE(resultCode, 2);
  b.writeUInt32BE(epoch, 4);
  return b;
}

function checkPort(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new RangeError(`${what} out of range: ${p}`);
}

function checkUint32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} out of range: ${n}`);
}

/**
 * The typed error for a non-zero NAT-PMP result code (RFC 6886 3.5). `what` names the request.
 */
export function natPmpResultError(resultCode: number, what: string): RouterError {
  switch (resultCode) {
    case NatPmpResult.unsupportedVersion:
      return new UnsupportedError(`${what}: the router does not support NAT-PMP version 0 (result 1)`);
    case NatPmpResult.notAuthorized:
      return new NotAuthorizedError(`${what}: the router refused (NAT-PMP result 2, not authorized/refused)`);
    case NatPmpResult.networkFailure:
      // RFC 6886 3.5: "e.g., NAT box itself has not obtained a DHCP lease"; miniupnpd also sends
      // it when its WAN address is private or reserved (double NAT).
      return new NoWanAddressError(
        `${what}: the router reports a network failure (result 3): it has no usable WAN address`,
      );
    case NatPmpResult.outOfResources:
      return new ResultCodeError(
        'natpmp',
        resultCode,
        `${what}: the router is out of resources (result 4; table full or no port left)`,
      );
    case NatPmpResult.unsupportedOpcode:
      return new UnsupportedError(`${what}: the router does not support this NAT-PMP request (result 5)`);
    default:
      return new ResultCodeError('natpmp', resultCode, `${what}: NAT-PMP result code ${resultCode}`);
  }
}
