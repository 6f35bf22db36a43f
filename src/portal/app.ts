import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { MAX_BUNDLE_BYTES } from '../acme/bundle.js';
import { BUNDLE_PATH } from '../acme/share.js';
import type { CameraCounters, CameraHttpOptions } from '../camera/http.js';
import { serveSnapshot, serveStream } from '../camera/http.js';
import type { Logger } from '../runtime/log.js';
import type { LoginThrottle, PortalCredentials } from './auth.js';
import { SESSION_COOKIE, SESSION_TTL_MS, basicAuthPassword, cookieValue, networkOf, passwordMatches, signSession, verifySession } from './auth.js';
import { PORTAL_SCRIPT, loginPage, nodePage, portalPage, thumbnailOrigins } from './pages.js';
import type { NodeStatus } from './status.js';

/**
 * The HTTP application of one listener (the node's own page, or the portal while
 * representative), on node:http: a dozen fixed routes need no framework, and Express alone
 * made a third of an idle node's memory. Locked by default: everything but /healthz, /login and the
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
  /** Where the password comes from, for the owner: on the pages after login, never on the login page. */
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
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on our own
  // forms' POSTs, which the cross-site check below could not tell from another site's.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
};

const LOGIN_BODY_LIMIT = 2048;
const LOGIN_FIELDS_LIMIT = 5;

