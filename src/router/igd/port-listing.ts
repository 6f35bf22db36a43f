import type { Mapping, MappingProtocolName } from '../types.js';
import { BadResponseError } from '../errors.js';
import { child, children, clip, elementNames, isElement, parseXml, text } from './xml.js';

export const MAX_LISTED_MAPPINGS = 1024;
const MAX_LISTING_CHARS = 1024 * 1024;
const MAX_DESCRIPTION_CHARS = 256;

/**
 * One entry of the router's table, from the fields of GetGenericPortMappingEntry or of a
 * `<PortMappingEntry>` (the `New` prefixes are those of both). Undefined when the entry is
 * unusable (no valid port or protocol): one odd entry must not hide the rest of the table.
 */
export function entryToMapping(fields: ReadonlyMap<string, string>, via: MappingProtocolName): Mapping | undefined {
  const get = (name: string) => (fields.get(name) ?? '').trim();
  const protocol = get('NewProtocol').toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP') return undefined;
  const externalPort = parsePort(get('NewExternalPort'));
  const internalPort = parsePort(get('NewInternalPort'));
  if (externalPort === undefined || internalPort === undefined) return undefined;
  // Some routers write a host name here; anything non-empty is kept, bounded.
  const internalClient = clip(get('NewInternalClient'), 64);
  if (internalClient === '') return undefined;
  const lease = /^\d{1,10}$/.test(get('NewLeaseDuration') || get('NewLeaseTime'))
    ? Number(get('NewLeaseDuration') || get('NewLeaseTime'))
    : 0;
  const enabled = get('NewEnabled');
  const remoteHost = get('NewRemoteHost');
  return {
    protocol,
    externalPort,
    internalClient,
    internalPort,
    leaseSeconds: lease,
    description: clip(get('NewPortMappingDescription') || get('NewDescription'), MAX_DESCRIPTION_CHARS),
    enabled: enabled === '' || enabled === '1' || enabled.toLowerCase() === 'true',
    // '*' is how some routers write the wildcard.
    remoteHost: remoteHost === '*' ? '' : clip(remoteHost, 64),
    via,
  };
}

function parsePort(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * The `NewPortListing` of GetListOfPortMappings (IGDv2): an XML document carried inside the SOAP
 * answer, as CDATA (miniupnpd) or escaped text (others, decoded by the SOAP parser already).
 * Any string gives at most `max` mappings or a BadResponseError.
 */
export function parsePortListing(
  xml: string,
  via: MappingProtocolName = 'upnp-igd2',
  max: number = MAX_LISTED_MAPPINGS,
): Mapping[] {
  // An empty listing is how several routers say "no mappings".
  if (xml.trim() === '') return [];
  const doc = parseXml(xml, 'port listing', MAX_LISTING_CHARS);
  const list = child(doc, 'PortMappingList');
  if (list === undefined) throw new BadResponseError('port listing: no <PortMappingList>');
  const out: Mapping[] = [];
  for (const entry of children(list, 'PortMappingEntry')) {
    if (out.length >= max) break;
    if (!isElement(entry)) continue;
    const fields = new Map<string, string>();
    for (const name of elementNames(entry)) fields.set(name, text(child(entry, name)));
    const m = entryToMapping(fields, via);
    if (m) out.push(m);
  }
  return out;
}
