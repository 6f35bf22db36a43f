/**
 * The XML documents a miniupnpd 2.3.1 serves (upnpdescgen.c): the same device tree, service
 * ids, paths and control URLs, so that a client that finds its way through a real router finds
 * it here too. Services we do not emulate (WANIPv6FirewallControl, Layer3Forwarding) are left
 * out rather than described and then failing.
 */

export const paths = {
  rootDesc: '/rootDesc.xml',
  wanIpcScpd: '/WANIPCn.xml',
  wanCfgScpd: '/WANCfg.xml',
  wanIpcControl: '/ctl/IPConn',
  wanIpcEvent: '/evt/IPConn',
  wanCfgControl: '/ctl/CmnIfCfg',
  wanCfgEvent: '/evt/CmnIfCfg',
} as const;

export const serverString = 'Debian/12 UPnP/1.1 MiniUPnPd/2.3.1';

export interface DeviceIds {
  igd: string;
  wan: string;
  wcd: string;
}

export function deviceType(kind: 'InternetGatewayDevice' | 'WANDevice' | 'WANConnectionDevice', v: 1 | 2): string {
  return `urn:schemas-upnp-org:device:${kind}:${v}`;
}

export function wanIpcServiceType(v: 1 | 2): string {
  return `urn:schemas-upnp-org:service:WANIPConnection:${v}`;
}

export const wanCfgServiceType = 'urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1';

export function rootDescription(v: 1 | 2, ids: DeviceIds, presentationUrl: string): string {
  return (
    '<?xml version="1.0"?>\r\n' +
    '<root xmlns="urn:schemas-upnp-org:device-1-0">' +
    `<specVersion><major>1</major><minor>${v === 2 ? 1 : 0}</minor></specVersion>` +
    '<device>' +
    `<deviceType>${deviceType('InternetGatewayDevice', v)}</deviceType>` +
    '<friendlyName>frontdoor emulated router</friendlyName>' +
    '<manufacturer>frontdoor</manufacturer>' +
    '<manufacturerURL>http://miniupnp.free.fr/</manufacturerURL>' +
    '<modelDescription>frontdoor router emulator (miniupnpd 2.3.1 behaviour)</modelDescription>' +
    '<modelName>frontdoor emulated router</modelName>' +
    '<modelNumber>2.3.1</modelNumber>' +
    '<modelURL>http://miniupnp.free.fr/</modelURL>' +
    '<serialNumber>00000000</serialNumber>' +
    `<UDN>uuid:${ids.igd}</UDN>` +
    '<deviceList><device>' +
    `<deviceType>${deviceType('WANDevice', v)}</deviceType>` +
    '<friendlyName>WANDevice</friendlyName><manufacturer>MiniUPnP</manufacturer>' +
    '<manufacturerURL>http://miniupnp.free.fr/</manufacturerURL><modelDescription>WAN Device</modelDescription>' +
    '<modelName>WAN Device</modelName><modelNumber>20240101</modelNumber>' +
    '<modelURL>http://miniupnp.free.fr/</modelURL><serialNumber>00000000</serialNumber>' +
    `<UDN>uuid:${ids.wan}</UDN><UPC>000000000000</UPC>` +
    '<serviceList><service>' +
    `<serviceType>${wanCfgServiceType}</serviceType>` +
    '<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>' +
    `<SCPDURL>${paths.wanCfgScpd}</SCPDURL><controlURL>${paths.wanCfgControl}</controlURL>` +
    `<eventSubURL>${paths.wanCfgEvent}</eventSubURL>` +
    '</service></serviceList>' +
    '<deviceList><device>' +
    `<deviceType>${deviceType('WANConnectionDevice', v)}</deviceType>` +
    '<friendlyName>WANConnectionDevice</friendlyName><manufacturer>MiniUPnP</manufacturer>' +
    '<manufacturerURL>http://miniupnp.free.fr/</manufacturerURL><modelDescription>MiniUPnP daemon</modelDescription>' +
    '<modelName>MiniUPnPd</modelName><modelNumber>20240101</modelNumber>' +
    '<modelURL>http://miniupnp.free.fr/</modelURL><serialNumber>00000000</serialNumber>' +
    `<UDN>uuid:${ids.wcd}</UDN><UPC>000000000000</UPC>` +
    '<serviceList><service>' +
    `<serviceType>${wanIpcServiceType(v)}</serviceType>` +
    '<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>' +
    `<SCPDURL>${paths.wanIpcScpd}</SCPDURL><controlURL>${paths.wanIpcControl}</controlURL>` +
    `<eventSubURL>${paths.wanIpcEvent}</eventSubURL>` +
    '</service></serviceList>' +
    '</device></deviceList>' +
    '</device></deviceList>' +
    `<presentationURL>${presentationUrl}</presentationURL>` +
    '</device></root>\r\n'
  );
}