/** A request as the routes see it: the path without its query, case as sent. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  from: string;
}

type Handler = (x: Exchange) => void | Promise<void>;

export function createPortalApp(o: PortalAppOptions): RequestListener {
  const now = o.now ?? Date.now;
  /** Routes anyone may reach; every other one is behind the login. */
  const open = new Map<string, Handler>([
    ['GET /healthz', (x) => send(x, 200, 'text/plain; charset=utf-8', 'ok\n')],
    // Browsers ask for it on every page; a 404 would be a console error on each.
    ['GET /favicon.ico', (x) => void x.res.writeHead(204).end()],
    ['GET /portal.js', (x) => send(x, 200, 'text/javascript; charset=utf-8', PORTAL_SCRIPT)],
    ['GET /login', (x) => (authorized(x) ? redirect(x, '/') : html(x, 200, loginPage()))],
    ['POST /login', login],
    ['POST /logout', logout],
  ]);
  const locked = new Map<string, Handler>([
    ['GET /', home],
    ['GET /api/status', (x) => json(x, 200, o.status())],
    ['GET /api/nodes', (x) => json(x, 200, o.status().nodes)],
    ['GET /metrics', (x) => send(x, 200, 'text/plain; version=0.0.4; charset=utf-8', metrics(o.status(), o.counters, o.camera?.counters))],
  ]);
  const camera = o.camera;
  if (camera) {
    // The portal on the well-known port shows each node's picture from that node's own port:
    // another origin, and for Chrome's resource policy not the same site either (an IP address
    // has no registrable domain). What guards the picture is the login; the session cookie is
    // SameSite=Lax, so another site's page embedding it gets the 401.
    locked.set('GET /camera.jpg', (x) => {
      x.res.setHeader('cross-origin-resource-policy', 'cross-origin');
      return serveSnapshot(camera.http, camera.counters, x.req, x.res);
    });
    locked.set('GET /camera.mjpg', (x) => {
      x.res.setHeader('cross-origin-resource-policy', 'cross-origin');
      serveStream(camera.http, camera.counters, x.req, x.res);
    });
  }
  const acmeBundle = o.acmeBundle;

  return (req, res) => {
    o.counters.requests++;
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const x = exchange(req, res);
    if (x === undefined) return json({ req, res, method: '', path: '', from: '' }, 400, { error: 'bad request' });
    Promise.resolve(route(x)).catch((err: unknown) => {
      // Never a stack or a version: the page is on the internet.
      o.logger.error('request failed', { path: x.path, error: err });
      if (!res.headersSent) json(x, 500, { error: 'internal error' });
      else res.destroy();
    });
  };

  function route(x: Exchange): void | Promise<void> {
    const key = `${x.method} ${x.path}`;
    // A browser names the page a POST comes from: another site's form posting to /logout or
    // /login (cross-site request forgery) is refused. Scripts send no Origin and are let through.
    if (x.method === 'POST' && !sameOrigin(x.req.headers.origin, x.req.headers.host)) return json(x, 403, { error: 'cross-site request refused' });
    const free = open.get(key);
    if (free) return free(x);
    // Not behind the login: the seal, made with the fleet secret, is the authentication. Not for
    // the internet either: from a WAN address the request goes on to the login like any other.
    if (acmeBundle && key === `POST ${BUNDLE_PATH}` && o.isLan(x.from)) return bundle(x, acmeBundle);
    if (!gate(x)) return;
    const h = locked.get(key);
    if (h) return h(x);
    json(x, 404, { error: 'not found' });
  }

  /** Everything behind it shows a node, an address or a picture. False: answered (401, 429). */
  function gate(x: Exchange): boolean {
    // Taken before the check, which may itself start the wait (a fifth wrong password is a 401).
    const wait = basicAuthPassword(x.req.headers.authorization) === undefined ? 0 : o.throttle.waitMs(x.from);
    if (authorized(x)) return true;
    if (wait > 0) {
      // Basic auth from an address that must wait: told so, as the form is, not a bare 401.
      o.counters.loginsThrottled++;
      x.res.setHeader('retry-after', String(Math.ceil(wait / 1000)));
      json(x, 429, { error: 'too many wrong passwords: wait' });
      return false;
    }
    o.counters.unauthorized++;
    if (x.method === 'GET' && x.path === '/' && (x.req.headers.accept ?? '').includes('text/html')) {
      html(x, 401, loginPage());
      return false;
    }
    x.res.setHeader('www-authenticate', 'Basic realm="frontdoor", charset="UTF-8"');
    json(x, 401, { error: 'login required' });
    return false;
  }

  function authorized(x: Exchange): boolean {
    if (verifySession(o.credentials.sessionKey, cookieValue(x.req.headers.cookie, SESSION_COOKIE), now())) return true;
    const basic = basicAuthPassword(x.req.headers.authorization);
    if (basic !== undefined) {
      if (o.throttle.waitMs(x.from) > 0) return false;
      if (passwordMatches(basic, o.credentials.password)) return true;
      wrongPassword(x.from);
      return false;
    }
    // A DNS name the browser reached us by could be anyone's, rebound to this LAN address: with
    // --lan-open (and --tls off) a page on it would read the node without a login. Addresses only.
    return o.lanOpen && o.isLan(x.from) && hostIsAddress(x.req.headers.host ?? '');
  }

  /** One log line when an address's network gets slowed down, or the minute's budget is spent; not one per guess. */
  function wrongPassword(from: string): void {
    o.counters.loginFailures++;
    const change = o.throttle.failed(from);
    if (change === 'address-blocked') o.logger.warn('wrong portal passwords: slowing down logins from this network', { from, network: networkOf(from) });
    else if (change === 'budget-spent') o.logger.warn('too many wrong portal passwords this minute from everywhere: every login waits until the minute is over');
  }

  async function login(x: Exchange): Promise<void> {
    const raw = await readBody(x, LOGIN_BODY_LIMIT);
    if (raw === undefined) return;
    const wait = o.throttle.waitMs(x.from);
    if (wait > 0) {
      o.counters.loginsThrottled++;
      const s = Math.ceil(wait / 1000);
      x.res.setHeader('retry-after', String(s));
      html(x, 429, loginPage({ waitSeconds: s }));
      return;
    }
    // Another type of body is no form: an empty one, so a wrong password.
    const isForm = (x.req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
    const form = isForm ? parseForm(raw.toString('utf8'), LOGIN_FIELDS_LIMIT) : new Map<string, string>();
    if (form === undefined) return json(x, 413, { error: 'request too large' });
    const given = form.get('password') ?? '';
    if (!passwordMatches(given, o.credentials.password)) {
      wrongPassword(x.from);
      html(x, 401, loginPage({ failed: true }));
      return;
    }
    o.throttle.succeeded(x.from);
    // Over TLS the cookie never goes out in the clear (the plain port only redirects).
    const secure = (x.req.socket as { encrypted?: boolean }).encrypted === true;
    const value = signSession(o.credentials.sessionKey, now());
    const expires = new Date(now() + SESSION_TTL_MS).toUTCString();
    x.res.setHeader(
      'set-cookie',
      `${SESSION_COOKIE}=${value}; Max-Age=${Math.floor(SESSION_TTL_MS / 1000)}; Path=/; Expires=${expires}; HttpOnly${secure ? '; Secure' : ''}; SameSite=Lax`,
    );
    redirect(x, '/');
  }

  function logout(x: Exchange): void {
    x.res.setHeader('set-cookie', `${SESSION_COOKIE}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT`);
    redirect(x, '/login');
  }

  async function bundle(x: Exchange, accept: NonNullable<PortalAppOptions['acmeBundle']>): Promise<void> {
    if (Number(x.req.headers['content-length'] ?? 0) <= 0) return json(x, 400, { error: 'bad request' });
    const body = await readBody(x, MAX_BUNDLE_BYTES);
    if (body === undefined) return;
    const a = await accept(body, x.from);
    if (a.status === 204) x.res.writeHead(204).end();
    else json(x, a.status, { error: a.message });
  }

  function home(x: Exchange): void {
    const s = o.status();
    if (o.which === 'node') {
      html(x, 200, nodePage(s, { passwordNote: o.passwordHint }));
      return;
    }
    // Thumbnails come from each node's own port: the WAN links for a visitor from outside,
    // the LAN links for one who opened the portal by its LAN address.
    const viaWan = s.wanAddress !== null && hostOf(x.req.headers.host ?? '') === s.wanAddress;
    const thumbnails = viaWan ? 'wan' : 'lan';
    const origins = thumbnailOrigins(s, thumbnails);
    if (origins.length > 0) x.res.setHeader('content-security-policy', cspWithImages(origins));
    html(x, 200, portalPage(s, { thumbnails, passwordNote: o.passwordHint }));
  }
}

