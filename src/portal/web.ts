import type { RequestListener } from 'node:http';
import type { Camera } from '../camera/camera.js';
import { newCameraCounters } from '../camera/http.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { createPortalApp, newCounters } from './app.js';
import type { PortalCounters } from './app.js';
import { LoginThrottle, resolveCredentials } from './auth.js';
import type { PortalCredentials } from './auth.js';
import { lanMatcher } from './lan-matcher.js';
import type { NodeStatus } from './status.js';

/**
 * The two HTTP applications of a node (its own page, and the portal the representative serves)
 * with the one login they share: the password and session key are read or made here, and the
 * log says once where the password comes from.
 */

export interface WebComponents {
  clock: Clock;
  logger: Logger;
  status: () => NodeStatus;
}

export interface WebInit {
  /** '' = derived from the fleet secret, else made and kept in the data directory. */
  password: string;
  secret: string;
  dataDir: string | undefined;
  lanOpen: boolean;
  /** The node's LAN address and the router's: what counts as this LAN. */
  address: string;
  gateway: string;
  camera?: { camera: Camera; wanFps: number } | undefined;
  /** The ACME certificate bundle from the representative, on the node's own port only. */
  acmeBundle?: ((body: Buffer, from: string) => Promise<{ status: number; message: string }>) | undefined;
}

export interface Web {
  node: RequestListener;
  portal: RequestListener;
  credentials: PortalCredentials;
  counters: PortalCounters;
}

export async function buildWeb(c: WebComponents, o: WebInit): Promise<Web> {
  const log = c.logger;
  const creds = await resolveCredentials({ password: o.password, secret: o.secret, dataDir: o.dataDir });
  if (creds.notKept !== undefined) {
    log.error(
      'cannot keep the portal password or session key in the data directory; another is made at the next start (set FRONTDOOR_PASSWORD and FRONTDOOR_SECRET to need none)',
      { dataDir: o.dataDir, error: creds.notKept },
    );
  }
  if (creds.passwordSource === 'generated') {
    // Printed once, on the start that made it; `frontdoor status` shows it again.
    log.warn('portal password made for this node (set FRONTDOOR_PASSWORD to choose one)', { password: creds.password });
  } else if (creds.passwordSource === 'fleet-secret') {
    log.info('portal password derived from the fleet secret; `frontdoor status` shows it (set FRONTDOOR_PASSWORD to choose one)');
  }
  const hint =
    creds.passwordSource === 'setting'
      ? 'The portal password is your fleet\'s FRONTDOOR_PASSWORD.'
      : creds.passwordSource === 'fleet-secret'
        ? 'The portal password is derived from the fleet secret: `frontdoor status` on any node shows it; set FRONTDOOR_PASSWORD to choose one.'
        : 'This node made its own portal password: `frontdoor status` on it shows it; set FRONTDOOR_PASSWORD to choose one.';
  const lan = lanMatcher(o.address, o.gateway);
  const counters = newCounters();
  const common = {
    status: c.status,
    credentials: creds,
    throttle: new LoginThrottle(() => c.clock.now()),
    isLan: lan,
    lanOpen: o.lanOpen,
    logger: log,
    counters,
    passwordHint: hint,
    ...(o.camera
      ? { camera: { http: { camera: o.camera.camera, clock: c.clock, isLan: lan, wanFps: o.camera.wanFps }, counters: newCameraCounters() } }
      : {}),
  };
  return {
    node: createPortalApp({ ...common, which: 'node', ...(o.acmeBundle ? { acmeBundle: o.acmeBundle } : {}) }),
    portal: createPortalApp({ ...common, which: 'portal' }),
    credentials: creds,
    counters,
  };
}
