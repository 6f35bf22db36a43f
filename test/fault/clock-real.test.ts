import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { NodeStatus } from '../../src/portal/status.js';
import { waitUntil } from '../agent/fixtures/fleet.js';
import { canRunTestbed, createTestbed, type Testbed } from '../testbed/testbed.js';
import { FaultFleet, note, works } from './fixtures/fault-fleet.js';
import { intact, keepsake } from './fixtures/invariants.js';

/**
 * A node's clock jumping. frontdoor times everything that matters with the monotonic clock
 * (performance.now): timers, leases, silence. The wall clock (Date.now) is in three places: the
 * `sentAt` of every LAN message (a receiver drops a message more than 120 s off its own clock,
 * FD_PEER_SKEW, docs/protocol.md section 6), the expiry of session cookies, and the logs.
 *
 * Network namespaces share the machine's clocks, so:
 * - the monotonic clock: h2 runs in a time namespace (`unshare --time`) whose monotonic and
 *   boottime clocks read 30 days more than everyone else's;
 * - the wall clock: h3 runs under libfaketime (LD_PRELOAD) reading its offset from a file, so
 *   the test makes it jump while the node runs (monotonic left alone).
 *
 * What happens (measured here; the asserts hold it): while a node's wall clock is an hour off, it
 * and the fleet drop each other's messages (FD_PEER_SKEW, with the offset in the log line) and
 * it drops out of the fleet's lists; the router still grants the well-known port to one node
 * only, so there is never a second representative serving the portal. When its clock comes back
 * it rejoins at once. Sessions: the cookie carries its expiry in the signing node's wall clock,
 * so a session made on a node an hour ahead is good an hour longer everywhere, and a node more
 * than 7 days (the session's life) ahead refuses every session made elsewhere.
 */

const can = canRunTestbed();
const FAKETIME_LIB = ['x86_64-linux-gnu', 'aarch64-linux-gnu', 'arm-linux-gnueabihf']
  .map((a) => `/usr/lib/${a}/faketime/libfaketimeMT.so.1`)
  .find((p) => existsSync(p));
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : !works(['curl', '--version'])
    ? 'needs curl (apt install curl)'
    : FAKETIME_LIB === undefined
      ? 'needs libfaketime (apt install faketime) to move one node\'s wall clock'
      : !works(['unshare', '--time', '--fork', '--monotonic', '86400', 'true'])
        ? 'needs time namespaces (unshare --time; Linux 5.6+)'
        : false;
const SECRET = 'fault-clock-test-fleet-secret-3b9f0e6d1a';
const MONOTONIC_OFFSET_S = 30 * 86_400;
const HOUR_S = 3600;

