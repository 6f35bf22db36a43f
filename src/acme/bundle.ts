import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { CertificatePem } from '../tls/self-signed.js';
import { AcmeBundleError } from './errors.js';

/**
 * How the representative hands its ACME certificate and key to the other nodes (docs/tls.md):
 * sealed with AES-256-GCM under a key derived from the fleet secret, so only a node of the fleet
 * can open it and a forged or damaged bundle is refused. Layout:
 *
 *   "FDA1" | nonce (12 bytes) | ciphertext | tag (16 bytes)
 *
 * The plaintext is JSON {"cert": PEM chain, "key": PEM key}.
 */

const MAGIC = Buffer.from('FDA1', 'ascii');
const NONCE = 12;
const TAG = 16;
/** A chain of four certificates and a key is under 10 KB; anything near this bound is not ours. */
export const MAX_BUNDLE_BYTES = 64 * 1024;

export function bundleKey(secret: string): Buffer {
  if (secret === '') throw new Error('a bundle key needs the fleet secret');
  return Buffer.from(hkdfSync('sha256', secret, 'frontdoor', 'acme certificate bundle v1', 32));
}

export function sealBundle(key: Buffer, pem: CertificatePem): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(MAGIC);
  const body = Buffer.concat([cipher.update(JSON.stringify({ cert: pem.cert, key: pem.key }), 'utf8'), cipher.final()]);
  return Buffer.concat([MAGIC, nonce, body, cipher.getAuthTag()]);
}

/** The certificate and key in a bundle; AcmeBundleError for anything not sealed by the fleet. */
export function openBundle(key: Buffer, data: Buffer): CertificatePem {
  if (data.length > MAX_BUNDLE_BYTES) throw new AcmeBundleError(`bundle of ${data.length} bytes is over ${MAX_BUNDLE_BYTES}`);
  if (data.length < MAGIC.length + NONCE + TAG + 2 || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new AcmeBundleError('not a frontdoor certificate bundle');
  }
  const nonce = data.subarray(MAGIC.length, MAGIC.length + NONCE);
  const body = data.subarray(MAGIC.length + NONCE, data.length - TAG);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(MAGIC);
  decipher.setAuthTag(data.subarray(data.length - TAG));
  let plain: string;
  try {
    plain = Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    throw new AcmeBundleError('bundle not sealed with this fleet\'s secret, or damaged');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(plain);
  } catch {
    throw new AcmeBundleError('bundle content is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new AcmeBundleError('bundle content is not an object');
  const cert = Object.hasOwn(parsed, 'cert') ? (parsed as { cert: unknown }).cert : undefined;
  const k = Object.hasOwn(parsed, 'key') ? (parsed as { key: unknown }).key : undefined;
  if (typeof cert !== 'string' || !cert.includes('-----BEGIN CERTIFICATE-----')) throw new AcmeBundleError('bundle has no PEM certificate');
  if (typeof k !== 'string' || !/-----BEGIN (EC |RSA )?PRIVATE KEY-----/.test(k)) throw new AcmeBundleError('bundle has no PEM private key');
  return { cert, key: k };
}
