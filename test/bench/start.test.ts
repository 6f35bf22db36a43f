import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PollSample } from '../../bench/poll-line.js';
import { report, verdicts } from '../../bench/start.js';
import type { Subject } from '../../bench/start.js';
import { runStart } from '../../bench/start/measure.js';
import type { StartRun } from '../../bench/start/measure.js';
import { representativeOverlaps, representativePeriods } from '../../bench/start/representatives.js';
import { CLI } from '../agent/fixtures/fleet.js';
import { canRunTestbed } from '../testbed/testbed.js';

/**
 * The start bench's code: the two-representatives analysis on recorded timelines, the verdicts
 * on made-up runs, then one short run in the real-router test bed (3 nodes, 2 s idle): it reaches
 * the listing and measures every node. Behaviour only: no figure is held to its goal here.
 */

/** An answer "representative for `t` ms", 5 ms after it was asked. */
const rep = (sent: number, t: number): PollSample => ({ sent, done: sent + 5, name: 'x', role: 'representative', roleForMs: t });
const fol = (sent: number): PollSample => ({ sent, done: sent + 5, name: 'x', role: 'follower', roleForMs: 1 });
const none = (sent: number): PollSample => ({ sent, done: sent + 1000, err: 'timeout' });

describe('two representatives at once', () => {
  it("one node's answers with the same start are one period, surely held from the latest start to the last answer", () => {
    const p = representativePeriods('h2', [fol(2950), rep(3010, 10), rep(3060, 60), none(3110), rep(3160, 160), fol(3210)]);
    assert.equal(p.length, 1);
    assert.deepEqual(p[0]!.sure, { from: 3005, to: 3160 });
    // From the earliest start to the answer that said follower.
    assert.deepEqual(p[0]!.possible, { from: 3000, to: 3215 });
    assert.equal(p[0]!.answers, 3);
  });

  it('a role lost and taken again is two periods, which do not overlap each other', () => {
    const samples = [rep(100, 50), rep(150, 100), fol(200), rep(250, 10), rep(300, 60)];
    const p = representativePeriods('h1', samples);
    assert.equal(p.length, 2);
    assert.deepEqual(representativeOverlaps(new Map([['h1', samples]])), { certain: [], possible: [] });
  });

  it('a clean start has none: one representative, the others followers throughout', () => {
    const timeline = (isRep: boolean) => Array.from({ length: 40 }, (_, k) => (isRep && k >= 20 ? rep(1000 + 50 * k, 50 * (k - 20) + 3) : fol(1000 + 50 * k)));
    const o = representativeOverlaps(new Map([['h1', timeline(false)], ['h2', timeline(true)], ['h3', timeline(false)]]));
    assert.deepEqual(o, { certain: [], possible: [] });
  });

  it('two nodes whose answers prove they both held the role is a certain overlap', () => {
    // h1 from 3005 until at least 3110; h2 from 3055.
    const h1 = [rep(3010, 10), rep(3060, 60), rep(3110, 110), fol(3160)];
    const h2 = [fol(3020), rep(3070, 20), rep(3120, 70)];
    const o = representativeOverlaps(new Map([['h1', h1], ['h2', h2]]));
    assert.deepEqual(o.certain, [{ a: 'h1', b: 'h2', from: 3055, to: 3110 }]);
    assert.deepEqual(o.possible, []);
  });

  it('a hand-over the polling cannot resolve is only possible', () => {
    // h1 said representative once (just taken) and follower 50 ms later; h2 took it in between.
    const h1 = [rep(3000, 0), fol(3050)];
    const h2 = [fol(3000), rep(3040, 1), rep(3090, 51)];
    const o = representativeOverlaps(new Map([['h1', h1], ['h2', h2]]));
    assert.deepEqual(o.certain, []);
    assert.equal(o.possible.length, 1);
  });
});

const run = (listingMs: number | undefined, rss: number, cpu: number, certain = 0): StartRun => ({
  listingMs,
  servedBy: ['h1'],
  overlaps: { certain: Array.from({ length: certain }, () => ({ a: 'h1', b: 'h2', from: 0, to: 1 })), possible: [] },
  watchedMs: 5000,
  idle: [
    { name: 'h1', representative: true, rssBytes: rss * 1024 * 1024, cpuPct: cpu },
    { name: 'h2', representative: false, rssBytes: (rss - 5) * 1024 * 1024, cpuPct: cpu / 2 },
  ],
});

describe('start bench verdicts', () => {
  it('met on the medians; the worse of representative and followers counts for RSS and CPU', () => {
    const s: Subject = { label: 'x', cli: '', runs: [run(800, 50, 0.4), run(900, 54, 0.5), run(5000, 80, 2)] };
    assert.deepEqual(verdicts(s), ['listing 900 ms met', 'two representatives never (met)', 'RSS 54.0 MB met', 'CPU 0.50 % met']);
  });

  it('a run without the listing, or two representatives once, misses', () => {
    const s: Subject = { label: 'x', cli: '', runs: [run(800, 50, 0.4), run(undefined, 54, 0.5, 1), run(700, 56, 0.6)] };
    assert.deepEqual(verdicts(s), ['listing 750 ms MISSED (1 of 3 runs without)', 'two representatives 1 time (MISSED)', 'RSS 54.0 MB met', 'CPU 0.50 % met']);
  });
});

const can = canRunTestbed();
describe('start bench, one short run', { skip: can.ok ? false : `needs root and network namespaces: ${can.reason}` }, () => {
  it('3 nodes started at once: the WAN portal lists them all, one representative, each node measured idle', async () => {
    // A router that has just started: the nodes wait until its table is a lease old before the
    // first claims, which is the slow way in, and the one the real router must show works.
    const r = await runStart({ cli: CLI, idleMs: 2000, routerUpMs: 0, log: (l) => console.log(`[start-smoke] ${l}`) });
    for (const l of report([{ label: 'this', cli: CLI, runs: [r] }], { nodes: 3, settings: 'defaults', idleMs: 2000, routerUpMs: 0, load: { start: '?', end: '?' } }).split('\n')) {
      console.log(`[start-smoke] ${l}`);
    }
    assert.equal(r.error, undefined);
    assert.ok(r.listingMs !== undefined && r.firstAnswerMs !== undefined && r.firstAnswerMs <= r.listingMs);
    assert.ok(r.representative !== undefined && r.servedBy.includes(r.representative), `served by ${r.servedBy.join(',')}, settled with ${r.representative}`);
    assert.deepEqual(r.overlaps.certain, []);
    assert.equal(r.idle.length, 3);
    assert.equal(r.idle.filter((n) => n.representative).length, 1);
    for (const n of r.idle) {
      assert.ok(n.rssBytes > 10 * 1024 * 1024, `${n.name}: RSS ${n.rssBytes}`);
      assert.ok(Number.isFinite(n.cpuPct) && n.cpuPct >= 0, `${n.name}: CPU ${n.cpuPct}`);
    }
  });
});
