import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, describe, it } from 'node:test';
import { NodeHttpServer } from '../../src/portal/http-server.js';
import type { TlsCertificates } from '../../src/portal/http-server.js';
import { silentLogger } from '../../src/runtime/log.js';
import type { CertificatePem } from '../../src/tls/self-signed.js';
import { fleetCertificate, nodeCertificate } from '../../src/tls/self-signed.js';
import { freeTcpPort } from '../helpers/free-port.js';

/** A certificate source the test swaps by hand, as the files' recheck would. */
class Swappable implements TlsCertificates {
  current: CertificatePem;
  private readonly ls = new Set<(c: CertificatePem) => void>();
  constructor(c: CertificatePem) {
    this.current = c;
  }
  onChange(l: (c: CertificatePem) => void) {
    this.ls.add(l);
    return () => this.ls.delete(l);
  }
  swap(c: CertificatePem) {
    this.current = c;
    for (const l of this.ls) l(c);
  }
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  fingerprint?: string;
}

function get(url: string, opts: { host?: string } = {}): Promise<Answer> {
  const u = new URL(url);
  const req = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(url, { rejectUnauthorized: false, agent: false, headers: opts.host ? { host: opts.host } : {} } as never, (res) => {
      let body = '';
      const peer = (res.socket as { getPeerX509Certificate?: () => X509Certificate | undefined }).getPeerX509Certificate?.();
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ...(peer ? { fingerprint: peer.fingerprint256 } : {}) });
      });
    });
    r.on('error', reject);
    r.end();
  });
}

const fp = (c: CertificatePem) => new X509Certificate(c.cert).fingerprint256;

/** One request as raw bytes over plain TCP, the whole answer as text. */
function plainExchange(base: string, request: string): Promise<string> {
  const [host, port] = base.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), host, () => sock.write(request));
    let got = '';
    sock.on('data', (c: Buffer) => {
      got += c.toString();
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
  });
}


