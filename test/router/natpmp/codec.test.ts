import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BadResponseError,
  NotAuthorizedError,
  NoWanAddressError,
  type ResultCodeError,
  UnsupportedError,
} from '../../../src/router/errors.js';
import {
  encodeExternalAddressRequest,
  encodeMapRequest,
  encodeNatPmpResponse,
  natPmpResultError,
  parseNatPmpResponse,
} from '../../../src/router/natpmp/codec.js';
import type { NatPmpResponse } from '../../../src/router/natpmp/codec.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('NAT-PMP requests (RFC 6886 3.2, 3.3)', () => {
  it('asks for the external address with two bytes: version 0, opcode 0', () => {
    assert.deepEqual(encodeExternalAddressRequest(), hex('00 00'));
  });

  it('encodes a TCP mapping with the lifetime in seconds', () => {
    const b = encodeMapRequest({ protocol: 'TCP', internalPort: 8080, externalPort: 8080, lifetimeSeconds: 7200 });
    assert.deepEqual(b, hex('00 02 0000 1f90 1f90 00001c20'));
  });

  it('encodes a UDP deletion (lifetime 0) with opcode 1', () => {
    const b = encodeMapRequest({ protocol: 'UDP', internalPort: 5353, externalPort: 0, lifetimeSeconds: 0 });
    assert.deepEqual(b, hex('00 01 0000 14e9 0000 00000000'));
  });

  it('refuses out-of-range fields instead of truncating them', () => {
    assert.throws(() => encodeMapRequest({ protocol: 'TCP', internalPort: 70000, externalPort: 1, lifetimeSeconds: 1 }), RangeError);
    assert.throws(() => encodeMapRequest({ protocol: 'TCP', internalPort: 1, externalPort: 1, lifetimeSeconds: -1 }), RangeError);
    assert.throws(() => encodeMapRequest({ protocol: 'TCP', internalPort: 1, externalPort: 1, lifetimeSeconds: 2 ** 32 }), RangeError);
    assert.throws(() => encodeMapRequest({ protocol: 'TCP', internalPort: 1.5, externalPort: 1, lifetimeSeconds: 1 }), RangeError);
  });
});

describe('parseNatPmpResponse', () => {
  it('reads an external address answer', () => {
    const r = parseNatPmpResponse(hex('00 80 0000 0000000a cb007201'));
    assert.deepEqual(r, { kind: 'address', opcode: 0, resultCode: 0, epoch: 10, externalAddress: '203.0.114.1' });
  });

  it('reads a TCP mapping answer (as miniupnpd sends it, 8081 for 8080)', () => {
    const r = parseNatPmpResponse(hex('00 82 0000 00000e10 1f90 1f91 00000e10'));
    assert.deepEqual(r, {
      kind: 'map',
      opcode: 2,
      protocol: 'TCP',
      resultCode: 0,
      epoch: 3600,
      internalPort: 8080,
      externalPort: 8081,
      lifetimeSeconds: 3600,
    });
  });

  it('reads an 8-byte error answer (unsupported version)', () => {
    assert.deepEqual(parseNatPmpResponse(hex('00 81 0001 00000005')), {
      kind: 'error',
      opcode: 1,
      resultCode: 1,
      epoch: 5,
    });
  });

  it("recognises a PCP-only server's UNSUPP_VERSION", () => {
    const pcp = Buffer.alloc(24);
    pcp[0] = 2;
    pcp[1] = 0x80;
    pcp[3] = 1;
    assert.deepEqual(parseNatPmpResponse(pcp), { kind: 'other-version', serverVersion: 2, opcode: 0 });
  });

  const bad: Array<[string, string]> = [
    ['empty', ''],
    ['too short', '00 80 00'],
    ['a request, not an answer', '00 00 0000 00000000 01020304'],
    ['wrong version', '01 80 0000 00000000 01020304'],
    ['unknown opcode', '00 83 0000 00000000 01020304'],
    ['success without body', '00 80 0000 00000000'],
    ['address answer with trailing junk', '00 80 0000 00000000 01020304 00'],
    ['address answer cut short', '00 80 0000 00000000 0102'],
    ['mapping answer with trailing junk', '00 82 0000 00000001 1f90 1f90 00000e10 0000'],
    ['mapping answer cut short', '00 82 0000 00000001 1f90 1f90 0000'],
  ];
  for (const [name, bytes] of bad) {
    it(`rejects ${name} with BadResponseError`, () => {
      assert.throws(() => parseNatPmpResponse(hex(bytes)), BadResponseError);
    });
  }

  it('parses a view into a larger buffer without reading outside it', () => {
    const big = hex('ff ff 00 80 0000 0000000a cb007201 ff ff');
    assert.equal((parseNatPmpResponse(big.subarray(2, 14)) as { externalAddress: string }).externalAddress, '203.0.114.1');
  });
});

