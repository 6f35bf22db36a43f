import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mapperBoundTo } from '../../src/floating-address/bound-mapper.js';
import { discoverGateway, type ProtocolFamily } from '../../src/router/discover.js';
import { RouterEmulator } from '../../src/router/emulator/router-emulator.js';
import { PortConflictError } from '../../src/router/errors.js';
import { FakeMapper, FakeTable } from '../helpers/fake-mapper.js';

/**
 * The bound mapper against the embedded emulator in secure mode, on loopback: 127.0.0.1 is the
 * node's own address, 127.0.0.2 stands for the floating one (both are on lo).
 */

const emulators: RouterEmulator[] = [];
after(async () => {
  await Promise.all(emulators.map((e) => e.stop()));
});

const FLOATING = '127.0.0.2';
const req = (port: number) => ({
  externalPort: port,
  internalPort: 18080,
  protocol: 'TCP' as const,
  leaseSeconds: 60,
  description: 'frontdoor floating test',
});

async function discovered(protocol: ProtocolFamily) {
  const emu = new RouterEmulator({ address: '127.0.0.1' });
  emulators.push(emu);
  await emu.start();
  const d = await discoverGateway({
    gateway: '127.0.0.1',
    localAddress: '127.0.0.1',
    ssdpPort: emu.ports.ssdp,
    natpmpPort: emu.ports.pmp,
    multicast: false,
    timeoutMs: 1500,
    protocols: [protocol],
  });
  const base = d.mappers[0];
  assert.ok(base, `no ${protocol} mapper: ${JSON.stringify(d.failures)}`);
  return { emu, base };
}

describe('PortMapper.bindTo and mapperBoundTo', () => {
  for (const [family, protocol] of [
    ['upnp', 'upnp-igd2'],
    ['natpmp', 'natpmp'],
    ['pcp', 'pcp'],
  ] as const) {
    it(`${family}: the same kind of client, sending from the floating address, which becomes the internal client`, async () => {
      const { emu, base } = await discovered(family);
      // No port given: the emulator's NAT-PMP/PCP port is not 5351, so it must come from the base.
      const bound = base.bindTo(FLOATING);
      const again = mapperBoundTo(base, FLOATING);
      try {
        assert.equal(bound.protocol, protocol);
        assert.equal(bound.gateway, base.gateway);
        assert.equal(bound.localAddress, FLOATING);
        assert.equal(bound.canList, base.canList);
        assert.equal(base.localAddress, '127.0.0.1', 'the base is left as it was');
        const m = await bound.claim(req(8080));
        assert.equal(m.internalClient, FLOATING);
        assert.deepEqual(
          emu.mappings().map((e) => [e.externalPort, e.internalClient, e.internalPort]),
          [[8080, FLOATING, 18080]],
        );
        // Another holder of the address (a new client, as on the next representative) renews it.
        const renewed = await again.claim(req(8080));
        assert.equal(renewed.internalClient, FLOATING);
        assert.equal(emu.mappings().length, 1);
        // The node's own address may not take it over: in secure mode it is another host's port.
        await assert.rejects(base.claim(req(8080)), PortConflictError);
        await again.release({ protocol: 'TCP', externalPort: 8080, internalPort: 18080 });
        assert.equal(emu.mappings().length, 0);
      } finally {
        bound.close();
        again.close();
        base.close();
      }
    });

    it(`${family}: a wrapped client (a tracing proxy, its class renamed as a minifier does) still binds`, async () => {
      const { emu, base } = await discovered(family);
      const called: string[] = [];
      const minified = class a {};
      const wrapped = new Proxy(base, {
        get(target, key, receiver) {
          if (key === 'constructor') return minified;
          const v: unknown = Reflect.get(target, key, receiver);
          if (typeof v === 'function') called.push(String(key));
          return v;
        },
      });
      assert.equal(wrapped.constructor.name, 'a');
      const bound = mapperBoundTo(wrapped, FLOATING);
      try {
        assert.ok(called.includes('bindTo'), called.join(','));
        assert.equal(bound.protocol, protocol);
        assert.equal(bound.localAddress, FLOATING);
        assert.equal((await bound.claim(req(8081))).internalClient, FLOATING);
        assert.deepEqual(
          emu.mappings().map((e) => [e.externalPort, e.internalClient]),
          [[8081, FLOATING]],
        );
        await bound.release({ protocol: 'TCP', externalPort: 8081, internalPort: 18080 });
      } finally {
        bound.close();
        base.close();
      }
    });
  }

  it('refuses a non-IPv4 floating address; a fake mapper binds to its shared table', async () => {
    const table = new FakeTable();
    const fake = new FakeMapper(table, '192.168.77.10');
    assert.throws(() => mapperBoundTo(fake, 'fe80::1'), TypeError);
    const bound = mapperBoundTo(fake, '192.168.77.200');
    assert.equal(bound.localAddress, '192.168.77.200');
    assert.equal((await bound.claim(req(8080))).internalClient, '192.168.77.200');
    await assert.rejects(fake.claim(req(8080)), PortConflictError);
  });
});