describe('node HTTP server with TLS: both protocols on one port', () => {
  const servers: NodeHttpServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  async function start(tls: TlsCertificates, plainAllowed: (a: string | undefined) => boolean) {
    const port = await freeTcpPort();
    const s = new NodeHttpServer(
      { logger: silentLogger },
      {
        listenAddress: '127.0.0.1',
        httpPort: port,
        portalPort: port + 1,
        nodeApp: (req, res) => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`app ${req.url} ${(req.socket as { encrypted?: boolean }).encrypted ? 'tls' : 'plain'}`);
        },
        portalApp: (_req, res) => res.end('portal'),
        tls,
        plainAllowed,
      },
    );
    servers.push(s);
    await s.listenNodePage();
    return { s, base: `127.0.0.1:${port}` };
  }

  it('TLS gets the application with the certificate; plain HTTP from outside gets only a redirect to the same port', async () => {
    const cert = fleetCertificate('tls test fleet');
    const { base } = await start(new Swappable(cert), () => false);
    const tls = await get(`https://${base}/api/status?x=1`);
    assert.equal(tls.status, 200);
    assert.equal(tls.body, 'app /api/status?x=1 tls');
    assert.equal(tls.fingerprint, fp(cert));
    const plain = await get(`http://${base}/api/status?x=1`, { host: '203.0.113.9:8081' });
    assert.equal(plain.status, 308);
    assert.equal(plain.headers.location, 'https://203.0.113.9:8081/api/status?x=1');
    assert.ok(!plain.body.includes('app'), 'nothing of the application over plain HTTP');
    const health = await get(`http://${base}/healthz`);
    assert.equal(health.body, 'ok\n', '/healthz answers plain (health checks, no secret), without the application');
    // Any other method, or a password along, never reaches the application in the clear.
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const a = await plainExchange(base, `${method} /healthz HTTP/1.1\r\nHost: ${base}\r\nAuthorization: Basic ${Buffer.from('admin:guess').toString('base64')}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      assert.match(a, /^HTTP\/1\.1 308 /, `${method} /healthz: ${a.slice(0, 40)}`);
      assert.ok(!a.includes('app '), `${method} /healthz reached the application`);
    }
    for (const host of ['evil.example/x', 'a b', '<script>', 'x:99999999']) {
      const bad = await get(`http://${base}/`, { host });
      assert.equal(bad.status, 400, `Host ${JSON.stringify(host)}`);
    }
  });

  it('plain HTTP from loopback (this machine: frontdoor status, the health check) gets the application', async () => {
    const { base } = await start(new Swappable(nodeCertificate()), (a) => a === '127.0.0.1' || a === '::ffff:127.0.0.1');
    const plain = await get(`http://${base}/x`);
    assert.equal(plain.body, 'app /x plain');
  });

  it('a renewed certificate is served to new connections; an open one keeps working', async () => {
    const first = nodeCertificate();
    const second = nodeCertificate();
    const source = new Swappable(first);
    const { base } = await start(source, () => false);
    const [host, port] = base.split(':') as [string, string];
    const open = tlsConnect({ host, port: Number(port), rejectUnauthorized: false });
    await new Promise((r) => open.once('secureConnect', r));
    const ask = async (path: string) => {
      const got = new Promise<string>((resolve) => {
        let text = '';
        const onData = (c: Buffer) => {
          text += c.toString();
          if (text.includes(`app ${path} tls`)) {
            open.off('data', onData);
            resolve(text);
          }
        };
        open.on('data', onData);
      });
      open.write(`GET ${path} HTTP/1.1\r\nHost: ${base}\r\n\r\n`);
      return got;
    };
    assert.match(await ask('/1'), /^HTTP\/1\.1 200/);
    assert.equal(open.getPeerX509Certificate()?.fingerprint256, fp(first));
    source.swap(second);
    assert.match(await ask('/2'), /^HTTP\/1\.1 200/, 'the open connection still answers (a handshake is never redone)');
    const fresh = tlsConnect({ host, port: Number(port), rejectUnauthorized: false });
    await new Promise((r) => fresh.once('secureConnect', r));
    assert.equal(fresh.getPeerX509Certificate()?.fingerprint256, fp(second), 'a new connection gets the renewed one');
    fresh.destroy();
    open.destroy();
  });

  it('closing ends every connection at once: idle kept-alive TLS, a half-done handshake, one that sent nothing', async () => {
    const { s, base } = await start(new Swappable(nodeCertificate()), () => false);
    const [host, port] = base.split(':') as [string, string];
    const idle = tlsConnect({ host, port: Number(port), rejectUnauthorized: false });
    await new Promise((r) => idle.once('secureConnect', r));
    const answered = new Promise((r) => idle.once('data', r));
    idle.write(`GET / HTTP/1.1\r\nHost: ${base}\r\n\r\n`);
    await answered;
    const half = connect(Number(port), host);
    await new Promise((r) => half.once('connect', r));
    half.write(Buffer.from([0x16, 0x03, 0x01]));
    const silent = connect(Number(port), host);
    await new Promise((r) => silent.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const ends = [idle, half, silent].map((c) => new Promise((r) => c.once('close', r)));
    await s.close();
    await Promise.all(ends);
    // A representative stepping down closes its portal this way: it must not wait for browsers.
    assert.ok(Date.now() - t0 < 3000, `close took ${Date.now() - t0} ms (the handshake timeout is 5 s)`);
  });

  // The slowloris below keeps its connection alive on its own: only the server's cut ends it, so
  // the test's deadline is the check that it comes. 25 s: four times the 5-6 s it takes, and short
  // of the 35 s a connection lived with Node's default 30 s sweep (found by test/attack).
  it('headers that take longer than 5 s: 408 and the connection cut, over TLS and plain HTTP alike', { timeout: 25_000 }, async () => {
    const { base } = await start(new Swappable(nodeCertificate()), () => false);
    const [host, port] = base.split(':') as [string, string];
    const slow = async (sock: import('node:net').Socket) => {
      const t0 = Date.now();
      let got = '';
      sock.on('data', (c: Buffer) => {
        got += c.toString();
      });
      sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
      // A byte now and then, never the end of the headers: the slowloris pattern.
      const drip = setInterval(() => sock.writable && sock.write('X'), 1000);
      await new Promise((r) => sock.once('close', r));
      clearInterval(drip);
      return { got, ms: Date.now() - t0 };
    };
    const tls = tlsConnect({ host, port: Number(port), rejectUnauthorized: false });
    await new Promise((r) => tls.once('secureConnect', r));
    const plainSock = connect(Number(port), host);
    await new Promise((r) => plainSock.once('connect', r));
    const [a, b] = await Promise.all([slow(tls), slow(plainSock)]);
    for (const [what, r] of [['TLS', a], ['plain', b]] as const) {
      assert.match(r.got, /^HTTP\/1\.1 408 /, `${what}: ${JSON.stringify(r.got)}`);
      // Not before the 5 s limit (timers never fire early); how late, on a loaded machine, is no
      // test's to bound (Node sweeps its connections every second here).
      assert.ok(r.ms >= 4500, `${what}: cut after ${r.ms} ms`);
    }
  });

  it('a TLS handshake that starts and stalls is cut at the handshake timeout, whether the client stays or leaves', { timeout: 20_000 }, async () => {
    const { base } = await start(new Swappable(nodeCertificate()), () => false);
    const [host, port] = base.split(':') as [string, string];
    const stall = async (leave: boolean) => {
      const sock = connect(Number(port), host);
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      sock.write(Buffer.from([0x16, 0x03, 0x01]));
      // A client that half-closes still needs the server to close its side, or the descriptor
      // sits in CLOSE-WAIT; one that stays must not hold it for longer than the timeout.
      if (leave) sock.end();
      await new Promise((r) => sock.once('close', r));
    };
    // Each waits for the server to close the connection; the test's own timeout is the bound.
    await Promise.all([stall(false), stall(true)]);
  });

  it('closing drops connections that never sent a byte', async () => {
    const { s, base } = await start(new Swappable(nodeCertificate()), () => false);
    const [host, port] = base.split(':') as [string, string];
    const sock = connect(Number(port), host);
    await new Promise((r) => sock.once('connect', r));
    const closed = new Promise((r) => sock.once('close', r));
    await s.close();
    await closed;
  });
});
