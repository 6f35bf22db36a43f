import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { NodeStatus, PeerStatus } from '../../src/portal/status.js';
import { waitUntil } from '../agent/fixtures/fleet.js';
import { canRunTestbed, createTestbed, type Testbed } from '../testbed/testbed.js';
import { childrenOf, commOf, FaultFleet, note, works } from './fixtures/fault-fleet.js';
import { intact, keepsake } from './fixtures/invariants.js';

/**
 * Faults of one node's own machine, in the real-router test bed: its data directory read-only or
 * full, and its camera unplugged and plugged back.
 *
 * The data directory holds what a node makes once and must keep: the portal password (when
 * neither FRONTDOOR_PASSWORD nor a fleet secret gives one), the session key, its own TLS
 * certificate (without a fleet secret), and the router it found. So these nodes run without
 * `--password` and without `--secret`: the password the node made is what must survive. Root
 * ignores file permissions, so a read-only directory is a read-only bind mount and a full one a
 * 64 KiB tmpfs filled up, each in a mount namespace of the node's own (`unshare -m`).
 *
 * The camera: there is no video device here, so the node runs `--camera test` with a PATH whose
 * first directory holds an `ffmpeg` that either runs the real one or fails as an unplugged USB
 * camera does ("No such device"); the running ffmpeg is killed to pull the plug.
 */

const can = canRunTestbed();
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : !works(['curl', '--version'])
    ? 'needs curl (apt install curl)'
    : !works(['unshare', '-m', 'true'])
      ? 'needs mount namespaces (unshare -m)'
      : false;
const noFfmpeg = works(['ffmpeg', '-version']) ? false : 'needs ffmpeg (apt install ffmpeg) for the test pattern';

/** `sh -c` that mounts, then execs the node: $0 is the directory, "$@" the node's argv. */
const READ_ONLY = ['unshare', '-m', 'sh', '-c', 'mkdir -p "$0" && mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'];
/** A 64 KiB tmpfs with `$SEED`'s files copied in, then filled to the last block. */
const FULL = [
  'unshare',
  '-m',
  'sh',
  '-c',
  'mkdir -p "$0" && mount -t tmpfs -o size=64k,mode=700 fdfull "$0" && { [ -z "$SEED" ] || cp -p "$SEED"/* "$0"/; } && { dd if=/dev/zero of="$0/filler" bs=4k 2>/dev/null; true; } && exec "$@"',
];

/** Warn/error records of host `index` that name `dir` anywhere in their fields. */
/** A record's error field as a note shows it: the logger writes an error as {name, code, message}. */
function said(error: unknown): string {
  return error === undefined ? '' : typeof error === 'string' ? error : JSON.stringify(error);
}

function complaintsAbout(fleet: FaultFleet, index: number, dir: string): Array<Record<string, unknown>> {
  return fleet
    .logged(index, /./)
    .filter((r) => (r['level'] === 'warn' || r['level'] === 'error') && JSON.stringify(r).includes(dir));
}

