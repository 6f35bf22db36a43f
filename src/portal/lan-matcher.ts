import { isIPv4 } from 'node:net';
import { interfaceOf } from '../floating-address/floating-mapper.js';
import { ipv4ToInt, networkOf } from '../router/wan-address.js';

/**
 * "This LAN" for `--lan-open` and the camera's WAN cap: the node's own subnet, without the
 * router's address. Routers that masquerade forwarded traffic make every internet client look
 * like the router, which would otherwise let the whole internet in.
 */
export function lanMatcher(address: string, gateway: string): (source: string) => boolean {
  const local = interfaceOf(address);
  if (local === undefined) return () => false;
  const net = networkOf(ipv4ToInt(address), local.prefixLength);
  return (source) => {
    const v4 = source.startsWith('::ffff:') ? source.slice(7) : source;
    if (!isIPv4(v4) || v4 === gateway) return false;
    return networkOf(ipv4ToInt(v4), local.prefixLength) === net;
  };
}
