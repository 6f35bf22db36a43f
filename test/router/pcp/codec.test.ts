import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BadResponseError,
  NotAuthorizedError,
  PortConflictError,
  ResultCodeError,
  UnsupportedError,
} from '../../../src/router/errors.js';
import {
  encodePcpAnnounceRequest,
  encodePcpMapRequest,
  encodePcpResponse,
  formatAddress,
  PCP_MAX_MESSAGE,
  parsePcpResponse,
  pcpResultError,
} from '../../../src/router/pcp/codec.js';
import type { PcpAnswer, PcpResponse } from '../../../src/router/pcp/codec.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const nonce = hex('0102030405060708090a0b0c');

describe('PCP requests (RFC 6887 7.1, 11.1, 14.1)', () => {
  it('encodes a MAP request with PREFER_FAILURE', () => {
    const b = encodePcpMapRequest({
      clientAddress: '192.168.77.10',
      nonce,
      protocol: 'TCP',
      internalPort: 9090,
      suggestedExternalPort: 9090,
      lifetimeSeconds: 60,
      preferFailure: true,
    });
    const expected = hex(
      // version 2, R=0 opcode 1, reserved, lifetime 60, client ::ffff:192.168.77.10
      '02 01 0000 0000003c 00000000000000000000ffff c0a84d0a' +
        // nonce, protocol 6, reserved, internal 9090, external 9090, ::ffff:0.0.0.0
        '0102030405060708090a0b0c 06 000000 2382 2382 00000000000000000000ffff 00000000' +
        // PREFER_FAILURE: code 2, reserved, length 0
        '02 00 0000',
    );
    assert.deepEqual(b, expected);
    assert.equal(b.length % 4, 0);
  });

  it('encodes UDP as protocol 17 and leaves PREFER_FAILURE out unless asked', () => {
    const b = encodePcpMapRequest({
      clientAddress: '10.0.0.2',
      nonce,
      protocol: 'UDP',
      internalPort: 53,
      suggestedExternalPort: 0,
      lifetimeSeconds: 0,
    });
    assert.equal(b.length, 60);
    assert.equal(b[36], 17);
  });

  it('encodes ANNOUNCE as a bare header with lifetime 0', () => {
    assert.deepEqual(
      encodePcpAnnounceRequest('192.168.77.10'),
      hex('02 00 0000 00000000 00000000000000000000ffff c0a84d0a'),
    );
  });

  it('refuses bad fields', () => {
    const base = { clientAddress: '10.0.0.2', nonce, protocol: 'TCP' as const, internalPort: 1, suggestedExternalPort: 1, lifetimeSeconds: 1 };
    assert.throws(() => encodePcpMapRequest({ ...base, nonce: nonce.subarray(0, 11) }), RangeError);
    assert.throws(() => encodePcpMapRequest({ ...base, clientAddress: 'fe80::1' }), RangeError);
    assert.throws(() => encodePcpMapRequest({ ...base, internalPort: 65536 }), RangeError);
  });
});

