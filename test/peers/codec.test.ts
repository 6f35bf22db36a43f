import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import {
  MAX_BODY_BYTES,
  MAX_DATAGRAM_BYTES,
  decodeMessage,
  deriveKey,
  encodeMessage,
} from '../../src/peers/codec.js';
import { PeerProtocolError } from '../../src/peers/errors.js';
import type { PeerProtocolErrorCode } from '../../src/peers/errors.js';
import type { Envelope, NodeInfo, PeerMessage } from '../../src/peers/messages.js';
import { RUNS, envelopeArb } from './arbitraries.js';

const KEY = deriveKey('correct horse battery staple, but longer and random');
const OTHER_KEY = deriveKey('another fleet');

const node: NodeInfo = {
  name: 'Küchen-Kamera',
  addresses: ['192.168.1.20', 'fd00::20'],
  localPort: 8080,
  publicPort: 40001,
  camera: true,
  rank: '3f2a9c',
};

const bodies: PeerMessage[] = [
  { type: 'claim', node, attempt: 2 },
  { type: 'inquiry', publicPort: 8080, wanAddress: '203.0.113.7', heir: 'node-b' },
  { type: 'inquiry', publicPort: 0, wanAddress: '', heir: '' },
  { type: 'reply', node },
  { type: 'announce', publicPort: 8080, wanAddress: '2001:db8::1', node, term: 7, heir: '' },
  { type: 'withdraw', wasRepresentative: true, successor: 'node-b' },
  { type: 'probe', nonce: 'n-1.x_Y' },
  { type: 'probe-ack', nonce: 'n-1.x_Y' },
];

function envelope(body: PeerMessage): Envelope {
  return { from: { id: 'pi-kitchen', boot: 'b0' }, seq: 42, sentAt: 1_700_000_000_000, body };
}

/**
 * The documented layout, written independently of the codec: magic "FDLP", version, flags,
 * big-endian body length, body, HMAC-SHA256 truncated to 16 bytes over all that precedes it.
 */
function frame(body: Buffer | string, key: Buffer | null, opts: { version?: number; flags?: number; length?: number } = {}): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = Buffer.alloc(8);
  head.write('FDLP', 0, 'latin1');
  head[4] = opts.version ?? 1;
  head[5] = opts.flags ?? (key ? 1 : 0);
  head.writeUInt16BE(opts.length ?? b.length, 6);
  const data = Buffer.concat([head, b]);
  if (!key) return data;
  return Buffer.concat([data, createHmac('sha256', key).update(data).digest().subarray(0, 16)]);
}

/** Sets (undefined: deletes) a dotted path in a copy-able JSON value; stops at non-objects. */
function setPath(root: unknown, path: string, value: unknown): unknown {
  const keys = path.split('.');
  let at = root as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    const next = at[k];
    if (typeof next !== 'object' || next === null) return root;
    at = next as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return root;
}

function code(fn: () => unknown): PeerProtocolErrorCode {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PeerProtocolError, `expected PeerProtocolError, got ${String(err)}`);
    assert.equal(err.name, 'PeerProtocolError');
    return err.code;
  }
  assert.fail('expected a PeerProtocolError');
}

describe('codec round trip', () => {
  for (const body of bodies) {
    it(`${body.type} (${JSON.stringify(body).slice(0, 40)}) keyed and unkeyed`, () => {
      for (const key of [KEY, null]) {
        const env = envelope(body);
        assert.deepEqual(decodeMessage(encodeMessage(env, key), key), env);
      }
    });
  }

  it('lays out the header and tag as documented', () => {
    const env = envelope(bodies[5]!);
    const buf = encodeMessage(env, KEY);
    assert.equal(buf.subarray(0, 4).toString('latin1'), 'FDLP');
    assert.equal(buf[4], 1);
    assert.equal(buf[5], 1);
    const len = buf.readUInt16BE(6);
    assert.equal(buf.length, 8 + len + 16);
    assert.deepEqual(JSON.parse(buf.subarray(8, 8 + len).toString('utf8')), env);
    assert.deepEqual(buf, frame(buf.subarray(8, 8 + len), KEY));

    const plain = encodeMessage(env, null);
    assert.equal(plain[5], 0);
    assert.equal(plain.length, 8 + plain.readUInt16BE(6));
  });

  it('puts only the known fields on the wire', () => {
    const extra = {
      ...envelope({ type: 'reply', node: { ...node, lastSeen: 5 } as NodeInfo }),
      address: '10.0.0.1',
      port: 9,
    } as Envelope;
    const buf = encodeMessage(extra, KEY);
    const text = buf.toString('utf8');
    assert.ok(!text.includes('lastSeen') && !text.includes('10.0.0.1'));
    assert.deepEqual(decodeMessage(buf, KEY), envelope({ type: 'reply', node }));
  });

  it('the largest valid message still fits in one datagram', () => {
    const id = 'a'.repeat(64);
    const ip = 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255';
    const max = Number.MAX_SAFE_INTEGER;
    // 63 four-byte code points is the most a name can cost in UTF-8 JSON.
    const big: NodeInfo = { name: '😀'.repeat(63), addresses: Array(6).fill(ip), localPort: 65535, publicPort: 65535, camera: false, rank: id };
    const env: Envelope = {
      from: { id, boot: id },
      seq: max,
      sentAt: max,
      body: { type: 'announce', publicPort: 65535, wanAddress: ip, node: big, term: max, heir: 'x'.repeat(64) },
    };
    const buf = encodeMessage(env, KEY);
    assert.ok(buf.length <= MAX_DATAGRAM_BYTES, `${buf.length} bytes`);
    assert.deepEqual(decodeMessage(buf, KEY), env);
  });
});

