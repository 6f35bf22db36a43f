import type { MappingRequest } from './types.js';

/**
 * The checks every client makes on a caller's request before anything goes to the router: a
 * bad port or lease is the caller's bug (RangeError), not something to send and see.
 * `externalMin` is 0 where the protocol lets the router choose (NAT-PMP/PCP `claimAny`).
 */
export function checkMappingRequest(req: MappingRequest, externalMin: 0 | 1 = 1): void {
  checkPort('internalPort', req.internalPort, 1);
  checkPort('externalPort', req.externalPort, externalMin);
  if (!Number.isInteger(req.leaseSeconds) || req.leaseSeconds < 0 || req.leaseSeconds > 0xffffffff) {
    throw new RangeError(`leaseSeconds must be a whole number of seconds 0-4294967295, got ${req.leaseSeconds}`);
  }
  if (req.protocol !== 'TCP' && req.protocol !== 'UDP') throw new RangeError(`protocol must be TCP or UDP, got ${req.protocol}`);
}

export function checkPort(name: string, port: number, min: number): void {
  if (!Number.isInteger(port) || port < min || port > 65535) throw new RangeError(`${name} must be ${min}-65535, got ${port}`);
}
