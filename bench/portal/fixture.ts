import type { NodeStatus, PeerStatus } from '../../src/portal/status.js';
import { sampleStatus } from '../../test/helpers/node-status.js';

/**
 * What a representative of a 10-node fleet reports: the portal page and /api/nodes of the bench
 * render this. The router table and the recent events are filled as a busy home router's would be.
 */
export const BENCH_PASSWORD = 'bench-portal-password-right';

const NAMES = ['frontcam', 'garage-cam', 'backyard-cam', 'nas', 'printer-pi', 'livingroom-cam', 'homeassistant', 'doorbell', 'workshop-pi', 'attic-sensor'];

export function benchStatus(startedAt: number, now: number): NodeStatus {
  const wan = '203.0.113.7';
  const nodes: PeerStatus[] = NAMES.map((name, i) => {
    const ip = `192.168.1.${20 + i}`;
    const publicPort = 8081 + i;
    return {
      id: `node-${(0x1f3a + i * 977).toString(16)}-${name}`,
      name,
      self: i === 0,
      representative: i === 0,
      addresses: [ip, `fe80::${(i + 1).toString(16)}:1`],
      localPort: 8081,
      publicPort,
      url: `http://${wan}:${publicPort}/`,
      lanUrl: `http://${ip}:8081/`,
      lastSeenMsAgo: i === 9 ? 45_000 : (i * 137) % 1500,
      camera: name.includes('cam') || name === 'doorbell',
    };
  });
  const mappings: NonNullable<NodeStatus['routerMappings']> = nodes.map((n) => ({
    protocol: 'TCP',
    externalPort: n.publicPort,
    internalClient: n.addresses[0]!,
    internalPort: n.localPort,
    description: `frontdoor ${n.name}`,
    leaseSeconds: 3600 - n.publicPort + 8000,
    frontdoor: true,
  }));
  mappings.push(
    { protocol: 'TCP', externalPort: 8080, internalClient: '192.168.1.20', internalPort: 8080, description: 'frontdoor portal', leaseSeconds: 3500, frontdoor: true },
    { protocol: 'UDP', externalPort: 3074, internalClient: '192.168.1.77', internalPort: 3074, description: 'Xbox', leaseSeconds: 0, frontdoor: false },
    { protocol: 'TCP', externalPort: 32400, internalClient: '192.168.1.23', internalPort: 32400, description: 'Plex Media Server', leaseSeconds: 0, frontdoor: false },
  );
  const base = Date.parse('2025-01-15T08:00:00Z');
  const events = Array.from({ length: 10 }, (_, i) => ({
    at: new Date(base + i * 61_000).toISOString(),
    what: i % 2 ? `node ${NAMES[i]} joined` : 'became representative (previous one silent for 1.2 s)',
  }));
  return sampleStatus({
    name: NAMES[0]!,
    id: nodes[0]!.id,
    roleSinceMs: 3_600_000,
    uptimeMs: now - startedAt,
    representative: { id: nodes[0]!.id, name: NAMES[0]!, url: `http://${wan}:8080/` },
    wanAddress: wan,
    router: { protocol: 'upnp-igd2', gateway: '192.168.1.1', localAddress: '192.168.1.20', error: null },
    routerMappings: mappings,
    lan: { mode: 'multicast', port: 4862, authenticated: true, dropped: 3, received: 48_211 },
    nodes,
    events,
  });
}