describe('fault: the data directory read-only or full', { skip, concurrency: false }, () => {
  let tb: Testbed;
  let fleet: FaultFleet;
  let made = '';

  before(async () => {
    tb = await createTestbed({ mode: 'igd2', hosts: 1 });
    fleet = new FaultFleet(tb, { secret: '', secretless: true, password: null });
  });
  after(async () => {
    await fleet?.stopAll();
    await tb?.close();
  });

  it('a node without password or secret makes a password, keeps it, and has it again after a restart', async () => {
    fleet.start(0);
    await waitUntil(async () => (fleet.logged(0, /portal password made/).length > 0 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'the log line with the made password',
    });
    made = String(fleet.logged(0, /portal password made/)[0]!['password']);
    assert.equal((await readFile(`${fleet.dataDirOf(0)}/portal-password`, 'utf8')).trim(), made);
    fleet.password = made;
    const k = await keepsake(fleet);
    await fleet.stop(0, 'SIGTERM');
    fleet.start(0);
    await intact(fleet, k);
    assert.equal(fleet.logged(0, /portal password made/).length, 1, 'a second password was made');
  });

  it('read-only (bind mount): the node starts and serves with the password it kept, and says it cannot write there', async () => {
    const dir = fleet.dataDirOf(0);
    const k = await keepsake(fleet);
    await fleet.stop(0, 'SIGTERM');
    fleet.launchWith(0, { wrap: READ_ONLY.concat(dir) });
    const n = fleet.start(0);
    const { rep } = await intact(fleet, k);
    assert.equal(rep, 'h1');
    await waitUntil(async () => (complaintsAbout(fleet, 0, dir).length > 0 ? true : undefined), {
      timeoutMs: 10_000,
      what: `a warning or error naming ${dir}`,
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${n.log.tail()}`);
    });
    note(`data dir read-only: serving with the kept password; logged: ${complaintsAbout(fleet, 0, dir).map((r) => `${r['level']} "${r['msg']}" ${said(r['error'])}`).join(' | ')}`);
    await fleet.stop(0, 'SIGTERM');
    fleet.launchWith(0, undefined);
  });

  it('full (64 KiB tmpfs filled, the kept files copied in first): the node starts and serves with the same password', async () => {
    const seed = fleet.dataDirOf(0);
    const dir = `${tb.tmpDir}/h1-full`;
    await mkdir(dir, { recursive: true });
    fleet.launchWith(0, { wrap: FULL.concat(dir), env: { SEED: seed }, dataDir: dir });
    const n = fleet.start(0);
    const s = await fleet.settled(25_000);
    assert.equal(s.rep, 'h1');
    // The files live in the node's own mount namespace: the same password is the proof they were read.
    assert.equal((await fleet.fromWan('/api/nodes'))?.code, 200, 'the kept password does not open the portal');
    await waitUntil(async () => (complaintsAbout(fleet, 0, dir).length > 0 ? true : undefined), {
      timeoutMs: 10_000,
      what: `a warning or error naming ${dir}`,
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${n.log.tail()}`);
    });
    note(`data dir full: serving with the kept password; logged: ${complaintsAbout(fleet, 0, dir).map((r) => `${r['level']} "${r['msg']}" ${said(r['error'])}`).join(' | ')}`);
    await fleet.stop(0, 'SIGTERM');
  });

  for (const [what, wrap] of [
    ['read-only', READ_ONLY],
    ['full', FULL],
  ] as const) {
    // Without --password and --secret the node makes a password and a session key it cannot keep
    // there: it must start all the same, print the password and say why it is not kept.
    it(`${what} and empty at first start: the node starts and serves, and says the password cannot be kept there`, async () => {
      const dir = `${tb.tmpDir}/h1-${what}-empty`;
      await mkdir(dir, { recursive: true });
      fleet.launchWith(0, { wrap: [...wrap, dir], env: { SEED: '' }, dataDir: dir });
      const n = fleet.start(0);
      try {
        // It makes a password it cannot keep: the log line that prints it is the only way to learn it.
        await waitUntil(
          async () => {
            fleet.assertNoCrash();
            return n.log.records().some((r) => /portal password made/.test(String(r['msg']))) ? true : undefined;
          },
          { timeoutMs: 15_000, what: 'the made password in the log' },
        );
        fleet.password = String(n.log.records().find((r) => /portal password made/.test(String(r['msg'])))!['password']);
        const s = await fleet.settled(25_000);
        assert.equal(s.rep, 'h1');
        const complaints = complaintsAbout(fleet, 0, dir);
        assert.ok(complaints.length > 0, `nothing logged about ${dir}:\n${n.log.tail()}`);
        note(`data dir ${what}, empty: serving; logged: ${complaints.map((r) => `${r['level']} "${r['msg']}" ${said(r['error'])}`).join(' | ')}`);
      } finally {
        fleet.password = made;
        await fleet.stop(0, 'SIGKILL');
      }
    });
  }
});

