import type { CameraStatus } from '../camera/camera.js';
import type { ElectionState } from '../election/election-node.js';
import type { AcmeStatus } from '../acme/manager.js';
import type { NodeSnapshot } from '../agent/node-state.js';
import type { DirectoryEntry } from '../membership/directory.js';
import type { TlsStatus } from '../tls/credentials.js';
import type { WanAddressClass } from '../router/errors.js';
import type { Mapping } from '../router/types.js';
import { hostPort } from '../runtime/urls.js';

/** GET /api/status: what one node knows. The same JSON feeds `frontdoor status` and the pages. */
export interface NodeStatus {
  name: string;
  id: string;
  role: ElectionState;
  roleSinceMs: number;
  uptimeMs: number;
  representative: { id: string; name: string; url: string | null } | null;
  wanAddress: string | null;
  wanAddressClass: WanAddressClass | null;
  ports: { local: number; public: number; wellKnown: number; portal: number };
  /** The address the well-known port is mapped to when a floating address is set. */
  floatingAddress: { address: string; held: boolean } | null;
  router: { protocol: string | null; gateway: string; localAddress: string; error: string | null };
  /** The router's table as the representative last read it (claims 6, 20); null elsewhere. */
  routerMappings: Array<{
    protocol: string;
    externalPort: number;
    internalClient: string;
    internalPort: number;
    description: string;
    leaseSeconds: number;
    frontdoor: boolean;
  }> | null;
  lan: { mode: string; port: number; authenticated: boolean; dropped: number; received: number };
  nodes: PeerStatus[];
  /** The certificate the node's ports serve; null with --tls off. */
  tls: (TlsStatus & { acme: AcmeStatus | null }) | null;
  /** This node's camera; null when it has none. */
  camera: CameraStatus | null;
  /** Why this node cannot serve the portal (another program holds its port); null: it can. */
  portalError: string | null;
  /** Recent role changes, newest last. */
  events: Array<{ at: string; what: string }>;
}

export interface PeerStatus {
  id: string;
  name: string;
  self: boolean;
  representative: boolean;
  addresses: string[];
  localPort: number;
  publicPort: number;
  /** `http://WAN:port/`, null until the node has a public port and the WAN address is known. */
  url: string | null;
  lanUrl: string;
  lastSeenMsAgo: number;
  camera: boolean;
}

/** What a node is, fixed for its life: settings and identity. */
export interface NodeFacts {
  name: string;
  id: string;
  startedAt: number;
  scheme: 'http' | 'https';
  localPort: number;
  wellKnownPort: number;
  portalPort: number;
  lan: { mode: string; port: number; authenticated: boolean };
}

export interface StatusInput {
  now: number;
  node: NodeFacts;
  state: Readonly<NodeSnapshot>;
  members: readonly DirectoryEntry[];
  lanStats: { dropped: number; received: number };
  floating: { address: string; held: boolean } | null;
  camera: CameraStatus | null;
  tls: NodeStatus['tls'];
}

/** What `/api/status` and the pages show, from what the node knows; reads nothing else. */
export function projectStatus(input: StatusInput): NodeStatus {
  const { node, state, now } = input;
  const wan = state.wan?.address;
  const url = (port: number): string | null => (wan && port > 0 ? `${node.scheme}://${hostPort(wan, port)}/` : null);
  const peers = input.members.map((e): PeerStatus => {
    const publicPort = e.self ? state.ownPublicPort : e.info.publicPort;
    const address = e.info.addresses[0] ?? e.address;
    return {
      id: e.id,
      name: e.info.name,
      self: e.self,
      representative: e.id === state.representative,
      addresses: e.info.addresses,
      localPort: e.info.localPort,
      publicPort,
      url: url(publicPort),
      lanUrl: `${node.scheme}://${hostPort(address, e.info.localPort)}/`,
      lastSeenMsAgo: e.self ? 0 : Math.max(0, now - e.lastSeen),
      camera: e.info.camera,
    };
  });
  const rep = peers.find((p) => p.id === state.representative);
  return {
    name: node.name,
    id: node.id,
    role: state.role,
    roleSinceMs: now - state.roleSince,
    uptimeMs: now - node.startedAt,
    representative: rep === undefined ? null : { id: rep.id, name: rep.name, url: url(node.wellKnownPort) },
    wanAddress: wan ?? null,
    wanAddressClass: state.wan?.class ?? null,
    ports: { local: node.localPort, public: state.ownPublicPort, wellKnown: node.wellKnownPort, portal: node.portalPort },
    floatingAddress: input.floating,
    router: {
      protocol: state.router.protocol ?? null,
      gateway: state.router.gateway,
      localAddress: state.router.localAddress,
      error: state.router.error ?? null,
    },
    routerMappings: state.role === 'representative' && state.table !== undefined ? state.table.map(describeMapping) : null,
    lan: { ...node.lan, ...input.lanStats },
    nodes: peers,
    camera: input.camera,
    tls: input.tls,
    portalError: state.portalError ?? null,
    events: [...state.events],
  };
}

function describeMapping(m: Mapping): NonNullable<NodeStatus['routerMappings']>[number] {
  return {
    protocol: m.protocol,
    externalPort: m.externalPort,
    internalClient: m.internalClient,
    internalPort: m.internalPort,
    description: m.description,
    leaseSeconds: m.leaseSeconds,
    frontdoor: m.description.startsWith('frontdoor'),
  };
}
