import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarize } from '../../bench/soak/availability.js';
import type { PollSample } from '../../bench/poll-line.js';
import { report } from '../../bench/soak.js';
import { runSoak } from '../../bench/soak/soak.js';
import { canRunTestbed } from '../testbed/testbed.js';

/**
 * The soak benchmark's code in its short form (CI): 5 nodes for 90 s in the real-router test bed,
 * a failover every 20 s, viewers on both cameras, the portal polled from the WAN every 200 ms.
 * Bounds are generous (behaviour, not speed): the portal mostly available, every failover seen,
 * no node crashing, the nodes that ran throughout holding no more file descriptors and not much
 * more memory at the end than at the start. The availability summary is checked on recorded
 * timelines first.
 */

const ok = (sent: number, name: string): PollSample => ({ sent, done: sent + 5, name, role: 'representative' });
const bad = (sent: number): PollSample => ({ sent, done: sent + 1000, err: 'timeout' });

describe('soak availability summary', () => {
  it('counts good answers, outages from the first failure to the next good answer, and changes of node', () => {
    const s = [ok(0, 'h1'), ok(200, 'h1'), bad(400), bad(600), ok(800, 'h2'), ok(1000, 'h2'), bad(1200)];
    const a = summarize(s);
    assert.equal(a.polls, 7);
    assert.equal(a.good, 4);
    assert.equal(a.availabilityPct.toFixed(1), '57.1');
    assert.equal(a.outages.length, 2);
    assert.deepEqual({ ...a.outages[0]!, ms: a.outages[0]!.ms }, { from: 400, to: 805, ms: 405, failed: 2, open: false, before: 'h1', after: 'h2' });
    assert.equal(a.outages[1]!.open, true);
    assert.equal(a.maxOutageMs, 2200 - 1200);
    assert.deepEqual(a.changes, [{ at: 805, from: 'h1', to: 'h2' }]);
    assert.deepEqual(a.errors, { timeout: 3 });
  });

  it('a node that answers without being representative is counted apart', () => {
    const a = summarize([ok(0, 'h1'), { sent: 200, done: 205, name: 'h2', role: 'follower' }]);
    assert.equal(a.notRepresentative, 1);
    assert.equal(a.changes.length, 1);
  });
});

const can = canRunTestbed();
describe('soak, short form (90 s, a failover every 20 s)', { skip: can.ok ? false : `needs root and network namespaces: ${can.reason}` }, () => {
  it('the portal stays mostly available, every failover is seen, nothing leaks, nothing crashes', async () => {
    const r = await runSoak({
      durationMs: Number(process.env['SOAK_SHORT_MS'] ?? 90_000),
      failoverEveryMs: 20_000,
      restartAfterMs: 8_000,
      log: (l) => console.log(`[soak-short] ${l}`),
    });
    for (const l of report(r).split('\n')) console.log(`[soak-short] ${l}`);
    assert.deepEqual(r.crashes, [], 'nodes exited by themselves');
    assert.ok(r.failovers.length >= 3, `only ${r.failovers.length} failovers made`);
    for (const f of r.failovers) assert.notEqual(f.next, null, `no other node answered after the ${f.sig} of ${f.victim}`);
    assert.ok(r.availability.changes.length >= r.failovers.length, `${r.availability.changes.length} changes seen for ${r.failovers.length} failovers`);
    // A crash costs about a second with the floating address, a graceful stop much less; 80 %
    // leaves room for a slow machine without letting a portal that stays down pass.
    assert.ok(r.availability.availabilityPct > 80, `portal availability ${r.availability.availabilityPct.toFixed(1)} %`);
    assert.equal(r.availability.outages.filter((o) => o.open).length, 0, 'the portal was down at the end');
    const steady = r.nodes.filter((n) => n.sameProcess && n.start && n.end);
    assert.ok(steady.length >= 2, `only ${steady.length} nodes ran the whole soak`);
    for (const n of steady) {
      // Viewers reconnecting and peers coming and going may hold a few more for a moment.
      assert.ok(n.end!.fds - n.start!.fds <= 8, `${n.name}: fds ${n.start!.fds} → ${n.end!.fds}`);
      assert.ok(n.end!.rssKb - n.start!.rssKb < 64 * 1024, `${n.name}: RSS ${n.start!.rssKb} → ${n.end!.rssKb} kB`);
    }
    for (const v of r.viewers) assert.ok(v.frames > 0, `viewer of ${v.url} got no frame`);
  });
});
