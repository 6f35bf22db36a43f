/**
 * One server of the portal bench, in its own process so the load generator never shares its
 * event loop. argv: `portal` (createPortalApp, which = 'portal', served by NodeHttpServer as a
 * representative serves it) or `bare` (node:http answering the same bytes, rendered once at
 * start: the reference). On 127.0.0.1 only.
 *
 * IPC: first message {ready, port, cookie, rss, heapUsed, pageBytes, nodesBytes}; then answers
 * {cmd: 'stats'} with {stats: {rss, heapUsed, maxRss, counters}}; {cmd: 'stop'} or the parent going away
 * ends it (and a 10-minute bound, whatever happens).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SECURITY_HEADERS, createPortalApp, newCounters } from '../../src/portal/app.js';
import type { PortalCounters } from '../../src/portal/app.js';
import { LoginThrottle, SESSION_COOKIE, signSession } from '../../src/portal/auth.js';
import { NodeHttpServer } from '../../src/portal/http-server.js';
import { portalPage } from '../../src/portal/pages.js';
import { silentLogger } from '../../src/runtime/log.js';
import { BENCH_PASSWORD, benchStatus } from './fixture.js';
import { freeTcpPort } from '../../test/helpers/free-port.js';

export type ServerKind = 'portal' | 'bare';

export interface ServerReady {
  ready: true;
  port: number;
  /** `fd_session=…`, valid for a week: what a logged-in browser sends. */
  cookie: string;
  rss: number;
  heapUsed: number;
  pageBytes: number;
  nodesBytes: number;
}

export interface ServerStats {
  rss: number;
  heapUsed: number;
  /** Peak RSS of the process so far, bytes. */
  maxRss: number;
  counters: PortalCounters | null;
}

const kind = process.argv[2] as ServerKind;
if ((kind !== 'portal' && kind !== 'bare') || !process.send) {
  process.stderr.write('usage: (forked with IPC) server.js portal|bare\n');
  process.exit(2);
}
const bound = setTimeout(() => process.exit(3), 600_000);
bound.unref();


const startedAt = Date.now();
const status = () => benchStatus(startedAt, Date.now());
const sessionKey = Buffer.from('6265e6e86c0a4b6a9f1d0b5e0c2d7a11f0e0b1c2d3e4f5a6b7c8d9e0f1a2b3c4', 'hex');
const cookie = `${SESSION_COOKIE}=${signSession(sessionKey, Date.now())}`;
const page = Buffer.from(portalPage(status()), 'utf8');
const nodes = Buffer.from(JSON.stringify(status().nodes), 'utf8');

let counters: PortalCounters | null = null;
let close: () => Promise<void>;
let port: number;

if (kind === 'portal') {
  counters = newCounters();
  const app = createPortalApp({
    which: 'portal',
    status,
    credentials: { password: BENCH_PASSWORD, passwordSource: 'setting', sessionKey },
    throttle: new LoginThrottle(() => Date.now()),
    isLan: () => false,
    lanOpen: false,
    logger: silentLogger,
    counters,
    passwordHint: 'The password is the FRONTDOOR_PASSWORD of your fleet.',
  });
  // NodeHttpServer listens on a fixed port: take a free one from the kernel first (loopback,
  // nothing else races for it here).
  port = await freeTcpPort();
  const server = new NodeHttpServer({ logger: silentLogger }, { listenAddress: '127.0.0.1', httpPort: 0, portalPort: port, nodeApp: app, portalApp: app });
  await server.openPortal();
  close = () => server.close();
} else {
  // Same limits as NodeHttpServer; same bytes (body and headers) as the portal; nothing else.
  const html = { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'content-length': String(page.length) };
  const json = { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': String(nodes.length) };
  const server = createServer({ maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    if (req.url === '/') res.writeHead(200, html).end(page);
    else if (req.url === '/api/nodes') res.writeHead(200, json).end(nodes);
    else res.writeHead(404).end();
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

function stats(): ServerStats {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, maxRss: process.resourceUsage().maxRSS * 1024, counters: counters && { ...counters } };
}


process.on('message', (m: { cmd?: string }) => {
  if (m.cmd === 'stats') process.send!({ stats: stats() });
  else if (m.cmd === 'stop') void close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
const atStart = process.memoryUsage();
const ready: ServerReady = { ready: true, port, cookie, rss: atStart.rss, heapUsed: atStart.heapUsed, pageBytes: page.length, nodesBytes: nodes.length };
process.send!(ready);
