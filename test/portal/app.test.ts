import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createPortalApp, newCounters } from '../../src/portal/app.js';
import type { PortalAppOptions } from '../../src/portal/app.js';
import {
  LoginThrottle,
  networkOf,
  basicAuthPassword,
  cookieValue,
  passwordMatches,
  resolveCredentials,
  signSession,
  verifySession,
} from '../../src/portal/auth.js';
import type { NodeStatus } from '../../src/portal/status.js';
import { samplePeer, sampleStatus } from '../helpers/node-status.js';
import { silentLogger } from '../../src/runtime/log.js';

const EVIL = '<script>alert(1)</script>';

function status(): NodeStatus {
  const node = (name: string, i: number, rep: boolean) => samplePeer(i, { name, representative: rep });
  return sampleStatus({
    name: 'garden',
    representative: { id: 'id0', name: 'garden', url: 'http://203.0.114.1:8080/' },
    routerMappings: [
      { protocol: 'TCP', externalPort: 8080, internalClient: '192.168.77.10', internalPort: 8080, description: 'frontdoor representative id0', leaseSeconds: 20, frontdoor: true },
      { protocol: 'UDP', externalPort: 3074, internalClient: '192.168.77.50', internalPort: 3074, description: 'Xbox', leaseSeconds: 0, frontdoor: false },
    ],
    lan: { mode: 'multicast', port: 4862, authenticated: true, dropped: 0, received: 10 },
    nodes: [node('garden', 0, true), node('porch', 1, false), node(EVIL, 2, false)],
    events: [{ at: '2026-11-25T03:00:00.000Z', what: 'candidate → representative: router granted the port' }],
  });
}

interface Rig {
  url: string;
  server: Server;
  opts: PortalAppOptions;
}

async function serve(over: Partial<PortalAppOptions> = {}, secret = 'fleet secret'): Promise<Rig> {
  const credentials = await resolveCredentials({ password: 'right-password', secret });
  const opts: PortalAppOptions = {
    which: 'portal',
    status,
    credentials,
    throttle: new LoginThrottle(() => Date.now()),
    isLan: (a) => a === '127.0.0.1',
    lanOpen: false,
    logger: silentLogger,
    counters: newCounters(),
    passwordHint: 'The portal password is your fleet\'s FRONTDOOR_PASSWORD.',
    ...over,
  };
  const server = createServer(createPortalApp(opts));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, opts };
}

const basic = (pw: string) => ({ authorization: `Basic ${Buffer.from(`admin:${pw}`).toString('base64')}` });
const form = (pw: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: `password=${encodeURIComponent(pw)}`,
  redirect: 'manual' as const,
});

