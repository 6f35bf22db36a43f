import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { RouterEmulator } from '../../../src/router/emulator/router-emulator.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { http, soap, udpExchange } from './raw.js';

const map = (port: number, client = '127.0.0.1', lease = 3600, internalPort = port) => ({
  NewRemoteHost: '',
  NewExternalPort: port,
  NewProtocol: 'TCP',
  NewInternalPort: internalPort,
  NewInternalClient: client,
  NewEnabled: 1,
  NewPortMappingDescription: 'test',
  NewLeaseDuration: lease,
});

describe('router emulator: UPnP IGD', () => {
  const clock = { clock: new ManualClock(1_000_000) };
  let router: RouterEmulator;
  let ctl: string;

  before(async () => {
    router = new RouterEmulator({ clock: clock.clock });
    await router.start();
    ctl = `http://127.0.0.1:${router.ports.http}/ctl/IPConn`;
  });
  after(() => router.stop());

  it('answers an M-SEARCH for the IGDv2 device with LOCATION, USN, SERVER and CACHE-CONTROL', async () => {
    const st = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2';
    const search = `M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${st}\r\n\r\n`;
    const answers = await udpExchange(router.ports.ssdp, search, { max: 1 });
    assert.equal(answers.length, 1);
    const text = answers[0]!.msg.toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, new RegExp(`\r\nST: ${st}\r\n`));
    assert.match(text, new RegExp(`\r\nUSN: uuid:[0-9a-f-]+::${st}\r\n`));
    assert.match(text, /\r\nCACHE-CONTROL: max-age=120\r\n/);
    assert.match(text, /\r\nSERVER: .*UPnP\/1\.1 MiniUPnPd\/2\.3\.1\r\n/);
    assert.ok(text.includes(`\r\nLOCATION: ${router.location}\r\n`));
    assert.equal(answers[0]!.port, router.ports.ssdp);
  });

  it('answers ssdp:all with every type and the three UUIDs, and ignores unknown types', async () => {
    const all = await udpExchange(router.ports.ssdp, 'M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n', { waitMs: 200 });
    const sts = all.map((a) => /\r\nST: (.*)\r\n/.exec(a.msg.toString())![1]);
    assert.ok(sts.includes('urn:schemas-upnp-org:service:WANIPConnection:2'));
    assert.ok(sts.includes('upnp:rootdevice'));
    assert.equal(sts.filter((s) => s!.startsWith('uuid:')).length, 3);
    const none = await udpExchange(router.ports.ssdp, 'M-SEARCH * HTTP/1.1\r\nST: urn:x:device:Toaster:1\r\n\r\n', { waitMs: 150 });
    assert.equal(none.length, 0);
  });

  it('serves a description that parses and names WANIPConnection:2 with its control URL', async () => {
    const res = await http(router.location);
    assert.equal(res.status, 200);
    const doc = new XMLParser().parse(res.body);
    const igd = doc.root.device;
    assert.equal(igd.deviceType, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2');
    const wcd = igd.deviceList.device.deviceList.device;
    assert.equal(wcd.serviceList.service.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:2');
    assert.equal(wcd.serviceList.service.controlURL, '/ctl/IPConn');
  });

  it('reports the WAN address', async () => {
    const r = await soap(ctl, 'GetExternalIPAddress', {});
    assert.equal(r.status, 200);
    assert.equal(r.arg('NewExternalIPAddress'), '127.0.1.1');
  });

  it('maps a port, renews it for the same client, and refuses it to another client with 718', async () => {
    const a = await soap(ctl, 'AddPortMapping', map(18080));
    assert.equal(a.status, 200);
    assert.equal(a.errorCode, undefined);
    const again = await soap(ctl, 'AddPortMapping', { ...map(18080), NewPortMappingDescription: 'renewed' });
    assert.equal(again.errorCode, undefined);
    assert.equal(router.mappings().find((m) => m.externalPort === 18080)?.description, 'renewed');
    const other = await soap(ctl, 'AddPortMapping', map(18080, '127.0.0.2'), { localAddress: '127.0.0.2' });
    assert.equal(other.status, 500);
    assert.equal(other.errorCode, 718);
    assert.equal(router.mappings().find((m) => m.externalPort === 18080)?.internalClient, '127.0.0.1');
  });

  it('refuses under secure mode a mapping to someone else (718 in 2.3.1) and a delete of someone else’s (606)', async () => {
    const foreign = await soap(ctl, 'AddPortMapping', map(18081, '127.0.0.9'));
    assert.equal(foreign.errorCode, 718);
    await soap(ctl, 'AddPortMapping', map(18082));
    const del = await soap(ctl, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: 18082, NewProtocol: 'TCP' }, { localAddress: '127.0.0.2' });
    assert.equal(del.errorCode, 606);
    assert.ok(router.mappings().some((m) => m.externalPort === 18082));
    const own = await soap(ctl, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: 18082, NewProtocol: 'TCP' });
    assert.equal(own.errorCode, undefined);
    assert.ok(!router.mappings().some((m) => m.externalPort === 18082));
    const missing = await soap(ctl, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: 18082, NewProtocol: 'TCP' });
    assert.equal(missing.errorCode, 714);
  });

  it('refuses ports below 1024 with 606', async () => {
    const r = await soap(ctl, 'AddPortMapping', map(80, '127.0.0.1', 3600, 8080));
    assert.equal(r.errorCode, 606);
  });

  it('answers 714 for a missing specific entry and 713 past the end of the table', async () => {
    const spec = await soap(ctl, 'GetSpecificPortMappingEntry', { NewRemoteHost: '', NewExternalPort: 19999, NewProtocol: 'TCP' });
    assert.equal(spec.errorCode, 714);
    const n = router.mappings().length;
    const first = await soap(ctl, 'GetGenericPortMappingEntry', { NewPortMappingIndex: 0 });
    assert.equal(first.arg('NewExternalPort'), String(router.mappings()[0]!.externalPort));
    const past = await soap(ctl, 'GetGenericPortMappingEntry', { NewPortMappingIndex: n });
    assert.equal(past.errorCode, 713);
  });

  it('AddAnyPortMapping gives the asked port when free and another one when taken', async () => {
    await soap(ctl, 'AddPortMapping', map(18090, '127.0.0.2'), { localAddress: '127.0.0.2' });
    const free = await soap(ctl, 'AddAnyPortMapping', map(18091));
    assert.equal(free.arg('NewReservedPort'), '18091');
    const taken = await soap(ctl, 'AddAnyPortMapping', map(18090));
    const port = Number(taken.arg('NewReservedPort'));
    assert.notEqual(port, 18090);
    assert.ok(router.mappings().some((m) => m.externalPort === port && m.internalClient === '127.0.0.1'));
  });

  it('lists mappings with GetListOfPortMappings as a PortMappingList document', async () => {
    const r = await soap(ctl, 'GetListOfPortMappings', {
      NewStartPort: 18000,
      NewEndPort: 18100,
      NewProtocol: 'TCP',
      NewManage: 1,
      NewNumberOfPorts: 0,
    });
    assert.equal(r.errorCode, undefined);
    const outer = new XMLParser({ removeNSPrefix: true }).parse(r.body);
    const listing: string = outer.Envelope.Body.GetListOfPortMappingsResponse.NewPortListing;
    const list = new XMLParser({ removeNSPrefix: true, isArray: (n) => n === 'PortMappingEntry' }).parse(listing);
    const ports = list.PortMappingList.PortMappingEntry.map((e: { NewExternalPort: number }) => e.NewExternalPort);
    assert.ok(ports.includes(18080));
    assert.ok(ports.includes(18090));
  });

  it('expires leases on the injected clock, and turns an IGDv2 lease of 0 into a week', async () => {
    await soap(ctl, 'AddPortMapping', map(18100, '127.0.0.1', 5));
    const zero = await soap(ctl, 'AddPortMapping', map(18101, '127.0.0.1', 0));
    assert.equal(zero.errorCode, undefined);
    const spec = await soap(ctl, 'GetSpecificPortMappingEntry', { NewRemoteHost: '', NewExternalPort: 18101, NewProtocol: 'TCP' });
    assert.equal(spec.arg('NewLeaseDuration'), '604800');
    clock.clock.advance(4_000);
    assert.ok(router.mappings().some((m) => m.externalPort === 18100));
    clock.clock.advance(1_000);
    assert.ok(!router.mappings().some((m) => m.externalPort === 18100));
    const other = await soap(ctl, 'AddPortMapping', map(18100, '127.0.0.2', 5), { localAddress: '127.0.0.2' });
    assert.equal(other.errorCode, undefined);
  });

  it('rejects malformed requests without changing the table', async () => {
    const before = JSON.stringify(router.mappings());
    const bad = await http(ctl, {
      method: 'POST',
      headers: { SOAPAction: '"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"' },
      body: '<s:Envelope><NewExternalPort>1',
    });
    assert.equal(bad.status, 500);
    assert.match(bad.body, /<errorCode>402<\/errorCode>/);
    const big = await http(ctl, {
      method: 'POST',
      headers: { SOAPAction: '"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"' },
      body: Buffer.alloc(70 * 1024, 0x41),
    }).catch(() => ({ status: 413 }));
    assert.equal(big.status, 413);
    const noAction = await http(ctl, { method: 'POST', body: '<x/>' });
    assert.equal(noAction.status, 400);
    const unknown = await soap(ctl, 'MakeCoffee', {});
    assert.equal(unknown.errorCode, 401);
    assert.equal(JSON.stringify(router.mappings()), before);
  });
});

