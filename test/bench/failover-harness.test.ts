import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OutageMeter } from '../../bench/failover/meter.js';
import { computeOutage, isSteady, monoMs } from '../../bench/failover/outage.js';
import type { Sample } from '../../bench/failover/outage.js';
import type { MapArgs, MapResult } from '../../bench/failover/router-map.js';
import { startLabelServers } from '../../bench/failover/subject.js';
import { canRunTestbed, createTestbed } from '../testbed/testbed.js';
import type { Testbed } from '../testbed/testbed.js';

/**
 * The failover bench's outage meter: the computation on recorded timelines, then the meter itself
 * in the test bed watching the public port move from h1 to h2 through the real router.
 */

const ok = (sent: number, done: number, host: string): Sample => ({ sent, done, ok: true, host });
const bad = (sent: number, done: number, err = 'timeout'): Sample => ({ sent, done, ok: false, err });

/** h1 answers every 20 ms until the fault at 1000; requests fail until h2 answers from 1650 on. */
function timeline(): Sample[] {
  const s: Sample[] = [];
  for (let t = 0; t < 1000; t += 20) s.push(ok(t, t + 4, 'h1'));
  // In flight at the fault: answered by the failed host just after it.
  s.push(ok(995, 1006, 'h1'));
  for (let t = 1000; t < 1640; t += 20) s.push(bad(t, t + 150));
  for (let t = 1640; t < 2000; t += 20) s.push(ok(t, t + 10, 'h2'));
  return s;
}

describe('outage computation', () => {
  it('runs from the fault to the first answer of another host, with the longest silence and the failures', () => {
    const o = computeOutage(timeline(), 1000, 'h1');
    assert.ok(o);
    assert.equal(o.recoveredBy, 'h2');
    assert.equal(o.recoveredAt, 1650);
    assert.equal(o.outageMs, 650);
    // The last good answer before the fault was at 984; h1's late one at 1006 splits the silence.
    assert.equal(o.gapMs, 1650 - 1006);
    assert.equal(o.oldHostAnswers, 1);
    assert.equal(o.failedRequests, 32);
    assert.deepEqual(o.errors, { timeout: 32 });
  });

  it('does not depend on the order of the samples', () => {
    const s = timeline().reverse();
    assert.equal(computeOutage(s, 1000, 'h1')?.outageMs, 650);
  });

  it('counts answers of the failed host after the fault as outage, not recovery', () => {
    // h1 keeps answering until 1300 (its address had not moved yet), h2 from 1400.
    const s: Sample[] = [];
    for (let t = 0; t < 1300; t += 20) s.push(ok(t, t + 5, 'h1'));
    for (let t = 1300; t < 1400; t += 20) s.push(bad(t, t + 1, 'ECONNREFUSED'));
    for (let t = 1400; t < 1500; t += 20) s.push(ok(t, t + 5, 'h2'));
    const o = computeOutage(s, 1000, 'h1');
    assert.equal(o?.outageMs, 405);
    assert.equal(o?.gapMs, 1405 - 1285);
    assert.equal(o?.oldHostAnswers, 15);
    assert.deepEqual(o?.errors, { ECONNREFUSED: 5 });
  });

  it('is undefined while no other host has answered, and ignores other hosts before the fault', () => {
    const s = [ok(0, 5, 'h2'), ok(20, 25, 'h1'), bad(1000, 1150), ok(1200, 1205, 'h1')];
    assert.equal(computeOutage(s, 1000, 'h1'), undefined);
    assert.equal(computeOutage([], 1000, 'h1'), undefined);
  });

  it('the fault instant itself may be the answer instant (an answer at T ends a zero outage)', () => {
    assert.equal(computeOutage([ok(990, 1000, 'h2')], 1000, 'h1')?.outageMs, 0);
  });
});

