import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadResponseError } from '../../../src/router/errors.js';

/**
 * Router answers written by hand after the UPnP IGD specifications and what miniupnpd 2.3
 * (upnpdescgen.c, upnpsoap.c, minissdp.c) puts on the wire.
 */

export const MINIUPNPD_SSDP_RESPONSE =
  'HTTP/1.1 200 OK\r\n' +
  'CACHE-CONTROL: max-age=120\r\n' +
  'ST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n' +
  'USN: uuid:6a1f3c2e-0b0c-4d2f-9a3e-2b1c0d9e8f70::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n' +
  'EXT:\r\n' +
  'SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\n' +
  'LOCATION: http://192.168.77.1:5000/rootDesc.xml\r\n' +
  'OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01\r\n' +
  '01-NLS: 1764000000\r\n' +
  'BOOTID.UPNP.ORG: 1764000000\r\n' +
  'CONFIGID.UPNP.ORG: 1337\r\n' +
  '\r\n';

export function miniupnpdDescription(host = '192.168.77.1:5000'): string {
  return (
    '<?xml version="1.0"?>\r\n' +
    '<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337">' +
    '<specVersion><major>1</major><minor>1</minor></specVersion>' +
    '<device>' +
    '<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>' +
    '<friendlyName>Debian router</friendlyName>' +
    '<manufacturer>Debian</manufacturer>' +
    '<manufacturerURL>https://www.debian.org/</manufacturerURL>' +
    '<modelDescription>Debian router</modelDescription>' +
    '<modelName>Debian router</modelName>' +
    '<modelNumber>2.3.1</modelNumber>' +
    '<modelURL>https://www.debian.org/</modelURL>' +
    '<serialNumber>00000000</serialNumber>' +
    '<UDN>uuid:6a1f3c2e-0b0c-4d2f-9a3e-2b1c0d9e8f70</UDN>' +
    '<serviceList><service>' +
    '<serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>' +
    '<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId>' +
    '<SCPDURL>/L3F.xml</SCPDURL><controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL>' +
    '</service></serviceList>' +
    '<deviceList><device>' +
    '<deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>' +
    '<friendlyName>WANDevice</friendlyName>' +
    '<manufacturer>MiniUPnP</manufacturer>' +
    '<modelName>WAN Device</modelName>' +
    '<UDN>uuid:6a1f3c2e-0b0c-4d2f-9a3e-2b1c0d9e8f71</UDN>' +
    '<serviceList><service>' +
    '<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>' +
    '<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>' +
    '<SCPDURL>/WANCfg.xml</SCPDURL><controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL>' +
    '</service></serviceList>' +
    '<deviceList><device>' +
    '<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>' +
    '<friendlyName>WANConnectionDevice</friendlyName>' +
    '<manufacturer>MiniUPnP</manufacturer>' +
    '<modelName>MiniUPnPd</modelName>' +
    '<UDN>uuid:6a1f3c2e-0b0c-4d2f-9a3e-2b1c0d9e8f72</UDN>' +
    '<serviceList>' +
    '<service>' +
    '<serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>' +
    '<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>' +
    '<SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL>' +
    '</service>' +
    '<service>' +
    '<serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType>' +
    '<serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId>' +
    '<SCPDURL>/WANIP6FC.xml</SCPDURL><controlURL>/ctl/IP6FCtl</controlURL><eventSubURL>/evt/IP6FCtl</eventSubURL>' +
    '</service>' +
    '</serviceList>' +
    '</device></deviceList>' +
    '</device></deviceList>' +
    `<presentationURL>http://${host}/</presentationURL>` +
    '</device>' +
    '</root>'
  );
}

/** An old IGDv1 DSL router: URLBase, a PPP service listed before the IP one, prefixed tags. */
export const IGD1_PPP_DESCRIPTION =
  '<?xml version="1.0" encoding="utf-8"?>\n' +
  '<d:root xmlns:d="urn:schemas-upnp-org:device-1-0">\n' +
  '  <d:specVersion><d:major>1</d:major><d:minor>0</d:minor></d:specVersion>\n' +
  '  <d:URLBase>http://192.168.1.254:49152/</d:URLBase>\n' +
  '  <d:device>\n' +
  '    <d:deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</d:deviceType>\n' +
  '    <d:friendlyName>Box &amp; Co DSL</d:friendlyName>\n' +
  '    <d:manufacturer>Box</d:manufacturer>\n' +
  '    <d:modelName>DSL 3000</d:modelName>\n' +
  '    <d:deviceList><d:device>\n' +
  '      <d:deviceType>urn:schemas-upnp-org:device:WANDevice:1</d:deviceType>\n' +
  '      <d:deviceList><d:device>\n' +
  '        <d:deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</d:deviceType>\n' +
  '        <d:serviceList>\n' +
  '          <d:service>\n' +
  '            <d:serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</d:serviceType>\n' +
  '            <d:controlURL>upnp/control/WANPPPConn1</d:controlURL>\n' +
  '          </d:service>\n' +
  '          <d:service>\n' +
  '            <d:serviceType> urn:schemas-upnp-org:service:WANIPConnection:1 </d:serviceType>\n' +
  '            <d:controlURL>/upnp/control/WANIPConn1</d:controlURL>\n' +
  '          </d:service>\n' +
  '        </d:serviceList>\n' +
  '      </d:device></d:deviceList>\n' +
  '    </d:device></d:deviceList>\n' +
  '  </d:device>\n' +
  '</d:root>\n';

