import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { silentLogger } from '../../src/runtime/log.js';
import type { Logger } from '../../src/runtime/log.js';
import { TlsCredentials } from '../../src/tls/credentials.js';
import { fleetCertificate, nodeCertificate } from '../../src/tls/self-signed.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fd-tls-'));
  dirs.push(d);
  return d;
};
const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

function recordingLogger(lines: string[]): Logger {
  const log: Logger = {
    debug: () => {},
    info: (m) => lines.push(`info ${m}`),
    warn: (m, f) => lines.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => lines.push(`error ${m} ${JSON.stringify(f ?? {})}`),
    child: () => log,
  } as Logger;
  return log;
}

describe('TLS credentials', () => {
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('with a fleet secret: the fleet certificate, the same on every node', async () => {
    const a = await TlsCredentials.load({ logger: silentLogger }, { certFile: '', keyFile: '', secret: 's3cret', dataDir: tmp() });
    const b = await TlsCredentials.load({ logger: silentLogger }, { certFile: '', keyFile: '', secret: 's3cret', dataDir: tmp() });
    assert.equal(a.status().source, 'fleet');
    assert.equal(a.status().fingerprint, b.status().fingerprint);
    assert.equal(a.status().fingerprint, fp(fleetCertificate('s3cret').cert));
  });

  it('without one: a node certificate, made once and kept (mode 600) in the data directory', async () => {
    const dir = tmp();
    const a = await TlsCredentials.load({ logger: silentLogger }, { certFile: '', keyFile: '', secret: '', dataDir: dir });
    const b = await TlsCredentials.load({ logger: silentLogger }, { certFile: '', keyFile: '', secret: '', dataDir: dir });
    assert.equal(a.status().source, 'node');
    assert.equal(a.status().fingerprint, b.status().fingerprint, 'a restart keeps it, so a browser exception holds');
    assert.equal(statSync(join(dir, 'tls-key.pem')).mode & 0o777, 0o600);
  });

  it('an unwritable data directory: a certificate all the same, and an error saying where', async () => {
    const lines: string[] = [];
    const file = join(tmp(), 'not-a-dir');
    writeFileSync(file, 'x');
    const c = await TlsCredentials.load({ logger: recordingLogger(lines) }, { certFile: '', keyFile: '', secret: '', dataDir: file });
    assert.equal(c.status().source, 'node');
    assert.ok(lines.some((l) => l.startsWith('error cannot keep the TLS certificate') && l.includes(file)), lines.join('\n'));
  });

  it('the user\'s files win; bad ones are a clear error and the fleet certificate is served meanwhile', async () => {
    const dir = tmp();
    const mine = nodeCertificate();
    const other = nodeCertificate();
    writeFileSync(join(dir, 'cert.pem'), mine.cert);
    writeFileSync(join(dir, 'key.pem'), mine.key);
    writeFileSync(join(dir, 'other-key.pem'), other.key);
    writeFileSync(join(dir, 'garbage.pem'), 'not a certificate');
    const ok = await TlsCredentials.load({ logger: silentLogger }, { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), secret: 's', dataDir: dir, recheckMs: 3_600_000 });
    assert.equal(ok.status().source, 'files');
    assert.equal(ok.status().fingerprint, fp(mine.cert));
    assert.equal(ok.status().error, null);
    ok.stop();
    const cases: Array<[string, string, RegExp]> = [
      [join(dir, 'cert.pem'), join(dir, 'other-key.pem'), /other-key\.pem: is not the key of .*cert\.pem/],
      [join(dir, 'garbage.pem'), join(dir, 'key.pem'), /garbage\.pem: is not a PEM certificate/],
      [join(dir, 'missing.pem'), join(dir, 'key.pem'), /missing\.pem: cannot be read \(ENOENT\)/],
    ];
    for (const [certFile, keyFile, why] of cases) {
      const c = await TlsCredentials.load({ logger: silentLogger }, { certFile, keyFile, secret: 's', dataDir: dir, recheckMs: 3_600_000 });
      assert.equal(c.status().source, 'fleet', certFile);
      assert.match(c.status().error ?? '', why);
      c.stop();
    }
  });

  it('an expired certificate file is refused', async () => {
    const dir = tmp();
    const mine = nodeCertificate();
    writeFileSync(join(dir, 'cert.pem'), mine.cert);
    writeFileSync(join(dir, 'key.pem'), mine.key);
    const c = await TlsCredentials.load(
      { logger: silentLogger },
      { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), secret: 's', dataDir: dir, recheckMs: 3_600_000, now: () => Date.parse('2046-01-01') },
    );
    assert.equal(c.status().source, 'fleet');
    assert.match(c.status().error ?? '', /expired on 2045-01-01/);
    c.stop();
  });

  it('renewed files are taken without a restart; a bad renewal keeps what was served', async () => {
    const dir = tmp();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const first = nodeCertificate();
    writeFileSync(cert, first.cert);
    writeFileSync(key, first.key);
    const c = await TlsCredentials.load({ logger: silentLogger }, { certFile: cert, keyFile: key, secret: 's', dataDir: dir, recheckMs: 3_600_000 });
    const seen: string[] = [];
    c.onChange((p) => seen.push(fp(p.cert)));
    const second = nodeCertificate();
    writeFileSync(cert, second.cert);
    writeFileSync(key, second.key);
    const later = new Date(Date.now() + 5000);
    utimesSync(cert, later, later);
    await c.recheck();
    assert.deepEqual(seen, [fp(second.cert)]);
    assert.equal(c.status().fingerprint, fp(second.cert));
    // Half a renewal: a new certificate with the old key. Refused; the second is still served.
    writeFileSync(cert, nodeCertificate().cert);
    const later2 = new Date(Date.now() + 10_000);
    utimesSync(cert, later2, later2);
    await c.recheck();
    assert.equal(c.status().fingerprint, fp(second.cert));
    assert.match(c.status().error ?? '', /is not the key of/);
    assert.equal(seen.length, 1);
    assert.equal(readFileSync(key, 'utf8'), second.key);
    c.stop();
  });
});
