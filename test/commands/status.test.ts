import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { formatStatus } from '../../src/commands/status.js';
import type { NodeStatus } from '../../src/portal/status.js';
import { samplePeer, sampleStatus } from '../helpers/node-status.js';
import { cli } from '../helpers/cli.js';

const STATUS: NodeStatus = sampleStatus({
  name: 'porch',
  id: '0123456789abcdef',
  role: 'follower',
  roleSinceMs: 65_000,
  uptimeMs: 70_000,
  representative: { id: 'fedcba9876543210', name: 'garden', url: 'http://203.0.114.1:8080/' },
  ports: { local: 8081, public: 8082, wellKnown: 8080, portal: 8080 },
  router: { protocol: 'upnp-igd2', gateway: '192.168.77.1', localAddress: '192.168.77.11', error: null },
  lan: { mode: 'multicast', port: 4862, authenticated: false, dropped: 3, received: 120 },
  nodes: [
    samplePeer(1, { id: '0123456789abcdef', name: 'porch', self: true }),
    samplePeer(0, { id: 'fedcba9876543210', name: 'garden', self: false, lastSeenMsAgo: 400 }),
  ],
  events: [{ at: '2026-11-25T03:00:00.000Z', what: 'starting → follower: inquiry from fedcba9876543210' }],
});

describe('frontdoor status', () => {
  it('asks the node and says it in words; --json gives the node\'s JSON', async () => {
    const seen: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      if (req.url === '/api/status') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(STATUS));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const r = await cli(['status', '--http-port', String(port)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /porch \(id 0123456789abcdef\) is a member, for 65 s/);
      assert.match(r.stdout, /Portal\s+http:\/\/203\.0\.114\.1:8080\/\s+served by garden/);
      assert.match(r.stdout, /NOT authenticated \(set FRONTDOOR_SECRET\)/);
      assert.match(r.stdout, /\* garden\s+http:\/\/203\.0\.114\.1:8081\//);
      // Locked API: status logs in with the fleet's password and prints it for the user.
      const p = await cli(['status', '--http-port', String(port), '--password', 'pw-for-status']);
      assert.equal(seen.at(-1), `Basic ${Buffer.from('admin:pw-for-status').toString('base64')}`);
      assert.match(p.stdout, /^Password\s+pw-for-status\s+\(user admin/m);
      const j = await cli(['status', '--json', '--url', `http://127.0.0.1:${port}/api/status`]);
      assert.deepEqual(JSON.parse(j.stdout), STATUS);
      assert.match(r.stdout, /^TLS\s+off: plain HTTP/m);
    } finally {
      server.close();
    }
  });

  it('prints the certificate\'s fingerprint for the user to compare with the browser\'s, and a problem with the files', () => {
    const withTls = {
      ...STATUS,
      tls: { source: 'fleet' as const, fingerprint: 'AB:CD:EF', subject: 'O=frontdoor fleet x, CN=frontdoor', notAfter: '2045-01-01T00:00:00.000Z', error: '/data/cert.pem: expired on 2026-01-01T00:00:00.000Z', acme: null },
    };
    const text = formatStatus(withTls);
    assert.match(text, /^TLS\s+the fleet's own certificate .*SHA-256 AB:CD:EF$/m);
    assert.match(text, /problem with the certificate files: \/data\/cert\.pem: expired/);
  });

  it('run refuses bad TLS settings, naming them', async () => {
    const k = await cli(['run', '--tls-cert', '/x.pem', '--gateway', '127.0.0.1', '--address', '127.0.0.1']);
    assert.equal(k.code, 2);
    assert.match(k.stderr, /--tls-cert: needs --tls-key too/);
    const o = await cli(['run', '--tls', 'off', '--tls-cert', '/x.pem', '--tls-key', '/y.pem', '--gateway', '127.0.0.1', '--address', '127.0.0.1']);
    assert.equal(o.code, 2);
    assert.match(o.stderr, /--tls-cert: is set while --tls is off/);
    const bad = await cli(['run', '--tls', 'on']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tls: "on" is not one of auto, off/);
  });

  it('says how to fix it when no node answers', async () => {
    const r = await cli(['status', '--url', 'http://127.0.0.1:9/api/status']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the node at http:\/\/127\.0\.0\.1:9\/api\/status .*Is `frontdoor run` running/);
  });

  it('run refuses bad settings before it starts anything, naming the setting', async () => {
    const r = await cli(['run', '--lan-mode', 'unicast', '--gateway', '127.0.0.1', '--address', '127.0.0.1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--peers/);
    const p = await cli(['run', '--portal-port', '8081', '--gateway', '127.0.0.1', '--address', '127.0.0.1']);
    assert.equal(p.code, 2);
    assert.match(p.stderr, /--portal-port/);
    const l = await cli(['run', '--lease', '4s', '--gateway', '127.0.0.1', '--address', '127.0.0.1']);
    assert.equal(l.code, 2);
    assert.match(l.stderr, /--lease/);
    const d = await cli(['run', '--detection', 'none']);
    assert.equal(d.code, 2);
    assert.match(d.stderr, /--detection/);
  });
});
