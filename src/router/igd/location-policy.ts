import { isIPv4 } from 'node:net';
import { ipv4ToInt } from '../wan-address.js';
import type { SsdpResponse } from './ssdp.js';

/**
 * Which description URLs to try, in order, from the answers of an SSDP search.
 *
 * Quirk: the LOCATION of an answer may name another host than the one that answered, or than the
 * gateway. Multi-homed routers announce the address of another interface (their WAN address, a
 * guest network, a stale address after a DHCP change), and any device on the LAN can answer a
 * search, pointing LOCATION anywhere it likes (a host on the internet, the router's admin page).
 * Policy:
 * - answers from the gateway come first, IGD:2 before IGD:1, then earlier before later;
 * - a LOCATION on the responder's own address is taken as is (it has just answered us);
 * - a LOCATION on another host is tried only when that host is on our LAN subnet, and then the
 *   same URL with the host replaced by the responder's address is tried after it;
 * - a LOCATION off the subnet (or naming a host by name) is never fetched as is: only the
 *   rewritten URL, on the responder's address, is tried.
 * We thus only talk HTTP to hosts that answered us or sit on our own subnet.
 */

export interface LanSubnet {
  /** Our LAN address (the one searches are sent from). */
  localAddress: string;
  /** Prefix length of the LAN; default 24 (what almost every home router hands out). */
  prefixLength?: number;
}

export interface LocationCandidate {
  url: string;
  response: SsdpResponse;
  /** The LOCATION's host was replaced by the responder's address. */
  rewritten: boolean;
}

export function onSubnet(address: string, lan: LanSubnet): boolean {
  if (!isIPv4(address) || !isIPv4(lan.localAddress)) return false;
  const bits = Math.min(32, Math.max(0, lan.prefixLength ?? 24));
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (ipv4ToInt(address) & mask) >>> 0 === (ipv4ToInt(lan.localAddress) & mask) >>> 0;
}

/** The URLs to try for one answer, best first; empty when none is acceptable. */
export function candidateLocations(response: SsdpResponse, lan: LanSubnet): string[] {
  let url: URL;
  try {
    url = new URL(response.location);
  } catch {
    return [];
  }
  if (url.protocol !== 'http:') return [];
  const host = url.hostname;
  const responder = response.address;
  // The responder itself has just answered us, so its own address is reachable whatever the
  // prefix length; only a third host has to prove it is on our subnet.
  if (host === responder) return [url.href];
  if (responder === '') return onSubnet(host, lan) ? [url.href] : [];
  const out: string[] = [];
  if (isIPv4(host) && onSubnet(host, lan)) out.push(url.href);
  if (isIPv4(responder)) {
    const rewritten = new URL(url.href);
    rewritten.hostname = responder;
    out.push(rewritten.href);
  }
  return out;
}

/** Orders the answers by preference (see the policy above). Stable for equal ranks. */
export function rankResponses(responses: readonly SsdpResponse[], gateway?: string): SsdpResponse[] {
  const rank = (r: SsdpResponse) => (gateway !== undefined && r.address === gateway ? 0 : 2) + (r.igdVersion === 2 ? 0 : 1);
  return responses
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r) - rank(b.r) || a.r.elapsedMs - b.r.elapsedMs || a.i - b.i)
    .map((x) => x.r);
}

/** Every URL worth trying, in order, each URL once. */
export function chooseLocations(
  responses: readonly SsdpResponse[],
  opts: LanSubnet & { gateway?: string },
): LocationCandidate[] {
  const seen = new Set<string>();
  const out: LocationCandidate[] = [];
  for (const response of rankResponses(responses, opts.gateway)) {
    for (const url of candidateLocations(response, opts)) {
      if (seen.has(url)) continue;
      seen.add(url);
      out.push({ url, response, rewritten: url !== response.location });
    }
  }
  return out;
}

/**
 * Quirk: the control URL in a description may name another host than the one that served the
 * description (a URLBase carrying the WAN address or a stale LAN address, on some multi-homed
 * routers; or a hostile description). We keep the path and port and send the SOAP requests to
 * the host we fetched the description from.
 */
export function pinControlUrl(controlUrl: string, descriptionUrl: string): string {
  const control = new URL(controlUrl);
  const from = new URL(descriptionUrl);
  if (control.hostname === from.hostname) return control.href;
  control.hostname = from.hostname;
  return control.href;
}
