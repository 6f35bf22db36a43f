import { isIPv4 } from 'node:net';
import {
  BadResponseError,
  NotAuthorizedError,
  PortConflictError,
  ResultCodeError,
  UnsupportedError,
} from '../errors.js';
import type { RouterError } from '../errors.js';
import type { TransportProtocol } from '../types.js';

/**
 * PCP (RFC 6887) wire format for what frontdoor uses: MAP and ANNOUNCE over IPv4, addresses
 * carried as IPv4-mapped IPv6. Pure functions.
 */

export const PCP_VERSION = 2;
/** RFC 6887 7: no PCP message is longer. */
export const PCP_MAX_MESSAGE = 1100;
export const PCP_HEADER_SIZE = 24;
export const PCP_MAP_SIZE = 36;
export const PCP_NONCE_SIZE = 12;

export const PcpOpcode = { announce: 0, map: 1, peer: 2 } as const;

export const PcpOptionCode = { thirdParty: 1, preferFailure: 2, filter: 3 } as const;

/** RFC 6887 7.4. */
export const PcpResult = {
  success: 0,
  unsuppVersion: 1,
  notAuthorized: 2,
  malformedRequest: 3,
  unsuppOpcode: 4,
  unsuppOption: 5,
  malformedOption: 6,
  networkFailure: 7,
  noResources: 8,
  unsuppProtocol: 9,
  userExQuota: 10,
  cannotProvideExternal: 11,
  addressMismatch: 12,
  excessiveRemotePeers: 13,
} as const;

const resultNames: Record<number, string> = {
  0: 'SUCCESS',
  1: 'UNSUPP_VERSION',
  2: 'NOT_AUTHORIZED',
  3: 'MALFORMED_REQUEST',
  4: 'UNSUPP_OPCODE',
  5: 'UNSUPP_OPTION',
  6: 'MALFORMED_OPTION',
  7: 'NETWORK_FAILURE',
  8: 'NO_RESOURCES',
  9: 'UNSUPP_PROTOCOL',
  10: 'USER_EX_QUOTA',
  11: 'CANNOT_PROVIDE_EXTERNAL',
  12: 'ADDRESS_MISMATCH',
  13: 'EXCESSIVE_REMOTE_PEERS',
};

export function pcpResultName(code: number): string {
  return resultNames[code] ?? `result ${code}`;
}

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export interface PcpMapRequest {
  /** Our own address (the request's source), RFC 6887 7.1. */
  clientAddress: string;
  /** 12 random bytes; the same for every request about one mapping (RFC 6887 11.2). */
  nonce: Uint8Array;
  protocol: TransportProtocol;
  internalPort: number;
  /** 0 lets the server choose. */
  suggestedExternalPort: number;
  /** Default 0.0.0.0 (sent as ::ffff:0.0.0.0): no preference. */
  suggestedExternalAddress?: string;
  /** Seconds; 0 deletes. */
  lifetimeSeconds: number;
  /** RFC 6887 13.2: fail rather than grant another port. */
  preferFailure?: boolean;
}

export interface PcpOption {
  code: number;
  data: Buffer;
}

export interface PcpMapData {
  nonce: Buffer;
  /** IANA protocol number (6 TCP, 17 UDP). */
  protocol: number;
  internalPort: number;
  externalPort: number;
  /** Dotted for IPv4-mapped addresses, else IPv6 text. */
  externalAddress: string;
}

export interface PcpAnswer {
  kind: 'pcp';
  version: number;
  opcode: number;
  resultCode: number;
  /** Granted lifetime on success; how long an error holds otherwise (RFC 6887 7.2). */
  lifetimeSeconds: number;
  epoch: number;
  /** MAP only; absent in a short error answer that did not echo the request. */
  map: PcpMapData | undefined;
  options: PcpOption[];
}

/**
 * The gateway does not speak this PCP version: a NAT-PMP-only gateway answers in NAT-PMP's
 * layout with version 0 and result 1 (RFC 6887 9), an old PCP server with its own version.
 */
export interface PcpOtherVersionAnswer {
  kind: 'other-version';
  serverVersion: number;
  opcode: number;
}

export type PcpResponse = PcpAnswer | PcpOtherVersionAnswer;

export function encodePcpMapRequest(req: PcpMapRequest): Buffer {
  if (req.nonce.length !== PCP_NONCE_SIZE) throw new RangeError(`PCP nonce must be ${PCP_NONCE_SIZE} bytes`);
  checkPort(req.internalPort, 'internal port');
  checkPort(req.suggestedExternalPort, 'external port');
  checkUint32(req.lifetimeSeconds, 'lifetime');
  const size = PCP_HEADER_SIZE + PCP_MAP_SIZE + (req.preferFailure ? 4 : 0);
  const b = Buffer.alloc(size);
  writeRequestHeader(b, PcpOpcode.map, req.lifetimeSeconds, req.clientAddress);
  const o = PCP_HEADER_SIZE;
  b.set(req.nonce, o);
  b[o + 12] = req.protocol === 'TCP' ? IPPROTO_TCP : IPPROTO_UDP;
  // o+13..o+15 reserved
  b.writeUInt16BE(req.internalPort, o + 16);
  b.writeUInt16BE(req.suggestedExternalPort, o + 18);
  writeMapped(b, o + 20, req.suggestedExternalAddress ?? '0.0.0.0');
  if (req.preferFailure) {
    // Option header only: code 2, reserved, length 0.
    b[o + PCP_MAP_SIZE] = PcpOptionCode.preferFailure;
  }
  return b;
}

