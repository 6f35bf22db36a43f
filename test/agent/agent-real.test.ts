import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { deviceRank } from '../../src/election/rules.js';
import type { NodeStatus, PeerStatus } from '../../src/portal/status.js';
import { canRunTestbed, createTestbed, type Testbed } from '../testbed/testbed.js';
import { Fleet, type FleetOptions, sameSet, waitUntil } from './fixtures/fleet.js';
import type { AttackOptions, AttackReport } from './fixtures/rogue.js';

/**
 * `frontdoor run` as users run it, one process per LAN host of the real-router test bed
 * (miniupnpd on nftables in network namespaces, test/testbed): the fleet settles on one
 * representative that the internet client reaches at http://WAN:8080/, and keeps exactly one
 * through graceful stops, crashes, a pulled cable, a router reboot, a crowd starting at once,
 * each takeover rule, PCP alone, each detection means alone, and a hostile host on the LAN. Every case ends
 * with exactly one representative among the live nodes and the internet's portal listing every
 * live node. Measured failover times are printed (console.log) for the notes.
 */

const can = canRunTestbed();
const curl = spawnSync('curl', ['--version'], { stdio: 'ignore', timeout: 5000 });
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : curl.error !== undefined || curl.status !== 0
    ? 'needs curl (apt install curl): every HTTP request is made inside a namespace'
    : false;
const SECRET = 'agent-real-test-fleet-secret-5f0c2a9e71d4';
const ROGUE = new URL('./fixtures/rogue.js', import.meta.url);
const GROUP = '239.255.70.68';
const LAN_PORT = 4862;

const indexOf = (name: string): number => Number(name.slice(1)) - 1;

function time(label: string, ms: number): void {
  console.log(`[agent-real] ${label}: ${Math.round(ms)} ms`);
}

/** A bed of `hosts` hosts and a fleet on it, closed after the suite whatever happened. */
function bed(hosts: number, opts: Partial<FleetOptions> = {}) {
  const ctx = {} as { tb: Testbed; fleet: Fleet };
  before(async () => {
    ctx.tb = await createTestbed({ mode: 'igd2', hosts });
    ctx.fleet = new Fleet(ctx.tb, { secret: SECRET, ...opts });
  });
  after(async () => {
    await ctx.fleet?.stopAll();
    await ctx.tb?.close();
  });
  return ctx;
}

/**
 * Stops the representative (`sig`) and waits for the internet client's first answer at
 * http://WAN:8080/api/status from another node; returns that node's name and the time from the
 * signal (or from `cut` for a pulled cable) to that answer.
 */
