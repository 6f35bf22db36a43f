import assert from 'node:assert/strict';
import { createECDH, createPublicKey, verify, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { oid, seq, uint } from '../../src/tls/der.js';
import { N, privateScalar, signDeterministic } from '../../src/tls/p256.js';
import { CERT_NAME, fleetCertificate, nodeCertificate } from '../../src/tls/self-signed.js';

const hex = (b: Buffer) => b.toString('hex').toUpperCase();
const int = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex')}`);

describe('P-256 with deterministic nonces (RFC 6979)', () => {
  // RFC 6979 appendix A.2.5: P-256, SHA-256, messages "sample" and "test".
  const d = Buffer.from('C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721', 'hex');

  it('gives the RFC\'s signature for its test key and message, s not normalised to below n/2', () => {
    const { r, s } = signDeterministic(d, Buffer.from('sample'));
    assert.equal(hex(r), 'EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716');
    assert.equal(hex(s), 'F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8');
    assert.ok(int(s) > N / 2n, 'this s is the high one of the pair s, n - s');
    const t = signDeterministic(d, Buffer.from('test'));
    assert.equal(hex(t.r), 'F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367');
    assert.equal(hex(t.s), '019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083');
  });

  it('the private scalar is the seed mod n-1, plus one, and OpenSSL verifies every signature', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 48, maxLength: 64 }), fc.uint8Array({ maxLength: 200 }), (seed, msg) => {
        const k = privateScalar(seed);
        assert.equal(k.length, 32);
        assert.equal(int(k), (int(seed) % (N - 1n)) + 1n);
        const ecdh = createECDH('prime256v1');
        ecdh.setPrivateKey(k);
        const pub = ecdh.getPublicKey();
        const { r, s } = signDeterministic(k, Buffer.from(msg));
        const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') }, format: 'jwk' });
        assert.ok(verify('sha256', Buffer.from(msg), key, seq(uint(r), uint(s))));
      }),
      { numRuns: 25 },
    );
  });

  it('DER object identifiers encode as X.690 says', () => {
    assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
  });
});

const FIXTURES = new URL('../../../test/tls/fixtures/', import.meta.url);

/** The fleet certificates (key PEM, then certificate PEM) that the nodes of a fleet already serve. */
const served = [
  { file: 'fleet-cert-one.pem', secret: 'fleet secret one' },
  { file: 'fleet-cert-two.pem', secret: 'fleet secret two' },
  { file: 'fleet-cert-s3cret.pem', secret: 's3cret' },
];

/** One DER element at `at`: where its content starts and where it ends (short or long length form). */
function element(der: Buffer, at: number): { content: number; end: number } {
  const first = der[at + 1] as number;
  if (first < 0x80) return { content: at + 2, end: at + 2 + first };
  const n = first & 0x7f;
  const length = der.subarray(at + 2, at + 2 + n).reduce((acc, b) => acc * 256 + b, 0);
  return { content: at + 2 + n, end: at + 2 + n + length };
}

/** r and s of a certificate's signature: the BIT STRING after the TBS and the algorithm. */
function signatureOf(cert: string): { r: bigint; s: bigint } {
  const der = new X509Certificate(cert).raw;
  const outer = element(der, 0);
  const algorithm = element(der, element(der, outer.content).end);
  const bitString = element(der, algorithm.end);
  const pair = element(der, bitString.content + 1);
  const r = element(der, pair.content);
  const s = element(der, r.end);
  const int = (e: { content: number; end: number }) => BigInt(`0x${der.subarray(e.content, e.end).toString('hex')}`);
  return { r: int(r), s: int(s) };
}

describe('the fleet certificate a fleet already serves', () => {
  // A browser's exception is for these bytes: a node that made other ones, after an upgrade,
  // would be a new certificate to every user of the fleet.
  for (const { file, secret } of served) {
    it(`is made again byte for byte (${file})`, () => {
      const { key, cert } = fleetCertificate(secret);
      assert.equal(key + cert, readFileSync(new URL(file, FIXTURES), 'utf8'));
    });
  }

  it('the fixtures hold a signature with a high s and one with a low s, so both are pinned', () => {
    const high = served.map(({ file }) => signatureOf(readFileSync(new URL(file, FIXTURES), 'utf8')).s > N / 2n);
    assert.ok(high.includes(true), 'a signature whose s is above n/2: the signer must not normalise it');
    assert.ok(high.includes(false));
  });
});

describe('self-made certificates', () => {
  it('the fleet certificate is the same bytes from the same secret, and another from another', () => {
    const a = fleetCertificate('fleet secret one');
    const b = fleetCertificate('fleet secret one');
    const c = fleetCertificate('fleet secret two');
    assert.equal(a.cert, b.cert, 'every node of the fleet serves the very same certificate');
    assert.equal(a.key, b.key);
    assert.notEqual(a.cert, c.cert);
    const x = new X509Certificate(a.cert);
    assert.ok(x.verify(x.publicKey), 'self-signed: its signature verifies with its own key');
    assert.equal(x.subjectAltName, `DNS:${CERT_NAME}`);
    assert.match(x.subject, /CN=frontdoor/);
    assert.ok(!x.subject.includes('fleet secret one'), 'the secret is not in it');
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(Date.parse(x.validTo) > Date.parse('2044-01-01'));
    assert.equal(x.keyUsage?.includes('1.3.6.1.5.5.7.3.1'), true, 'for servers');
  });

  it('a node\'s own certificate is fresh each time and valid', () => {
    const a = nodeCertificate();
    const b = nodeCertificate();
    assert.notEqual(a.cert, b.cert);
    const x = new X509Certificate(a.cert);
    assert.ok(x.verify(x.publicKey));
  });
});
