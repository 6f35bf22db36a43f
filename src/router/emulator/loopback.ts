import { isIPv4 } from 'node:net';

/**
 * The emulator is for demos and tests: it may only ever listen on, and forward to, loopback
 * addresses, so a mistake in a test can never open a port on a real network.
 */
export class NotLoopbackError extends Error {
  readonly address: string;
  constructor(what: string, address: string) {
    super(`the router emulator only uses loopback addresses (127.0.0.0/8); ${what} ${JSON.stringify(address)} is not one`);
    this.name = 'NotLoopbackError';
    this.address = address;
  }
}

export function isLoopbackV4(address: string): boolean {
  return isIPv4(address) && address.startsWith('127.');
}

export function assertLoopback(what: string, address: string): void {
  if (!isLoopbackV4(address)) throw new NotLoopbackError(what, address);
}

/** Node reports IPv4 peers of dual-stack sockets as ::ffff:a.b.c.d. */
export function plainV4(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