const responseArb: fc.Arbitrary<NatPmpResponse> = fc.oneof(
  fc.record({
    kind: fc.constant('address' as const),
    opcode: fc.constant(0 as const),
    resultCode: fc.integer({ min: 0, max: 0xffff }),
    epoch: fc.integer({ min: 0, max: 0xffffffff }),
    externalAddress: fc.ipV4(),
  }),
  fc.integer({ min: 1, max: 2 }).chain((op) =>
    fc.record({
      kind: fc.constant('map' as const),
      opcode: fc.constant(op as 1 | 2),
      protocol: fc.constant(op === 2 ? ('TCP' as const) : ('UDP' as const)),
      resultCode: fc.integer({ min: 0, max: 0xffff }),
      epoch: fc.integer({ min: 0, max: 0xffffffff }),
      internalPort: fc.integer({ min: 0, max: 0xffff }),
      externalPort: fc.integer({ min: 0, max: 0xffff }),
      lifetimeSeconds: fc.integer({ min: 0, max: 0xffffffff }),
    }),
  ),
  fc.record({
    kind: fc.constant('error' as const),
    opcode: fc.integer({ min: 0, max: 2 }),
    resultCode: fc.integer({ min: 1, max: 0xffff }),
    epoch: fc.integer({ min: 0, max: 0xffffffff }),
  }),
);

describe('parseNatPmpResponse properties', () => {
  it('round-trips every encodable answer', () => {
    fc.assert(
      fc.property(responseArb, (r) => {
        assert.deepEqual(parseNatPmpResponse(encodeNatPmpResponse(r)), { ...r });
      }),
      { numRuns: 2000 },
    );
  });

  it('any bytes give a bounded value or BadResponseError, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        checkTotal(bytes);
      }),
      { numRuns: 5000 },
    );
  });

  it('a mutated valid answer gives a value or BadResponseError', () => {
    fc.assert(
      fc.property(
        responseArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.integer({ min: -4, max: 4 }),
        (r, flips, resize) => {
          const b = encodeNatPmpResponse(r);
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
  let r: NatPmpResponse;
  try {
    r = parseNatPmpResponse(bytes);
  } catch (err) {
    assert.ok(err instanceof BadResponseError, `unexpected ${String(err)}`);
    return;
  }
  if (r.kind === 'other-version') {
    assert.ok(r.serverVersion > 0 && r.serverVersion < 256);
    return;
  }
  assert.ok(r.opcode >= 0 && r.opcode <= 2);
  assert.ok(r.resultCode >= 0 && r.resultCode <= 0xffff);
  assert.ok(r.epoch >= 0 && r.epoch <= 0xffffffff);
  if (r.kind === 'map') {
    assert.ok(r.internalPort <= 0xffff && r.externalPort <= 0xffff);
    assert.ok(r.lifetimeSeconds >= 0 && r.lifetimeSeconds <= 0xffffffff);
  }
  if (r.kind === 'address') assert.match(r.externalAddress, /^\d{1,3}(\.\d{1,3}){3}$/);
  if (r.kind === 'error') assert.notEqual(r.resultCode, 0);
}

describe('natPmpResultError', () => {
  it('maps the RFC 6886 result codes to typed errors', () => {
    assert.ok(natPmpResultError(1, 'x') instanceof UnsupportedError);
    assert.ok(natPmpResultError(2, 'x') instanceof NotAuthorizedError);
    // Result 3 is what miniupnpd sends when its WAN address is private (double NAT) or missing.
    const network = natPmpResultError(3, 'x');
    assert.ok(network instanceof NoWanAddressError);
    assert.equal(network.code, 'FD_NO_WAN_ADDRESS');
    assert.equal((natPmpResultError(4, 'x') as ResultCodeError).resultCode, 4);
    assert.ok(natPmpResultError(5, 'x') instanceof UnsupportedError);
    assert.equal((natPmpResultError(99, 'x') as ResultCodeError).resultCode, 99);
  });
});
