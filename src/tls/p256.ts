import { createHash, createHmac } from 'node:crypto';

/**
 * Deterministic ECDSA on P-256 with SHA-256 (RFC 6979), for one purpose: every node of a fleet
 * signs the fleet certificate itself and must get the very same bytes, so that a browser's
 * exception for the certificate, made once, holds for every node. OpenSSL's ECDSA (Node's
 * crypto.sign) picks a random nonce, so two nodes would make two certificates.
 *
 * Not constant time: it signs one certificate at start, on the node, from a key the fleet
 * secret derives; Node's crypto.verify checks every signature it makes (fleet-cert.ts).
 */

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
export const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const A = P - 3n;
const GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n;
const GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n;

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

function inv(a: bigint, m: bigint): bigint {
  // Extended Euclid; m is prime and a is not a multiple of it.
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

/** Jacobian coordinates; z = 0 is the point at infinity. */
type Jac = { x: bigint; y: bigint; z: bigint };
const INF: Jac = { x: 1n, y: 1n, z: 0n };

function double(p: Jac): Jac {
  if (p.z === 0n || p.y === 0n) return INF;
  const yy = mod(p.y * p.y, P);
  const s = mod(4n * p.x * yy, P);
  const zz = mod(p.z * p.z, P);
  const m = mod(3n * p.x * p.x + A * zz * zz, P);
  const x = mod(m * m - 2n * s, P);
  const y = mod(m * (s - x) - 8n * yy * yy, P);
  const z = mod(2n * p.y * p.z, P);
  return { x, y, z };
}

function add(p: Jac, q: Jac): Jac {
  if (p.z === 0n) return q;
  if (q.z === 0n) return p;
  const pz2 = mod(p.z * p.z, P);
  const qz2 = mod(q.z * q.z, P);
  const u1 = mod(p.x * qz2, P);
  const u2 = mod(q.x * pz2, P);
  const s1 = mod(p.y * qz2 * q.z, P);
  const s2 = mod(q.y * pz2 * p.z, P);
  if (u1 === u2) return s1 === s2 ? double(p) : INF;
  const h = mod(u2 - u1, P);
  const r = mod(s2 - s1, P);
  const hh = mod(h * h, P);
  const hhh = mod(h * hh, P);
  const x = mod(r * r - hhh - 2n * u1 * hh, P);
  const y = mod(r * (u1 * hh - x) - s1 * hhh, P);
  const z = mod(h * p.z * q.z, P);
  return { x, y, z };
}

/** k·G, affine x and y. */
export function multiplyG(k: bigint): { x: bigint; y: bigint } {
  let acc = INF;
  let addend: Jac = { x: GX, y: GY, z: 1n };
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) acc = add(acc, addend);
    addend = double(addend);
  }
  if (acc.z === 0n) throw new RangeError('k·G is the point at infinity');
  const zi = inv(acc.z, P);
  const zi2 = mod(zi * zi, P);
  return { x: mod(acc.x * zi2, P), y: mod(acc.y * zi2 * zi, P) };
}

const toInt = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);
const to32 = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');

/** RFC 6979 section 3.2, with HMAC-SHA256; qlen = hlen = 256, so bits2int is a plain read. */
function nonce(d: bigint, h1: Buffer): bigint {
  const x = to32(d);
  const h = to32(mod(toInt(h1), N));
  let v = Buffer.alloc(32, 1);
  let k = Buffer.alloc(32, 0);
  const hmac = (key: Buffer, ...data: Buffer[]) => createHmac('sha256', key).update(Buffer.concat(data)).digest();
  k = hmac(k, v, Buffer.from([0]), x, h);
  v = hmac(k, v);
  k = hmac(k, v, Buffer.from([1]), x, h);
  v = hmac(k, v);
  for (;;) {
    v = hmac(k, v);
    const t = toInt(v);
    if (t >= 1n && t < N) return t;
    k = hmac(k, v, Buffer.from([0]));
    v = hmac(k, v);
  }
}

/** Signs SHA-256(message) with the private scalar `d`; returns r and s. */
export function signDeterministic(d: bigint, message: Buffer): { r: bigint; s: bigint } {
  if (d <= 0n || d >= N) throw new RangeError('private scalar out of range');
  const h1 = createHash('sha256').update(message).digest();
  const e = mod(toInt(h1), N);
  for (let extra = 0; ; extra++) {
    // A zero r or s happens with probability ~2^-256; RFC 6979 then takes the next nonce, which
    // only a retry loop over the same DRBG would give: never seen, so re-derive with a counter.
    const k = extra === 0 ? nonce(d, h1) : nonce(d, createHash('sha256').update(h1).update(String(extra)).digest());
    const r = mod(multiplyG(k).x, N);
    if (r === 0n) continue;
    const s = mod(inv(k, N) * (e + r * d), N);
    if (s === 0n) continue;
    return { r, s };
  }
}
