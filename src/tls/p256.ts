import { mapHashToField } from '@noble/curves/abstract/modular.js';
import { ecdsa, weierstrass } from '@noble/curves/abstract/weierstrass.js';
import { sha256 } from '@noble/hashes/sha2.js';

/**
 * Deterministic ECDSA on P-256 with SHA-256 (RFC 6979), for one purpose: every node of a fleet
 * signs the fleet certificate itself and must get the very same bytes, so that a browser's
 * exception for the certificate, made once, holds for every node. OpenSSL's ECDSA (Node's
 * crypto.sign) picks a random nonce, so two nodes would make two certificates.
 *
 * The curve arithmetic is @noble/curves' (audited; its scalar multiplication is constant time as
 * far as JavaScript allows, which the hand-written bigint code it replaces did not try to be).
 */

// The curve built from its SEC 2 parameters rather than imported from '@noble/curves/nist.js':
// that module also builds P-384, P-521, hash-to-curve, FROST and OPRF at import, about 5 MB of an
// idle node's RSS for a signature made once at start. The fixtures pin the result byte for byte.
const p256 = ecdsa(
  weierstrass({
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    h: 1n,
    a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    Gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    Gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
  }),
  sha256,
);

/** The group order n. */
export const N: bigint = p256.Point.Fn.ORDER;

/**
 * A private scalar in [1, n-1] from at least 48 uniform bytes: the bytes as a big-endian number
 * mod n-1, plus one (FIPS 186-5 A.2.1; with 48 bytes the bias is 2^-128).
 */
export function privateScalar(seed: Uint8Array): Buffer {
  return Buffer.from(mapHashToField(seed, N));
}

/** Signs SHA-256(message) with the private scalar `d` (32 bytes, big-endian); r and s, 32 bytes each. */
export function signDeterministic(d: Uint8Array, message: Uint8Array): { r: Buffer; s: Buffer } {
  // lowS: false, because the fleet certificates already served were signed with s as RFC 6979
  // computes it (an s above n/2 half the time): normalising would make every fleet a new
  // certificate, which every browser's exception would then miss.
  const rs = Buffer.from(p256.sign(message, d, { prehash: true, lowS: false, format: 'compact' }));
  return { r: rs.subarray(0, 32), s: rs.subarray(32) };
}