describe('codec rejects', () => {
  const good = encodeMessage(envelope(bodies[0]!), KEY);

  it('datagrams over 1200 bytes before looking at them', () => {
    assert.equal(code(() => decodeMessage(Buffer.alloc(1201), KEY)), 'FD_PEER_TOO_LARGE');
    assert.equal(code(() => decodeMessage(Buffer.concat([good, Buffer.alloc(65000)]), KEY)), 'FD_PEER_TOO_LARGE');
  });

  it('other protocols, versions, and reserved flags', () => {
    assert.equal(code(() => decodeMessage(Buffer.alloc(0), KEY)), 'FD_PEER_BAD_MAGIC');
    assert.equal(code(() => decodeMessage(Buffer.from('M-SEARCH * HTTP/1.1\r\n'), KEY)), 'FD_PEER_BAD_MAGIC');
    assert.equal(code(() => decodeMessage(Buffer.from('FDLP'), KEY)), 'FD_PEER_MALFORMED');
    assert.equal(code(() => decodeMessage(frame('{}', KEY, { version: 2 }), KEY)), 'FD_PEER_VERSION');
    assert.equal(code(() => decodeMessage(frame('{}', KEY, { flags: 3 }), KEY)), 'FD_PEER_MALFORMED');
  });

  it('a tag with the wrong key, a missing tag, an unexpected tag', () => {
    assert.equal(code(() => decodeMessage(encodeMessage(envelope(bodies[0]!), OTHER_KEY), KEY)), 'FD_PEER_BAD_MAC');
    assert.equal(code(() => decodeMessage(encodeMessage(envelope(bodies[0]!), null), KEY)), 'FD_PEER_NO_MAC');
    assert.equal(code(() => decodeMessage(good, null)), 'FD_PEER_UNEXPECTED_MAC');
    // Flag says tagged but the datagram is too short to hold one.
    assert.equal(code(() => decodeMessage(frame('', null, { flags: 1 }), KEY)), 'FD_PEER_MALFORMED');
    // A body swapped under an old tag.
    const forged = Buffer.from(good);
    forged.write('{"from":{"id":"evil"', 8, 'utf8');
    assert.equal(code(() => decodeMessage(forged, KEY)), 'FD_PEER_BAD_MAC');
  });

  it('a length field that disagrees with the datagram, and bodies over the body limit', () => {
    const body = JSON.stringify(envelope(bodies[6]!));
    assert.equal(code(() => decodeMessage(frame(body, KEY, { length: body.length + 1 }), KEY)), 'FD_PEER_MALFORMED');
    assert.equal(code(() => decodeMessage(frame(body, null, { length: body.length - 1 }), null)), 'FD_PEER_MALFORMED');
    // Without a tag 1192 body bytes fit in 1200, but the body limit is the same for everyone.
    const padded = body.slice(0, -1) + ' '.repeat(MAX_BODY_BYTES + 1 - body.length) + '}';
    assert.equal(code(() => decodeMessage(frame(padded, null), null)), 'FD_PEER_TOO_LARGE');
  });

  it('bodies that are not UTF-8 JSON objects', () => {
    for (const body of [Buffer.from([0xff, 0xfe]), Buffer.from('\ufeff{}'), Buffer.from('{"a":'), Buffer.from('[]'), Buffer.from('null')]) {
      assert.equal(code(() => decodeMessage(frame(body, KEY), KEY)), 'FD_PEER_MALFORMED');
    }
  });

  it('unknown message types with their own code', () => {
    const env = { ...envelope(bodies[6]!), body: { type: 'gossip', nonce: 'x' } };
    assert.equal(code(() => decodeMessage(frame(JSON.stringify(env), KEY), KEY)), 'FD_PEER_UNKNOWN_TYPE');
    const proto = { ...envelope(bodies[6]!), body: { type: 'toString' } };
    assert.equal(code(() => decodeMessage(frame(JSON.stringify(proto), KEY), KEY)), 'FD_PEER_UNKNOWN_TYPE');
  });

  // Each row replaces (or deletes) one field of a valid envelope, as JSON so the encoder's own
  // checks are not in the way, and must be refused.
  const DELETE = Symbol('delete');
  const bad: Array<[string, string, unknown]> = [
    ['seq negative', 'seq', -1],
    ['seq fractional', 'seq', 1.5],
    ['seq beyond 2^53', 'seq', 2 ** 53],
    ['seq as string', 'seq', '1'],
    ['sentAt missing', 'sentAt', DELETE],
    ['from.id empty', 'from.id', ''],
    ['from.id 65 chars', 'from.id', 'a'.repeat(65)],
    ['from.id with a space', 'from.id', 'pi kitchen'],
    ['from.boot non-ASCII', 'from.boot', 'bö'],
    ['from not an object', 'from', ['pi', 'b']],
    ['body.node.localPort 65536', 'body.node.localPort', 65536],
    ['body.node.publicPort -1', 'body.node.publicPort', -1],
    ['body.node.localPort "80"', 'body.node.localPort', '80'],
    ['body.node.name empty', 'body.node.name', ''],
    ['body.node.name 64 chars', 'body.node.name', 'n'.repeat(64)],
    ['body.node.name with a newline', 'body.node.name', 'cam\nera'],
    ['body.node.name with a bidi override', 'body.node.name', 'cam\u202eera'],
    ['body.node.name with a lone surrogate', 'body.node.name', 'cam\ud800'],
    ['body.node.addresses 9 entries', 'body.node.addresses', Array(9).fill('10.0.0.1')],
    ['body.node.addresses not an IP', 'body.node.addresses', ['camera.local']],
    ['body.node.addresses leading zero', 'body.node.addresses', ['192.168.001.1']],
    ['body.node.addresses with zone id', 'body.node.addresses', ['fe80::1%eth0']],
    ['body.node.addresses as string', 'body.node.addresses', '10.0.0.1'],
    ['body.node.camera as 1', 'body.node.camera', 1],
    ['body.node.rank empty', 'body.node.rank', ''],
    ['body.node missing', 'body.node', DELETE],
    ['body.node inherited through __proto__', 'body', JSON.parse(`{"type":"claim","attempt":1,"__proto__":{"node":${JSON.stringify(node)}}}`)],
    ['body.attempt negative', 'body.attempt', -3],
    ['body.type missing', 'body.type', DELETE],
  ];
  for (const [what, path, value] of bad) {
    it(what, () => {
      const e = setPath(structuredClone(envelope(bodies[0]!)), path, value === DELETE ? undefined : value);
      for (const key of [KEY, null]) {
        assert.equal(code(() => decodeMessage(frame(JSON.stringify(e), key), key)), 'FD_PEER_MALFORMED');
      }
      assert.equal(code(() => encodeMessage(e as Envelope, KEY)), 'FD_PEER_MALFORMED');
    });
  }

  it('fields a caller left on a prototype (JSON.stringify would drop them too)', () => {
    const body = Object.assign(Object.create({ nonce: 'inherited' }) as object, { type: 'probe' });
    assert.equal(code(() => encodeMessage(envelope(body as PeerMessage), KEY)), 'FD_PEER_MALFORMED');
  });

  it('announce and inquiry WAN addresses that are not IPs', () => {
    for (const body of [
      { type: 'announce', publicPort: 80, wanAddress: 'router.local', node, term: 1 },
      { type: 'inquiry', publicPort: 80, wanAddress: '1.2.3.4.5' },
    ]) {
      assert.equal(code(() => encodeMessage(envelope(body as PeerMessage), null)), 'FD_PEER_MALFORMED');
    }
  });

  it('ignores and drops unknown fields (forward compatible)', () => {
    const e = { ...envelope(bodies[6]!), hops: 3, body: { ...bodies[6]!, color: 'blue' } };
    assert.deepEqual(decodeMessage(frame(JSON.stringify(e), KEY), KEY), envelope(bodies[6]!));
  });
});

