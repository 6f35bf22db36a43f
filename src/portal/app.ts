import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { MAX_BUNDLE_BYTES } from '../acme/bundle.js';
import { BUNDLE_PATH } from '../acme/share.js';
import type { CameraCounters, CameraHttpOptions } from '../camera/http.js';
import { serveSnapshot, serveStream } from '../camera/http.js';
import type { Logger } from '../runtime/log.js';
import type { LoginThrottle, PortalCredentials } from './auth.js';
import { SESSION_COOKIE, SESSION_TTL_MS, basicAuthPassword, cookieValue, passwordMatches, signSession, verifySession } from './auth.js';
import { PORTAL_SCRIPT, loginPage, nodePage, portalPage, thumbnailOrigins } from './pages.js';
import type { NodeStatus } from './status.js';

/**
 * The HTTP application of one listener (the node's own page, or the portal while
 * representative), on Express. Locked by default: everything but /healthz, /login and the
 * script needs the session cookie or HTTP basic auth (`admin`, the password); LAN clients may be
 * let in without it when the user asked for that (`--lan-open`).
 */

export interface PortalAppOptions {
  which: 'node' | 'portal';
  status: () => NodeStatus;
  credentials: PortalCredentials;
  /** Shared by a node's listeners: an address slowed on one is slowed on the other. */
  throttle: LoginThrottle;
  /** Whether a source address counts as this LAN for `lanOpen`. */
  isLan: (address: string) => boolean;
  lanOpen: boolean;
  logger: Logger;
  now?: () => number;
  counters: PortalCounters;
  /** What the login page says about where the password is. */
  passwordHint: string;
  /** A camera node's pictures (claim 17); without it /camera.* are 404. */
  camera?: { http: CameraHttpOptions; counters: CameraCounters };
  /**
   * Takes the ACME certificate bundle the representative hands over (src/acme/share.ts), from
   * LAN addresses only; without it, or from elsewhere, the path is one more locked route.
   */
  acmeBundle?: (body: Buffer, from: string) => Promise<{ status: number; message: string }>;
}

export interface PortalCounters {
  requests: number;
  loginFailures: number;
  loginsThrottled: number;
  unauthorized: number;
}

export function newCounters(): PortalCounters {
  return { requests: 0, loginFailures: 0, loginsThrottled: 0, unauthorized: 0 };
}

/** On every answer; exported so the portal bench's bare reference sends the same header block. */
export const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
};

const LOGIN_BODY_LIMIT = 2048;

