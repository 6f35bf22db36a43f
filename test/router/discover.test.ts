import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { diagnose } from '../../src/router/diagnose.js';
import { bestMapper, discoverGateway } from '../../src/router/discover.js';
import { RouterEmulator, type RouterEmulatorOptions } from '../../src/router/emulator/router-emulator.js';
import { NoGatewayError, PortConflictError, PortRefusedError } from '../../src/router/errors.js';
import { MappingKeeper } from '../../src/router/mapping-keeper.js';
import { systemClock } from '../../src/runtime/clock.js';
import { ManualClock } from '../helpers/manual-clock.js';

/**
 * The router layer end to end against the embedded emulator: discovery, the clients, the
 * keeper and the doctor's diagnosis. The same behaviours are checked against the real miniupnpd
 * in test/router/real-router.test.ts.
 */

const emulators: RouterEmulator[] = [];
after(async () => {
  await Promise.all(emulators.map((e) => e.stop()));
});

async function router(opts: RouterEmulatorOptions = {}) {
  const emu = new RouterEmulator({ address: '127.0.0.1', ...opts });
  emulators.push(emu);
  await emu.start();
  const target = (localAddress = '127.0.0.1') => ({
    gateway: '127.0.0.1',
    localAddress,
    ssdpPort: emu.ports.ssdp || 9,
    // With NAT-PMP and PCP off the emulator has no UDP port: aim at a closed one instead.
    natpmpPort: emu.ports.pmp || 9,
    multicast: false,
    timeoutMs: 1500,
  });
  return { emu, target };
}

const req = (port: number, leaseSeconds = 60) => ({
  externalPort: port,
  internalPort: port,
  protocol: 'TCP' as const,
  leaseSeconds,
  description: 'frontdoor test',
});

describe('discovery against the emulator', () => {
  it('finds all three protocols and prefers UPnP IGD v2', async () => {
    const { target } = await router();
    const d = await discoverGateway(target());
    assert.deepEqual(
      d.probes.map((p) => p.protocol),
      ['upnp-igd2', 'pcp', 'natpmp'],
    );
    assert.equal(bestMapper(d).protocol, 'upnp-igd2');
    assert.equal(d.natpmpExternalAddress, '127.0.1.1');
    for (const m of d.mappers) m.close();
  });

  it('every protocol says how long the router has kept its table, and a reboot starts it again', async () => {
    const { emu, target } = await router({ upSeconds: 3600 });
    const d = await discoverGateway(target());
    const ages = async () => Promise.all(d.mappers.map(async (m) => [m.protocol, await m.tableAge?.()] as const));
    for (const [protocol, age] of await ages()) {
      assert.ok(age !== undefined && age >= 3600 && age <= 3610, `${protocol}: ${age}`);
    }
    emu.reboot();
    for (const [protocol, age] of await ages()) {
      assert.ok(age !== undefined && age <= 10, `${protocol} after the reboot: ${age}`);
    }
    for (const m of d.mappers) m.close();
  });

  it('an IGDv1-only router is used as IGD v1', async () => {
    const { target } = await router({ igdVersion: 1 });
    const d = await discoverGateway({ ...target(), protocols: ['upnp'] });
    assert.equal(bestMapper(d).protocol, 'upnp-igd1');
    for (const m of d.mappers) m.close();
  });

  it('without UPnP it does not wait for the SSDP timeout', async () => {
    const { target } = await router({ upnp: false });
    // Nothing answers SSDP. What ended the search tells whether it waited for the overall timeout
    // (a wall-clock bound would race a loaded machine).
    const d = await discoverGateway({ ...target(), timeoutMs: 60_000 });
    assert.equal(bestMapper(d).protocol, 'pcp');
    const upnp = d.failures.find((f) => f.protocol === 'upnp');
    assert.match(upnp?.error.message ?? '', /no answer while another protocol answered/);
    for (const m of d.mappers) m.close();
  });

  it('no service at all gives NoGatewayError with what was tried', async () => {
    const { target } = await router({ upnp: false, natpmp: false, pcp: false });
    const d = await discoverGateway({ ...target(), timeoutMs: 600 });
    assert.equal(d.mappers.length, 0);
    assert.throws(() => bestMapper(d), (e: unknown) => e instanceof NoGatewayError && /UPnP \(or NAT-PMP\)/.test(e.message));
  });

  it('follows a LOCATION that names another host, and SSDP answers from another port', async () => {
    const { target } = await router({ locationHost: '127.0.0.9', ssdpReplyPort: 0 });
    const d = await discoverGateway({ ...target(), protocols: ['upnp'] });
    assert.equal(bestMapper(d).protocol, 'upnp-igd2');
    for (const m of d.mappers) m.close();
  });
});