describe('parsePcpResponse', () => {
  const mapAnswer = hex(
    '02 81 00 00 00000078 00001000 000000000000000000000000' +
      '0102030405060708090a0b0c 06 000000 2382 2383 00000000000000000000ffff cb007201',
  );

  it('reads a MAP answer: granted lifetime, epoch, nonce, ports, dotted external address', () => {
    const r = parsePcpResponse(mapAnswer) as PcpAnswer;
    assert.equal(r.kind, 'pcp');
    assert.equal(r.version, 2);
    assert.equal(r.opcode, 1);
    assert.equal(r.resultCode, 0);
    assert.equal(r.lifetimeSeconds, 120);
    assert.equal(r.epoch, 4096);
    assert.deepEqual(r.map, {
      nonce,
      protocol: 6,
      internalPort: 9090,
      externalPort: 9091,
      externalAddress: '203.0.114.1',
    });
    assert.deepEqual(r.options, []);
  });

  it('reads options after the MAP data, with padding', () => {
    const withOptions = Buffer.concat([mapAnswer, hex('02 00 0000'), hex('80 00 0005 aabbccddee 000000')]);
    const r = parsePcpResponse(withOptions) as PcpAnswer;
    assert.deepEqual(r.options, [
      { code: 2, data: Buffer.alloc(0) },
      { code: 0x80, data: hex('aabbccddee') },
    ]);
  });

  it('accepts a header-only error answer', () => {
    const r = parsePcpResponse(hex('02 81 00 03 00000000 00000010 000000000000000000000000')) as PcpAnswer;
    assert.equal(r.resultCode, 3);
    assert.equal(r.map, undefined);
  });

  it('recognises NAT-PMP-only and other-version servers', () => {
    assert.deepEqual(parsePcpResponse(hex('00 81 0001 00000010')), { kind: 'other-version', serverVersion: 0, opcode: 1 });
    assert.deepEqual(parsePcpResponse(hex('01 80 00 01 00000000 00000000 000000000000000000000000')), {
      kind: 'other-version',
      serverVersion: 1,
      opcode: 0,
    });
  });

  const bad: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['a request', hex('02 01 00 00 00000078 00001000 000000000000000000000000')],
    ['shorter than the header', mapAnswer.subarray(0, 20)],
    ['a length not a multiple of 4', Buffer.concat([mapAnswer, hex('00')])],
    ['a success MAP answer without MAP data', mapAnswer.subarray(0, 24)],
    ['half the MAP data', mapAnswer.subarray(0, 40)],
    ['an option longer than the packet', Buffer.concat([mapAnswer, hex('02 00 0008 00000000')])],
    ['an option whose padding is cut', Buffer.concat([mapAnswer, hex('80 00 0001')])],
    ['a NAT-PMP answer other than UNSUPP_VERSION', hex('00 81 0002 00000010')],
    ['an opcode we never send (PEER)', hex('02 82 00 00 00000000 00000000 000000000000000000000000')],
    ['version 3 success', hex('03 80 00 00 00000000 00000000 000000000000000000000000')],
    ['more than 1100 bytes', Buffer.concat([mapAnswer, hex('80 00 0420'), Buffer.alloc(0x420)])],
  ];
  for (const [name, bytes] of bad) {
    it(`rejects ${name} with BadResponseError`, () => {
      assert.throws(() => parsePcpResponse(bytes), BadResponseError);
    });
  }
});

describe('formatAddress', () => {
  it('writes IPv4-mapped addresses dotted and IPv6 per RFC 5952', () => {
    assert.equal(formatAddress(hex('00000000000000000000ffff cb007201')), '203.0.114.1');
    assert.equal(formatAddress(hex('20010db8000000000000000000000001')), '2001:db8::1');
    assert.equal(formatAddress(Buffer.alloc(16)), '::');
    assert.equal(formatAddress(hex('20010db8000100000001000000000001')), '2001:db8:1:0:1::1');
    assert.equal(formatAddress(hex('fe800000000000000000000000000000')), 'fe80::');
  });
});

const answerArb: fc.Arbitrary<PcpResponse> = fc.oneof(
  fc.record({
    kind: fc.constant('pcp' as const),
    version: fc.constant(2),
    opcode: fc.constantFrom(0, 1),
    resultCode: fc.integer({ min: 0, max: 255 }),
    lifetimeSeconds: fc.integer({ min: 0, max: 0xffffffff }),
    epoch: fc.integer({ min: 0, max: 0xffffffff }),
    map: fc.constant(undefined),
    options: fc.array(
      fc.record({ code: fc.integer({ min: 0, max: 255 }), data: fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)) }),
      { maxLength: 4 },
    ),
  }),
  fc.record({
    kind: fc.constant('other-version' as const),
    serverVersion: fc.constantFrom(0, 1, 3),
    opcode: fc.constantFrom(0, 1),
  }),
).map((r): PcpResponse => {
  if (r.kind === 'other-version') return { ...r };
  const plain: PcpAnswer = { ...r, options: r.options.map((o) => ({ ...o })) };
  // A MAP answer carries MAP data unless it is a header-only error.
  if (r.opcode === 1 && (r.resultCode === 0 || r.options.length > 0)) {
    plain.map = {
      nonce,
      protocol: 6,
      internalPort: r.epoch & 0xffff,
      externalPort: r.lifetimeSeconds & 0xffff,
      externalAddress: '203.0.114.1',
    };
  }
  return plain;
});

