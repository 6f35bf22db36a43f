import assert from 'node:assert/strict';
import { createECDH, createPublicKey, verify, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bigUint, oid, seq } from '../../src/tls/der.js';
import { multiplyG, signDeterministic } from '../../src/tls/p256.js';
import { CERT_NAME, fleetCertificate, nodeCertificate } from '../../src/tls/self-signed.js';

const hex = (n: bigint) => n.toString(16).padStart(64, '0').toUpperCase();

describe('P-256 with deterministic nonces (RFC 6979)', () => {
  // RFC 6979 appendix A.2.5: P-256, SHA-256, message "sample".
  const d = 0xc9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721n;

  it('gives the RFC\'s signature for its test key and message', () => {
    const { r, s } = signDeterministic(d, Buffer.from('sample'));
    assert.equal(hex(r), 'EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716');
    assert.equal(hex(s), 'F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8');
    const t = signDeterministic(d, Buffer.from('test'));
    assert.equal(hex(t.r), 'F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367');
    assert.equal(hex(t.s), '019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083');
  });

  it('the public point agrees with OpenSSL, and OpenSSL verifies every signature', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), (seed, msg) => {
        const k = (BigInt(`0x${Buffer.from(seed).toString('hex')}`) % 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550n) + 1n;
        const ecdh = createECDH('prime256v1');
        ecdh.setPrivateKey(Buffer.from(k.toString(16).padStart(64, '0'), 'hex'));
        const pub = ecdh.getPublicKey();
        const q = multiplyG(k);
        assert.equal(hex(q.x), pub.subarray(1, 33).toString('hex').toUpperCase());
        assert.equal(hex(q.y), pub.subarray(33).toString('hex').toUpperCase());
        const { r, s } = signDeterministic(k, Buffer.from(msg));
        const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') }, format: 'jwk' });
        assert.ok(verify('sha256', Buffer.from(msg), key, seq(bigUint(r), bigUint(s))));
      }),
      { numRuns: 25 },
    );
  });

  it('DER object identifiers encode as X.690 says', () => {
    assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
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