export function createPortalApp(o: PortalAppOptions): express.Express {
  const now = o.now ?? Date.now;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);
  app.use((_req, res, next) => {
    o.counters.requests++;
    res.set(SECURITY_HEADERS);
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  // Browsers ask for it on every page; a 404 would be a console error on each.
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });
  app.get('/portal.js', (_req, res) => {
    res.type('text/javascript').send(PORTAL_SCRIPT);
  });
  app.get('/login', (req, res) => {
    if (authorized(req)) return res.redirect(303, '/');
    res.type('html').send(loginPage({ hint: o.passwordHint }));
  });
  app.post('/login', announcedAtMost(LOGIN_BODY_LIMIT), express.urlencoded({ extended: false, limit: LOGIN_BODY_LIMIT, parameterLimit: 5 }), (req, res) => {
    const from = source(req);
    const wait = o.throttle.waitMs(from);
    if (wait > 0) {
      o.counters.loginsThrottled++;
      const s = Math.ceil(wait / 1000);
      res.status(429).set('retry-after', String(s)).type('html').send(loginPage({ waitSeconds: s, hint: o.passwordHint }));
      return;
    }
    const given = typeof req.body?.password === 'string' ? (req.body.password as string) : '';
    if (!passwordMatches(given, o.credentials.password)) {
      o.throttle.failed(from);
      o.counters.loginFailures++;
      o.logger.warn('wrong portal password', { from });
      res.status(401).type('html').send(loginPage({ failed: true, hint: o.passwordHint }));
      return;
    }
    o.throttle.succeeded(from);
    res.cookie(SESSION_COOKIE, signSession(o.credentials.sessionKey, now()), {
      httpOnly: true,
      // Over TLS the cookie never goes out in the clear (the plain port only redirects).
      secure: req.secure,
      sameSite: 'lax',
      path: '/',
      maxAge: SESSION_TTL_MS,
    });
    res.redirect(303, '/');
  });
  const acmeBundle = o.acmeBundle;
  if (acmeBundle) {
    // Not behind the login: the seal, made with the fleet secret, is the authentication. Not for
    // the internet either: from a WAN address the request goes on to the login like any other.
    app.post(
      BUNDLE_PATH,
      (req, _res, next) => next(o.isLan(source(req)) ? undefined : 'route'),
      announcedAtMost(MAX_BUNDLE_BYTES),
      (req, res, next) => (Number(req.get('content-length') ?? 0) > 0 ? next() : res.status(400).json({ error: 'bad request' })),
      express.raw({ type: () => true, limit: MAX_BUNDLE_BYTES }),
      (req, res, next) => {
        acmeBundle(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), source(req)).then(
          (a) => (a.status === 204 ? res.status(204).end() : res.status(a.status).json({ error: a.message })),
          next,
        );
      },
    );
  }
  app.post('/logout', (_req, res) => {
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    res.redirect(303, '/login');
  });

  // Everything below shows a node, an address or a picture: locked.
  app.use((req, res, next) => {
    // Taken before the check, which may itself start the wait (a fifth wrong password is a 401).
    const wait = basicAuthPassword(req.get('authorization')) === undefined ? 0 : o.throttle.waitMs(source(req));
    if (authorized(req)) return next();
    if (wait > 0) {
      // Basic auth from an address that must wait: told so, as the form is, not a bare 401.
      o.counters.loginsThrottled++;
      res.status(429).set('retry-after', String(Math.ceil(wait / 1000))).json({ error: 'too many wrong passwords: wait' });
      return;
    }
    o.counters.unauthorized++;
    const wantsHtml = req.method === 'GET' && req.path === '/' && (req.get('accept') ?? '').includes('text/html');
    if (wantsHtml) {
      res.status(401).type('html').send(loginPage({ hint: o.passwordHint }));
      return;
    }
    res.status(401).set('www-authenticate', 'Basic realm="frontdoor", charset="UTF-8"').json({ error: 'login required' });
  });

  app.get('/', (req, res) => {
    const s = o.status();
    if (o.which === 'node') {
      res.type('html').send(nodePage(s));
      return;
    }
    // Thumbnails come from each node's own port: the WAN links for a visitor from outside,
    // the LAN links for one who opened the portal by its LAN address.
    const viaWan = s.wanAddress !== null && hostOf(req.get('host') ?? '') === s.wanAddress;
    const thumbnails = viaWan ? 'wan' : 'lan';
    const origins = thumbnailOrigins(s, thumbnails);
    if (origins.length > 0) res.set('content-security-policy', cspWithImages(origins));
    res.type('html').send(portalPage(s, { thumbnails }));
  });
  app.get('/api/status', (_req, res) => {
    res.json(o.status());
  });
  app.get('/api/nodes', (_req, res) => {
    res.json(o.status().nodes);
  });
  app.get('/metrics', (_req, res) => {
    res.type('text/plain; version=0.0.4').send(metrics(o.status(), o.counters, o.camera?.counters));
  });
  const camera = o.camera;
  if (camera) {
    // The portal on the well-known port shows each node's picture from that node's own port:
    // another origin, and for Chrome's resource policy not the same site either (an IP address
    // has no registrable domain). What guards the picture is the login above; the session
    // cookie is SameSite=Lax, so another site's page embedding it gets the 401.
    app.get('/camera.jpg', (req, res, next) => {
      res.set('cross-origin-resource-policy', 'cross-origin');
      serveSnapshot(camera.http, camera.counters, req, res).catch(next);
    });
    app.get('/camera.mjpg', (req, res) => {
      res.set('cross-origin-resource-policy', 'cross-origin');
      serveStream(camera.http, camera.counters, req, res);
    });
  }

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  // Never a stack or a version: the page is on the internet.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: status === 413 ? 'request too large' : 'bad request' });
      return;
    }
    o.logger.error('request failed', { path: req.path, error: err });
    res.status(500).json({ error: 'internal error' });
  });
  return app;

  function authorized(req: Request): boolean {
    if (verifySession(o.credentials.sessionKey, cookieValue(req.get('cookie'), SESSION_COOKIE), now())) return true;
    const basic = basicAuthPassword(req.get('authorization'));
    if (basic !== undefined) {
      const from = source(req);
      if (o.throttle.waitMs(from) > 0) return false;
      if (passwordMatches(basic, o.credentials.password)) return true;
      o.throttle.failed(from);
      o.counters.loginFailures++;
      return false;
    }
    return o.lanOpen && o.isLan(source(req));
  }
}