describe('parsePcpResponse properties', () => {
  it('round-trips every encodable answer', () => {
    fc.assert(
      fc.property(answerArb, (r) => {
        assert.deepEqual(parsePcpResponse(encodePcpResponse(r)), r);
      }),
      { numRuns: 2000 },
    );
  });

  it('any bytes give a bounded value or BadResponseError, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => checkTotal(bytes)),
      { numRuns: 3000 },
    );
  });

  it('any bytes behind a valid header give a bounded value or BadResponseError', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.uint8Array({ maxLength: 200 }), (opcode, tail) => {
        const head = hex('02 80 00 00 00000000 00000000 000000000000000000000000');
        head[1] = 0x80 | opcode;
        checkTotal(Buffer.concat([head, tail]));
      }),
      { numRuns: 3000 },
    );
  });

  it('a mutated valid answer gives a value or BadResponseError', () => {
    fc.assert(
      fc.property(
        answerArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.integer({ min: -8, max: 8 }),
        (r, flips, resize) => {
          const b = encodePcpResponse(r);
          for (const [at, value] of flips) b[at % b.length] = value;
          const len = Math.max(0, b.length + resize);
          const mutated = Buffer.alloc(len);
          b.copy(mutated, 0, 0, Math.min(len, b.length));
          checkTotal(mutated);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

function checkTotal(bytes: Uint8Array): void {
  let r: PcpResponse;
  try {
    r = parsePcpResponse(bytes);
  } catch (err) {
    assert.ok(err instanceof BadResponseError, `unexpected ${String(err)}`);
    return;
  }
  assert.ok(bytes.length <= PCP_MAX_MESSAGE);
  if (r.kind === 'other-version') {
    assert.notEqual(r.serverVersion, 2);
    return;
  }
  assert.equal(r.version, 2);
  assert.ok(r.opcode === 0 || r.opcode === 1);
  assert.ok(r.resultCode <= 255);
  // Every option lies inside the packet: their total size cannot exceed it.
  const optionBytes = r.options.reduce((n, o) => n + 4 + o.data.length, 0);
  assert.ok(optionBytes <= bytes.length - 24);
  if (r.map) {
    assert.equal(r.map.nonce.length, 12);
    assert.ok(r.map.internalPort <= 0xffff && r.map.externalPort <= 0xffff);
    assert.ok(r.map.externalAddress.length <= 39);
  }
}

describe('pcpResultError', () => {
  it('maps the RFC 6887 result codes to typed errors', () => {
    assert.ok(pcpResultError(1, 'x') instanceof UnsupportedError);
    assert.ok(pcpResultError(2, 'x') instanceof NotAuthorizedError);
    assert.ok(pcpResultError(4, 'x') instanceof UnsupportedError);
    assert.ok(pcpResultError(5, 'x') instanceof UnsupportedError);
    assert.ok(pcpResultError(9, 'x') instanceof UnsupportedError);
    const noResources = pcpResultError(8, 'x');
    assert.ok(noResources instanceof ResultCodeError);
    assert.equal(noResources.resultCode, 8);
    assert.equal(noResources.protocol, 'pcp');
    assert.equal((pcpResultError(7, 'x') as ResultCodeError).resultCode, 7);
    assert.equal((pcpResultError(12, 'x') as ResultCodeError).resultCode, 12);
  });

  it('reads CANNOT_PROVIDE_EXTERNAL as a conflict only when PREFER_FAILURE was sent', () => {
    const conflict = pcpResultError(11, 'x', { askedPort: 9090, preferFailure: true });
    assert.ok(conflict instanceof PortConflictError);
    assert.equal(conflict.externalPort, 9090);
    assert.ok(pcpResultError(11, 'x', { askedPort: 9090 }) instanceof ResultCodeError);
  });
});