/** ANNOUNCE (RFC 6887 14.1): header only, lifetime 0. */
export function encodePcpAnnounceRequest(clientAddress: string): Buffer {
  const b = Buffer.alloc(PCP_HEADER_SIZE);
  writeRequestHeader(b, PcpOpcode.announce, 0, clientAddress);
  return b;
}

function writeRequestHeader(b: Buffer, opcode: number, lifetime: number, clientAddress: string): void {
  b[0] = PCP_VERSION;
  b[1] = opcode; // R bit 0: request
  b.writeUInt32BE(lifetime, 4);
  writeMapped(b, 8, clientAddress);
}

/**
 * Parses one datagram from the gateway. Bounded: at most 1100 bytes, options walked with their
 * lengths checked against what is left. Anything malformed throws BadResponseError.
 */
export function parsePcpResponse(buf: Uint8Array): PcpResponse {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length > PCP_MAX_MESSAGE) throw new BadResponseError(`PCP answer too long (${b.length} bytes)`);
  if (b.length < 4) throw new BadResponseError(`PCP answer too short (${b.length} bytes)`);
  const version = b[0]!;
  if ((b[1]! & 0x80) === 0) throw new BadResponseError('PCP packet is a request, not an answer');
  const opcode = b[1]! & 0x7f;
  if (version === 0) {
    // NAT-PMP layout: 16-bit result code at 2, epoch at 4; 8 bytes at least.
    if (b.length >= 8 && b.readUInt16BE(2) === PcpResult.unsuppVersion) {
      return { kind: 'other-version', serverVersion: 0, opcode };
    }
    throw new BadResponseError('a NAT-PMP answer to a PCP request');
  }
  if (b.length < PCP_HEADER_SIZE) throw new BadResponseError(`PCP answer too short (${b.length} bytes)`);
  if (b.length % 4 !== 0) throw new BadResponseError(`PCP answer length ${b.length} is not a multiple of 4`);
  const resultCode = b[3]!;
  if (version !== PCP_VERSION) {
    if (resultCode === PcpResult.unsuppVersion) return { kind: 'other-version', serverVersion: version, opcode };
    throw new BadResponseError(`PCP answer has version ${version}, expected ${PCP_VERSION}`);
  }
  if (opcode !== PcpOpcode.announce && opcode !== PcpOpcode.map) {
    throw new BadResponseError(`PCP answer has opcode ${opcode}, which we never send`);
  }
  const lifetimeSeconds = b.readUInt32BE(4);
  const epoch = b.readUInt32BE(8);
  let offset = PCP_HEADER_SIZE;
  let map: PcpMapData | undefined;
  if (opcode === PcpOpcode.map) {
    if (b.length - offset >= PCP_MAP_SIZE) {
      map = {
        nonce: Buffer.from(b.subarray(offset, offset + PCP_NONCE_SIZE)),
        protocol: b[offset + 12]!,
        internalPort: b.readUInt16BE(offset + 16),
        externalPort: b.readUInt16BE(offset + 18),
        externalAddress: formatAddress(b.subarray(offset + 20, offset + 36)),
      };
      offset += PCP_MAP_SIZE;
    } else if (resultCode === PcpResult.success || b.length > offset) {
      // A success must carry the mapping; an error may be header-only, but not half a MAP.
      throw new BadResponseError(`PCP MAP answer has ${b.length - offset} bytes of MAP data, expected 36`);
    }
  }
  const options = parseOptions(b, offset);
  return { kind: 'pcp', version, opcode, resultCode, lifetimeSeconds, epoch, map, options };
}

function parseOptions(b: Buffer, start: number): PcpOption[] {
  const options: PcpOption[] = [];
  let o = start;
  while (o < b.length) {
    if (b.length - o < 4) throw new BadResponseError('truncated PCP option header');
    const code = b[o]!;
    const length = b.readUInt16BE(o + 2);
    // RFC 6887 7.3: data is padded to a multiple of 4, and the padding is not in the length.
    const padded = (length + 3) & ~3;
    if (padded > b.length - o - 4) {
      throw new BadResponseError(`PCP option ${code} claims ${length} bytes, only ${b.length - o - 4} left`);
    }
    options.push({ code, data: Buffer.from(b.subarray(o + 4, o + 4 + length)) });
    o += 4 + padded;
  }
  return options;
}

