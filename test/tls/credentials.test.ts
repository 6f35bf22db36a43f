import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createLogger, silentLogger } from '../../src/runtime/log.js';
import type { Logger } from '../../src/runtime/log.js';
import { CertificateFileError, TlsCredentials } from '../../src/tls/credentials.js';
import type { TlsOptions } from '../../src/tls/credentials.js';
import { fleetCertificate, nodeCertificate } from '../../src/tls/self-signed.js';
import { DAY_MS, testCertificate } from '../helpers/test-certificate.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fd-tls-'));
  dirs.push(d);
  return d;
};
const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

/** `level msg {fields}` as the JSON logger writes the fields (an error with its name and code). */
function recordingLogger(lines: string[]): Logger {
  return createLogger({
    level: 'info',
    json: true,
    write: (line) => {
      const { level, msg, time: _time, component: _component, ...fields } = JSON.parse(line) as Record<string, unknown>;
      lines.push(level === 'info' ? `info ${msg}` : `${level} ${msg} ${JSON.stringify(fields)}`);
    },
  });
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

  it('a new key beside the old certificate (a crash between the two writes) is not served: a new pair is made and kept', async () => {
    const dir = tmp();
    const opts = { certFile: '', keyFile: '', secret: '', dataDir: dir };
    const first = await TlsCredentials.load({ logger: silentLogger }, opts);
    writeFileSync(join(dir, 'tls-key.pem'), nodeCertificate().key);
    const lines: string[] = [];
    const next = await TlsCredentials.load({ logger: recordingLogger(lines) }, opts);
    assert.notEqual(next.status().fingerprint, first.status().fingerprint);
    assert.ok(new X509Certificate(next.current.cert).checkPrivateKey(createPrivateKey(next.current.key)));
    assert.ok(lines.some((l) => l.startsWith('warn the kept TLS certificate does not match its key')), lines.join('\n'));
    assert.deepEqual(
      { cert: readFileSync(join(dir, 'tls-cert.pem'), 'utf8'), key: readFileSync(join(dir, 'tls-key.pem'), 'utf8') },
      next.current,
    );
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

describe('TLS credentials: an ACME certificate', () => {
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const T = Date.parse('2030-03-01T00:00:00Z');
  const WAN = '203.0.114.1';
  /** A CA's certificate for the WAN address, valid from a day before T until `notAfter`. */
  const acme = (notAfter: number) => testCertificate({ names: [WAN], notBefore: T - DAY_MS, notAfter });
  const load = (dataDir: string, over: Partial<TlsOptions> = {}) =>
    TlsCredentials.load({ logger: silentLogger }, { certFile: '', keyFile: '', secret: 's3cret', dataDir, now: () => T, ...over });

  it('installing one switches the certificate served, tells the listeners, and keeps it (key mode 600)', async () => {
    const dir = tmp();
    const c = await load(dir);
    assert.equal(c.status().source, 'fleet');
    assert.equal(c.acmeCertificate(), undefined);
    const seen: string[] = [];
    c.onChange((p) => seen.push(fp(p.cert)));
    const a = acme(T + 5 * DAY_MS);
    assert.equal(await c.installAcme(a), 'installed');
    assert.equal(c.status().source, 'acme');
    assert.equal(c.status().fingerprint, fp(a.cert));
    assert.deepEqual(c.current, { key: a.key, cert: a.cert });
    assert.deepEqual(seen, [fp(a.cert)]);
    const info = c.acmeCertificate()!;
    assert.equal(info.fingerprint, fp(a.cert));
    assert.deepEqual(info.names, [WAN]);
    assert.equal(info.notBefore, T - DAY_MS);
    assert.equal(info.notAfter, T + 5 * DAY_MS);
    assert.deepEqual(info.pem, a);
    assert.equal(readFileSync(join(dir, 'acme-cert.pem'), 'utf8'), a.cert);
    assert.equal(readFileSync(join(dir, 'acme-key.pem'), 'utf8'), a.key);
    assert.equal(statSync(join(dir, 'acme-key.pem')).mode & 0o777, 0o600);
  });

  it('the same certificate again is "same", and nothing changes or fires', async () => {
    const c = await load(tmp());
    const a = acme(T + 5 * DAY_MS);
    await c.installAcme(a);
    let fired = 0;
    c.onChange(() => fired++);
    assert.equal(await c.installAcme({ ...a }), 'same');
    assert.equal(fired, 0);
    assert.equal(c.status().fingerprint, fp(a.cert));
  });

  it('one that ends sooner, or at the same time, is "older" and changes nothing; one that ends later replaces it', async () => {
    const dir = tmp();
    const c = await load(dir);
    const a = acme(T + 5 * DAY_MS);
    await c.installAcme(a);
    let fired = 0;
    c.onChange(() => fired++);
    assert.equal(await c.installAcme(acme(T + 4 * DAY_MS)), 'older');
    assert.equal(await c.installAcme(acme(T + 5 * DAY_MS)), 'older', 'a replayed bundle of the same age does not roll back either');
    assert.equal(fired, 0);
    assert.equal(c.status().fingerprint, fp(a.cert));
    assert.equal(c.acmeCertificate()!.fingerprint, fp(a.cert));
    assert.equal(readFileSync(join(dir, 'acme-cert.pem'), 'utf8'), a.cert, 'the kept one is not overwritten');
    const b = acme(T + 6 * DAY_MS);
    assert.equal(await c.installAcme(b), 'installed');
    assert.equal(c.status().fingerprint, fp(b.cert));
    assert.equal(fired, 1);
  });

  it('one issued later replaces the held one whatever its names or lifetime (a new WAN address, a 6-day IP certificate after a 90-day name\'s); one issued earlier never does', async () => {
    const c = await load(tmp());
    const byName = testCertificate({ names: ['cams.example.net'], notBefore: T - 2 * DAY_MS, notAfter: T + 88 * DAY_MS });
    assert.equal(await c.installAcme(byName), 'installed');
    const forAddress = testCertificate({ names: [WAN], notBefore: T - DAY_MS, notAfter: T + 5 * DAY_MS });
    assert.equal(await c.installAcme(forAddress), 'installed');
    assert.equal(c.status().fingerprint, fp(forAddress.cert));
    assert.deepEqual(c.acmeCertificate()!.names, [WAN]);
    // A replayed bundle of the name's certificate, still valid and ending later: issued earlier, refused.
    assert.equal(await c.installAcme(byName), 'older');
    assert.equal(c.status().fingerprint, fp(forAddress.cert));
    const earlierOtherName = testCertificate({ names: ['old.example.net'], notBefore: T - 3 * DAY_MS, notAfter: T + 87 * DAY_MS });
    assert.equal(await c.installAcme(earlierOtherName), 'older');
  });

  it('a bad pair, an expired or a not yet valid certificate throws CertificateFileError and changes nothing', async () => {
    const dir = tmp();
    const c = await load(dir);
    const served = c.status().fingerprint;
    let fired = 0;
    c.onChange(() => fired++);
    const a = acme(T + 5 * DAY_MS);
    const other = acme(T + 5 * DAY_MS);
    const cases: Array<[string, { cert: string; key: string }, RegExp]> = [
      ['the key of another certificate', { cert: a.cert, key: other.key }, /the ACME key: is not the key of the ACME certificate/],
      ['no certificate', { cert: 'garbage', key: a.key }, /the ACME certificate: is not a PEM certificate/],
      ['no key', { cert: a.cert, key: 'garbage' }, /the ACME key: is not a PEM private key/],
      ['expired', testCertificate({ names: [WAN], notBefore: T - 7 * DAY_MS, notAfter: T - 1000 }), /the ACME certificate: expired on/],
      ['not yet valid', testCertificate({ names: [WAN], notBefore: T + 1000, notAfter: T + 6 * DAY_MS }), /the ACME certificate: is not valid before/],
    ];
    for (const [what, pem, why] of cases) {
      await assert.rejects(c.installAcme(pem), (err: unknown) => {
        assert.ok(err instanceof CertificateFileError, what);
        assert.match(err.message, why, what);
        return true;
      });
    }
    assert.equal(c.status().source, 'fleet');
    assert.equal(c.status().fingerprint, served);
    assert.equal(c.acmeCertificate(), undefined);
    assert.equal(fired, 0);
    assert.equal(existsSync(join(dir, 'acme-cert.pem')), false, 'nothing kept');
    // A bad one does not displace a good one either.
    await c.installAcme(a);
    await assert.rejects(c.installAcme({ cert: acme(T + 9 * DAY_MS).cert, key: a.key }), CertificateFileError);
    assert.equal(c.status().fingerprint, fp(a.cert));
    assert.equal(readFileSync(join(dir, 'acme-key.pem'), 'utf8'), a.key);
  });

  it('with good certificate files, the files go on being served ("files-win"), and the ACME certificate is kept', async () => {
    const dir = tmp();
    const mine = nodeCertificate();
    writeFileSync(join(dir, 'cert.pem'), mine.cert);
    writeFileSync(join(dir, 'key.pem'), mine.key);
    const c = await load(dir, { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), recheckMs: 3_600_000 });
    let fired = 0;
    c.onChange(() => fired++);
    const a = acme(T + 5 * DAY_MS);
    assert.equal(await c.installAcme(a), 'files-win');
    assert.equal(c.status().source, 'files');
    assert.equal(c.status().fingerprint, fp(mine.cert));
    assert.equal(fired, 0);
    assert.equal(c.acmeCertificate()?.fingerprint, fp(a.cert));
    assert.equal(readFileSync(join(dir, 'acme-cert.pem'), 'utf8'), a.cert);
    c.stop();
    // Bad files: the ACME certificate is better than the fleet's.
    const bad = await load(dir, { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'missing.pem'), recheckMs: 3_600_000 });
    assert.equal(bad.status().source, 'acme', 'the kept one, at start');
    const b = acme(T + 6 * DAY_MS);
    assert.equal(await bad.installAcme(b), 'installed');
    assert.equal(bad.status().fingerprint, fp(b.cert));
    assert.match(bad.status().error ?? '', /missing\.pem: cannot be read/);
    bad.stop();
  });

  it('kept across a restart: a second load on the same data directory serves it', async () => {
    const dir = tmp();
    const a = acme(T + 5 * DAY_MS);
    await (await load(dir)).installAcme(a);
    const again = await load(dir);
    assert.equal(again.status().source, 'acme');
    assert.equal(again.status().fingerprint, fp(a.cert));
    assert.deepEqual(again.acmeCertificate()?.pem, a);
    assert.equal(await again.installAcme(a), 'same');
  });

  it('a kept ACME certificate that expired while the node was off is ignored at load: the fleet\'s is served', async () => {
    const dir = tmp();
    const a = acme(T + 5 * DAY_MS);
    await (await load(dir)).installAcme(a);
    const lines: string[] = [];
    const later = await TlsCredentials.load(
      { logger: recordingLogger(lines) },
      { certFile: '', keyFile: '', secret: 's3cret', dataDir: dir, now: () => T + 5 * DAY_MS },
    );
    assert.equal(later.status().source, 'fleet');
    assert.equal(later.status().fingerprint, fp(fleetCertificate('s3cret').cert));
    assert.equal(later.acmeCertificate(), undefined);
    assert.ok(
      lines.some((l) => l.startsWith('warn not using the kept ACME certificate') && l.includes('"name":"CertificateFileError","code":"FD_TLS_FILE"') && l.includes('expired on')),
      lines.join('\n'),
    );
    // A kept pair that does not match is ignored the same way.
    writeFileSync(join(dir, 'acme-key.pem'), acme(T + 5 * DAY_MS).key);
    const mismatched = await load(dir);
    assert.equal(mismatched.status().source, 'fleet');
    assert.equal(mismatched.acmeCertificate(), undefined);
  });
});