async function failover(
  fleet: Fleet,
  rep: string,
  how: { sig: 'SIGTERM' | 'SIGKILL' } | { cut: () => Promise<void> },
  timeoutMs: number,
): Promise<{ next: string; ms: number }> {
  const t0 = Date.now();
  const stopping = 'sig' in how ? fleet.stop(indexOf(rep), how.sig) : how.cut();
  // Awaited below; a rejection while the wait fails first must not go unhandled.
  stopping.catch(() => {});
  const next = await waitUntil(
    async () => {
      const s = await fleet.wanJson<NodeStatus>('/api/status');
      return s && s.name !== rep && s.role === 'representative' ? s.name : undefined;
    },
    { timeoutMs, intervalMs: 20, what: `a new representative behind http://WAN:8080/ after ${rep} left` },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${fleet.explain()}`);
  });
  const ms = Date.now() - t0;
  await stopping;
  return { next, ms };
}

/** Samples every live node's role every 200 ms for `ms`: the representative must stay `rep`. */
async function stays(fleet: Fleet, rep: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  let samples = 0;
  // At least five samples however slow a loaded machine makes each one: the check is the roles, not the pace.
  while (Date.now() < end || samples < 5) {
    const t = Date.now();
    const st = await fleet.statuses();
    const reps = [...st.entries()].filter(([, s]) => s?.role === 'representative').map(([i]) => Fleet.nameOf(i));
    const silent = [...st.entries()].filter(([, s]) => s === undefined).map(([i]) => Fleet.nameOf(i));
    assert.deepEqual(silent, [], `sample ${samples}: nodes not answering\n${fleet.explain()}`);
    assert.deepEqual(reps, [rep], `sample ${samples}: representatives ${reps.join(',') || 'none'}, expected ${rep} alone\n${fleet.explain()}`);
    samples++;
    await new Promise((r) => setTimeout(r, Math.max(0, 200 - (Date.now() - t))));
  }
}

/** GET url + 'api/status' for every listed node, from the internet client: each answers with its own name. */
async function pagesAnswer(fleet: Fleet, nodes: readonly PeerStatus[]): Promise<string | undefined> {
  for (const n of nodes) {
    if (!n.url) return `${n.name} has no url`;
    const a = await fleet.get(fleet.tb.wan, `${n.url}api/status`);
    let name: string | undefined;
    try {
      name = a?.code === 200 ? (JSON.parse(a.body) as NodeStatus).name : undefined;
    } catch {
      name = undefined;
    }
    if (name !== n.name) return `${n.url} answered ${a ? `${a.code} as ${name}` : 'nothing'}, expected ${n.name}`;
  }
  return undefined;
}

describe('frontdoor run on the real router', { skip, concurrency: false }, () => {
  describe('three nodes (and a hostile fourth host)', { concurrency: false }, () => {
    const b = bed(4);
    const NODES = [0, 1, 2];

    /** After a case that stopped a node: start it again and wait until the three have settled. */
    async function restore(): Promise<string> {
      for (const i of NODES) if (!b.fleet.live().includes(i)) b.fleet.start(i);
      return (await b.fleet.settled(20_000)).rep;
    }

    it('settles on one representative; the internet reaches the portal and every node page', async () => {
      const t0 = Date.now();
      b.fleet.startAll(NODES);
      const { rep, nodes } = await b.fleet.settled(20_000);
      time('3 nodes started → settled (one representative, WAN portal lists all)', Date.now() - t0);
      const page = await b.fleet.fromWan('/');
      assert.equal(page?.code, 200);
      assert.match(page.type, /^text\/html/);
      for (const name of ['h1', 'h2', 'h3']) assert.match(page.body, new RegExp(`class="node-name">${name}<`));
      assert.ok(sameSet(nodes.map((n) => n.name), ['h1', 'h2', 'h3']));
      assert.equal(nodes.filter((n) => n.representative).map((n) => n.name).join(), rep);
      const bad = await pagesAnswer(b.fleet, nodes);
      assert.equal(bad, undefined, bad);
    });

    it('graceful stop (SIGTERM) of the representative: another takes over', async () => {
      const rep = await restore();
      const { next, ms } = await failover(b.fleet, rep, { sig: 'SIGTERM' }, 10_000);
      time(`SIGTERM of representative ${rep} → first WAN answer from ${next}`, ms);
      const after = await b.fleet.settled(10_000);
      assert.equal(after.rep, next);
      assert.equal(after.nodes.length, 2);
    });

    it('SIGKILL of the representative: another takes over within about a lease', async () => {
      const rep = await restore();
      const { next, ms } = await failover(b.fleet, rep, { sig: 'SIGKILL' }, 20_000);
      time(`SIGKILL of representative ${rep} → first WAN answer from ${next} (lease 6 s)`, ms);
      const after = await b.fleet.settled(10_000, [rep]);
      assert.equal(after.rep, next);
      // A crash sends no withdraw: the portal lists the dead node until the directory forgets it.
      const t0 = Date.now() - ms;
      await waitUntil(
        async () => {
          const nodes = await b.fleet.wanJson<PeerStatus[]>('/api/nodes');
          return nodes && !nodes.some((n) => n.name === rep) ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250, what: `the WAN portal to stop listing the crashed ${rep}` },
      );
      time(`SIGKILL of ${rep} → the WAN portal no longer lists it`, Date.now() - t0);
      assert.equal((await b.fleet.settled(5_000)).rep, next);
    });

    it('cable pulled at the representative: another takes over; plugged back, the old one stays a member', async () => {
      const rep = await restore();
      const host = b.tb.hosts[indexOf(rep)]!;
      let cutAt = 0;
      let plugged = false;
      try {
        const { next, ms } = await failover(
          b.fleet,
          rep,
          {
            cut: async () => {
              cutAt = Date.now();
              await b.tb.linkDown(host);
            },
          },
          25_000,
        );
        time(`link down at representative ${rep} → first WAN answer from ${next}`, ms);
        // Safety: by the time the router maps the port to another node, the cut-off one no
        // longer believes it holds it.
        const old = await b.fleet.status(indexOf(rep));
        assert.ok(old, `${rep} does not answer on its own host`);
        assert.notEqual(old.role, 'representative', `${rep} still believes it is representative ${Date.now() - cutAt} ms after the cut`);
        const t1 = Date.now();
        await b.tb.linkUp(host);
        plugged = true;
        // No flapping from the moment it is back: the new representative stays the only one.
        await stays(b.fleet, next, 5000);
        const back = await b.fleet.settled(10_000);
        time(`link up at ${rep} → 5 s without a change of representative, then settled`, Date.now() - t1);
        assert.equal(back.rep, next);
        assert.equal((await b.fleet.status(indexOf(rep)))?.role, 'follower');
        // A member does not serve the portal: nothing listens on its portal port.
        assert.equal(await b.fleet.get(host, `${b.fleet.scheme}://${host.address}:8080/`), undefined, `${rep} still serves the portal`);
      } finally {
        // A failure above must not leave the host cut off for the cases that follow.
        if (!plugged) await b.tb.linkUp(host);
      }
    });

    it('router reboot (all mappings flushed): the portal and every node page come back', async () => {
      const rep = await restore();
      const before = await b.fleet.wanJson<PeerStatus[]>('/api/nodes');
      assert.ok(before && before.length === 3);
      const t0 = Date.now();
      await b.tb.restartRouter();
      const restarted = Date.now();
      const rules = await b.tb.routerRules();
      const portal = await waitUntil(
        async () => {
          const s = await b.fleet.wanJson<NodeStatus>('/api/status');
          return s?.role === 'representative' ? s.name : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 50, what: 'the portal behind http://WAN:8080/ after the router reboot' },
      );
      time(`router reboot → WAN portal answers again (from ${portal}; ${rules.length} forwardings right after the restart)`, Date.now() - restarted);
      assert.equal(portal, rep, 'the representative changed across a router reboot');
      let why: string | undefined;
      await waitUntil(
        async () => {
          const nodes = await b.fleet.wanJson<PeerStatus[]>('/api/nodes');
          why = nodes ? await pagesAnswer(b.fleet, nodes) : 'no /api/nodes';
          return why === undefined ? true : undefined;
        },
        { timeoutMs: 45_000, intervalMs: 500, what: () => `every node page mapped again (${why})` },
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${b.fleet.explain()}`);
      });
      time('router reboot → every node page answers from the WAN again', Date.now() - t0);
      const after = await b.fleet.settled(10_000);
      assert.equal(after.rep, rep);
    });

    it('hostile host on the LAN: garbage, oversized, forged and replayed datagrams change nothing', async () => {
      const rep = await restore();
      const rogue = b.tb.hosts[3]!;
      const before = await b.fleet.statuses(NODES);
      const repId = before.get(indexOf(rep))!.id;
      const forgedName = 'evil-representative';
      const opts: AttackOptions = {
        self: rogue.address,
        group: GROUP,
        port: LAN_PORT,
        targets: NODES.map((i) => b.tb.hosts[i]!.address),
        victimId: repId,
        forgedName,
        windowSize: 64,
        timeoutMs: 20_000,
      };
      const report = await b.tb.call<AttackReport>(rogue, ROGUE, 'attack', [opts], { timeoutMs: 30_000 });
      console.log(`[agent-real] rogue: captured ${report.captured.type} #${report.captured.seq} of ${rep} (${report.captured.bytes} bytes); sent ${JSON.stringify(report.sent)}; late replay at seq ${report.lateReplayAtSeq}`);
      // Give a forged withdraw or announce the time it would need to do harm.
      await new Promise((r) => setTimeout(r, 1500));
      await stays(b.fleet, rep, 1000);
      const afterAttack = await b.fleet.statuses(NODES);
      const wanNodes = await b.fleet.wanJson<PeerStatus[]>('/api/nodes');
      assert.ok(wanNodes && !wanNodes.some((n) => n.name === forgedName), 'the WAN portal lists the forged node');
      const expected = ['FD_PEER_BAD_MAGIC', 'FD_PEER_TOO_LARGE', 'FD_PEER_BAD_MAC', 'FD_PEER_NO_MAC'];
      for (const i of NODES) {
        const s = afterAttack.get(i);
        const name = Fleet.nameOf(i);
        assert.ok(s, `${name} does not answer`);
        assert.equal(s.representative?.name, rep, `${name} names ${s.representative?.name} as representative`);
        assert.ok(!s.nodes.some((n) => n.name === forgedName || n.addresses.includes(rogue.address)), `${name} lists the forged node`);
        // Each hostile datagram reaches every node twice (group and unicast); the replay within
        // the window is a duplicate (not counted), and the victim takes the late replay of its
        // own datagram for its own multicast coming back.
        const minGrowth = 2 * (Object.keys(report.sent).length - 2) + (name === rep ? 0 : 2);
        const grew = s.lan.dropped - before.get(i)!.lan.dropped;
        assert.ok(grew >= minGrowth, `${name}: lan.dropped grew by ${grew}, expected at least ${minGrowth}`);
        // What each receiver logged about datagrams from the rogue's address, by reason.
        const reasons = new Set(
          b.fleet.nodes
            .get(i)!
            .log.records()
            .filter((r) => typeof r['source'] === 'string' && (r['source'] as string).startsWith(`${rogue.address}:`))
            .map((r) => r['reason'] as string),
        );
        // The victim takes the replay of its own datagram for its own multicast coming back.
        const want = name === rep ? expected : [...expected, 'FD_PEER_TOO_OLD'];
        for (const reason of want) assert.ok(reasons.has(reason), `${name} logged no ${reason} from the rogue; logged: ${[...reasons].join(', ')}`);
        console.log(
          `[agent-real] ${name}${name === rep ? ' (representative)' : ''}: lan.dropped ${before.get(i)!.lan.dropped} → ${s.lan.dropped}, received ${before.get(i)!.lan.received} → ${s.lan.received}; reasons from the rogue: ${[...reasons].sort().join(', ')}`,
        );
      }
      const settledAfter = await b.fleet.settled(10_000);
      assert.equal(settledAfter.rep, rep);
    });
  });

  describe('five nodes started at once', { concurrency: false }, () => {
    const b = bed(5);
    it('exactly one representative, which stays for 5 s', async () => {
      const t0 = Date.now();
      b.fleet.startAll([0, 1, 2, 3, 4]);
      const { rep } = await b.fleet.settled(25_000);
      time('5 nodes started at once → settled', Date.now() - t0);
      await stays(b.fleet, rep, 5000);
      await b.fleet.settled(5_000);
    });
  });

  describe('takeover rules', { concurrency: false }, () => {
    const b = bed(3);
    const NODES = [0, 1, 2];

    for (const rule of ['ports', 'device'] as const) {
      it(`--rule ${rule}: after a graceful stop the node the rule names takes over`, async () => {
        await b.fleet.stopAll('SIGTERM');
        b.fleet.startAll(NODES, () => ['--rule', rule]);
        const { rep } = await b.fleet.settled(20_000);
        const st = await b.fleet.statuses(NODES);
        const survivors = NODES.filter((i) => Fleet.nameOf(i) !== rep);
        const key = (i: number): string | number =>
          rule === 'ports' ? st.get(i)!.ports.public : deviceRank(`dev-${Fleet.nameOf(i)}`);
        const expected = Fleet.nameOf([...survivors].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0))[0]!);
        const { next, ms } = await failover(b.fleet, rep, { sig: 'SIGTERM' }, 10_000);
        time(`--rule ${rule}: SIGTERM of ${rep} → WAN answer from ${next} (expected ${expected}; ${survivors.map((i) => `${Fleet.nameOf(i)}=${key(i)}`).join(' ')})`, ms);
        assert.equal(next, expected, b.fleet.explain());
        assert.equal((await b.fleet.settled(10_000)).rep, expected);
      });
    }
  });

  describe('PCP only (no UPnP on the nodes)', { concurrency: false }, () => {
    const b = bed(3);
    it('settles with every link, and a graceful stop hands the port over', async () => {
      const t0 = Date.now();
      b.fleet.startAll([0, 1, 2], () => ['--router-protocols', 'pcp']);
      const { rep } = await b.fleet.settled(20_000);
      time('PCP: 3 nodes started → settled', Date.now() - t0);
      const st = await b.fleet.statuses();
      for (const s of st.values()) assert.equal(s?.router.protocol, 'pcp');
      const { next, ms } = await failover(b.fleet, rep, { sig: 'SIGTERM' }, 10_000);
      time(`PCP: SIGTERM of representative ${rep} → first WAN answer from ${next}`, ms);
      assert.equal((await b.fleet.settled(10_000)).rep, next);
    });
  });

  describe('each detection means alone', { concurrency: false }, () => {
    const b = bed(3);
    const NODES = [0, 1, 2];
    const cases = [
      { means: 'withdrawal', sig: 'SIGTERM', timeoutMs: 10_000 },
      { means: 'silence', sig: 'SIGKILL', timeoutMs: 20_000 },
      { means: 'probe', sig: 'SIGKILL', timeoutMs: 20_000 },
    ] as const;
    for (const c of cases) {
      it(`--detection ${c.means}: ${c.sig} of the representative → another takes over`, async () => {
        await b.fleet.stopAll('SIGTERM');
        b.fleet.startAll(NODES, () => ['--detection', c.means]);
        const { rep } = await b.fleet.settled(20_000);
        const { next, ms } = await failover(b.fleet, rep, { sig: c.sig }, c.timeoutMs);
        time(`--detection ${c.means}: ${c.sig} of ${rep} → WAN answer from ${next}`, ms);
        assert.equal((await b.fleet.settled(10_000, c.sig === 'SIGKILL' ? [rep] : [])).rep, next);
      });
    }
  });

  describe('with a floating address (--floating-address 192.168.77.100)', { concurrency: false }, () => {
    const FLOAT = '192.168.77.100';
    // A 60 s lease: a takeover that waited out the old holder's lease or mapping would miss the
    // failover deadlines below (20 s) by far, so they tell it from the floating path without a
    // bound in seconds that a loaded machine could exceed.
    const b = bed(3, { args: ['--floating-address', FLOAT, '--lease', '60s'] });
    const NODES = [0, 1, 2];
    const holders = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const [i, h] of b.tb.hosts.entries()) {
        const r = await b.tb.exec(h, ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 });
        if (r.stdout.includes(` ${FLOAT}/`)) out.push(Fleet.nameOf(i));
      }
      return out;
    };
    async function restore(): Promise<string> {
      for (const i of NODES) if (!b.fleet.live().includes(i)) b.fleet.start(i);
      const { rep } = await b.fleet.settled(20_000);
      await waitUntil(async () => ((await holders()).join() === rep ? true : undefined), {
        timeoutMs: 5000,
        intervalMs: 100,
        what: `only ${rep} to hold ${FLOAT}`,
      });
      return rep;
    }

    it('the representative, and only it, holds the address the well-known port is mapped to', async () => {
      b.fleet.startAll(NODES);
      const rep = await restore();
      const st = await b.fleet.wanJson<NodeStatus>('/api/status');
      assert.equal(st?.name, rep);
      assert.deepEqual(st?.floatingAddress, { address: FLOAT, held: true });
      const rules = await b.tb.routerRules();
      assert.ok(rules.some((r) => r.includes(FLOAT) && r.includes('8080')), `router forwards 8080 to ${FLOAT}: ${rules.join(' | ')}`);
    });

    it('SIGKILL of the representative: another takes over well within one lease; the dead one\'s address expires', async () => {
      const rep = await restore();
      const { next, ms } = await failover(b.fleet, rep, { sig: 'SIGKILL' }, 20_000);
      time(`floating: SIGKILL of representative ${rep} → first WAN answer from ${next}`, ms);
      await waitUntil(async () => ((await holders()).join() === next ? true : undefined), {
        timeoutMs: 5000,
        intervalMs: 100,
        what: `the killed ${rep}'s copy of ${FLOAT} to expire`,
      });
    });

    it('cable pulled: another takes over in about a second; plugged back, the older term steps down and drops the address', async () => {
      const rep = await restore();
      const host = b.tb.hosts[indexOf(rep)]!;
      let plugged = false;
      try {
        const { next, ms } = await failover(b.fleet, rep, { cut: () => b.tb.linkDown(host) }, 20_000);
        time(`floating: link down at representative ${rep} → first WAN answer from ${next}`, ms);
        const t1 = Date.now();
        await b.tb.linkUp(host);
        plugged = true;
        await waitUntil(async () => ((await holders()).join() === next ? true : undefined), {
          timeoutMs: 10_000,
          intervalMs: 100,
          what: `${rep} to drop ${FLOAT} once it hears ${next}'s newer term`,
        });
        time(`floating: link up at ${rep} → only ${next} holds the address`, Date.now() - t1);
        await stays(b.fleet, next, 3000);
        assert.equal((await b.fleet.status(indexOf(rep)))?.role, 'follower');
        // The router forwards to the winner: were it left pointing at the loser's MAC (the loser
        // answered an ARP request before dropping the address), this would fail for its whole
        // neighbour timeout, far longer than the wait.
        await waitUntil(async () => ((await b.fleet.wanJson<NodeStatus>('/api/status'))?.name === next ? true : undefined), {
          // Under the neighbour entry's 15 s minimum reachable time, with room for a loaded machine.
          timeoutMs: 10_000,
          intervalMs: 100,
          what: `the internet client to reach ${next} through ${FLOAT}`,
        }).catch(async (err: unknown) => {
          const neigh = await b.tb.exec(b.tb.router, ['ip', 'neigh', 'show', FLOAT], { check: false });
          throw new Error(`${(err as Error).message}; router neighbour entry: ${neigh.stdout.trim()}\n${b.fleet.explain()}`);
        });
      } finally {
        if (!plugged) await b.tb.linkUp(host);
      }
    });

    it('graceful stop hands over before the old one lets go (make before break)', async () => {
      const rep = await restore();
      const { next, ms } = await failover(b.fleet, rep, { sig: 'SIGTERM' }, 20_000);
      time(`floating: SIGTERM of representative ${rep} → first WAN answer from ${next}`, ms);
      assert.deepEqual(await holders(), [next]);
    });
  });
});