/**
 * A body announced over `limit` is answered 413 before a byte of it is read: body-parser would
 * read it all first, holding the answer as long as the client likes (found by test/attack). The
 * rest is then read and thrown away by Node, within the 10 s request timeout; closing at once
 * instead would reset the connection under a client still sending, losing the 413.
 */
function announcedAtMost(limit: number): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    if (Number(req.get('content-length') ?? 0) > limit) {
      res.status(413).json({ error: 'request too large' });
      return;
    }
    next();
  };
}

function source(req: Request): string {
  return req.socket.remoteAddress ?? 'unknown';
}

function hostOf(hostHeader: string): string {
  const h = hostHeader.trim();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** The page's policy with the nodes' origins added to img-src, and nothing else loosened. */
function cspWithImages(origins: readonly string[]): string {
  const csp = SECURITY_HEADERS['content-security-policy'] as string;
  return csp.replace("img-src 'self' data:", `img-src 'self' data: ${origins.join(' ')}`);
}

/** One metric in Prometheus' text format: its HELP when it has one, its TYPE, its value. */
function metric(name: string, type: 'gauge' | 'counter', value: number, help?: string): string[] {
  return [...(help === undefined ? [] : [`# HELP ${name} ${help}`]), `# TYPE ${name} ${type}`, `${name} ${value}`];
}

function metrics(s: NodeStatus, c: PortalCounters, cam: CameraCounters | undefined): string {
  const lines = [
    ...metric('frontdoor_nodes', 'gauge', s.nodes.length, 'Nodes this node knows, itself included.'),
    ...metric('frontdoor_representative', 'gauge', s.role === 'representative' ? 1 : 0, '1 while this node is the representative.'),
    ...metric('frontdoor_lan_messages_received_total', 'counter', s.lan.received),
    ...metric('frontdoor_lan_messages_dropped_total', 'counter', s.lan.dropped),
    ...metric('frontdoor_http_requests_total', 'counter', c.requests),
    ...metric('frontdoor_http_unauthorized_total', 'counter', c.unauthorized),
    ...metric('frontdoor_login_failures_total', 'counter', c.loginFailures),
    ...metric('frontdoor_login_throttled_total', 'counter', c.loginsThrottled),
  ];
  if (cam && s.camera) {
    lines.push(
      ...metric('frontdoor_camera_live', 'gauge', s.camera.state === 'live' ? 1 : 0, '1 while the camera gives pictures.'),
      ...metric('frontdoor_camera_viewers', 'gauge', s.camera.viewers),
      ...metric('frontdoor_camera_frames_total', 'counter', s.camera.frames),
      ...metric('frontdoor_camera_restarts_total', 'counter', s.camera.restarts),
      ...metric('frontdoor_camera_stream_frames_sent_total', 'counter', cam.streamFramesSent),
      ...metric('frontdoor_camera_stream_frames_skipped_total', 'counter', cam.streamFramesSkipped),
      ...metric('frontdoor_camera_streams_dropped_stalled_total', 'counter', cam.streamsDroppedStalled),
      ...metric('frontdoor_camera_snapshots_total', 'counter', cam.snapshots),
    );
  }
  return `${lines.join('\n')}\n`;
}
