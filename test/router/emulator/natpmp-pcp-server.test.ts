import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RouterEmulator } from '../../../src/router/emulator/router-emulator.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { natpmpMap, pcpMap, soap, udpExchange } from './raw.js';

async function ask(port: number, payload: Buffer, localAddress = '127.0.0.1'): Promise<Buffer> {
  const answers = await udpExchange(port, payload, { max: 1, waitMs: 1000, localAddress });
  assert.equal(answers.length, 1, 'expected one answer');
  return answers[0]!.msg;
}

describe('router emulator: NAT-PMP and PCP', () => {
  const clock = new ManualClock(5_000_000);
  let router: RouterEmulator;
  let pmp: number;

  before(async () => {
    router = new RouterEmulator({ clock, wanAddress: '127.0.1.1' });
    await router.start();
    pmp = router.ports.pmp;
  });
  after(() => router.stop());

  it('answers op 0 with the WAN address and seconds since start', async () => {
    clock.advance(7_500);
    const r = await ask(pmp, Buffer.from([0, 0]));
    assert.equal(r.length, 12);
    assert.equal(r[1], 128);
    assert.equal(r.readUInt16BE(2), 0);
    assert.equal(r.readUInt32BE(4), 7);
    assert.deepEqual([...r.subarray(8, 12)], [127, 0, 1, 1]);
  });

  it('maps a TCP port, and grants the next free one when it is taken, with the NAT-PMP description', async () => {
    const first = await ask(pmp, natpmpMap(2, 8080, 8080, 3600), '127.0.0.2');
    assert.equal(first.length, 16);
    assert.equal(first[1], 130);
    assert.equal(first.readUInt16BE(2), 0);
    assert.equal(first.readUInt16BE(10), 8080);
    assert.equal(first.readUInt32BE(12), 3600);
    const second = await ask(pmp, natpmpMap(2, 8080, 8080, 3600), '127.0.0.3');
    assert.equal(second.readUInt16BE(2), 0);
    assert.equal(second.readUInt16BE(10), 8081);
    const m = router.mappings().find((x) => x.externalPort === 8081);
    assert.equal(m?.description, 'NAT-PMP 8081 tcp');
    assert.equal(m?.internalClient, '127.0.0.3');
    // The mapping shows in the UPnP table too.
    const ctl = `http://127.0.0.1:${router.ports.http}/ctl/IPConn`;
    const spec = await soap(ctl, 'GetSpecificPortMappingEntry', { NewRemoteHost: '', NewExternalPort: 8081, NewProtocol: 'TCP' });
    assert.equal(spec.arg('NewPortMappingDescription'), 'NAT-PMP 8081 tcp');
  });

  it('renews for the same client, deletes with lifetime 0, and answers unsupported opcodes and versions', async () => {
    const renew = await ask(pmp, natpmpMap(2, 8080, 8080, 60), '127.0.0.2');
    assert.equal(renew.readUInt16BE(10), 8080);
    const del = await ask(pmp, natpmpMap(2, 8080, 0, 0), '127.0.0.2');
    assert.equal(del.readUInt16BE(2), 0);
    assert.equal(del.readUInt16BE(10), 0);
    assert.ok(!router.mappings().some((x) => x.externalPort === 8080));
    const op = await ask(pmp, Buffer.from([0, 9]));
    assert.equal(op.length, 8);
    assert.equal(op[1], 137);
    assert.equal(op.readUInt16BE(2), 5);
    // Version 1 goes to the PCP side: a 2-byte packet is too short for PCP and is dropped.
    assert.equal((await udpExchange(pmp, Buffer.from([1, 0]), { waitMs: 100 })).length, 0);
  });

  it('PCP MAP substitutes a taken port (9091 for 9090) even with PREFER_FAILURE, and clamps a 60 s lifetime to 120', async () => {
    const a = await ask(pmp, pcpMap({ client: '127.0.0.2', internalPort: 9090, externalPort: 9090, lifetime: 3600 }), '127.0.0.2');
    assert.equal(a.length, 60);
    assert.equal(a[0], 2);
    assert.equal(a[1], 0x81);
    assert.equal(a[3], 0);
    assert.equal(a.readUInt16BE(42), 9090);
    assert.deepEqual([...a.subarray(44, 60)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 1, 1]);
    const b = await ask(
      pmp,
      pcpMap({ client: '127.0.0.3', internalPort: 9090, externalPort: 9090, lifetime: 60, preferFailure: true }),
      '127.0.0.3',
    );
    assert.equal(b[3], 0);
    assert.equal(b.readUInt16BE(42), 9091);
    assert.equal(b.readUInt32BE(4), 120);
    // The nonce is echoed.
    assert.equal(b.subarray(24, 36).toString('hex'), '0102030405060708090a0b0c');
  });

  it('PCP refuses a client address that is not the sender (ADDRESS_MISMATCH) and an unknown version', async () => {
    const mm = await ask(pmp, pcpMap({ client: '127.0.0.9', internalPort: 9100, externalPort: 9100, lifetime: 600 }), '127.0.0.2');
    assert.equal(mm[3], 12);
    const v3 = pcpMap({ client: '127.0.0.2', internalPort: 9100, externalPort: 9100, lifetime: 600 });
    v3[0] = 3;
    const uv = await ask(pmp, v3, '127.0.0.2');
    assert.equal(uv[0], 2);
    assert.equal(uv[3], 1);
    assert.ok(!router.mappings().some((x) => x.externalPort === 9100));
  });

  it('NAT-PMP leases expire on the injected clock', async () => {
    await ask(pmp, natpmpMap(1, 7000, 7000, 10), '127.0.0.4');
    assert.ok(router.mappings().some((x) => x.externalPort === 7000 && x.protocol === 'UDP'));
    clock.advance(10_000);
    assert.ok(!router.mappings().some((x) => x.externalPort === 7000));
  });

  it('reboot clears the table and restarts the epoch', async () => {
    clock.advance(30_000);
    assert.ok(router.mappings().length > 0);
    const before = await ask(pmp, Buffer.from([0, 0]));
    assert.ok(before.readUInt32BE(4) >= 30);
    router.reboot();
    assert.equal(router.mappings().length, 0);
    const afterBoot = await ask(pmp, Buffer.from([0, 0]));
    assert.equal(afterBoot.readUInt32BE(4), 0);
    router.setWanAddress('127.0.2.2');
    const wan = await ask(pmp, Buffer.from([0, 0]));
    assert.deepEqual([...wan.subarray(8, 12)], [127, 0, 2, 2]);
  });
});

describe('router emulator: one protocol without the other', () => {
  it('NAT-PMP only answers a PCP request with NAT-PMP "unsupported version"', async () => {
    const router = new RouterEmulator({ upnp: false, pcp: false });
    await router.start();
    try {
      const r = await ask(router.ports.pmp, pcpMap({ client: '127.0.0.1', internalPort: 9200, externalPort: 9200, lifetime: 600 }));
      assert.equal(r.length, 8);
      assert.equal(r[0], 0);
      assert.equal(r[1], 129);
      assert.equal(r.readUInt16BE(2), 1);
      assert.equal(router.ports.http, 0);
    } finally {
      await router.stop();
    }
  });

  it('PCP only answers a NAT-PMP request with PCP UNSUPP_VERSION naming version 2', async () => {
    const router = new RouterEmulator({ upnp: false, natpmp: false });
    await router.start();
    try {
      const r = await ask(router.ports.pmp, natpmpMap(2, 9300, 9300, 600));
      assert.equal(r[0], 2);
      assert.equal(r[3], 1);
      assert.equal(router.mappings().length, 0);
    } finally {
      await router.stop();
    }
  });
});