export function soapResponse(action: string, serviceType: string, inner: string): string {
  // miniupnpd's BuildSendAndCloseSoapResp framing.
  return (
    '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action}Response xmlns:u="${serviceType}">${inner}</u:${action}Response></s:Body></s:Envelope>\r\n`
  );
}

export function soapFault(code: number, description: string): string {
  // miniupnpd's SoapError, byte for byte in structure.
  return (
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    '<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>' +
    '<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">' +
    `<errorCode>${code}</errorCode><errorDescription>${description}</errorDescription>` +
    '</UPnPError></detail></s:Fault></s:Body></s:Envelope>'
  );
}

export interface ListedEntry {
  remoteHost?: string;
  externalPort: number;
  protocol: string;
  internalPort: number;
  internalClient: string;
  description: string;
  lease: number;
}

/** The PortMappingList document as miniupnpd's GetListOfPortMappings writes it. */
export function portMappingList(entries: ListedEntry[]): string {
  return (
    '<p:PortMappingList xmlns:p="urn:schemas-upnp-org:gw:WANIPConnection"' +
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
    ' xsi:schemaLocation="urn:schemas-upnp-org:gw:WANIPConnection' +
    ' http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd">' +
    entries
      .map(
        (e) =>
          '<p:PortMappingEntry>' +
          `<p:NewRemoteHost>${e.remoteHost ?? ''}</p:NewRemoteHost>` +
          `<p:NewExternalPort>${e.externalPort}</p:NewExternalPort>` +
          `<p:NewProtocol>${e.protocol}</p:NewProtocol>` +
          `<p:NewInternalPort>${e.internalPort}</p:NewInternalPort>` +
          `<p:NewInternalClient>${e.internalClient}</p:NewInternalClient>` +
          '<p:NewEnabled>1</p:NewEnabled>' +
          `<p:NewDescription>${e.description}</p:NewDescription>` +
          `<p:NewLeaseTime>${e.lease}</p:NewLeaseTime>` +
          '</p:PortMappingEntry>',
      )
      .join('') +
    '</p:PortMappingList>'
  );
}

export function escapeForXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Applies random edits to a valid input: what a buggy or hostile router might send. */
export interface Edit {
  at: number;
  remove: number;
  insert: string;
}
export function mutate(s: string, edits: Edit[]): string {
  let out = s;
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % (out.length + 1);
    out = out.slice(0, at) + e.insert + out.slice(at + e.remove);
  }
  return out;
}

/** Runs `fn`; a BadResponseError is an accepted outcome (undefined), any other throw fails. */
export function valueOrBadResponse<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof BadResponseError, `expected a value or BadResponseError, got ${String(err)}`);
    return undefined;
  }
}

/** Pieces XML and HTTP parsers trip on. */
const nasty = fc.constantFrom(
  '<',
  '>',
  '</',
  '/>',
  '&',
  '&amp;',
  '&lt;',
  '&#0;',
  ';',
  '"',
  ':',
  'x',
  ' ',
  '\r\n',
  '\u0000',
  '<![CDATA[',
  ']]>',
  '<!--',
  '-->',
  '<!DOCTYPE a>',
  '<__proto__>',
  '<constructor>',
  '<device>',
  '<service>',
  '<p:PortMappingEntry>',
  '\uD800',
  'é',
);

export const editsArb = fc.array(
  fc.record({
    at: fc.nat(),
    remove: fc.nat({ max: 40 }),
    insert: fc.oneof(fc.string({ unit: nasty, maxLength: 4 }), fc.string({ maxLength: 8 })),
  }),
  { minLength: 1, maxLength: 8 },
);

/** Runs per property: enough to find crashes, small enough for every ordinary test run. */
export const RUNS = 400;
