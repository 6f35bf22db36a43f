import { BadResponseError } from '../errors.js';
import { child, childText, children, clip, parseXml } from './xml.js';
import type { XmlNode } from './xml.js';

/** Real descriptions are 2-20 KB; 256 KiB leaves room for odd ones and none for abuse. */
export const MAX_DESCRIPTION_CHARS = 256 * 1024;
const MAX_DEVICES = 64;
const MAX_SERVICES = 16;
const MAX_NAME_CHARS = 256;

export interface IgdService {
  /** As written by the router, e.g. `urn:schemas-upnp-org:service:WANIPConnection:2`. */
  serviceType: string;
  kind: 'WANIPConnection' | 'WANPPPConnection';
  version: number;
  /** Absolute http: URL. */
  controlUrl: string;
}

export interface IgdDescription {
  location: string;
  /** Version of the InternetGatewayDevice device type (1 when the root is not an IGD). */
  deviceVersion: number;
  /** The service to talk to: WANIPConnection:2, else WANIPConnection:1, else WANPPPConnection:1. */
  service: IgdService;
  /** Every WAN*Connection service found, best first (a DSL router may list an unused one first). */
  services: IgdService[];
  /** 'upnp-igd2' when the chosen service is WANIPConnection:2 (AddAnyPortMapping, listing). */
  protocol: 'upnp-igd2' | 'upnp-igd1';
  friendlyName: string;
  manufacturer: string;
  modelName: string;
}

const serviceTypeRe = /^urn:schemas-upnp-org:service:(WANIPConnection|WANPPPConnection):(\d{1,3})$/;
const igdTypeRe = /^urn:schemas-upnp-org:device:InternetGatewayDevice:(\d{1,3})$/;

/**
 * Finds the WAN connection service anywhere in the device tree of a UPnP device description
 * (routers nest it as IGD > WANDevice > WANConnectionDevice, but some wrap the IGD in another
 * root device). Any string gives a value or a BadResponseError.
 */
export function parseDeviceDescription(xml: string, location: string): IgdDescription {
  const doc = parseXml(xml, 'device description', MAX_DESCRIPTION_CHARS);
  const root = child(doc, 'root');
  if (root === undefined || typeof root !== 'object') throw new BadResponseError('device description: no <root>');
  const base = baseUrl(childText(root, 'URLBase'), location);

  const devices: XmlNode[] = [];
  const queue = children(root, 'device');
  while (queue.length > 0 && devices.length < MAX_DEVICES) {
    const d = queue.shift()!;
    devices.push(d);
    for (const list of children(d, 'deviceList')) queue.push(...children(list, 'device'));
  }
  if (devices.length === 0) throw new BadResponseError('device description: no <device>');

  let igd: XmlNode | undefined;
  let deviceVersion = 1;
  for (const d of devices) {
    const m = igdTypeRe.exec(childText(d, 'deviceType').trim());
    if (m) {
      igd = d;
      deviceVersion = Number(m[1]);
      break;
    }
  }

  const services: IgdService[] = [];
  for (const d of devices) {
    for (const list of children(d, 'serviceList')) {
      for (const s of children(list, 'service')) {
        const serviceType = childText(s, 'serviceType').trim();
        const m = serviceTypeRe.exec(serviceType);
        if (!m) continue;
        const controlUrl = resolveControlUrl(childText(s, 'controlURL').trim(), base);
        if (controlUrl === undefined) continue;
        services.push({
          serviceType,
          kind: m[1] as IgdService['kind'],
          version: Number(m[2]),
          controlUrl,
        });
      }
    }
  }
  services.sort((a, b) => serviceRank(a) - serviceRank(b));
  services.splice(MAX_SERVICES);
  const service = services[0];
  if (service === undefined) {
    throw new BadResponseError('device description: no WANIPConnection or WANPPPConnection service with a control URL');
  }
  const named = igd ?? devices[0];
  return {
    location,
    deviceVersion,
    service,
    services,
    protocol: service.kind === 'WANIPConnection' && service.version >= 2 ? 'upnp-igd2' : 'upnp-igd1',
    friendlyName: clip(childText(named, 'friendlyName').trim(), MAX_NAME_CHARS),
    manufacturer: clip(childText(named, 'manufacturer').trim(), MAX_NAME_CHARS),
    modelName: clip(childText(named, 'modelName').trim(), MAX_NAME_CHARS),
  };
}

function serviceRank(s: IgdService): number {
  // WANIPConnection:2 first (it has AddAnyPortMapping and GetListOfPortMappings), then v1 IP,
  // then PPP: on a DSL router the IP service is usually the one that is connected.
  if (s.kind === 'WANIPConnection') return s.version >= 2 ? 0 : 1;
  return 2;
}

function baseUrl(urlBase: string, location: string): URL {
  let loc: URL;
  try {
    loc = new URL(location);
  } catch (err) {
    throw new BadResponseError(`device description: location ${JSON.stringify(location.slice(0, 64))} is not a URL`, {
      cause: err,
    });
  }
  // URLBase is deprecated since UDA 1.1 but old IGDv1 routers rely on it; an unusable one is
  // ignored rather than fatal.
  const trimmed = urlBase.trim();
  if (trimmed !== '') {
    try {
      const u = new URL(trimmed);
      if (u.protocol === 'http:') return u;
    } catch {
      // fall back to LOCATION
    }
  }
  return loc;
}

function resolveControlUrl(controlUrl: string, base: URL): string | undefined {
  if (controlUrl === '' || controlUrl.length > 1024) return undefined;
  try {
    const u = new URL(controlUrl, base);
    return u.protocol === 'http:' && u.hostname !== '' ? u.href : undefined;
  } catch {
    return undefined;
  }
}