type Arg = [name: string, direction: 'in' | 'out', variable: string];

const portMappingEntryOut: Arg[] = [
  ['NewRemoteHost', 'out', 'RemoteHost'],
  ['NewExternalPort', 'out', 'ExternalPort'],
  ['NewProtocol', 'out', 'PortMappingProtocol'],
  ['NewInternalPort', 'out', 'InternalPort'],
  ['NewInternalClient', 'out', 'InternalClient'],
  ['NewEnabled', 'out', 'PortMappingEnabled'],
  ['NewPortMappingDescription', 'out', 'PortMappingDescription'],
  ['NewLeaseDuration', 'out', 'PortMappingLeaseDuration'],
];

function wanIpcActions(v: 1 | 2): Array<[string, Arg[]]> {
  const actions: Array<[string, Arg[]]> = [
    ['SetConnectionType', [['NewConnectionType', 'in', 'ConnectionType']]],
    [
      'GetConnectionTypeInfo',
      [
        ['NewConnectionType', 'out', 'ConnectionType'],
        ['NewPossibleConnectionTypes', 'out', 'PossibleConnectionTypes'],
      ],
    ],
    ['RequestConnection', []],
    ['ForceTermination', []],
    [
      'GetStatusInfo',
      [
        ['NewConnectionStatus', 'out', 'ConnectionStatus'],
        ['NewLastConnectionError', 'out', 'LastConnectionError'],
        ['NewUptime', 'out', 'Uptime'],
      ],
    ],
    [
      'GetNATRSIPStatus',
      [
        ['NewRSIPAvailable', 'out', 'RSIPAvailable'],
        ['NewNATEnabled', 'out', 'NATEnabled'],
      ],
    ],
    [
      'GetGenericPortMappingEntry',
      [['NewPortMappingIndex', 'in', 'PortMappingNumberOfEntries'], ...portMappingEntryOut],
    ],
    [
      'GetSpecificPortMappingEntry',
      [
        ['NewRemoteHost', 'in', 'RemoteHost'],
        ['NewExternalPort', 'in', 'ExternalPort'],
        ['NewProtocol', 'in', 'PortMappingProtocol'],
        ...portMappingEntryOut.slice(3),
      ],
    ],
    ['AddPortMapping', portMappingEntryOut.map(([n, , s]): Arg => [n, 'in', s])],
    [
      'DeletePortMapping',
      [
        ['NewRemoteHost', 'in', 'RemoteHost'],
        ['NewExternalPort', 'in', 'ExternalPort'],
        ['NewProtocol', 'in', 'PortMappingProtocol'],
      ],
    ],
    ['GetExternalIPAddress', [['NewExternalIPAddress', 'out', 'ExternalIPAddress']]],
  ];
  if (v === 2) {
    actions.push(
      [
        'DeletePortMappingRange',
        [
          ['NewStartPort', 'in', 'ExternalPort'],
          ['NewEndPort', 'in', 'ExternalPort'],
          ['NewProtocol', 'in', 'PortMappingProtocol'],
          ['NewManage', 'in', 'A_ARG_TYPE_Manage'],
        ],
      ],
      [
        'GetListOfPortMappings',
        [
          ['NewStartPort', 'in', 'ExternalPort'],
          ['NewEndPort', 'in', 'ExternalPort'],
          ['NewProtocol', 'in', 'PortMappingProtocol'],
          ['NewManage', 'in', 'A_ARG_TYPE_Manage'],
          ['NewNumberOfPorts', 'in', 'PortMappingNumberOfEntries'],
          ['NewPortListing', 'out', 'A_ARG_TYPE_PortListing'],
        ],
      ],
      [
        'AddAnyPortMapping',
        [
          ...portMappingEntryOut.map(([n, , s]): Arg => [n, 'in', s]),
          ['NewReservedPort', 'out', 'ExternalPort'],
        ],
      ],
    );
  }
  return actions;
}

