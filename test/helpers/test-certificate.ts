import { X509Certificate, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { bits, explicit, implicit, octets, oid, seq, set, uint, utcTime, utf8 } from '../../src/tls/der.js';
import type { CertificatePem } from '../../src/tls/self-signed.js';

/**
 * A self-signed ECDSA P-256 certificate for any names (IPv4 addresses and DNS names) and any
 * validity, to the second: what an ACME CA hands out, as far as frontdoor looks at it. Made in
 * process with the project's DER writer, so a test states its dates exactly (this machine's
 * openssl 3.0 has no -not_before) and spends no child process on it.
 */
export function testCertificate(o: { names: string[]; notBefore: number; notAfter: number }): CertificatePem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const name = seq(set(seq(oid('2.5.4.3'), utf8(o.names[0] ?? 'test'))));
  const general = o.names.map((n) => (isIPv4(n) ? implicit(7, Buffer.from(n.split('.').map(Number))) : implicit(2, Buffer.from(n, 'ascii'))));
  const extensions = seq(seq(oid('2.5.29.17'), octets(seq(...general))), seq(oid('2.5.29.37'), octets(seq(oid('1.3.6.1.5.5.7.3.1')))));
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const spki = seq(seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), bits(point));
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(serial),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(o.notBefore)), utcTime(new Date(o.notAfter))),
    name,
    spki,
    explicit(3, extensions),
  );
  const der = seq(tbs, ecdsaSha256, bits(sign('sha256', tbs, privateKey)));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  const cert = `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
  const x = new X509Certificate(cert);
  if (!x.checkPrivateKey(privateKey) || !x.verify(publicKey)) throw new Error('made a test certificate that does not check');
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

export const DAY_MS = 86_400_000;