/** Encodes a server's answer; used by tests and the router emulator. */
export function encodePcpResponse(r: PcpResponse): Buffer {
  if (r.kind === 'other-version') {
    if (r.serverVersion === 0) {
      const b = Buffer.alloc(8);
      b[1] = 0x80 | r.opcode;
      b.writeUInt16BE(PcpResult.unsuppVersion, 2);
      return b;
    }
    const b = Buffer.alloc(PCP_HEADER_SIZE);
    b[0] = r.serverVersion;
    b[1] = 0x80 | r.opcode;
    b[3] = PcpResult.unsuppVersion;
    return b;
  }
  const optionBytes = r.options.reduce((n, opt) => n + 4 + ((opt.data.length + 3) & ~3), 0);
  const size = PCP_HEADER_SIZE + (r.map ? PCP_MAP_SIZE : 0) + optionBytes;
  if (size > PCP_MAX_MESSAGE) throw new RangeError(`PCP message of ${size} bytes exceeds ${PCP_MAX_MESSAGE}`);
  const b = Buffer.alloc(size);
  b[0] = r.version;
  b[1] = 0x80 | r.opcode;
  b[3] = r.resultCode;
  checkUint32(r.lifetimeSeconds, 'lifetime');
  checkUint32(r.epoch, 'epoch');
  b.writeUInt32BE(r.lifetimeSeconds, 4);
  b.writeUInt32BE(r.epoch, 8);
  let o = PCP_HEADER_SIZE;
  if (r.map) {
    if (r.map.nonce.length !== PCP_NONCE_SIZE) throw new RangeError('PCP nonce must be 12 bytes');
    b.set(r.map.nonce, o);
    b[o + 12] = r.map.protocol;
    b.writeUInt16BE(r.map.internalPort, o + 16);
    b.writeUInt16BE(r.map.externalPort, o + 18);
    writeMapped(b, o + 20, r.map.externalAddress);
    o += PCP_MAP_SIZE;
  }
  for (const opt of r.options) {
    b[o] = opt.code;
    b.writeUInt16BE(opt.data.length, o + 2);
    b.set(opt.data, o + 4);
    o += 4 + ((opt.data.length + 3) & ~3);
  }
  return b;
}

/**
 * The typed error for a non-zero PCP result code. `preferFailure` says the request carried
 * PREFER_FAILURE, which turns CANNOT_PROVIDE_EXTERNAL into "that port is not available".
 */
export function pcpResultError(
  resultCode: number,
  what: string,
  context: { askedPort?: number; preferFailure?: boolean } = {},
): RouterError {
  const name = pcpResultName(resultCode);
  switch (resultCode) {
    case PcpResult.unsuppVersion:
      return new UnsupportedError(`${what}: the router does not speak PCP version ${PCP_VERSION} (${name})`);
    case PcpResult.notAuthorized:
      return new NotAuthorizedError(`${what}: the router refused (${name})`);
    case PcpResult.unsuppOpcode:
    case PcpResult.unsuppOption:
    case PcpResult.unsuppProtocol:
      return new UnsupportedError(`${what}: the router does not support this request (${name})`);
    case PcpResult.cannotProvideExternal:
      if (context.preferFailure && context.askedPort !== undefined) {
        // RFC 6887 13.2: with PREFER_FAILURE the server fails instead of offering another port.
        // miniupnpd also answers this for ports its allow/deny rules refuse; the two cannot be
        // told apart from here.
        return new PortConflictError(
          context.askedPort,
          `${what}: the router cannot provide external port ${context.askedPort} (${name})`,
        );
      }
      return new ResultCodeError('pcp', resultCode, `${what}: the router cannot provide an external port (${name})`);
    default:
      return new ResultCodeError('pcp', resultCode, `${what}: PCP ${name}`);
  }
}

/** ::ffff:a.b.c.d for an IPv4 address, written at `offset`. */
function writeMapped(b: Buffer, offset: number, address: string): void {
  if (!isIPv4(address)) throw new RangeError(`not an IPv4 address: ${address}`);
  b[offset + 10] = 0xff;
  b[offset + 11] = 0xff;
  const parts = address.split('.').map(Number);
  for (let i = 0; i < 4; i++) b[offset + 12 + i] = parts[i]!;
}

/** IPv4-mapped addresses as dotted quads (RFC 6887 5), anything else as IPv6 text. */
export function formatAddress(a: Uint8Array): string {
  if (a.length !== 16) throw new RangeError('an IPv6 address is 16 bytes');
  let v4mapped = a[10] === 0xff && a[11] === 0xff;
  for (let i = 0; i < 10 && v4mapped; i++) if (a[i] !== 0) v4mapped = false;
  if (v4mapped) return `${a[12]}.${a[13]}.${a[14]}.${a[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((a[i]! << 8) | a[i + 1]!);
  // RFC 5952: compress the longest run (at least two) of zero groups.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

function checkPort(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new RangeError(`${what} out of range: ${p}`);
}

function checkUint32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} out of range: ${n}`);
}