describe('portal app: locked by default', () => {
  let rig: Rig;
  before(async () => {
    rig = await serve();
  });
  after(() => rig.server.close());

  it('every route without credentials gives 401 or the login page, and no node data', async () => {
    for (const path of ['/', '/api/status', '/api/nodes', '/metrics', '/camera.jpg', '/camera.mjpg', '/nonexistent', '/../etc/passwd', '/%2e%2e/api/status']) {
      for (const accept of ['text/html', 'application/json', '*/*']) {
        const res = await fetch(`${rig.url}${path}`, { headers: { accept } });
        const body = await res.text();
        assert.equal(res.status, 401, `${path} ${accept}`);
        for (const secret of ['garden', 'porch', '192.168.77.', '203.0.114.1', 'Xbox', 'script>alert']) {
          assert.ok(!body.includes(secret), `${path} leaks ${secret}`);
        }
      }
    }
    const health = await fetch(`${rig.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    // The browser's own request: answered with nothing, so it is no console error either.
    const icon = await fetch(`${rig.url}/favicon.ico`);
    assert.equal(icon.status, 204);
    assert.equal(await icon.text(), '');
  });

  it('the page for a browser is the login form; the API asks for basic auth', async () => {
    const page = await fetch(`${rig.url}/`, { headers: { accept: 'text/html' } });
    assert.match(await page.text(), /<form id="login" method="post" action="\/login">/);
    const api = await fetch(`${rig.url}/api/status`);
    assert.match(api.headers.get('www-authenticate') ?? '', /^Basic realm="frontdoor"/);
  });

  it('the login page says nothing of the setup; the owner reads where the password comes from after login', async () => {
    for (const res of [await fetch(`${rig.url}/login`), await fetch(`${rig.url}/login`, form('wrong'))]) {
      const text = await res.text();
      assert.match(text, /<form id="login"/);
      for (const word of ['FRONTDOOR_', 'frontdoor status', 'secret', 'password is']) assert.ok(!text.includes(word), `the login page says ${word}`);
    }
    const page = await fetch(`${rig.url}/`, { headers: basic('right-password') });
    assert.match(await page.text(), /id="password-note"><small>The portal password is your fleet&#39;s FRONTDOOR_PASSWORD\.</);
  });

  it('a POST from another site (its Origin) is refused: no cross-site logout or login', async () => {
    const host = new URL(rig.url).host;
    const post = (path: string, origin: string | undefined) =>
      fetch(`${rig.url}${path}`, { ...form('right-password'), headers: { ...form('right-password').headers, ...(origin ? { origin } : {}) } });
    assert.equal((await post('/logout', 'https://evil.example')).status, 403);
    assert.equal((await post('/login', 'https://evil.example')).status, 403);
    assert.equal((await post('/login', 'null')).status, 403);
    assert.equal((await post('/logout', `http://${host}`)).status, 303);
    assert.equal((await post('/login', `http://${host}`)).status, 303);
    assert.equal((await post('/login', undefined)).status, 303, 'a script sends no Origin');
  });

  it('security headers on every answer, no version, no stack', async () => {
    for (const path of ['/', '/healthz', '/login', '/nope']) {
      const res = await fetch(`${rig.url}${path}`);
      assert.equal(res.headers.get('x-powered-by'), null);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'.*frame-ancestors 'none'/);
    }
    const big = await fetch(`${rig.url}/login`, form('x'.repeat(10_000)));
    assert.equal(big.status, 413);
    const text = await big.text();
    assert.ok(!/at |node_modules|express/i.test(text), text);
  });
});

describe('portal app: logging in', () => {
  it('a right password sets a session cookie that serves the portal, the API and another node', async () => {
    const a = await serve();
    const b = await serve({ which: 'node' });
    try {
      const res = await fetch(`${a.url}/login`, form('right-password'));
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/');
      const setCookie = res.headers.get('set-cookie') ?? '';
      assert.match(setCookie, /fd_session=v1\./);
      assert.match(setCookie, /HttpOnly/i);
      assert.match(setCookie, /SameSite=Lax/i);
      const cookie = setCookie.split(';')[0]!;
      const page = await fetch(`${a.url}/`, { headers: { cookie } });
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /class="node-name">garden</);
      assert.ok(!html.includes(EVIL), 'the markup name is escaped');
      assert.ok(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));
      assert.match(html, /Xbox/);
      // Another node of the fleet (same secret, so the same key) takes the same cookie.
      const other = await fetch(`${b.url}/api/status`, { headers: { cookie } });
      assert.equal(other.status, 200);
      const api = await fetch(`${a.url}/api/nodes`, { headers: basic('right-password') });
      assert.equal(((await api.json()) as unknown[]).length, 3);
      const metrics = await fetch(`${a.url}/metrics`, { headers: { cookie } });
      assert.match(await metrics.text(), /^frontdoor_nodes 3$/m);
    } finally {
      a.server.close();
      b.server.close();
    }
  });

  it('a node of another fleet (another secret) does not take the cookie', async () => {
    const a = await serve();
    const c = await serve({}, 'another fleet');
    try {
      const res = await fetch(`${a.url}/login`, form('right-password'));
      const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
      assert.equal((await fetch(`${c.url}/api/status`, { headers: { cookie } })).status, 401);
    } finally {
      a.server.close();
      c.server.close();
    }
  });

  it('wrong passwords are slowed down: after 5, the address waits before it is even compared', async () => {
    const rig = await serve();
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${rig.url}/login`, form('wrong'))).status, 401, `attempt ${i + 1}`);
      const sixth = await fetch(`${rig.url}/login`, form('wrong'));
      assert.equal(sixth.status, 429);
      assert.ok(Number(sixth.headers.get('retry-after')) >= 1);
      // Even the right one waits: the wait is per address, not per guess.
      assert.equal((await fetch(`${rig.url}/login`, form('right-password'))).status, 429);
      // Basic auth is the same door, and says so the same way.
      const viaBasic = await fetch(`${rig.url}/api/status`, { headers: basic('right-password') });
      assert.equal(viaBasic.status, 429);
      assert.ok(Number(viaBasic.headers.get('retry-after')) >= 1);
      assert.ok(!(await viaBasic.text()).includes('garden'));
      assert.ok(rig.opts.counters.loginsThrottled >= 2);
    } finally {
      rig.server.close();
    }
  });

  it('a login body announced over 2 KiB is refused before it is read', async () => {
    const rig = await serve();
    try {
      const { port } = rig.server.address() as AddressInfo;
      // 10 MB announced, 64 bytes sent: the answer must not wait for the rest.
      const answer = await rawExchange(
        port,
        'POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\n',
        'password=' + 'x'.repeat(55),
      );
      assert.match(answer, /^HTTP\/1\.1 413 /, 'answered within 3 s, not after the 10 MB');
    } finally {
      rig.server.close();
    }
  });

  it('--lan-open lets this LAN in without a login, and nobody else', async () => {
    const open = await serve({ lanOpen: true });
    const closed = await serve({ lanOpen: true, isLan: () => false });
    try {
      assert.equal((await fetch(`${open.url}/api/status`)).status, 200);
      assert.equal((await fetch(`${closed.url}/api/status`)).status, 401);
    } finally {
      open.server.close();
      closed.server.close();
    }
  });

  it('--lan-open: only a Host that is an address (or localhost), so a page of a rebound DNS name gets the login', async () => {
    const open = await serve({ lanOpen: true });
    const port = (open.server.address() as AddressInfo).port;
    const statusWithHost = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const r = request({ host: '127.0.0.1', port, path: '/api/status', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        r.on('error', reject);
        r.end();
      });
    try {
      for (const host of [`127.0.0.1:${port}`, '192.168.77.10', `[::1]:${port}`, `localhost:${port}`]) assert.equal(await statusWithHost(host), 200, host);
      for (const host of [`evil.example:${port}`, 'rebind.attacker.test', '127.0.0.1.nip.io']) assert.equal(await statusWithHost(host), 401, host);
    } finally {
      open.server.close();
    }
  });
});

describe('portal auth parts', () => {
  const key = Buffer.alloc(32, 7);

  it('sessions: a signed token verifies until it expires; any change breaks it', () => {
    const t = signSession(key, 1000, 60_000);
    assert.ok(verifySession(key, t, 2000));
    assert.ok(!verifySession(key, t, 61_001));
    assert.ok(!verifySession(Buffer.alloc(32, 8), t, 2000));
    fc.assert(
      fc.property(fc.nat({ max: t.length - 1 }), fc.integer({ min: 1, max: 127 }), (i, d) => {
        const c = String.fromCharCode(((t.charCodeAt(i) + d) % 94) + 33);
        const forged = t.slice(0, i) + c + t.slice(i + 1);
        return forged === t || !verifySession(key, forged, 2000);
      }),
      { numRuns: 2000 },
    );
  });

  it('session, cookie and basic-auth parsers refuse anything, never throw', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        assert.equal(verifySession(key, s, 0), false);
        cookieValue(s, 'fd_session');
        const p = basicAuthPassword(s);
        assert.ok(p === undefined || typeof p === 'string');
      }),
      { numRuns: 3000 },
    );
    assert.equal(basicAuthPassword(`Basic ${Buffer.from('admin:pw:with:colons').toString('base64')}`), 'pw:with:colons');
    assert.equal(basicAuthPassword(`Basic ${Buffer.from('root:pw').toString('base64')}`), undefined);
    assert.equal(cookieValue('a=1; fd_session=v1.x; b=2', 'fd_session'), 'v1.x');
  });

  it('passwords compare equal only when equal', () => {
    fc.assert(fc.property(fc.string(), fc.string(), (a, b) => passwordMatches(a, b) === (a === b)));
  });

  it('the throttle: five free, then a doubling wait up to a minute; a success clears it; memory bounded', () => {
    let now = 0;
    const t = new LoginThrottle(() => now, 5, 3);
    for (let i = 0; i < 4; i++) t.failed('a');
    assert.equal(t.waitMs('a'), 0);
    t.failed('a');
    assert.equal(t.waitMs('a'), 1000);
    now = 1000;
    t.failed('a');
    assert.equal(t.waitMs('a'), 2000);
    for (let i = 0; i < 20; i++) t.failed('a');
    assert.equal(t.waitMs('a'), 60_000);
    t.succeeded('a');
    assert.equal(t.waitMs('a'), 0);
    for (const x of ['b', 'c', 'd', 'e']) t.failed(x);
    assert.equal(t.tracked, 3);
  });

  it('the throttle groups by network: an IPv4 /24 (mapped ones too), an IPv6 /64', () => {
    assert.equal(networkOf('203.0.113.7'), '203.0.113.0/24');
    assert.equal(networkOf('::ffff:203.0.113.200'), '203.0.113.0/24');
    assert.equal(networkOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(networkOf('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(networkOf('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64');
    assert.equal(networkOf('::1'), '0:0:0:0::/64');
    const t = new LoginThrottle(() => 0);
    for (let i = 1; i <= 5; i++) t.failed(`198.51.100.${i}`);
    assert.equal(t.waitMs('198.51.100.77'), 1000, 'a neighbour in the /24 waits as well');
    assert.equal(t.waitMs('198.51.101.1'), 0);
    fc.assert(
      fc.property(fc.ipV6(), (a) => {
        const n = networkOf(a);
        return n.endsWith('/64') || n.endsWith('/24');
      }),
      { numRuns: 500 },
    );
  });

  it('the throttle never forgets a blocked network, and a budget for all networks holds the ones it cannot track', () => {
    let now = 0;
    const t = new LoginThrottle(() => now, 5, 100, 60);
    const changes: string[] = [];
    // 100 networks, 5 wrong passwords each: the budget (60 a minute) is spent at the 60th, said once.
    for (let n = 0; n < 100; n++) for (let i = 0; i < 5; i++) changes.push(t.failed(`10.${n}.0.1`));
    assert.equal(changes.filter((c) => c === 'budget-spent').length, 1);
    assert.equal(changes.filter((c) => c === 'address-blocked').length, 11, 'one line per network blocked before the budget was spent, none after');
    assert.ok(t.waitMs('192.0.2.1') > 0, 'the budget is spent: everyone waits');
    now = 60_000;
    assert.equal(t.waitMs('192.0.2.1'), 0, 'a new minute, a new budget');
    // A table full of blocked networks keeps them all; a newcomer goes untracked (the budget holds it).
    const u = new LoginThrottle(() => now, 5, 3, 1_000_000);
    now = 0;
    for (const a of ['10.1.0.1', '10.2.0.1', '10.3.0.1']) for (let i = 0; i < 5; i++) u.failed(a);
    now = 100;
    u.failed('10.4.0.1');
    assert.equal(u.tracked, 3);
    for (const a of ['10.1.0.1', '10.2.0.1', '10.3.0.1']) assert.ok(u.waitMs(a) > 0, `${a} still blocked`);
    // Once their waits are over they may be forgotten, the least recently seen first.
    now = 5000;
    u.failed('10.5.0.1');
    assert.equal(u.tracked, 3);
    u.failed('10.1.0.2');
    assert.equal(u.waitMs('10.1.0.2'), 0, '10.1.0.0/24 was forgotten: a first wrong password again');
  });

  it('an attack from 20 000 networks, 20 guesses each, gets at most the budget compared per minute', () => {
    let now = 0;
    const t = new LoginThrottle(() => now);
    let compared = 0;
    for (let round = 0; round < 20; round++) {
      for (let n = 0; n < 20_000; n++) {
        const a = `${(n >> 8) & 255}.${n & 255}.${round}.9`;
        if (t.waitMs(a) > 0) continue;
        compared++;
        t.failed(a);
      }
      now += 1000; // 400 000 guesses over 20 s
    }
    assert.ok(compared <= 60, `${compared} guesses compared in 20 s`);
    assert.ok(t.tracked <= 10_000);
  });

  it('a new password ends every session: the session key depends on it, the same on every node', async () => {
    const a = await resolveCredentials({ password: 'one', secret: 'fleet secret' });
    const b = await resolveCredentials({ password: 'one', secret: 'fleet secret' });
    const c = await resolveCredentials({ password: 'two', secret: 'fleet secret' });
    assert.deepEqual(a.sessionKey, b.sessionKey);
    assert.notDeepEqual(a.sessionKey, c.sessionKey);
    const token = signSession(a.sessionKey, 1000);
    assert.equal(verifySession(b.sessionKey, token, 2000), true);
    assert.equal(verifySession(c.sessionKey, token, 2000), false);
  });

  it('credentials: the setting wins; else every node derives the same from the fleet secret', async () => {
    const a = await resolveCredentials({ password: '', secret: 's' });
    const b = await resolveCredentials({ password: '', secret: 's' });
    assert.equal(a.password, b.password);
    assert.equal(a.passwordSource, 'fleet-secret');
    assert.deepEqual(a.sessionKey, b.sessionKey);
    assert.match(a.password, /^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
    const c = await resolveCredentials({ password: 'mine', secret: 's' });
    assert.equal(c.password, 'mine');
    assert.equal(c.passwordSource, 'setting');
  });

  it('credentials: a data directory that cannot be written costs the kept password, never the start', async () => {
    // A file where the directory should be: mkdir fails as on a read-only or full disk.
    const blocked = join(mkdtempSync(join(tmpdir(), 'fd-cred-')), 'not-a-directory');
    writeFileSync(blocked, 'x');
    const c = await resolveCredentials({ password: '', secret: '', dataDir: blocked });
    assert.equal(c.passwordSource, 'generated');
    assert.match(c.password, /^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
    assert.equal(c.sessionKey.length, 32);
    assert.match(c.notKept ?? '', /not-a-directory\/session-key: (EEXIST|ENOTDIR)/);
    const ok = await resolveCredentials({ password: '', secret: '', dataDir: join(blocked, '..', 'fine') });
    assert.equal(ok.notKept, undefined);
    const again = await resolveCredentials({ password: '', secret: '', dataDir: join(blocked, '..', 'fine') });
    assert.equal(again.password, ok.password, 'a writable directory keeps it');
    assert.equal(again.passwordSource, 'data-dir');
  });
});

/** fetch may not set Host; node:http may, as a browser reaching the portal by another name does. */
function getWithHost(url: string, host: string): Promise<{ csp: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { ...basic('right-password'), host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ csp: String(res.headers['content-security-policy'] ?? ''), body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('portal app: camera thumbnails', () => {
  it('the portal page allows images from exactly the camera nodes\' origins, as the visitor reaches them', async () => {
    const withCamera = (): NodeStatus => {
      const s = status();
      s.nodes = s.nodes.map((n, i) => ({ ...n, camera: i === 1 }));
      return s;
    };
    const rig = await serve({ status: withCamera });
    try {
      // From the internet: the Host is the WAN address, thumbnails come from the WAN link.
      const wan = await getWithHost(`${rig.url}/`, '203.0.114.1:8080');
      assert.match(wan.csp, /img-src 'self' data: http:\/\/203\.0\.114\.1:8082;/);
      assert.equal(wan.body.match(/<img class="thumb"/g)?.length, 1);
      assert.ok(wan.body.includes('src="http://203.0.114.1:8082/camera.jpg"'));
      // From the LAN (the portal opened by its LAN address): the LAN link.
      const lan = await getWithHost(`${rig.url}/`, '192.168.77.10:8080');
      assert.match(lan.csp, /img-src 'self' data: http:\/\/192\.168\.77\.11:8081;/);
      assert.ok(lan.body.includes('src="http://192.168.77.11:8081/camera.jpg"'));
      // A node without a camera: no /camera.* routes at all, and the usual policy.
      const none = await fetch(`${rig.url}/camera.jpg`, { headers: basic('right-password') });
      assert.equal(none.status, 404);
    } finally {
      rig.server.close();
    }
    const plain = await serve();
    try {
      const res = await fetch(`${plain.url}/`, { headers: basic('right-password') });
      assert.match(res.headers.get('content-security-policy') ?? '', /img-src 'self' data:;/);
    } finally {
      plain.server.close();
    }
  });
});

/** One request written by hand (a length fetch would not announce, or chunks); the head of the answer, within 3 s. */
function rawExchange(port: number, head: string, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(head);
      if (body !== '') sock.write(body);
    });
    let got = '';
    sock.on('data', (c) => {
      got += c.toString();
      if (got.includes('\r\n\r\n')) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
    setTimeout(() => {
      sock.destroy();
      resolve(got);
    }, 3000).unref();
  });
}

describe('portal app: the ACME bundle route', () => {
  const PATH = '/api/tls/acme';

  /** The receiver: records what reaches it and answers what the test says. */
  function receiver(answer: { status: number; message: string } | Error = { status: 204, message: 'installed' }) {
    const calls: Array<{ body: Buffer; from: string }> = [];
    const r = {
      calls,
      answer,
      acmeBundle: async (body: Buffer, from: string) => {
        calls.push({ body: Buffer.from(body), from });
        if (r.answer instanceof Error) throw r.answer;
        return r.answer;
      },
    };
    return r;
  }
  const post = (url: string, body: Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body });

  it('from the LAN, the body reaches the receiver without a login, and its answer is returned', async () => {
    const rx = receiver();
    const rig = await serve({ acmeBundle: rx.acmeBundle });
    try {
      const body = Buffer.from(Array.from({ length: 900 }, (_, i) => (i * 37) & 0xff));
      const ok = await post(rig.url, body);
      assert.equal(ok.status, 204);
      assert.equal(await ok.text(), '');
      assert.equal(rx.calls.length, 1);
      assert.deepEqual(rx.calls[0]!.body, body, 'the bytes as sent');
      assert.equal(rx.calls[0]!.from, '127.0.0.1');
      // Whatever the content type: the seal, not the header, says what it is.
      assert.equal((await post(rig.url, body, { 'content-type': 'text/plain' })).status, 204);
      assert.equal(rx.calls.length, 2);
      for (const [status, message] of [
        [403, "bundle not sealed with this fleet's secret, or damaged"],
        [409, 'this node holds a newer certificate'],
        [400, 'the ACME certificate: is not a PEM certificate'],
      ] as const) {
        rx.answer = { status, message };
        const res = await post(rig.url, body);
        assert.equal(res.status, status);
        assert.match(res.headers.get('content-type') ?? '', /application\/json/);
        assert.deepEqual(await res.json(), { error: message });
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', 'the usual headers');
      }
      assert.equal(rig.opts.counters.unauthorized, 0);
    } finally {
      rig.server.close();
    }
  });

  it('from an address that is not this LAN it is 401 like any locked route, and the receiver is not called', async () => {
    const rx = receiver();
    const rig = await serve({ acmeBundle: rx.acmeBundle, isLan: () => false, lanOpen: true });
    try {
      const res = await post(rig.url, Buffer.alloc(900, 1));
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="frontdoor"/);
      assert.deepEqual(await res.json(), { error: 'login required' });
      assert.equal(rig.opts.counters.unauthorized, 1);
      // Logged in from the internet: still no such route there.
      const withLogin = await post(rig.url, Buffer.alloc(900, 1), basic('right-password'));
      assert.equal(withLogin.status, 404);
      // An announced size does not change that: the size check is after the address check.
      const big = await rawExchange(
        (rig.server.address() as AddressInfo).port,
        `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n`,
        'x'.repeat(64),
      );
      assert.match(big, /^HTTP\/1\.1 401 /);
      assert.equal(rx.calls.length, 0);
    } finally {
      rig.server.close();
    }
  });

  it('a body over 64 KiB is 413 without the receiver, even announced and not sent; 64 KiB exactly is taken', async () => {
    const rx = receiver();
    const rig = await serve({ acmeBundle: rx.acmeBundle });
    try {
      const over = await post(rig.url, Buffer.alloc(64 * 1024 + 1, 7));
      assert.equal(over.status, 413);
      assert.deepEqual(await over.json(), { error: 'request too large' });
      const announced = await rawExchange(
        (rig.server.address() as AddressInfo).port,
        `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n`,
        'x'.repeat(64),
      );
      assert.match(announced, /^HTTP\/1\.1 413 /, 'answered within 3 s, not after the 10 MB');
      assert.equal(rx.calls.length, 0);
      const exact = await post(rig.url, Buffer.alloc(64 * 1024, 7));
      assert.equal(exact.status, 204);
      assert.equal(rx.calls.length, 1);
      assert.equal(rx.calls[0]!.body.length, 64 * 1024);
    } finally {
      rig.server.close();
    }
  });

  it('no body, or a body without an announced length, is 400 without the receiver', async () => {
    const rx = receiver();
    const rig = await serve({ acmeBundle: rx.acmeBundle });
    try {
      const empty = await post(rig.url, new Uint8Array(0));
      assert.equal(empty.status, 400);
      assert.deepEqual(await empty.json(), { error: 'bad request' });
      const chunked = await rawExchange(
        (rig.server.address() as AddressInfo).port,
        `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`,
        '4\r\nFDA1\r\n0\r\n\r\n',
      );
      assert.match(chunked, /^HTTP\/1\.1 400 /);
      assert.equal(rx.calls.length, 0);
    } finally {
      rig.server.close();
    }
  });

  it('a receiver that fails is a bare 500, no stack', async () => {
    const rx = receiver(new Error('disk on fire at /var/lib/frontdoor'));
    const rig = await serve({ acmeBundle: rx.acmeBundle });
    try {
      const res = await post(rig.url, Buffer.alloc(100, 1));
      assert.equal(res.status, 500);
      const text = await res.text();
      assert.deepEqual(JSON.parse(text), { error: 'internal error' });
      assert.ok(!text.includes('disk on fire'));
      assert.equal(rx.calls.length, 1);
    } finally {
      rig.server.close();
    }
  });

  it('without the option the route is like any unknown locked route: 401, and 404 once logged in', async () => {
    const rig = await serve();
    try {
      for (const path of [PATH, '/api/tls/nothing-here']) {
        const anon = await fetch(`${rig.url}${path}`, { method: 'POST', body: Buffer.alloc(900, 1) });
        assert.equal(anon.status, 401, path);
        const logged = await fetch(`${rig.url}${path}`, { method: 'POST', body: Buffer.alloc(900, 1), headers: basic('right-password') });
        assert.equal(logged.status, 404, path);
      }
    } finally {
      rig.server.close();
    }
  });
});