describe('fault: the camera unplugged and plugged back', { skip: skip || noFfmpeg, concurrency: false }, () => {
  let tb: Testbed;
  let fleet: FaultFleet;
  let unplugged = '';

  before(async () => {
    tb = await createTestbed({ mode: 'igd2', hosts: 1 });
    const bin = `${tb.tmpDir}/fakebin`;
    unplugged = `${tb.tmpDir}/camera-unplugged`;
    await mkdir(bin, { recursive: true });
    // What ffmpeg says when the USB camera it was asked to open is gone.
    await writeFile(
      `${bin}/ffmpeg`,
      `#!/bin/sh\nif [ -e '${unplugged}' ]; then\n  echo '[video4linux2,v4l2 @ 0x55d0] Cannot open video device /dev/video0: No such device' >&2\n  exit 1\nfi\nexec /usr/bin/ffmpeg "$@"\n`,
    );
    await chmod(`${bin}/ffmpeg`, 0o755);
    fleet = new FaultFleet(tb, {
      secret: 'fault-camera-test-fleet-secret-6c2d9a',
      args: ['--camera', 'test', '--camera-width', '160', '--camera-height', '120', '--camera-fps', '5', '--camera-always-on', 'true'],
    });
    fleet.launchWith(0, { env: { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` } });
    fleet.start(0);
  });
  after(async () => {
    await fleet?.stopAll();
    await tb?.close();
  });

  const camera = async () => (await fleet.status(0))?.camera ?? undefined;
  const snapshot = async () => {
    const nodes = await fleet.wanJson<PeerStatus[]>('/api/nodes');
    const url = nodes?.find((n) => n.name === 'h1')?.url;
    assert.ok(url, 'h1 has no public link');
    return fleet.curl(tb.wan, `${url.replace(/^https?:/, `${fleet.scheme}:`)}camera.jpg`, { maxTimeS: 10 });
  };

  it('unplugged: state failed with the reason, /camera.jpg a 503 placeholder; plugged back: live again', async () => {
    await fleet.settled(25_000);
    await waitUntil(async () => ((await camera())?.state === 'live' ? true : undefined), { timeoutMs: 20_000, what: 'the test pattern live' });
    const k = await keepsake(fleet);
    const live = await snapshot();
    assert.equal(live?.code, 200);
    assert.equal(live.type, 'image/jpeg');

    await writeFile(unplugged, '');
    const pid = fleet.pidOf(0)!;
    const ffmpegs = childrenOf(pid).filter((c) => commOf(c) === 'ffmpeg');
    assert.equal(ffmpegs.length, 1, `expected one ffmpeg under the node, found ${ffmpegs.length}`);
    const t0 = Date.now();
    process.kill(ffmpegs[0]!, 'SIGKILL');
    let last = '';
    const failed = await waitUntil(
      async () => {
        const c = await camera();
        last = `${c?.state}: ${c?.reason}`;
        return c?.state === 'failed' && /No such device/.test(c.reason ?? '') ? c : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: () => `camera failed with "No such device" (${last})` },
    );
    const failedMs = Date.now() - t0;
    const placeholder = await snapshot();
    assert.equal(placeholder?.code, 503);
    assert.equal(placeholder.type, 'image/jpeg');
    assert.match(placeholder.headers, /x-camera-state: failed/i);
    assert.match(placeholder.headers, /retry-after: \d+/i);
    fleet.assertNoCrash();

    await rm(unplugged);
    const t1 = Date.now();
    const back = await waitUntil(
      async () => {
        const c = await camera();
        last = `${c?.state}: ${c?.reason}`;
        return c?.state === 'live' ? c : undefined;
      },
      // The back-off is 1, 2, 5, 10, 30 s: by now it is at most at 10 s.
      { timeoutMs: 35_000, intervalMs: 200, what: () => `camera live again (${last})` },
    );
    const liveAgain = await snapshot();
    assert.equal(liveAgain?.code, 200);
    await intact(fleet, k);
    note(
      `camera: unplugged → failed "${failed.reason}" in ${failedMs} ms (restarts ${failed.restarts}); placeholder 503 ${placeholder.type}; ` +
        `plugged back → live in ${Date.now() - t1} ms (restarts ${back.restarts})`,
    );
    const st = (await fleet.status(0)) as NodeStatus;
    assert.equal(st.camera?.source, k.settings.get(0) ? JSON.parse(k.settings.get(0)!).camera.source : undefined);
  });
});
