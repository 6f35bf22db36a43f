import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  AbortedError,
  BadResponseError,
  ListingUnsupportedError,
  NoGatewayError,
  NoWanAddressError,
  NotAuthorizedError,
  PortConflictError,
  ResultCodeError,
  RouterTimeoutError,
  UnsupportedError,
} from '../../../src/router/errors.js';
import { encodeNatPmpResponse } from '../../../src/router/natpmp/codec.js';
import { NatPmpClient, probeNatPmp } from '../../../src/router/natpmp/natpmp-client.js';
import type { MappingRequest } from '../../../src/router/types.js';
import { silentLogger } from '../../../src/runtime/log.js';
import type { Logger } from '../../../src/runtime/log.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { closedPort, FakeGateway, tick } from './fake-gateway.js';

const WAN = '203.0.114.1';

/** What miniupnpd does: the asked port unless it is in `taken`, then the next free one. */
function mapAnswer(req: Buffer, epoch: number, opts: { taken?: number[]; lifetime?: number } = {}): Buffer {
  const opcode = req[1]! as 1 | 2;
  const internalPort = req.readUInt16BE(4);
  let externalPort = req.readUInt16BE(6) || internalPort;
  const lifetime = req.readUInt32BE(8);
  if (lifetime === 0) externalPort = 0;
  while (opts.taken?.includes(externalPort)) externalPort++;
  return encodeNatPmpResponse({
    kind: 'map',
    opcode,
    protocol: opcode === 2 ? 'TCP' : 'UDP',
    resultCode: 0,
    epoch,
    internalPort,
    externalPort,
    lifetimeSeconds: lifetime === 0 ? 0 : (opts.lifetime ?? lifetime),
  });
}

function addressAnswer(epoch: number, address = WAN): Buffer {
  return encodeNatPmpResponse({ kind: 'address', opcode: 0, resultCode: 0, epoch, externalAddress: address });
}

const http = (externalPort = 8080): MappingRequest => ({
  externalPort,
  internalPort: 8080,
  protocol: 'TCP',
  leaseSeconds: 3600,
  description: 'frontdoor',
});