/** HEAD is GET without the body, as every route answers it. Undefined: not a request line we serve. */
function exchange(req: IncomingMessage, res: ServerResponse): Exchange | undefined {
  const url = req.url ?? '';
  if (!url.startsWith('/')) return undefined;
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  // One trailing slash is the same route, as Express took it.
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');
  return { req, res, method, path, from: req.socket.remoteAddress ?? 'unknown' };
}

function send(x: Exchange, status: number, type: string, body: string | Buffer): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  x.res.writeHead(status, { 'content-type': type, 'content-length': buf.length });
  x.res.end(x.req.method === 'HEAD' ? undefined : buf);
}

function html(x: Exchange, status: number, page: string): void {
  send(x, status, 'text/html; charset=utf-8', page);
}

function json(x: Exchange, status: number, value: unknown): void {
  send(x, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function redirect(x: Exchange, to: string): void {
  x.res.setHeader('location', to);
  send(x, 303, 'text/plain; charset=utf-8', `See Other. Redirecting to ${to}`);
}

/**
 * The body, up to `limit` bytes. A body announced over the limit is answered 413 before a byte
 * of it is read (found by test/attack: reading first held the answer as long as the client
 * liked); the rest is then read and thrown away by Node, within the 10 s request timeout, since
 * closing at once would reset the connection under a client still sending and lose the 413.
 * Undefined: answered already.
 */
async function readBody(x: Exchange, limit: number): Promise<Buffer | undefined> {
  if (Number(x.req.headers['content-length'] ?? 0) > limit) {
    json(x, 413, { error: 'request too large' });
    x.req.resume();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of x.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        json(x, 413, { error: 'request too large' });
        x.req.resume();
        return undefined;
      }
      chunks.push(chunk);
    }
  } catch {
    // The client went away mid-body: nobody to answer.
    x.res.destroy();
    return undefined;
  }
  return Buffer.concat(chunks);
}

/**
 * application/x-www-form-urlencoded, at most `maxFields` fields (the first value of a name
 * wins; a bad percent-escape is taken as written). Undefined: more fields than that.
 */
export function parseForm(text: string, maxFields: number): Map<string, string> | undefined {
  const out = new Map<string, string>();
  if (text === '') return out;
  const parts = text.split('&');
  if (parts.length > maxFields) return undefined;
  for (const part of parts) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    const name = formDecode(rawName);
    if (!out.has(name)) out.set(name, formDecode(rawValue));
  }
  return out;
}

function formDecode(s: string): string {
  const spaced = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

/** True without an Origin (a script, an old browser) or with one whose host:port is the request's Host; `null` is not. */
function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === (host ?? '').trim().toLowerCase();
  } catch {
    return false;
  }
}

function hostIsAddress(hostHeader: string): boolean {
  const h = hostOf(hostHeader);
  return isIP(h) !== 0 || h.toLowerCase() === 'localhost';
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