describe('keys', () => {
  it('deriveKey is deterministic, 32 bytes, and not the secret', () => {
    const a = deriveKey('s3cret');
    assert.equal(a.length, 32);
    assert.deepEqual(a, deriveKey('s3cret'));
    assert.notDeepEqual(a, deriveKey('s3cret '));
    assert.ok(!a.includes(Buffer.from('s3cret')));
  });

  it('refuses an empty secret and a key not from deriveKey', () => {
    assert.equal(code(() => deriveKey('')), 'FD_PEER_BAD_SECRET');
    assert.equal(code(() => encodeMessage(envelope(bodies[6]!), Buffer.from('short'))), 'FD_PEER_BAD_KEY');
    assert.equal(code(() => decodeMessage(Buffer.alloc(10), Buffer.alloc(31))), 'FD_PEER_BAD_KEY');
  });
});

describe('codec properties', () => {
  /** Decoding must end in one of these two ways, whatever arrives. */
  function decodesOrRefuses(buf: Buffer, key: Buffer | null): void {
    try {
      decodeMessage(buf, key);
    } catch (err) {
      if (!(err instanceof PeerProtocolError)) throw err;
    }
  }

  const mutatedJson = envelopeArb.chain((env) =>
    fc
      .tuple(fc.constantFrom('seq', 'sentAt', 'from', 'body', 'body.node', 'body.type', 'from.id', 'body.node.addresses'), fc.jsonValue())
      .map(([path, value]) => JSON.stringify(setPath(structuredClone(env), path, value))),
  );

  it('(1) any bytes decode to an Envelope or a PeerProtocolError, never anything else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.uint8Array({ maxLength: 1300 }), fc.boolean()).map(([b, k]) => ({ buf: Buffer.from(b), keyed: k })),
          fc.tuple(fc.uint8Array({ maxLength: 1300, size: 'max' }), fc.boolean()).map(([b, k]) => ({ buf: Buffer.from(b), keyed: k })),
          // Past the header and the MAC, so the JSON and schema checks are what gets fuzzed.
          fc.tuple(fc.uint8Array({ maxLength: 1200 }), fc.boolean()).map(([b, k]) => ({ buf: frame(Buffer.from(b), k ? KEY : null), keyed: k })),
          fc.tuple(fc.json(), fc.boolean()).map(([j, k]) => ({ buf: frame(j, k ? KEY : null), keyed: k })),
          fc.tuple(mutatedJson, fc.boolean()).map(([j, k]) => ({ buf: frame(j, k ? KEY : null), keyed: k })),
        ),
        ({ buf, keyed }) => {
          decodesOrRefuses(buf, keyed ? KEY : null);
          decodesOrRefuses(buf, keyed ? null : KEY);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('(1) decoding is bounded: anything over the limit is refused unread', () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_DATAGRAM_BYTES + 1, max: 65_535 }), envelopeArb, (size, env) => {
        // A valid message padded out: still refused on size alone.
        const buf = Buffer.alloc(size, 0x20);
        encodeMessage(env, KEY).copy(buf);
        assert.equal(code(() => decodeMessage(buf, KEY)), 'FD_PEER_TOO_LARGE');
      }),
      { numRuns: 100 },
    );
  });

  it('(2) a valid keyed message with any single byte changed is rejected', () => {
    fc.assert(
      fc.property(envelopeArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (env, at, xor) => {
        const buf = encodeMessage(env, KEY);
        const i = at % buf.length;
        buf[i] = buf[i]! ^ xor;
        code(() => decodeMessage(buf, KEY));
      }),
      RUNS,
    );
  });

  it('(3) encode then decode gives back the envelope, within the size limit', () => {
    fc.assert(
      fc.property(envelopeArb, fc.boolean(), (env, keyed) => {
        const key = keyed ? KEY : null;
        const buf = encodeMessage(env, key);
        assert.ok(buf.length <= MAX_DATAGRAM_BYTES);
        assert.deepEqual(decodeMessage(buf, key), env);
      }),
      RUNS,
    );
  });

  it('(4) encode refuses, with FD_PEER_TOO_LARGE, what would exceed the limit', () => {
    fc.assert(
      fc.property(
        envelopeArb,
        // Sizes as integers, not as long generated strings: a failure then shrinks in a few
        // steps instead of minutes.
        fc.nat({ max: 1400 }),
        fc.constantFrom('a', 'é', '😀', '"'),
        fc.nat({ max: 40 }),
        fc.constantFrom('10.0.0.1', 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255'),
        (env, nameLength, unit, addressCount, ip) => {
          const name = unit.repeat(nameLength);
          const addresses = Array<string>(addressCount).fill(ip);
          // Overlong fields are invalid too; the size check comes first, so the code says which
          // limit the message breaks on the wire.
          const e: Envelope = { ...env, body: { type: 'reply', node: { name, addresses, localPort: 1, publicPort: 2, camera: false, rank: 'r' } } };
          const bodyBytes = Buffer.byteLength(JSON.stringify(e));
          let buf: Buffer | undefined;
          let err: PeerProtocolErrorCode | undefined;
          try {
            buf = encodeMessage(e, KEY);
          } catch (x) {
            assert.ok(x instanceof PeerProtocolError);
            err = x.code;
          }
          if (bodyBytes > MAX_BODY_BYTES) assert.equal(err, 'FD_PEER_TOO_LARGE');
          else if (buf) assert.ok(buf.length <= MAX_DATAGRAM_BYTES);
          else assert.equal(err, 'FD_PEER_MALFORMED');
        },
      ),
      RUNS,
    );
  });
});