describe('fault: a node\'s clock jumping', { skip, concurrency: false }, () => {
  let tb: Testbed;
  let fleet: FaultFleet;
  let offsetFile: string;
  /** libfaketime reads the offset from this file again at most every second. */
  const setWallOffset = async (seconds: number) => writeFile(offsetFile, `${seconds >= 0 ? '+' : ''}${seconds}\n`);

  before(async () => {
    tb = await createTestbed({ mode: 'igd2', hosts: 3 });
    fleet = new FaultFleet(tb, { secret: SECRET });
    offsetFile = `${tb.tmpDir}/h3.faketime`;
    await setWallOffset(0);
    fleet.launchWith(1, {
      wrap: ['unshare', '--time', '--kill-child', '--monotonic', String(MONOTONIC_OFFSET_S), '--boottime', String(MONOTONIC_OFFSET_S)],
    });
    fleet.launchWith(2, {
      env: {
        LD_PRELOAD: FAKETIME_LIB!,
        FAKETIME_TIMESTAMP_FILE: offsetFile,
        FAKETIME_CACHE_DURATION: '1',
        // Only the wall clock moves: a jump of the monotonic clock is not a thing that happens.
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      },
    });
    fleet.startAll([0, 1, 2]);
  });
  after(async () => {
    await fleet?.stopAll();
    await tb?.close();
  });

  it('a node whose monotonic clock reads 30 days more (time namespace) settles with the others', async () => {
    const t0 = Date.now();
    const { rep } = await fleet.settled(25_000);
    const up = await tb.exec(tb.hosts[1]!, ['unshare', '--time', '--fork', '--boottime', String(MONOTONIC_OFFSET_S), 'cat', '/proc/uptime'], { check: true });
    assert.ok(Number(up.stdout.split(' ')[0]) > MONOTONIC_OFFSET_S, `the time namespace did not move boottime: ${up.stdout}`);
    note(`clock: 3 nodes (h2 monotonic +${MONOTONIC_OFFSET_S} s, h3 under libfaketime at +0) settled on ${rep} in ${Date.now() - t0} ms`);
  });

  for (const who of ['follower', 'representative'] as const) {
    it(`the wall clock of the ${who} jumps an hour ahead and back: never two representatives, then one again`, async () => {
      const k = await keepsake(fleet);
      const { rep } = await fleet.settled(20_000);
      // h3 is the node under libfaketime: make it the representative for the second case.
      if (who === 'representative' && rep !== 'h3') await moveRepresentativeTo(fleet, 2);
      if (who === 'follower' && rep === 'h3') await moveRepresentativeTo(fleet, 0);
      const startedRep = (await fleet.settled(20_000)).rep;
      // Only what is logged from here on counts: the earlier case's drops would pass for this
      // one's (by position, not time: h3's earlier lines carry its clock an hour ahead).
      const logged0 = [0, 1, 2].map((i) => fleet.logged(i, /./).length);
      await setWallOffset(HOUR_S);
      const seen = { samples: 0, maxReps: 0, portalDown: 0, roles: new Set<string>() };
      const sample = async () => {
        fleet.assertNoCrash();
        const st = await fleet.statuses();
        const reps = [...st.values()].filter((s) => s?.role === 'representative').map((s) => s!.name);
        seen.maxReps = Math.max(seen.maxReps, reps.length);
        for (const [i, s] of st) seen.roles.add(`h${i + 1}=${s?.role ?? '-'}`);
        if ((await fleet.wanJson<NodeStatus>('/api/status'))?.role !== 'representative') seen.portalDown++;
        seen.samples++;
      };
      const skewSince = (indices: readonly number[]) =>
        indices.flatMap((i) => fleet.logged(i, /./).slice(logged0[i]).filter((r) => r['reason'] === 'FD_PEER_SKEW'));
      // libfaketime rereads its offset file on its own schedule (seconds on a busy machine): the
      // window below starts once the others drop h3's messages, not at a guess.
      await waitUntil(
        async () => {
          await sample();
          return skewSince([0, 1]).length > 0 ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 300, what: 'the others to drop h3\'s messages for skew (the jump did not take)' },
      );
      // Long enough for the silence timeout (1.2 s), a lease (6 s) and a claim to run their course.
      const end = Date.now() + 12_000;
      while (Date.now() < end) {
        await sample();
        await new Promise((r) => setTimeout(r, 300));
      }
      const skewed = skewSince([2]);
      const othersDropH3 = skewSince([0, 1]);
      const h3 = await fleet.status(2);
      note(
        `clock: ${who} h3 wall clock +1 h (representative was ${startedRep}): ${seen.samples} samples, at most ${seen.maxReps} representative(s) at once, ` +
          `WAN portal without a representative in ${seen.portalDown}; roles seen ${[...seen.roles].sort().join(' ')}; ` +
          `h3 logged ${skewed.length} FD_PEER_SKEW (offset ${skewed[0]?.['offsetMs'] ?? '-'} ms), the others ${othersDropH3.length}; ` +
          `h3 now ${h3?.role}, knows ${h3?.nodes.map((n) => n.name).join(',')}`,
      );
      assert.ok(seen.maxReps <= 1, `two representatives at once while h3's clock was off\n${fleet.explain()}`);
      await setWallOffset(0);
      const t1 = Date.now();
      const s = await intact(fleet, k, { timeoutMs: 30_000 });
      note(`clock: h3 back to the right time → settled on ${s.rep} in ${Date.now() - t1} ms`);
    });
  }

  it('sessions made on a node whose wall clock is ahead: good elsewhere; a node 8 days ahead refuses the others\' sessions', async () => {
    await fleet.settled(20_000);
    await setWallOffset(HOUR_S);
    const cookieFrom = async (index: number): Promise<string> => {
      const a = await fleet.curl(tb.hosts[index]!, fleet.lanUrl(index, '/login'), { password: null, data: `password=${encodeURIComponent(fleet.password)}` });
      const m = /set-cookie: (fd_session=[^;]+)/i.exec(a?.headers ?? '');
      assert.ok(m, `no session cookie from h${index + 1}: ${a?.code} ${a?.headers}`);
      return m[1]!;
    };
    const useAt = async (cookie: string, index: number) =>
      (await fleet.curl(tb.hosts[index]!, fleet.lanUrl(index, '/api/status'), { password: null, headers: [`Cookie: ${cookie}`] }))?.code;
    // The cookie's expiry is h3's wall clock + 7 days: it shows when libfaketime has read the new
    // offset (on its own schedule, seconds on a busy machine), so no guess at how long that takes.
    const aheadOf = (cookie: string) => Number.parseInt(cookie.split('.')[1]!, 36) - Date.now() - 7 * 86_400_000;
    const fromSkewed = await waitUntil(
      async () => {
        const c = await cookieFrom(2);
        return aheadOf(c) > (HOUR_S * 1000) / 2 ? c : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'h3 to sign sessions with its clock an hour ahead' },
    );
    const aheadMs = aheadOf(fromSkewed);
    const onOthers = [await useAt(fromSkewed, 0), await useAt(fromSkewed, 1)];
    assert.deepEqual(onOthers, [200, 200], 'a session made on the node an hour ahead is refused elsewhere');
    const fromH1 = await cookieFrom(0);
    assert.equal(await useAt(fromH1, 2), 200, 'the node an hour ahead refuses a session made on h1');
    // More than a session's life ahead: everything made elsewhere has expired by its clock.
    await setWallOffset(8 * 86_400);
    // libfaketime rereads its offset file on its own schedule (seconds, longer on a busy
    // machine): wait for the refusal rather than guess when the jump lands.
    let refused: number | undefined;
    await waitUntil(
      async () => {
        refused = await useAt(fromH1, 2);
        return refused === 401 ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'h3 at +8 days to refuse the session made on h1' },
    ).catch(() => {});
    const basic = await fleet.curl(tb.hosts[2]!, fleet.lanUrl(2, '/api/status'));
    await setWallOffset(0);
    assert.equal(refused, 401, 'a node 8 days ahead still accepted a session made on h1');
    assert.equal(basic?.code, 200, 'basic auth (no clock in it) must work on the skewed node');
    note(
      `clock: a session made on h3 (+1 h) expires ${Math.round(aheadMs / 60_000)} min later than one made now elsewhere and is accepted by h1, h2; ` +
        `h3 at +8 days refuses h1's session (${refused}) but takes basic auth (${basic?.code})`,
    );
    await fleet.settled(30_000);
  });
});

