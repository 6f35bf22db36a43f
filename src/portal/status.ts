import type { CameraStatus } from '../camera/camera.js';
import type { ElectionState } from '../election/election-node.js';
import type { AcmeStatus } from '../acme/manager.js';
import type { TlsStatus } from '../tls/credentials.js';
import type { WanAddressClass } from '../router/errors.js';

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