describe('router emulator: quirks and IGDv1', () => {
  it('an IGDv1-only router has no AddAnyPortMapping and does not answer IGDv2 searches', async () => {
    const router = new RouterEmulator({ igdVersion: 1 });
    await router.start();
    try {
      const ctl = `http://127.0.0.1:${router.ports.http}/ctl/IPConn`;
      const v1 = 'urn:schemas-upnp-org:service:WANIPConnection:1';
      const any = await soap(ctl, 'AddAnyPortMapping', map(18200), { serviceType: v1 });
      assert.equal(any.errorCode, 401);
      const v2search = await udpExchange(router.ports.ssdp, 'M-SEARCH * HTTP/1.1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n\r\n', { waitMs: 150 });
      assert.equal(v2search.length, 0);
      const v1search = await udpExchange(router.ports.ssdp, 'M-SEARCH * HTTP/1.1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n', { max: 1 });
      assert.equal(v1search.length, 1);
      // IGDv1 keeps a lease of 0 as permanent.
      const perm = await soap(ctl, 'AddPortMapping', map(18201, '127.0.0.1', 0), { serviceType: v1 });
      assert.equal(perm.errorCode, undefined);
      assert.equal(router.mappings()[0]!.leaseSeconds, 0);
    } finally {
      await router.stop();
    }
  });

  it('onlyPermanentLeases answers 725 to a lease, accepts 0; locationHost and ssdpReplyPort change the answer', async () => {
    const router = new RouterEmulator({ igdVersion: 1, onlyPermanentLeases: true });
    await router.start();
    try {
      const ctl = `http://127.0.0.1:${router.ports.http}/ctl/IPConn`;
      const st = 'urn:schemas-upnp-org:service:WANIPConnection:1';
      assert.equal((await soap(ctl, 'AddPortMapping', map(18300, '127.0.0.1', 60), { serviceType: st })).errorCode, 725);
      assert.equal((await soap(ctl, 'AddPortMapping', map(18300, '127.0.0.1', 0), { serviceType: st })).errorCode, undefined);
      router.setQuirks({ locationHost: '127.0.0.3', ssdpReplyPort: 0 });
      const ans = await udpExchange(router.ports.ssdp, `M-SEARCH * HTTP/1.1\r\nST: ${st}\r\n\r\n`, { max: 1 });
      assert.equal(ans.length, 1);
      assert.notEqual(ans[0]!.port, router.ports.ssdp);
      assert.match(ans[0]!.msg.toString(), new RegExp(`LOCATION: http://127\\.0\\.0\\.3:${router.ports.http}/rootDesc\\.xml`));
      assert.equal(router.location, `http://127.0.0.3:${router.ports.http}/rootDesc.xml`);
    } finally {
      await router.stop();
    }
  });

  it('refuses non-loopback addresses', () => {
    assert.throws(() => new RouterEmulator({ address: '192.168.1.1' }), { name: 'NotLoopbackError' });
    assert.throws(() => new RouterEmulator({ wanAddress: '8.8.8.8' }), { name: 'NotLoopbackError' });
    const r = new RouterEmulator();
    assert.throws(() => r.setWanAddress('10.0.0.1'), { name: 'NotLoopbackError' });
  });

  it('start and stop are idempotent', async () => {
    const r = new RouterEmulator();
    await Promise.all([r.start(), r.start()]);
    const { http: port } = r.ports;
    assert.ok(port > 0);
    await r.stop();
    await r.stop();
    await assert.rejects(http(`http://127.0.0.1:${port}/rootDesc.xml`));
  });
});