describe('the router as a lock, through every protocol', () => {
  for (const protocol of ['upnp', 'natpmp', 'pcp'] as const) {
    it(`${protocol}: a second host asking for a held port gets PortConflictError and nothing stray stays`, async () => {
      const { emu, target } = await router();
      const a = bestMapper(await discoverGateway({ ...target('127.0.0.1'), protocols: [protocol] }));
      const b = bestMapper(await discoverGateway({ ...target('127.0.0.2'), protocols: [protocol] }));
      try {
        const held = await a.claim(req(8080));
        assert.equal(held.externalPort, 8080);
        await assert.rejects(b.claim(req(8080)), (e: unknown) => e instanceof PortConflictError && e.externalPort === 8080);
        // NAT-PMP/PCP answered with another port; the client released it again.
        assert.deepEqual(
          emu.mappings().map((m) => [m.externalPort, m.internalClient]),
          [[8080, '127.0.0.1']],
        );
        // Renewal by the holder is fine; claimAny gives the second host some other port.
        assert.equal((await a.claim(req(8080))).externalPort, 8080);
        const other = await b.claimAny(req(8080));
        assert.notEqual(other.externalPort, 8080);
        await b.release(other);
        await a.release(held);
        assert.equal(emu.mappings().length, 0);
        // Now the port is free for the second host.
        assert.equal((await b.claim(req(8080))).externalPort, 8080);
        await b.release({ protocol: 'TCP', externalPort: 8080, internalPort: 8080 });
      } finally {
        a.close();
        b.close();
      }
    });
  }

  it('ports below 1024 are refused with PortRefusedError', async () => {
    const { target } = await router();
    const m = bestMapper(await discoverGateway({ ...target(), protocols: ['upnp'] }));
    await assert.rejects(m.claim(req(80)), (e: unknown) => e instanceof PortRefusedError);
    m.close();
  });

  it('a router that takes only permanent leases (725) still maps', async () => {
    const { emu, target } = await router({ onlyPermanentLeases: true });
    const m = bestMapper(await discoverGateway({ ...target(), protocols: ['upnp'] }));
    const got = await m.claim(req(8080, 30));
    assert.equal(got.leaseSeconds, 0);
    assert.equal(emu.mappings()[0]?.externalPort, 8080);
    await m.release(got);
    m.close();
  });
});

describe('router reboot and WAN change lead to re-claims', () => {
  it('NAT-PMP epoch going back: the keeper claims again', async () => {
    // The router has been up for a while (its epoch is large), so a reboot shows as a step back.
    const routerClock = new ManualClock(1_000_000);
    const { emu, target } = await router({ clock: routerClock });
    routerClock.advance(600_000);
    let keeper: MappingKeeper | undefined;
    const d = await discoverGateway({
      ...target(),
      protocols: ['natpmp'],
      onReset: (reason) => keeper?.routerReset(reason),
    });
    const mapper = bestMapper(d);
    keeper = new MappingKeeper({ mapper, clock: systemClock }, { checkIntervalMs: 60_000, retryMinMs: 50 });
    const seen: string[] = [];
    keeper.on((e) => seen.push(e.type));
    await keeper.add('portal', req(8080), 'specific');
    emu.reboot();
    assert.equal(emu.mappings().length, 0);
    // Any answer from the router now carries the restarted epoch.
    await mapper.externalAddress();
    for (let i = 0; i < 50 && emu.mappings().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(emu.mappings().map((m) => m.externalPort), [8080]);
    assert.ok(seen.includes('router-reset') && seen.includes('lost'), seen.join(','));
    await keeper.stop({ release: true });
    mapper.close();
  });

  it('UPnP: a flushed table and a new WAN address are noticed by the check', async () => {
    const { emu, target } = await router();
    const mapper = bestMapper(await discoverGateway({ ...target(), protocols: ['upnp'] }));
    const keeper = new MappingKeeper({ mapper, clock: systemClock }, { checkIntervalMs: 60_000 });
    const seen: string[] = [];
    keeper.on((e) => seen.push(e.type));
    await keeper.add('portal', req(8080), 'specific');
    await keeper.check();
    emu.reboot();
    await keeper.check();
    for (let i = 0; i < 50 && emu.mappings().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(emu.mappings().map((m) => m.externalPort), [8080]);
    emu.setWanAddress('127.0.1.2');
    await keeper.check();
    assert.equal(keeper.externalAddress, '127.0.1.2');
    assert.ok(seen.includes('lost') && seen.includes('wan-changed'), seen.join(','));
    await keeper.stop({ release: true });
    mapper.close();
  });
});

describe('diagnose', () => {
  it('reports a working router, the public port holder and the table', async () => {
    const { target } = await router();
    const holder = bestMapper(await discoverGateway({ ...target('127.0.0.2'), protocols: ['natpmp'] }));
    await holder.claim(req(8080));
    const r = await diagnose({ ...target(), publicPort: 8080, allowLoopbackWan: true, testPort: 50000 });
    assert.equal(r.status, 'ok');
    assert.equal(r.using, 'upnp-igd2');
    assert.equal(r.wanAddress, '127.0.1.1');
    assert.equal(r.testClaim?.ok, true);
    assert.equal(r.testClaim?.listed, true);
    assert.equal(r.testClaim?.released, true);
    assert.equal(r.publicPort.holder, '127.0.0.2');
    assert.deepEqual(r.table?.map((m) => m.externalPort), [8080]);
    holder.close();
  });

  it('a loopback (or any non-public) WAN address is double NAT unless allowed', async () => {
    const { target } = await router();
    const r = await diagnose({ ...target(), publicPort: 8080 });
    assert.equal(r.status, 'double-nat');
    assert.match(r.verdict, /not reach|cannot reach/);
  });

  it('no service: status no-gateway with a sentence saying what to do', async () => {
    const { target } = await router({ upnp: false, natpmp: false, pcp: false });
    const r = await diagnose({ ...target(), timeoutMs: 500, publicPort: 8080 });
    assert.equal(r.status, 'no-gateway');
    assert.match(r.verdict, /enable UPnP IGD or NAT-PMP/);
  });
});