describe('NatPmpClient', () => {
  let gw: FakeGateway;
  let clock: ManualClock;
  let client: NatPmpClient;
  let resets: string[];

  beforeEach(async () => {
    gw = await FakeGateway.start();
    clock = new ManualClock(1_000_000);
    resets = [];
    client = new NatPmpClient(
      { clock },
      { gateway: '127.0.0.1', localAddress: '127.0.0.1', port: gw.port, onReset: (r) => resets.push(r) },
    );
  });

  afterEach(() => {
    client.close();
    gw.close();
  });

  it('is a NAT-PMP PortMapper that cannot list', async () => {
    assert.equal(client.protocol, 'natpmp');
    assert.equal(client.canList, false);
    assert.equal(client.gateway, '127.0.0.1');
    await assert.rejects(client.list(), ListingUnsupportedError);
  });

  it('reads the external address', async () => {
    gw.handler = (_req, reply) => reply(addressAnswer(10));
    assert.equal(await client.externalAddress(), WAN);
    assert.deepEqual(gw.received, [Buffer.from([0, 0])]);
  });

  it('claims a free port with the lifetime in seconds and reports what was granted', async () => {
    gw.handler = (req, reply) => reply(mapAnswer(req, 10, { lifetime: 1800 }));
    const m = await client.claim(http());
    assert.equal(gw.received[0]!.readUInt32BE(8), 3600, 'lifetime on the wire is seconds');
    assert.deepEqual(m, {
      protocol: 'TCP',
      externalPort: 8080,
      internalClient: '127.0.0.1',
      internalPort: 8080,
      leaseSeconds: 1800,
      description: 'frontdoor',
      enabled: true,
      remoteHost: '',
      via: 'natpmp',
    });
  });

  it('asks 7200 s when a permanent lease (0) is wanted, since 0 would delete', async () => {
    gw.handler = (req, reply) => reply(mapAnswer(req, 10));
    await client.claim({ ...http(), leaseSeconds: 0 });
    assert.equal(gw.received[0]!.readUInt32BE(8), 7200);
  });

  it('turns a substitute port into PortConflictError and releases the stray mapping', async () => {
    gw.handler = (req, reply) => reply(mapAnswer(req, 10, { taken: [8080] }));
    const err = await client.claim(http()).catch((e: unknown) => e);
    assert.ok(err instanceof PortConflictError);
    assert.equal(err.externalPort, 8080);
    assert.equal(err.offeredPort, 8081);
    assert.equal(gw.received.length, 2);
    const release = gw.received[1]!;
    assert.equal(release[1], 2, 'TCP');
    assert.equal(release.readUInt16BE(4), 8080, 'internal port');
    assert.equal(release.readUInt16BE(6), 8081, 'the offered port, so old miniupnpd deletes the right one');
    assert.equal(release.readUInt32BE(8), 0, 'lifetime 0 deletes');
  });

  it('claimAny keeps the port the router offers', async () => {
    gw.handler = (req, reply) => reply(mapAnswer(req, 10, { taken: [8080] }));
    const m = await client.claimAny(http());
    assert.equal(m.externalPort, 8081);
    assert.equal(gw.received.length, 1);
  });

  it('release sends lifetime 0 and accepts the deletion answer', async () => {
    gw.handler = (req, reply) => reply(mapAnswer(req, 10));
    await client.release({ protocol: 'UDP', externalPort: 9000, internalPort: 9001 });
    const req = gw.received[0]!;
    assert.equal(req[1], 1, 'UDP');
    assert.equal(req.readUInt16BE(4), 9001);
    assert.equal(req.readUInt32BE(8), 0);
  });

  it('resends after 250 ms when the first request is lost', async () => {
    gw.handler = (_req, reply, _from, i) => {
      if (i > 0) reply(addressAnswer(10));
    };
    const result = client.externalAddress();
    await gw.requests(1);
    clock.advance(249);
    await tick();
    assert.equal(gw.received.length, 1, 'no resend before 250 ms');
    clock.advance(1);
    assert.equal(await result, WAN);
    assert.equal(gw.received.length, 2);
    assert.deepEqual(gw.received[1], gw.received[0]);
  });

  it('doubles the resend interval and gives RouterTimeoutError at the overall timeout', async () => {
    const result = client.externalAddress().catch((e: unknown) => e);
    await gw.requests(1);
    clock.advance(250);
    await gw.requests(2);
    clock.advance(499);
    await tick();
    assert.equal(gw.received.length, 2);
    clock.advance(1);
    await gw.requests(3);
    clock.advance(1000);
    await gw.requests(4);
    clock.advance(250); // 2000 ms in all
    const err = await result;
    assert.ok(err instanceof RouterTimeoutError, String(err));
    assert.equal(gw.received.length, 4);
  });

  it('ignores answers from another address or another port', async () => {
    const impostorSameAddress = await FakeGateway.start('127.0.0.1');
    const impostorOtherAddress = await FakeGateway.start('127.0.0.2', gw.port);
    try {
      gw.handler = async (_req, reply, from) => {
        await impostorSameAddress.sendTo(addressAnswer(10, '6.6.6.6'), from.port, from.address);
        await impostorOtherAddress.sendTo(addressAnswer(10, '7.7.7.7'), from.port, from.address);
        reply(addressAnswer(10));
      };
      assert.equal(await client.externalAddress(), WAN);
    } finally {
      impostorSameAddress.close();
      impostorOtherAddress.close();
    }
  });

  it('does not give one request the answer to another', async () => {
    const pending: Array<() => void> = [];
    gw.handler = (req, reply) => {
      pending.push(() => reply(mapAnswer(req, 10)));
      if (pending.length === 2) for (const send of pending.reverse()) send();
    };
    const [a, b] = await Promise.all([
      client.claim({ ...http(), internalPort: 1001, externalPort: 2001 }),
      client.claim({ ...http(), internalPort: 1002, externalPort: 2002 }),
    ]);
    assert.equal(a.internalPort, 1001);
    assert.equal(a.externalPort, 2001);
    assert.equal(b.internalPort, 1002);
    assert.equal(b.externalPort, 2002);
  });

  it('does not take a deletion answer for a creation of the same port', async () => {
    const answers: Buffer[] = [];
    gw.handler = (req, reply) => {
      answers.push(mapAnswer(req, 10));
      if (answers.length === 2) for (const a of answers.reverse()) reply(a);
    };
    const [claimed] = await Promise.all([
      client.claim(http()),
      client.release({ protocol: 'TCP', externalPort: 8080, internalPort: 8080 }),
    ]);
    assert.equal(claimed.leaseSeconds, 3600);
  });

  it('calls onReset when the epoch goes back (router reboot), not when it keeps pace', async () => {
    let epoch = 5000;
    gw.handler = (_req, reply) => reply(addressAnswer(epoch));
    await client.externalAddress();
    clock.advance(10_000);
    epoch = 5010;
    await client.externalAddress();
    assert.equal(client.resets, 0);
    clock.advance(10_000);
    epoch = 3;
    await client.externalAddress();
    assert.equal(client.resets, 1);
    assert.equal(resets.length, 1);
    assert.match(resets[0]!, /5010/);
  });

  it('maps result codes to typed errors', async () => {
    const cases: Array<[number, (e: unknown) => boolean]> = [
      [1, (e) => e instanceof UnsupportedError],
      [2, (e) => e instanceof NotAuthorizedError],
      [3, (e) => e instanceof NoWanAddressError],
      [4, (e) => e instanceof ResultCodeError && e.resultCode === 4],
      [5, (e) => e instanceof UnsupportedError],
    ];
    for (const [code, check] of cases) {
      gw.handler = (req, reply) =>
        reply(
          encodeNatPmpResponse({
            kind: 'map',
            opcode: 2,
            protocol: 'TCP',
            resultCode: code,
            epoch: 10,
            internalPort: req.readUInt16BE(4),
            externalPort: 0,
            lifetimeSeconds: 0,
          }),
        );
      const err = await client.claim(http()).catch((e: unknown) => e);
      assert.ok(check(err), `result ${code} gave ${String(err)}`);
    }
  });

  it('accepts the 8-byte error answer', async () => {
    gw.handler = (_req, reply) => reply(encodeNatPmpResponse({ kind: 'error', opcode: 2, resultCode: 1, epoch: 10 }));
    await assert.rejects(client.claim(http()), UnsupportedError);
  });

  it('says "unsupported" when the server speaks only PCP', async () => {
    gw.handler = (_req, reply) => reply(encodeNatPmpResponse({ kind: 'other-version', serverVersion: 2, opcode: 0 }));
    await assert.rejects(client.externalAddress(), UnsupportedError);
  });

  it('reports a garbled answer as BadResponseError when nothing better came', async () => {
    let sawMalformed = () => {};
    const ignored = new Promise<void>((resolve) => {
      sawMalformed = resolve;
    });
    const logger: Logger = {
      ...silentLogger,
      debug: (msg) => {
        if (msg.includes('malformed')) sawMalformed();
      },
      child: () => logger,
    };
    const c = new NatPmpClient({ clock, logger }, { gateway: '127.0.0.1', localAddress: '127.0.0.1', port: gw.port });
    try {
      gw.handler = (_req, reply) => reply(Buffer.from([0, 0x80, 0, 0]));
      const result = c.externalAddress().catch((e: unknown) => e);
      await ignored;
      clock.advance(2000);
      assert.ok((await result) instanceof BadResponseError);
    } finally {
      c.close();
    }
  });

  it('aborts with a typed error', async () => {
    const ac = new AbortController();
    const result = client.externalAddress(ac.signal).catch((e: unknown) => e);
    await gw.requests(1);
    ac.abort();
    assert.ok((await result) instanceof AbortedError);
    await assert.rejects(client.externalAddress(AbortSignal.abort()), AbortedError);
  });

  it('close() is idempotent and fails later requests', async () => {
    gw.handler = (_req, reply) => reply(addressAnswer(10));
    await client.externalAddress();
    client.close();
    client.close();
    await assert.rejects(client.externalAddress(), AbortedError);
  });

  it('rejects mapping for another host and bad ports before sending', async () => {
    await assert.rejects(client.claim({ ...http(), internalClient: '127.0.0.9' }), UnsupportedError);
    await assert.rejects(client.claim({ ...http(), externalPort: 0 }), RangeError);
    await assert.rejects(client.claimAny({ ...http(), internalPort: 0 }), RangeError);
    assert.equal(gw.received.length, 0);
  });
});

