import type { NodeStatus, PeerStatus } from '../../src/portal/status.js';

/**
 * What /api/status says, for the tests of everything that reads it (pages, the portal app,
 * `frontdoor status`, the portal bench): node `i` of the test bed's LAN (192.168.77.10 + i)
 * behind the WAN address 203.0.114.1. A test states only what it is about; `over` replaces any
 * part, and a field added to NodeStatus is added here once.
 */
export function samplePeer(i: number, over: Partial<PeerStatus> = {}): PeerStatus {
  return {
    id: `id${i}`,
    name: `h${i + 1}`,
    self: i === 0,
    representative: i === 0,
    addresses: [`192.168.77.${10 + i}`],
    localPort: 8081,
    publicPort: 8081 + i,
    url: `http://203.0.114.1:${8081 + i}/`,
    lanUrl: `http://192.168.77.${10 + i}:8081/`,
    lastSeenMsAgo: 0,
    camera: false,
    ...over,
  };
}

/** The status of node 0, the representative, knowing only itself unless `over.nodes` says more. */
export function sampleStatus(over: Partial<NodeStatus> = {}): NodeStatus {
  return {
    name: 'h1',
    id: 'id0',
    role: 'representative',
    roleSinceMs: 1000,
    uptimeMs: 2000,
    representative: { id: 'id0', name: 'h1', url: 'http://203.0.114.1:8080/' },
    wanAddress: '203.0.114.1',
    wanAddressClass: 'public',
    ports: { local: 8081, public: 8081, wellKnown: 8080, portal: 8080 },
    floatingAddress: null,
    router: { protocol: 'upnp-igd2', gateway: '192.168.77.1', localAddress: '192.168.77.10', error: null },
    routerMappings: null,
    lan: { mode: 'multicast', port: 4862, authenticated: true, dropped: 0, received: 0 },
    nodes: [samplePeer(0)],
    camera: null,
    tls: null,
    portalError: null,
    events: [],
    ...over,
  };
}