describe('router emulator: forwarding', () => {
  it('pipes bytes from wanAddress:externalPort to the internal client, and stops when the mapping goes', async () => {
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const echoPort = (echo.address() as { port: number }).port;
    const router = new RouterEmulator({ forward: true, wanAddress: '127.0.1.7' });
    await router.start();
    try {
      const ctl = `http://127.0.0.1:${router.ports.http}/ctl/IPConn`;
      const ext = 20000 + (echoPort % 20000);
      assert.equal((await soap(ctl, 'AddPortMapping', map(ext, '127.0.0.1', 3600, echoPort))).errorCode, undefined);
      // The forwarder binds right after the mapping is made; allow it a few turns of the loop.
      let reply = '';
      for (let i = 0; i < 50 && reply === ''; i++) {
        reply = await roundTrip('127.0.1.7', ext, 'hello through the router').catch(() => '');
        if (reply === '') await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(reply, 'hello through the router');
      await soap(ctl, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: ext, NewProtocol: 'TCP' });
      await new Promise((r) => setImmediate(r));
      await assert.rejects(roundTrip('127.0.1.7', ext, 'x'));
    } finally {
      await router.stop();
      echo.close();
    }
  });
});

async function roundTrip(host: string, port: number, text: string): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    let got = '';
    const s = connect({ host, port }, () => s.write(text));
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.length >= text.length) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('close', () => {
      if (got.length < text.length) reject(new Error('closed early'));
    });
  });
}
