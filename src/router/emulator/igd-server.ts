import { createServer } from '../../runtime/node-http.js';
import { isIPv4 } from 'node:net';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TransportProtocol } from '../types.js';
import type { EmulatorContext } from './emulator-context.js';
import type { DeviceIds } from './igd-description.js';
import { permitted } from './emulator-context.js';
import { escapeXml, paths, rootDescription, serverString, wanCfgScpd, wanIpcScpd } from './igd-description.js';
import { plainV4 } from './loopback.js';

/** A careful router reads at most this much of a SOAP body; more is refused, not buffered. */
export const maxSoapBodyBytes = 64 * 1024;

/** IGDv2: a lease of 0, or above a week, becomes a week (WANIPConnection:2 2.5.16, upnpsoap.c). */
const maxLeaseV2 = 604800;
/** miniupnpd reads descriptions back into a 64-byte buffer. */
const maxDescriptionLength = 63;

class SoapFault {
  constructor(
    readonly code: number,
    readonly description: string,
  ) {}
}

type Args = Map<string, string>;
type Handler = (args: Args, client: string) => string;

/**
 * The UPnP side of the emulated router: device description, SCPDs and SOAP control of
 * WANIPConnection, with the error codes and decisions of miniupnpd 2.3.1 (upnpsoap.c,
 * upnpredirect.c). Built as an IGDv2 daemon when igdVersion is 2, as a daemon built without
 * IGD_V2 when it is 1.
 */
export class IgdServer {
  private readonly ctx: EmulatorContext;
  private readonly ids: DeviceIds;
  private server: Server | undefined;
  private readonly parser = new XMLParser({
    removeNSPrefix: true,
    ignoreAttributes: true,
    parseTagValue: false,
    parseAttributeValue: false,
    processEntities: true,
    trimValues: true,
  });

  constructor(ctx: EmulatorContext, ids: DeviceIds) {
    this.ctx = ctx;
    this.ids = ids;
  }

  get port(): number {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? (a as AddressInfo).port : 0;
  }