/**
 * Makes host `index` the representative: every other node is stopped, the followers first and the
 * representative last, so that `index` is the only node left to take over; then they start again
 * and join it as followers (a representative keeps the role while it lives, whatever the rule).
 * No rule's choice of heir is involved, so this cannot miss by chance.
 * SIGTERM, except for h2: `unshare --fork` dies of a SIGTERM and takes the node with it
 * (--kill-child), so that is a crash either way and is done as one.
 */
async function moveRepresentativeTo(fleet: FaultFleet, index: number): Promise<void> {
  const target = `h${index + 1}`;
  const { rep } = await fleet.settled(20_000);
  if (rep === target) return;
  const repIndex = Number(rep.slice(1)) - 1;
  const others = fleet.live().filter((i) => i !== index && i !== repIndex);
  for (const i of [...others, repIndex]) await fleet.stop(i, i === 1 ? 'SIGKILL' : 'SIGTERM');
  await waitUntil(async () => ((await fleet.wanJson<NodeStatus>('/api/status'))?.name === target ? true : undefined), {
    // A crashed representative's port is the router's until its lease (6 s) runs out.
    timeoutMs: 30_000,
    intervalMs: 200,
    what: `${target} to take over from ${rep} alone`,
  });
  for (const i of [...others, repIndex]) fleet.start(i);
  const now = (await fleet.settled(20_000)).rep;
  assert.equal(now, target, `${target} took over alone but ${now} is the representative once the others are back`);
}