describe('NatPmpClient against a closed port', () => {
  it('fails at once with NoGatewayError on ICMP port unreachable', async () => {
    const port = await closedPort();
    const clock = new ManualClock();
    const client = new NatPmpClient({ clock }, { gateway: '127.0.0.1', localAddress: '127.0.0.1', port });
    try {
      // The manual clock never moves: only the ICMP error can end this.
      await assert.rejects(client.externalAddress(), NoGatewayError);
    } finally {
      client.close();
    }
  });
});

describe('probeNatPmp', () => {
  it('resolves with the external address and epoch on the first answer', async () => {
    const gw = await FakeGateway.start();
    const clock = new ManualClock();
    gw.handler = (_req, reply) => reply(addressAnswer(42));
    try {
      const r = await probeNatPmp({ gateway: '127.0.0.1', localAddress: '127.0.0.1', port: gw.port, clock });
      assert.deepEqual(r, { externalAddress: WAN, epoch: 42, elapsedMs: 0 });
    } finally {
      gw.close();
    }
  });

  it('rejects with RouterTimeoutError when nothing answers', async () => {
    const gw = await FakeGateway.start();
    const clock = new ManualClock();
    try {
      const r = probeNatPmp({ gateway: '127.0.0.1', localAddress: '127.0.0.1', port: gw.port, timeoutMs: 300, clock });
      const settled = r.catch((e: unknown) => e);
      await gw.requests(1);
      clock.advance(300);
      assert.ok((await settled) instanceof RouterTimeoutError);
    } finally {
      gw.close();
    }
  });

  it('ends early with NoGatewayError on ICMP port unreachable', async () => {
    const port = await closedPort();
    const clock = new ManualClock();
    await assert.rejects(
      probeNatPmp({ gateway: '127.0.0.1', localAddress: '127.0.0.1', port, clock }),
      NoGatewayError,
    );
  });
});
