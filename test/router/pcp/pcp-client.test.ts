import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  AbortedError,
  ListingUnsupportedError,
  NoGatewayError,
  NotAuthorizedError,
  PortConflictError,
  ResultCodeError,
  RouterTimeoutError,
  UnsupportedError,
} from '../../../src/router/errors.js';
import { encodePcpResponse } from '../../../src/router/pcp/codec.js';
import { PcpClient, probePcp } from '../../../src/router/pcp/pcp-client.js';
import type { MappingRequest } from '../../../src/router/types.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { closedPort, FakeGateway } from '../natpmp/fake-gateway.js';

const WAN = [203, 0, 114, 1];

interface AnswerOptions {
  epoch?: number;
  result?: number;
  /** External ports held by other hosts: granted the next free one, as miniupnpd does. */
  taken?: number[];
  /** miniupnpd raises short lifetimes to its minimum (120 s). */
  minLifetime?: number;
  nonce?: Buffer;
  wan?: number[];
}

/** Answers like miniupnpd: the request rewritten in place into a response. */
function answer(req: Buffer, o: AnswerOptions = {}): Buffer {
  const r = Buffer.from(req);
  r[1] = r[1]! | 0x80;
  const result = o.result ?? 0;
  r[3] = result;
  let lifetime = req.readUInt32BE(4);
  if (lifetime > 0 && lifetime < (o.minLifetime ?? 0)) lifetime = o.minLifetime!;
  if (result !== 0) lifetime = 0;
  r.writeUInt32BE(lifetime, 4);
  r.writeUInt32BE(o.epoch ?? 1000, 8);
  r.fill(0, 12, 24);
  if ((req[1]! & 0x7f) === 1 && r.length >= 60) {
    let ext = req.readUInt16BE(42) || req.readUInt16BE(40);
    while (o.taken?.includes(ext)) ext++;
    r.writeUInt16BE(ext, 42);
    Buffer.from(o.wan ?? WAN).copy(r, 56);
    if (o.nonce) o.nonce.copy(r, 24);
  }
  return r;
}

const nonceOf = (req: Buffer) => req.subarray(24, 36);

const web = (externalPort = 9090): MappingRequest => ({
  externalPort,
  internalPort: 9090,
  protocol: 'TCP',
  leaseSeconds: 60,
  description: 'frontdoor',
});

