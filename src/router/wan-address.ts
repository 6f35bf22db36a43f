import { isIPv4 } from 'node:net';
import type { WanAddressClass } from './errors.js';

/**
 * Whether the internet can reach an address. miniupnpd itself refuses to forward when its WAN
 * address is private or reserved; we classify first so the user hears "double NAT" rather than a
 * raw router error.
 */
const ranges: Array<[string, number, WanAddressClass]> = [
  ['10.0.0.0', 8, 'private'],
  ['172.16.0.0', 12, 'private'],
  ['192.168.0.0', 16, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['0.0.0.0', 8, 'reserved'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'reserved'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.88.99.0', 24, 'reserved'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'reserved'],
  ['240.0.0.0', 4, 'reserved'],
];

export function ipv4ToInt(addr: string): number {
  const p = addr.split('.').map(Number);
  return (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0;
}

/** The netmask of an IPv4 prefix length, as an unsigned 32-bit number. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

/** The network address of `a` (from ipv4ToInt) under `prefix`. */
export function networkOf(a: number, prefix: number): number {
  return (a & maskOf(prefix)) >>> 0;
}

export function classifyWanAddress(addr: string): WanAddressClass {
  if (!isIPv4(addr)) return 'unknown';
  const a = ipv4ToInt(addr);
  for (const [base, bits, cls] of ranges) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if ((a & mask) >>> 0 === (ipv4ToInt(base) & mask) >>> 0) return cls;
  }
  return 'public';
}