describe('steadiness', () => {
  it('needs a whole window of good answers from that one host', () => {
    const s: Sample[] = [];
    for (let t = 0; t < 2000; t += 20) s.push(ok(t, t + 5, 'h1'));
    assert.equal(isSteady(s, 'h1', 1000), true);
    assert.equal(isSteady(s, 'h2', 1000), false);
    assert.equal(isSteady(s, 'h1', 5000), false, 'not enough history');
    s.push(bad(2000, 2150));
    assert.equal(isSteady(s, 'h1', 1000), false);
    for (let t = 2160; t < 2800; t += 20) s.push(ok(t, t + 5, 'h1'));
    assert.equal(isSteady(s, 'h1', 1000), false, 'the failure is still inside the window');
    for (let t = 2800; t < 3400; t += 20) s.push(ok(t, t + 5, 'h1'));
    assert.equal(isSteady(s, 'h1', 1000), true);
    assert.equal(isSteady([], 'h1', 1000), false);
  });
});

const can = canRunTestbed();
const skip = can.ok ? false : `needs root and network namespaces: ${can.reason}`;
const ROUTER_MAP = new URL('../../bench/failover/router-map.js', import.meta.url);

describe('outage meter in the test bed', { skip, timeout: 30_000 }, () => {
  let tb: Testbed;
  let meter: OutageMeter | undefined;
  before(async () => {
    tb = await createTestbed({ mode: 'igd2', hosts: 2 });
  });
  after(async () => {
    meter?.stop();
    await tb?.close();
  });

  const map = (host: number, op: MapArgs['op']) =>
    tb.call<MapResult>(tb.hosts[host]!, ROUTER_MAP, 'igdMap', [
      { location: tb.rootDescUrl, localAddress: tb.hosts[host]!.address, op, externalPort: 8080, leaseSeconds: 600 },
    ]);

  it('sees the public port move from h1 to h2: the outage ends with h2 and covers the switch', async (ctx) => {
    const [h1, h2] = tb.hosts as [Testbed['hosts'][0], Testbed['hosts'][0]];
    await startLabelServers(tb, [h1, h2]);
    const claimed = await map(0, 'claim');
    assert.equal(claimed.internalClient, h1.address);
    meter = await OutageMeter.start(tb);
    // start() checked the meter's stamp lies between our send and its answer (same clock); how
    // long the round trip took is no test's business.
    assert.ok(meter.pingMs >= 0, `meter clock check ${meter.pingMs} ms`);
    await meter.waitSteady('h1', 1000, 10_000);

    const t = monoMs();
    const released = await map(0, 'release');
    const moved = await map(1, 'claim');
    const switchDone = monoMs();
    assert.equal(moved.internalClient, h2.address);
    const o = await meter.waitRecovery(t, 'h1', 10_000);

    const detail = `${JSON.stringify({ t, released, moved, switchDone, outage: o })}\n${meter.describeRecent(3000)}\n${tb.explain(10)}`;
    assert.equal(o.recoveredBy, 'h2', detail);
    // h2 cannot answer before its claim was even sent: the outage covers the whole switch.
    assert.ok(o.recoveredAt >= moved.startedAt, detail);
    assert.ok(o.outageMs >= moved.startedAt - t, detail);
    // Between release and claim the router has no mapping: requests were refused, and counted.
    assert.ok(o.failedRequests >= 1, detail);
    // Same clock on both sides: nothing sent after the release completed can have reached h1.
    const lateH1 = meter.samples.filter((s) => s.ok && s.host === 'h1' && s.done > t && s.sent > released.doneAt);
    assert.deepEqual(lateH1, [], detail);
    await meter.waitSteady('h2', 500, 5000);
    ctx.diagnostic(
      `switch ${(switchDone - t).toFixed(0)} ms (claim sent at +${(moved.startedAt - t).toFixed(0)} ms), outage ${o.outageMs.toFixed(0)} ms, ` +
        `gap ${o.gapMs.toFixed(0)} ms, ${o.failedRequests} failed ${JSON.stringify(o.errors)}`,
    );
    // The outage ends within a polling interval and a request's time limit of the claim's answer
    // (plus 500 ms for a loaded machine: the meter is a process that must get the CPU).
    assert.ok(o.recoveredAt <= moved.doneAt + meter.intervalMs + meter.timeoutMs + 500, detail);
  });
});