describe('PcpClient', () => {
  let gw: FakeGateway;
  let clock: ManualClock;
  let client: PcpClient;
  let resets: string[];

  beforeEach(async () => {
    gw = await FakeGateway.start();
    clock = new ManualClock(5_000_000);
    resets = [];
    client = new PcpClient(
      { clock },
      { gateway: '127.0.0.1', localAddress: '127.0.0.1', port: gw.port, onReset: (r) => resets.push(r) },
    );
  });

  afterEach(() => {
    client.close();
    gw.close();
  });

  it('is a PCP PortMapper that cannot list', async () => {
    assert.equal(client.protocol, 'pcp');
    assert.equal(client.canList, false);
    await assert.rejects(client.list(), ListingUnsupportedError);
  });

  it('claims with a MAP request and reports the lifetime granted (60 s asked, 120 s given)', async () => {
    gw.handler = (req, reply) => reply(answer(req, { minLifetime: 120 }));
    const m = await client.claim(web());
    const req = gw.received[0]!;
    assert.equal(req[0], 2, 'version');
    assert.equal(req[1], 1, 'MAP request');
    assert.equal(req.readUInt32BE(4), 60, 'lifetime in seconds');
    assert.deepEqual([...req.subarray(8, 24)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    assert.equal(req[36], 6, 'TCP');
    assert.equal(req.readUInt16BE(40), 9090);
    assert.equal(req.readUInt16BE(42), 9090);
    assert.deepEqual([...req.subarray(44, 60)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);
    assert.deepEqual([...req.subarray(60)], [2, 0, 0, 0], 'PREFER_FAILURE');
    assert.deepEqual(m, {
      protocol: 'TCP',
      externalPort: 9090,
      internalClient: '127.0.0.1',
      internalPort: 9090,
      leaseSeconds: 120,
      description: 'frontdoor',
      enabled: true,
      remoteHost: '',
      via: 'pcp',
    });
  });

  it('turns a substitute port into PortConflictError and deletes it with the same nonce', async () => {
    gw.handler = (req, reply) => reply(answer(req, { taken: [9090] }));
    const err = await client.claim(web()).catch((e: unknown) => e);
    assert.ok(err instanceof PortConflictError, String(err));
    assert.equal(err.externalPort, 9090);
    assert.equal(err.offeredPort, 9091);
    assert.equal(gw.received.length, 2);
    const [create, del] = gw.received as [Buffer, Buffer];
    assert.equal(del.readUInt32BE(4), 0, 'lifetime 0');
    assert.deepEqual(nonceOf(del), nonceOf(create));
    assert.equal(del[36], 6);
    assert.equal(del.readUInt16BE(40), 9090);
  });

  it('reuses the nonce of a mapping on renewal, and uses another for another mapping', async () => {
    gw.handler = (req, reply) => reply(answer(req));
    await client.claim(web());
    await client.claim(web());
    await client.claim({ ...web(9191), internalPort: 9191 });
    await client.claim({ ...web(), protocol: 'UDP' });
    const [a, b, c, d] = gw.received.map(nonceOf);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.notDeepEqual(a, d);
  });

  it('ignores an answer with a wrong nonce', async () => {
    gw.handler = (req, reply) => {
      reply(answer(req, { nonce: Buffer.alloc(12, 7), taken: [9090] }));
      reply(answer(req));
    };
    const m = await client.claim(web());
    assert.equal(m.externalPort, 9090);
    assert.equal(gw.received.length, 1);
  });

  it('ignores answers from another address', async () => {
    const impostor = await FakeGateway.start('127.0.0.2', gw.port);
    try {
      gw.handler = async (req, reply, from) => {
        await impostor.sendTo(answer(req, { wan: [6, 6, 6, 6] }), from.port, from.address);
        reply(answer(req));
      };
      await client.claim(web());
      assert.equal(await client.externalAddress(), '203.0.114.1');
    } finally {
      impostor.close();
    }
  });

  it('retries without PREFER_FAILURE when the server does not support the option', async () => {
    gw.handler = (req, reply) => reply(answer(req, { result: req.length > 60 ? 5 : 0 }));
    const m = await client.claim(web());
    assert.equal(m.externalPort, 9090);
    assert.equal(gw.received.length, 2);
    assert.equal(gw.received[1]!.length, 60);
  });

  it('reads CANNOT_PROVIDE_EXTERNAL under PREFER_FAILURE as a conflict', async () => {
    gw.handler = (req, reply) => reply(answer(req, { result: 11 }));
    const err = await client.claim(web()).catch((e: unknown) => e);
    assert.ok(err instanceof PortConflictError);
    assert.equal(err.offeredPort, undefined);
  });

  it('maps result codes to typed errors', async () => {
    const cases: Array<[number, (e: unknown) => boolean]> = [
      [1, (e) => e instanceof UnsupportedError],
      [2, (e) => e instanceof NotAuthorizedError],
      [8, (e) => e instanceof ResultCodeError && e.resultCode === 8],
      [12, (e) => e instanceof ResultCodeError && e.resultCode === 12],
    ];
    for (const [code, check] of cases) {
      gw.handler = (req, reply) => reply(answer(req, { result: code }));
      const err = await client.claimAny(web()).catch((e: unknown) => e);
      assert.ok(check(err), `result ${code} gave ${String(err)}`);
    }
  });

  it('says "unsupported" when the server speaks only NAT-PMP', async () => {
    gw.handler = (_req, reply) => reply(encodePcpResponse({ kind: 'other-version', serverVersion: 0, opcode: 1 }));
    const err = await client.claim(web()).catch((e: unknown) => e);
    assert.ok(err instanceof UnsupportedError);
    assert.match(err.message, /NAT-PMP/);
  });

  it('takes the external address from a fresh MAP answer without asking again', async () => {
    gw.handler = (req, reply) => reply(answer(req));
    await client.claim(web());
    assert.equal(await client.externalAddress(), '203.0.114.1');
    assert.equal(gw.received.length, 1);
  });

  it('otherwise maps its own socket port briefly and deletes it', async () => {
    gw.handler = (req, reply) => reply(answer(req, { minLifetime: 120 }));
    assert.equal(await client.externalAddress(), '203.0.114.1');
    assert.equal(gw.received.length, 2);
    const [map, del] = gw.received as [Buffer, Buffer];
    assert.equal(map[36], 17, 'UDP');
    assert.equal(map.readUInt16BE(40), gw.senders[0]!.port, "the client's own port");
    assert.ok(map.readUInt32BE(4) > 0);
    assert.equal(del.readUInt32BE(4), 0);
    assert.deepEqual(nonceOf(del), nonceOf(map));
    // Still fresh: no new requests.
    clock.advance(30_000);
    await client.externalAddress();
    assert.equal(gw.received.length, 2);
    clock.advance(31_000);
    await client.externalAddress();
    assert.equal(gw.received.length, 4);
  });

  it('release deletes with the nonce of the claim and treats NO_RESOURCES as already gone', async () => {
    gw.handler = (req, reply) => reply(answer(req));
    await client.claim(web());
    gw.handler = (req, reply) => reply(answer(req, { result: 8 }));
    await client.release({ protocol: 'TCP', externalPort: 9090, internalPort: 9090 });
    assert.deepEqual(nonceOf(gw.received[1]!), nonceOf(gw.received[0]!));
    assert.equal(gw.received[1]!.readUInt32BE(4), 0);
    gw.handler = (req, reply) => reply(answer(req, { result: 2 }));
    await assert.rejects(client.release({ protocol: 'TCP', externalPort: 9090, internalPort: 9090 }), NotAuthorizedError);
  });

  it('calls onReset when the epoch goes back, and forgets the cached address', async () => {
    let epoch = 7200;
    gw.handler = (req, reply) => reply(answer(req, { epoch }));
    await client.claim(web());
    clock.advance(20_000);
    epoch = 7220;
    await client.claim(web());
    assert.equal(client.resets, 0);
    clock.advance(20_000);
    epoch = 1;
    await client.release({ protocol: 'TCP', externalPort: 9090, internalPort: 9090 });
    assert.equal(client.resets, 1);
    assert.equal(resets.length, 1);
    assert.match(resets[0]!, /7220/);
    const before = gw.received.length;
    await client.externalAddress();
    assert.equal(gw.received.length, before + 2, 'the address is asked again after a reset');
  });

  it('keeps concurrent requests apart', async () => {
    const held: Array<() => void> = [];
    gw.handler = (req, reply) => {
      held.push(() => reply(answer(req)));
      if (held.length === 2) for (const send of held.reverse()) send();
    };
    const [a, b] = await Promise.all([
      client.claim({ ...web(7001), internalPort: 7001 }),
      client.claim({ ...web(7002), internalPort: 7002 }),
    ]);
    assert.equal(a.externalPort, 7001);
    assert.equal(b.externalPort, 7002);
  });

  it('times out with RouterTimeoutError and aborts with AbortedError', async () => {
    const timedOut = client.claim(web()).catch((e: unknown) => e);
    await gw.requests(1);
    clock.advance(2000);
    assert.ok((await timedOut) instanceof RouterTimeoutError);
    const ac = new AbortController();
    const aborted = client.claim(web(), ac.signal).catch((e: unknown) => e);
    await gw.requests(5);
    ac.abort();
    assert.ok((await aborted) instanceof AbortedError);
  });
});

describe('probePcp', () => {
  it('sends ANNOUNCE and resolves with the epoch and version', async () => {
    const gw = await FakeGateway.start();
    gw.handler = (req, reply) => reply(answer(req, { epoch: 77 }));
    try {
      const r = await probePcp({ gateway: '127.0.0.1', localAddress: '127.0.0.1', port: gw.port, clock: new ManualClock() });
      assert.deepEqual(r, { epoch: 77, elapsedMs: 0, version: 2 });
      assert.equal(gw.received[0]!.length, 24);
      assert.equal(gw.received[0]![1], 0, 'ANNOUNCE');
    } finally {
      gw.close();
    }
  });

  it('rejects with UnsupportedError when the server speaks only NAT-PMP', async () => {
    const gw = await FakeGateway.start();
    gw.handler = (_req, reply) => reply(Buffer.from([0, 0x80, 0, 1, 0, 0, 0, 9]));
    try {
      await assert.rejects(
        probePcp({ gateway: '127.0.0.1', localAddress: '127.0.0.1', port: gw.port, clock: new ManualClock() }),
        UnsupportedError,
      );
    } finally {
      gw.close();
    }
  });

  it('ends early with NoGatewayError on ICMP port unreachable', async () => {
    const port = await closedPort();
    await assert.rejects(
      probePcp({ gateway: '127.0.0.1', localAddress: '127.0.0.1', port, clock: new ManualClock() }),
      NoGatewayError,
    );
  });
});
