import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { MAX_BUNDLE_BYTES, bundleKey, openBundle, sealBundle } from '../../src/acme/bundle.js';
import { AcmeBundleError } from '../../src/acme/errors.js';
import { nodeCertificate } from '../../src/tls/self-signed.js';
import type { CertificatePem } from '../../src/tls/self-signed.js';

// Compiled to <outDir>/test/acme/: the corpus stays in the source tree (tsc does not copy it).
const CORPUS = new URL('../../../test/acme/corpus/', import.meta.url);
/**
 * The fleet secret the corpus was sealed with, once, by a script not kept: ok-bundle is
 * sealBundle() of a nodeCertificate(); bad-magic is it with "FDA2"; bad-truncated lacks its last
 * byte; bad-other-secret is sealed under bundleKey('another fleet secret'); bad-not-json and
 * bad-no-key are the layout sealed by hand around "cert=...\nkey=..." and {"cert": ...}.
 * A change of layout or key derivation shows here first.
 */
const CORPUS_KEY = bundleKey('corpus fleet secret');

/** What each corpus file must give: a PEM pair, or AcmeBundleError for the reason it was made for. */
const EXPECTED: Record<string, 'ok' | RegExp> = {
  'ok-bundle.bin': 'ok',
  'bad-magic.bin': /not a frontdoor certificate bundle/,
  'bad-truncated.bin': /not sealed with this fleet's secret, or damaged/,
  'bad-other-secret.bin': /not sealed with this fleet's secret, or damaged/,
  'bad-not-json.bin': /not JSON/,
  'bad-no-key.bin': /no PEM private key/,
  'bad-empty.bin': /not a frontdoor certificate bundle/,
};

const corpus = readdirSync(CORPUS)
  .filter((f) => f.endsWith('.bin'))
  .sort()
  .map((name) => ({ name, bytes: readFileSync(new URL(name, CORPUS)) }));

/** A certificate and the key that goes with it, as a node would serve them. */
function assertPemPair(pem: CertificatePem): void {
  const x = new X509Certificate(pem.cert);
  assert.ok(x.checkPrivateKey(createPrivateKey(pem.key)), 'the key is the certificate\'s');
}

function bundleError(re?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof AcmeBundleError, `an AcmeBundleError, not ${String(err)}`);
    assert.equal(err.code, 'FD_ACME_BUNDLE');
    if (re) assert.match(err.message, re);
    return true;
  };
}

/** A bundle sealed with `key` whose total size is exactly `size` bytes (the certificate padded with spaces). */
function sealedOfSize(key: Buffer, pem: CertificatePem, size: number): Buffer {
  const base = sealBundle(key, pem).length;
  const padded = sealBundle(key, { cert: pem.cert + ' '.repeat(size - base), key: pem.key });
  assert.equal(padded.length, size);
  return padded;
}

const pem = nodeCertificate();
const key = bundleKey('test fleet secret');

describe('ACME certificate bundle', () => {
  it('opens what it sealed: the same certificate and key', () => {
    const sealed = sealBundle(key, pem);
    assert.equal(sealed.subarray(0, 4).toString('ascii'), 'FDA1');
    assert.ok(!sealed.includes(Buffer.from('BEGIN')), 'the PEM is not readable in the bundle');
    const opened = openBundle(key, sealed);
    assert.deepEqual(opened, { cert: pem.cert, key: pem.key });
    assertPemPair(opened);
  });

  it('seals with a fresh nonce each time, and the same secret gives the same key on every node', () => {
    assert.notDeepEqual(sealBundle(key, pem), sealBundle(key, pem));
    assert.deepEqual(bundleKey('test fleet secret'), key);
    assert.equal(key.length, 32);
    assert.notDeepEqual(bundleKey('test fleet secret '), key);
    assert.throws(() => bundleKey(''), /needs the fleet secret/);
  });

  it('a bundle sealed with another fleet\'s secret is refused', () => {
    const foreign = sealBundle(bundleKey('another fleet'), pem);
    assert.throws(() => openBundle(key, foreign), bundleError(/not sealed with this fleet's secret/));
  });

  it('opens a bundle of exactly the size limit, and refuses one a byte over without decrypting it', () => {
    assertPemPair(openBundle(key, sealedOfSize(key, pem, MAX_BUNDLE_BYTES)));
    // Sealed with the right key: were it decrypted, it would open.
    assert.throws(() => openBundle(key, sealedOfSize(key, pem, MAX_BUNDLE_BYTES + 1)), bundleError(/over 65536/));
  });

  it('refuses every oversized input, properly sealed or not, for its size alone', () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_BUNDLE_BYTES + 1, max: MAX_BUNDLE_BYTES + 2048 }), fc.boolean(), (size, sealed) => {
        const data = sealed ? sealedOfSize(key, pem, size) : Buffer.alloc(size, 0x41);
        assert.throws(() => openBundle(key, data), bundleError(new RegExp(`bundle of ${size} bytes is over`)));
      }),
      { numRuns: 100 },
    );
  });

  it('reads every corpus file as expected', () => {
    assert.deepEqual(corpus.map((f) => f.name), Object.keys(EXPECTED).sort(), 'corpus and expectations list the same files');
    for (const f of corpus) {
      const want = EXPECTED[f.name]!;
      if (want === 'ok') assertPemPair(openBundle(CORPUS_KEY, f.bytes));
      else assert.throws(() => openBundle(CORPUS_KEY, f.bytes), bundleError(want), f.name);
    }
  });

  // The valid bundles the properties start from: the committed one, and one sealed now.
  const valid = [
    ...corpus.filter((f) => EXPECTED[f.name] === 'ok').map((f) => ({ key: CORPUS_KEY, bytes: f.bytes })),
    { key, bytes: sealBundle(key, pem) },
  ];

  it('flipping any bit pattern of any one byte of a valid bundle makes it refused', () => {
    assert.ok(valid.length >= 2);
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 1, max: 255 }), (v, at, xor) => {
        const b = Buffer.from(v.bytes);
        const i = at % b.length;
        b[i] = b[i]! ^ xor;
        assert.throws(() => openBundle(v.key, b), bundleError());
      }),
      { numRuns: 1000 },
    );
  });

  it('whatever the bytes, opening either gives back a valid bundle\'s content or throws AcmeBundleError', () => {
    const seeds = fc.constantFrom(...corpus.map((c) => c.bytes));
    const mutated = fc
      .tuple(seeds, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
      .map(([s, edits, cut]) => {
        const b = Buffer.from(s);
        if (b.length > 0) for (const [at, v] of edits) b[at % b.length] = v;
        return b.subarray(0, cut % (b.length + 1));
      });
    const magic = fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.concat([Buffer.from('FDA1', 'ascii'), u]));
    const ok = corpus.find((c) => c.name === 'ok-bundle.bin')!.bytes;
    fc.assert(
      fc.property(fc.oneof(mutated, magic, fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u))), (data) => {
        let opened: CertificatePem;
        try {
          opened = openBundle(CORPUS_KEY, data);
        } catch (err) {
          bundleError()(err);
          return;
        }
        // Only the untouched valid seed may open.
        assert.deepEqual(data, ok);
        assertPemPair(opened);
      }),
      { numRuns: 1000 },
    );
  });
});
