import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortConflictError } from '../../src/router/errors.js';
import { type KeeperEvent, MappingKeeper } from '../../src/router/mapping-keeper.js';
import { FakeMapper, FakeTable } from '../helpers/fake-mapper.js';
import { ManualClock } from '../helpers/manual-clock.js';

const flush = () => new Promise<void>((r) => setImmediate(r));
async function advance(clock: ManualClock, ms: number): Promise<void> {
  // Step in small pieces so promise continuations run between timers, as they would in real time.
  const step = 100;
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await flush();
  }
}

const req = (port: number) => ({
  externalPort: port,
  internalPort: port,
  protocol: 'TCP' as const,
  leaseSeconds: 60,
  description: 'frontdoor test',
});

function setup(opts: { protocol?: 'upnp-igd2' | 'natpmp' } = {}) {
  const table = new FakeTable();
  const clock = new ManualClock();
  const mapper = new FakeMapper(table, '192.168.77.10', opts);
  const keeper = new MappingKeeper({ mapper, clock }, { checkIntervalMs: 10_000 });
  const events: KeeperEvent[] = [];
  keeper.on((e) => events.push(e));
  return { table, clock, mapper, keeper, events };
}

describe('MappingKeeper', () => {
  it('renews before the lease ends', async () => {
    const { clock, mapper, keeper, events } = setup();
    await keeper.add('portal', req(8080), 'specific');
    assert.deepEqual(events.map((e) => e.type), ['claimed']);
    await advance(clock, 29_000);
    assert.equal(mapper.calls.filter((c) => c === 'claim 8080').length, 1);
    await advance(clock, 1_500);
    assert.equal(mapper.calls.filter((c) => c === 'claim 8080').length, 2);
    assert.ok(events.some((e) => e.type === 'renewed'));
    await keeper.stop();
  });

  it('a specific claim on a held port rejects with PortConflictError and is not kept', async () => {
    const { table, keeper } = setup();
    const other = new FakeMapper(table, '192.168.77.11');
    await other.claim(req(8080));
    await assert.rejects(keeper.add('portal', req(8080), 'specific'), (e: unknown) => e instanceof PortConflictError);
    assert.equal(keeper.mapping('portal'), undefined);
    await keeper.stop();
  });

  it('an `any` mapping moves on when its port is taken, and keeps its port on renewal otherwise', async () => {
    const { table, clock, keeper, events } = setup();
    const first = await keeper.add('member', req(9000), 'any');
    assert.equal(first.externalPort, 9000);
    await advance(clock, 31_000);
    assert.equal(keeper.mapping('member')?.externalPort, 9000);
    // The router forgets it and another host takes the port before our renewal.
    table.flush();
    await new FakeMapper(table, '192.168.77.11').claim(req(9000));
    await advance(clock, 31_000);
    const moved = events.find((e) => e.type === 'moved');
    assert.ok(moved && moved.type === 'moved');
    assert.equal(moved.from, 9000);
    assert.notEqual(keeper.mapping('member')?.externalPort, 9000);
    await keeper.stop();
  });

  it('re-claims a mapping missing from the router table (router reboot seen through UPnP)', async () => {
    const { table, clock, keeper, events } = setup();
    await keeper.add('portal', req(8080), 'specific');
    table.flush();
    await advance(clock, 10_100); // the periodic check lists the table
    assert.ok(events.some((e) => e.type === 'lost'));
    await advance(clock, 200);
    assert.ok(table.entries.has('TCP/8080'), 're-claimed at the router');
    await keeper.stop();
  });

  it('re-claims at once on a router reset reported by NAT-PMP/PCP', async () => {
    const { table, clock, keeper, events } = setup({ protocol: 'natpmp' });
    await keeper.add('portal', req(8080), 'specific');
    table.flush();
    keeper.routerReset('epoch went back');
    await advance(clock, 100);
    assert.ok(table.entries.has('TCP/8080'));
    assert.deepEqual(
      events.map((e) => e.type),
      ['claimed', 'router-reset', 'lost', 'renewed'],
    );
    await keeper.stop();
  });

  it('re-claims when the WAN address changes and reports the change', async () => {
    const { table, clock, mapper, keeper, events } = setup();
    await keeper.add('portal', req(8080), 'specific');
    await advance(clock, 10_100);
    assert.equal(keeper.externalAddress, '203.0.114.1');
    table.wanAddress = '203.0.114.99';
    const claimsBefore = mapper.calls.filter((c) => c === 'claim 8080').length;
    await advance(clock, 10_200);
    const changed = events.find((e) => e.type === 'wan-changed');
    assert.deepEqual(changed, { type: 'wan-changed', from: '203.0.114.1', to: '203.0.114.99' });
    assert.ok(mapper.calls.filter((c) => c === 'claim 8080').length > claimsBefore);
    await keeper.stop();
  });

  it('retries with back-off while the router is unreachable, then recovers', async () => {
    const { clock, mapper, keeper, events } = setup();
    await keeper.add('portal', req(8080), 'specific');
    mapper.unreachable = true;
    await advance(clock, 30_000 + 1_000 + 2_000 + 4_000 + 100);
    const errors = events.filter((e) => e.type === 'error' && e.id === 'portal');
    assert.ok(errors.length >= 3, `expected retries, saw ${errors.length}`);
    mapper.unreachable = false;
    await advance(clock, 9_000);
    assert.equal(events.at(-1)?.type, 'renewed');
    await keeper.stop();
  });

  it('stop({ release }) removes our mappings and ends every timer', async () => {
    const { table, clock, keeper } = setup();
    await keeper.add('portal', req(8080), 'specific');
    await keeper.add('member', req(9000), 'any');
    await keeper.stop({ release: true });
    assert.equal(table.entries.size, 0);
    assert.equal(clock.pendingCount, 0);
  });
});