const wanIpcVariables: Array<[string, string, boolean]> = [
  ['ConnectionType', 'string', false],
  ['PossibleConnectionTypes', 'string', true],
  ['ConnectionStatus', 'string', true],
  ['Uptime', 'ui4', false],
  ['LastConnectionError', 'string', false],
  ['RSIPAvailable', 'boolean', false],
  ['NATEnabled', 'boolean', false],
  ['ExternalIPAddress', 'string', true],
  ['PortMappingNumberOfEntries', 'ui2', true],
  ['PortMappingEnabled', 'boolean', false],
  ['PortMappingLeaseDuration', 'ui4', false],
  ['RemoteHost', 'string', false],
  ['ExternalPort', 'ui2', false],
  ['InternalPort', 'ui2', false],
  ['PortMappingProtocol', 'string', false],
  ['InternalClient', 'string', false],
  ['PortMappingDescription', 'string', false],
  ['A_ARG_TYPE_Manage', 'boolean', false],
  ['A_ARG_TYPE_PortListing', 'string', false],
];

function scpd(actions: Array<[string, Arg[]]>, variables: Array<[string, string, boolean]>): string {
  const a = actions
    .map(
      ([name, args]) =>
        `<action><name>${name}</name>` +
        (args.length === 0
          ? ''
          : '<argumentList>' +
            args
              .map(
                ([n, d, s]) =>
                  `<argument><name>${n}</name><direction>${d}</direction><relatedStateVariable>${s}</relatedStateVariable></argument>`,
              )
              .join('') +
            '</argumentList>') +
        '</action>',
    )
    .join('');
  const s = variables
    .map(
      ([name, type, events]) =>
        `<stateVariable sendEvents="${events ? 'yes' : 'no'}"><name>${name}</name><dataType>${type}</dataType></stateVariable>`,
    )
    .join('');
  return (
    '<?xml version="1.0"?>\r\n<scpd xmlns="urn:schemas-upnp-org:service-1-0">' +
    '<specVersion><major>1</major><minor>0</minor></specVersion>' +
    `<actionList>${a}</actionList><serviceStateTable>${s}</serviceStateTable></scpd>\r\n`
  );
}

export function wanIpcScpd(v: 1 | 2): string {
  return scpd(
    wanIpcActions(v),
    v === 2 ? wanIpcVariables : wanIpcVariables.filter(([n]) => !n.startsWith('A_ARG_TYPE')),
  );
}

export function wanCfgScpd(): string {
  return scpd(
    [
      [
        'GetCommonLinkProperties',
        [
          ['NewWANAccessType', 'out', 'WANAccessType'],
          ['NewLayer1UpstreamMaxBitRate', 'out', 'Layer1UpstreamMaxBitRate'],
          ['NewLayer1DownstreamMaxBitRate', 'out', 'Layer1DownstreamMaxBitRate'],
          ['NewPhysicalLinkStatus', 'out', 'PhysicalLinkStatus'],
        ],
      ],
      ['GetTotalBytesSent', [['NewTotalBytesSent', 'out', 'TotalBytesSent']]],
      ['GetTotalBytesReceived', [['NewTotalBytesReceived', 'out', 'TotalBytesReceived']]],
      ['GetTotalPacketsSent', [['NewTotalPacketsSent', 'out', 'TotalPacketsSent']]],
      ['GetTotalPacketsReceived', [['NewTotalPacketsReceived', 'out', 'TotalPacketsReceived']]],
    ],
    [
      ['WANAccessType', 'string', false],
      ['Layer1UpstreamMaxBitRate', 'ui4', false],
      ['Layer1DownstreamMaxBitRate', 'ui4', false],
      ['PhysicalLinkStatus', 'string', true],
      ['TotalBytesSent', 'ui4', false],
      ['TotalBytesReceived', 'ui4', false],
      ['TotalPacketsSent', 'ui4', false],
      ['TotalPacketsReceived', 'ui4', false],
    ],
  );
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
  );
}
