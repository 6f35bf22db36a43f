import fc from 'fast-check';

import type { Envelope, NodeInfo, PeerMessage, Sender } from '../../src/peers/messages.js';

/** Plain objects, as JSON.parse makes them: deepEqual compares prototypes. */
const PLAIN = { noNullPrototype: true } as const;

/** Valid values for every field of docs/protocol.md, edges included. */

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-'.split('');
const ID_UNIT = fc.constantFrom(...ID_CHARS);
/**
 * fast-check keeps strings and arrays short unless told otherwise ('small' size); limits are
 * where bugs live, so every bounded value also comes at full size.
 */
export const idArb = fc.oneof(
  fc.string({ unit: ID_UNIT, minLength: 1, maxLength: 64 }),
  fc.string({ unit: ID_UNIT, minLength: 1, maxLength: 64, size: 'max' }),
);

/** Printable, with the characters that cost most on the wire (4-byte UTF-8, JSON escapes). */
const NAME_UNIT = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }),
  fc.constantFrom('é', 'ü', 'ß', '東', '😀', '"', '\\', ' ', '\u00a0', '/'),
);
export const nameArb = fc.oneof(
  fc.string({ unit: NAME_UNIT, minLength: 1, maxLength: 63 }),
  fc.string({ unit: NAME_UNIT, minLength: 1, maxLength: 63, size: 'max' }),
);

export const ipArb = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('::', '::1', '0.0.0.0', 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255'),
);
export const wanArb = fc.oneof(ipArb, fc.constant(''));
export const optIdArb = fc.oneof(idArb, fc.constant(''));
export const portArb = fc.integer({ min: 0, max: 65535 });
export const countArb = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat());

export const senderArb: fc.Arbitrary<Sender> = fc.record({ id: idArb, boot: idArb }, PLAIN);

export const nodeArb: fc.Arbitrary<NodeInfo> = fc.record({
  name: nameArb,
  addresses: fc.oneof(fc.array(ipArb, { maxLength: 6 }), fc.array(ipArb, { maxLength: 6, size: 'max' })),
  localPort: portArb,
  publicPort: portArb,
  camera: fc.boolean(),
  rank: idArb,
}, PLAIN);

export const bodyArb: fc.Arbitrary<PeerMessage> = fc.oneof(
  fc.record({ type: fc.constant('claim' as const), node: nodeArb, attempt: countArb }, PLAIN),
  fc.record({ type: fc.constant('inquiry' as const), publicPort: portArb, wanAddress: wanArb, heir: optIdArb }, PLAIN),
  fc.record({ type: fc.constant('reply' as const), node: nodeArb }, PLAIN),
  fc.record({
    type: fc.constant('announce' as const),
    publicPort: portArb,
    wanAddress: wanArb,
    node: nodeArb,
    term: countArb,
    heir: optIdArb,
  }, PLAIN),
  fc.record({ type: fc.constant('withdraw' as const), wasRepresentative: fc.boolean(), successor: optIdArb }, PLAIN),
  fc.record({ type: fc.constant('probe' as const), nonce: idArb }, PLAIN),
  fc.record({ type: fc.constant('probe-ack' as const), nonce: idArb }, PLAIN),
);

export const envelopeArb: fc.Arbitrary<Envelope> = fc.record({
  from: senderArb,
  seq: countArb,
  sentAt: countArb,
  body: bodyArb,
}, PLAIN);

/** Property runs are part of every ordinary test run; this keeps the whole file under a few seconds. */
export const RUNS = { numRuns: 300 };
