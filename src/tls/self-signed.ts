import { createECDH, createPrivateKey, createHash, generateKeyPairSync, hkdfSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { bits, explicit, implicit, octets, oid, seq, set, uint, utcTime, utf8 } from './der.js';
import { privateScalar, signDeterministic } from './p256.js';

/**
 * The certificates a fleet makes itself when the user has none: ECDSA P-256, self-signed.
 *
 * - With a fleet secret, every node derives the same key from it and signs deterministically,
 *   so every node serves byte for byte the same certificate: a browser's exception, made once,
 *   holds for the whole fleet (browsers key it on the host and the certificate, not the port).
 * - Without one, a node makes its own, random, kept in its data directory.
 *
 * The name is fixed ("frontdoor"), not the WAN address: the address may change, and a browser
 * warns about a self-signed certificate whatever name it carries.
 */

export interface CertificatePem {
  key: string;
  cert: string;
}

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const PRIME256V1 = '1.2.840.10045.3.1.7';
const COMMON_NAME = '2.5.4.3';
const ORGANIZATION = '2.5.4.10';
const SUBJECT_ALT_NAME = '2.5.29.17';
const EXT_KEY_USAGE = '2.5.29.37';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

export const CERT_NAME = 'frontdoor';
/** Long enough never to need renewal on a device; UTCTime holds it (before 2050). */
const NOT_BEFORE = new Date(Date.UTC(2025, 0, 1));
const NOT_AFTER = new Date(Date.UTC(2045, 0, 1));

function tbsCertificate(serial: Buffer, publicPoint: Buffer, org: string): Buffer {
  const name = seq(set(seq(oid(ORGANIZATION), utf8(org))), set(seq(oid(COMMON_NAME), utf8(CERT_NAME))));
  const spki = seq(seq(oid(EC_PUBLIC_KEY), oid(PRIME256V1)), bits(publicPoint));
  const extensions = seq(
    seq(oid(SUBJECT_ALT_NAME), octets(seq(implicit(2, Buffer.from(CERT_NAME, 'ascii'))))),
    seq(oid(EXT_KEY_USAGE), octets(seq(oid(SERVER_AUTH)))),
  );
  return seq(explicit(0, uint(Buffer.from([2]))), uint(serial), seq(oid(ECDSA_SHA256)), name, seq(utcTime(NOT_BEFORE), utcTime(NOT_AFTER)), name, spki, explicit(3, extensions));
}

function certificate(tbs: Buffer, signature: Buffer): string {
  const der = seq(tbs, seq(oid(ECDSA_SHA256)), bits(signature));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

/** Checks what we made with Node's own X.509 parser: the signature and the key pair. */
function checked(cert: string, key: KeyObject): CertificatePem {
  const x = new X509Certificate(cert);
  if (!x.verify(x.publicKey)) throw new Error('made a certificate whose signature does not verify');
  if (!x.checkPrivateKey(key)) throw new Error('made a certificate that does not match its key');
  return { cert, key: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

const b64url = (b: Buffer) => b.toString('base64url');

/** The fleet's certificate: a pure function of the secret. */
export function fleetCertificate(secret: string): CertificatePem {
  if (secret === '') throw new RangeError('a fleet certificate needs the fleet secret');
  const derive = (info: string, n: number) => Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'frontdoor tls', info, n));
  const dBytes = privateScalar(derive('fleet certificate key', 48));
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(dBytes);
  const point = ecdh.getPublicKey();
  const key = createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: b64url(dBytes), x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) },
    format: 'jwk',
  });
  const serial = derive('fleet certificate serial', 16);
  serial[0] = (serial[0] as number) & 0x7f;
  // The organisation names the fleet without giving the secret away: a hash of a hash of it.
  const tag = createHash('sha256').update(derive('fleet certificate name', 32)).digest('hex').slice(0, 8);
  const tbs = tbsCertificate(serial, point, `frontdoor fleet ${tag}`);
  const { r, s } = signDeterministic(dBytes, tbs);
  return checked(certificate(tbs, seq(uint(r), uint(s))), key);
}

/** A node's own certificate when there is no fleet secret: random, kept by the caller. */
export function nodeCertificate(): CertificatePem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const tbs = tbsCertificate(serial, point, 'frontdoor node');
  return checked(certificate(tbs, sign('sha256', tbs, privateKey)), privateKey);
}