  async start(port: number): Promise<void> {
    if (this.server !== undefined) return;
    const server = createServer({ maxHeaderSize: 8192 }, (req, res) => this.onRequest(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.keepAliveTimeout = 1_000;
    server.on('clientError', (_err, socket) => {
      // Unparseable HTTP: answer as a plain server does and drop the connection.
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroy();
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.ctx.settings.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.ctx.logger.warn('igd server error', { error: err }));
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', () => res.destroy());
    res.on('error', () => {});
    const url = (req.url ?? '').split('?')[0] ?? '';
    const v = this.ctx.settings.igdVersion;
    if (req.method === 'GET') {
      req.resume();
      const lower = url.toLowerCase();
      if (lower === paths.rootDesc.toLowerCase()) {
        const base = `http://${this.ctx.settings.address}:${this.port}/`;
        this.send(res, 200, 'text/xml; charset="utf-8"', rootDescription(v, this.ids, base));
      } else if (lower === paths.wanIpcScpd.toLowerCase()) {
        this.send(res, 200, 'text/xml; charset="utf-8"', wanIpcScpd(v));
      } else if (lower === paths.wanCfgScpd.toLowerCase()) {
        this.send(res, 200, 'text/xml; charset="utf-8"', wanCfgScpd());
      } else if (url.startsWith('/ctl/')) {
        this.sendHtml(res, 405, 'Method Not Allowed', { Allow: 'POST' });
      } else {
        this.sendHtml(res, 404, 'Not Found');
      }
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      this.sendHtml(res, 501, 'Not Implemented');
      return;
    }
    if (url !== paths.wanIpcControl && url !== paths.wanCfgControl) {
      req.resume();
      this.sendHtml(res, 404, 'Not Found');
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (Number.isFinite(declared) && declared > maxSoapBodyBytes) {
      this.sendHtml(res, 413, 'Payload Too Large');
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxSoapBodyBytes) {
        refused = true;
        this.sendHtml(res, 413, 'Payload Too Large');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      const client = plainV4(req.socket.remoteAddress);
      this.soap(res, req.headers['soapaction'], Buffer.concat(chunks).toString('utf8'), client);
    });
  }

  private soap(res: ServerResponse, soapAction: string | string[] | undefined, body: string, client: string): void {
    if (typeof soapAction !== 'string' || soapAction.length === 0) {
      // miniupnpd: "No SOAPAction in HTTP headers".
      this.send(res, 400, 'text/html', '<html><body>Bad request</body></html>');
      return;
    }
    const header = soapAction.trim().replace(/^"/, '');
    const hash = header.indexOf('#');
    if (hash < 0) {
      this.fault(res, new SoapFault(401, 'Invalid Action'));
      return;
    }
    const ns = header.slice(0, Math.min(hash, 255));
    const end = header.indexOf('"', hash + 1);
    const method = header.slice(hash + 1, end < 0 ? undefined : end);
    const handler = this.handler(method);
    if (handler === undefined) {
      this.fault(res, new SoapFault(401, 'Invalid Action'));
      return;
    }
    let out: string;
    try {
      out = handler(this.parseArgs(body), client);
    } catch (err) {
      if (err instanceof SoapFault) {
        this.fault(res, err);
        return;
      }
      this.ctx.logger.error('soap handler failed', { action: method, error: err });
      this.fault(res, new SoapFault(501, 'ActionFailed'));
      return;
    }
    const nsAttr = escapeXml(ns);
    const inner = out === '' ? `<u:${method}Response xmlns:u="${nsAttr}"/>` : `<u:${method}Response xmlns:u="${nsAttr}">${out}</u:${method}Response>`;
    this.send(
      res,
      200,
      'text/xml; charset="utf-8"',
      '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
        inner +
        '</s:Body></s:Envelope>\r\n',
    );
  }

  /**
   * Arguments are the children of the action element. Like miniupnpd's name/value parser, a body
   * that is not XML simply yields no arguments: actions that need some then answer 402.
   */
  private parseArgs(body: string): Args {
    const args: Args = new Map();
    if (body.length === 0 || XMLValidator.validate(body) !== true) return args;
    let doc: unknown;
    try {
      doc = this.parser.parse(body);
    } catch {
      return args;
    }
    const envelope = field(doc, 'Envelope');
    const bodyEl = field(envelope, 'Body');
    if (bodyEl === null || typeof bodyEl !== 'object') return args;
    const action = Object.values(bodyEl as Record<string, unknown>)[0];
    if (action === null || typeof action !== 'object' || Array.isArray(action)) return args;
    for (const [k, val] of Object.entries(action as Record<string, unknown>)) {
      const one = Array.isArray(val) ? val[0] : val;
      if (typeof one === 'string' || typeof one === 'number') args.set(k, String(one));
      else if (one === null || one === undefined || (typeof one === 'object' && Object.keys(one).length === 0)) args.set(k, '');
    }
    return args;
  }

  private handler(method: string): Handler | undefined {
    const v2 = this.ctx.settings.igdVersion === 2;
    switch (method) {
      case 'GetExternalIPAddress':
        return () => `<NewExternalIPAddress>${this.ctx.settings.wanAddress}</NewExternalIPAddress>`;
      case 'GetStatusInfo':
        return () =>
          '<NewConnectionStatus>Connected</NewConnectionStatus><NewLastConnectionError>ERROR_NONE</NewLastConnectionError>' +
          `<NewUptime>${this.ctx.epochSeconds()}</NewUptime>`;
      case 'GetConnectionTypeInfo':
        return () =>
          '<NewConnectionType>IP_Routed</NewConnectionType><NewPossibleConnectionTypes>IP_Routed</NewPossibleConnectionTypes>';
      case 'GetNATRSIPStatus':
        return () => '<NewRSIPAvailable>0</NewRSIPAvailable><NewNATEnabled>1</NewNATEnabled>';
      case 'GetCommonLinkProperties':
        return () =>
          '<NewWANAccessType>Cable</NewWANAccessType><NewLayer1UpstreamMaxBitRate>1000000000</NewLayer1UpstreamMaxBitRate>' +
          '<NewLayer1DownstreamMaxBitRate>1000000000</NewLayer1DownstreamMaxBitRate><NewPhysicalLinkStatus>Up</NewPhysicalLinkStatus>';
      case 'GetTotalBytesSent':
      case 'GetTotalBytesReceived':
      case 'GetTotalPacketsSent':
      case 'GetTotalPacketsReceived':
        return () => `<New${method.slice(3)}>0</New${method.slice(3)}>`;
      case 'AddPortMapping':
        return (a, c) => this.addPortMapping(a, c);
      case 'DeletePortMapping':
        return (a, c) => this.deletePortMapping(a, c);
      case 'GetGenericPortMappingEntry':
        return (a) => this.getGeneric(a);
      case 'GetSpecificPortMappingEntry':
        return (a) => this.getSpecific(a);
      case 'AddAnyPortMapping':
        return v2 ? (a, c) => this.addAnyPortMapping(a, c) : undefined;
      case 'DeletePortMappingRange':
        return v2 ? (a) => this.deletePortMappingRange(a) : undefined;
      case 'GetListOfPortMappings':
        return v2 ? (a) => this.getListOfPortMappings(a) : undefined;
      default:
        return undefined;
    }
  }

  private addPortMapping(args: Args, client: string): string {
    const s = this.ctx.settings;
    let internalClient = (args.get('NewInternalClient') ?? '').replace(/^ +/, '');
    // miniupnpd (non-strict): an empty NewInternalClient means the requester (issue #236).
    if (internalClient === '') internalClient = client;
    // miniupnpd would resolve a host name here; the emulator has no names to resolve.
    if (!isIPv4(internalClient)) throw new SoapFault(402, 'Invalid Args');
    // 2.3.1 answers a secure-mode violation of AddPortMapping with 718, not 606 (changed later).
    if (s.secureMode && internalClient !== client) throw new SoapFault(718, 'ConflictInMappingEntry');
    const intPort = args.get('NewInternalPort');
    const extPort = args.get('NewExternalPort');
    const proto = protocolOf(args.get('NewProtocol'));
    if (intPort === undefined || extPort === undefined || proto === undefined) throw new SoapFault(402, 'Invalid Args');
    const eport = u16(atoi(extPort));
    const iport = u16(atoi(intPort));
    if (extPort === '*' || eport === 0) throw new SoapFault(716, 'Wildcard not permited in ExtPort');
    const leaseArg = args.get('NewLeaseDuration');
    let lease = leaseArg === undefined ? 0 : atoi(leaseArg) >>> 0;
    // Quirk of some IGDv1 routers: only permanent mappings (IGDv1 error 725).
    if (s.onlyPermanentLeases && lease !== 0) throw new SoapFault(725, 'OnlyPermanentLeasesSupported');
    if (s.igdVersion === 2 && (lease === 0 || lease > maxLeaseV2)) lease = maxLeaseV2;
    const r = this.redirect(args.get('NewRemoteHost'), eport, internalClient, iport, proto, args.get('NewPortMappingDescription') ?? '', lease);
    if (r === 'ok') return '';
    if (r === 'denied' && s.igdVersion === 2) throw new SoapFault(606, 'Action not authorized');
    // Built without IGD_V2, miniupnpd falls through from "not permitted" to 718.
    throw new SoapFault(718, 'ConflictInMappingEntry');
  }

  private addAnyPortMapping(args: Args, client: string): string {
    const s = this.ctx.settings;
    const internalClient = args.get('NewInternalClient');
    const extPort = args.get('NewExternalPort');
    const intPort = args.get('NewInternalPort');
    const protoArg = args.get('NewProtocol');
    const leaseArg = args.get('NewLeaseDuration');
    let lease = leaseArg === undefined ? 0 : atoi(leaseArg) >>> 0;
    if (lease === 0) lease = maxLeaseV2;
    if (internalClient === undefined || extPort === undefined || intPort === undefined || protoArg === undefined) {
      throw new SoapFault(402, 'Invalid Args');
    }
    const proto = protocolOf(protoArg);
    let eport = extPort === '*' ? 0 : u16(atoi(extPort));
    if (eport === 0) eport = 1024 + Math.floor(Math.random() * (65536 - 1024));
    const iport = u16(atoi(intPort));
    if (iport === 0 || (!isNumeric(extPort) && extPort !== '*') || proto === undefined) throw new SoapFault(402, 'Invalid Args');
    if (!isIPv4(internalClient)) throw new SoapFault(402, 'Invalid Args');
    if (s.secureMode && internalClient !== client) throw new SoapFault(606, 'Action not authorized');
    const desc = args.get('NewPortMappingDescription') ?? '';
    const rhost = args.get('NewRemoteHost');
    let r = this.redirect(rhost, eport, internalClient, iport, proto, desc, lease);
    if (r !== 'ok') {
      // upnpsoap.c: then try +1, -1, +2, -2 ... among the ports the allow rules permit.
      let below = eport;
      let above = eport;
      let found = false;
      for (;;) {
        if (below <= 1 && above === 65535) break;
        if (above === 65535 || (eport > below && below > 1)) eport = --below;
        else eport = ++above;
        if (!permitted(s, eport, iport)) continue;
        r = this.redirect(rhost, eport, internalClient, iport, proto, desc, lease);
        if (r === 'ok') {
          found = true;
          break;
        }
      }
      if (!found) throw new SoapFault(728, 'NoPortMapsAvailable');
    }
    return `<NewReservedPort>${eport}</NewReservedPort>`;
  }

  /** upnp_redirect(): permission check, then update-if-same-client, else conflict, else add. */
  private redirect(
    rhost: string | undefined,
    eport: number,
    iaddr: string,
    iport: number,
    proto: TransportProtocol,
    desc: string,
    lease: number,
  ): 'ok' | 'denied' | 'conflict' {
    const { table, settings, clock } = this.ctx;
    if (!permitted(settings, eport, iport)) return 'denied';
    const old = table.get(proto, eport);
    const expiresAt = lease > 0 ? clock.now() + lease * 1000 : 0;
    const via = settings.igdVersion === 2 ? 'upnp-igd2' : 'upnp-igd1';
    if (old !== undefined) {
      // The stored rule has no remote host; a request naming one is a different mapping.
      const sameRemote = rhost === undefined || rhost === '' || rhost === '*';
      if (old.internalClient !== iaddr || !sameRemote) return 'conflict';
    }
    table.set({ protocol: proto, externalPort: eport, internalClient: iaddr, internalPort: iport, description: desc, expiresAt, via });
    return 'ok';
  }

  private deletePortMapping(args: Args, client: string): string {
    const extPort = args.get('NewExternalPort');
    const proto = protocolOf(args.get('NewProtocol'));
    if (extPort === undefined || proto === undefined) throw new SoapFault(402, 'Invalid Args');
    const eport = u16(atoi(extPort));
    if (eport === 0) throw new SoapFault(402, 'Invalid Args');
    const { table, settings } = this.ctx;
    const old = table.get(proto, eport);
    if (settings.secureMode && old !== undefined && old.internalClient !== client) {
      throw new SoapFault(606, 'Action not authorized');
    }
    if (!table.delete(proto, eport)) throw new SoapFault(714, 'NoSuchEntryInArray');
    return '';
  }

  /** As miniupnpd 2.3.1: deletes every mapping in the range, whoever made it (NewManage is ignored). */
  private deletePortMappingRange(args: Args): string {
    const start = args.get('NewStartPort');
    const end = args.get('NewEndPort');
    const proto = protocolOf(args.get('NewProtocol'));
    if (start === undefined || end === undefined || proto === undefined || !isNumeric(start) || !isNumeric(end)) {
      throw new SoapFault(402, 'Invalid Args');
    }
    const a = u16(atoi(start));
    const b = u16(atoi(end));
    if (a > b) throw new SoapFault(733, 'InconsistentParameter');
    const { table } = this.ctx;
    const victims = table.list().filter((e) => e.protocol === proto && e.externalPort >= a && e.externalPort <= b);
    if (victims.length === 0) throw new SoapFault(730, 'PortMappingNotFound');
    for (const e of victims) table.delete(e.protocol, e.externalPort);
    return '';
  }

  private getGeneric(args: Args): string {
    const idx = args.get('NewPortMappingIndex');
    if (idx === undefined) throw new SoapFault(402, 'Invalid Args');
    const m = /^\s*([+-]?\d+)/.exec(idx);
    if (m === null) throw new SoapFault(402, 'Invalid Args');
    const index = Number(m[1]);
    const { table } = this.ctx;
    const entry = Number.isSafeInteger(index) && index >= 0 ? table.list()[index] : undefined;
    if (entry === undefined) throw new SoapFault(713, 'SpecifiedArrayIndexInvalid');
    return (
      `<NewRemoteHost></NewRemoteHost><NewExternalPort>${entry.externalPort}</NewExternalPort>` +
      `<NewProtocol>${entry.protocol}</NewProtocol><NewInternalPort>${entry.internalPort}</NewInternalPort>` +
      `<NewInternalClient>${entry.internalClient}</NewInternalClient><NewEnabled>1</NewEnabled>` +
      `<NewPortMappingDescription>${escapeXml(shortDesc(entry.description))}</NewPortMappingDescription>` +
      `<NewLeaseDuration>${table.remainingSeconds(entry)}</NewLeaseDuration>`
    );
  }

  private getSpecific(args: Args): string {
    const extPort = args.get('NewExternalPort');
    const proto = protocolOf(args.get('NewProtocol'));
    if (extPort === undefined || proto === undefined) throw new SoapFault(402, 'Invalid Args');
    const eport = u16(atoi(extPort));
    if (eport === 0) throw new SoapFault(402, 'Invalid Args');
    const { table } = this.ctx;
    const entry = table.get(proto, eport);
    if (entry === undefined) throw new SoapFault(714, 'NoSuchEntryInArray');
    return (
      `<NewInternalPort>${entry.internalPort}</NewInternalPort><NewInternalClient>${entry.internalClient}</NewInternalClient>` +
      `<NewEnabled>1</NewEnabled><NewPortMappingDescription>${escapeXml(shortDesc(entry.description))}</NewPortMappingDescription>` +
      `<NewLeaseDuration>${table.remainingSeconds(entry)}</NewLeaseDuration>`
    );
  }

  /** The listing is an XML document inside a string; miniupnpd wraps it in CDATA. */
  private getListOfPortMappings(args: Args): string {
    const start = args.get('NewStartPort');
    const end = args.get('NewEndPort');
    const proto = protocolOf(args.get('NewProtocol'));
    const number = args.get('NewNumberOfPorts');
    if (
      start === undefined ||
      end === undefined ||
      proto === undefined ||
      number === undefined ||
      !isNumeric(number) ||
      !isNumeric(start) ||
      !isNumeric(end)
    ) {
      throw new SoapFault(402, 'Invalid Args');
    }
    const a = u16(atoi(start));
    const b = u16(atoi(end));
    let n = atoi(number);
    if (n === 0) n = 1000;
    if (a > b) throw new SoapFault(733, 'InconsistentParameter');
    const { table } = this.ctx;
    const entries = table
      .list()
      .filter((e) => e.protocol === proto && e.externalPort >= a && e.externalPort <= b)
      .sort((x, y) => x.externalPort - y.externalPort)
      .slice(0, n);
    const list =
      '<p:PortMappingList xmlns:p="urn:schemas-upnp-org:gw:WANIPConnection" ' +
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ' +
      'xsi:schemaLocation="urn:schemas-upnp-org:gw:WANIPConnection http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd">' +
      entries
        .map(
          (e) =>
            '<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost>' +
            `<p:NewExternalPort>${e.externalPort}</p:NewExternalPort><p:NewProtocol>${e.protocol}</p:NewProtocol>` +
            `<p:NewInternalPort>${e.internalPort}</p:NewInternalPort><p:NewInternalClient>${e.internalClient}</p:NewInternalClient>` +
            `<p:NewEnabled>1</p:NewEnabled><p:NewDescription>${escapeXml(shortDesc(e.description))}</p:NewDescription>` +
            `<p:NewLeaseTime>${table.remainingSeconds(e)}</p:NewLeaseTime></p:PortMappingEntry>`,
        )
        .join('') +
      '</p:PortMappingList>';
    return `<NewPortListing><![CDATA[${list}]]></NewPortListing>`;
  }

  private fault(res: ServerResponse, f: SoapFault): void {
    this.send(
      res,
      500,
      'text/xml; charset="utf-8"',
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault>' +
        '<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>' +
        '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0">' +
        `<errorCode>${f.code}</errorCode><errorDescription>${f.description}</errorDescription>` +
        '</UPnPError></detail></s:Fault></s:Body></s:Envelope>',
    );
  }

  private sendHtml(res: ServerResponse, status: number, title: string, extra: Record<string, string> = {}): void {
    this.send(
      res,
      status,
      'text/html',
      `<HTML><HEAD><TITLE>${status} ${title}</TITLE></HEAD><BODY><H1>${title}</H1></BODY></HTML>\r\n`,
      extra,
    );
  }

  private send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    const buf = Buffer.from(body, 'utf8');
    // miniupnpd closes after every answer; clients must not rely on keep-alive.
    res.writeHead(status, {
      'Content-Type': type,
      Connection: 'close',
      'Content-Length': String(buf.length),
      Server: serverString,
      Ext: '',
      ...extra,
    });
    res.end(buf);
  }
}

function field(obj: unknown, name: string): unknown {
  if (obj === null || typeof obj !== 'object' || !Object.hasOwn(obj, name)) return undefined;
  return (obj as Record<string, unknown>)[name];
}

/** C atoi(): optional blanks and sign, then digits; anything else reads as 0. */
function atoi(s: string): number {
  const m = /^[ \t\n\r\f\v]*([+-]?\d+)/.exec(s);
  if (m === null) return 0;
  const n = Number.parseInt(m[1]!, 10);
  return Number.isSafeInteger(n) ? n | 0 : 0;
}

function u16(n: number): number {
  return ((n % 65536) + 65536) % 65536;
}

function isNumeric(s: string): boolean {
  return /^\d*$/.test(s);
}

/**
 * miniupnpd maps anything but UDP as TCP; the emulator refuses other names with 402 so that a
 * client bug shows instead of silently mapping TCP.
 */
function protocolOf(s: string | undefined): TransportProtocol | undefined {
  if (s === undefined) return undefined;
  const u = s.toUpperCase();
  return u === 'TCP' || u === 'UDP' ? u : undefined;
}

function shortDesc(d: string): string {
  return d.length > maxDescriptionLength ? d.slice(0, maxDescriptionLength) : d;
}
