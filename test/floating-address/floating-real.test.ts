import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exited, killGroup } from '../testbed/command.js';
import { parseNsCallOutput } from '../testbed/ns-call.js';
import { canRunTestbed, createTestbed, type Host, type Testbed } from '../testbed/testbed.js';
import type { HolderConfig } from './fixtures/holder.js';

/**
 * The floating address on real Linux hosts behind Debian's miniupnpd in secure mode (the test
 * bed of test/testbed): the well-known port mapped to the floating address from one host moves
 * to another host with the address, the lifetime ends a killed holder's address by itself, and
 * a leftover address is cleared at start.
 */

const can = canRunTestbed();
const skip = can.ok ? false : `needs root and network namespaces: ${can.reason}`;
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const HOLDER = here('./fixtures/holder.js');
const POLLER = here('./fixtures/wan-poller.js');
const SERVER = here('./fixtures/name-server.js');
const OPS = new URL('./fixtures/floating-ops.js', import.meta.url);
const NS_CALL = here('../testbed/ns-call.js');

const FLOATING = '192.168.77.100';
const PUBLIC_PORT = 8080;
const SERVICE_PORT = 18080;
const LIFETIME_S = 2;

type Event = { type: string; [k: string]: unknown };

/** Every JSON line a child prints, kept from its start; `next` waits for one of a type. */
function events(child: ChildProcess, label: string) {
  const all: Event[] = [];
  const raw: string[] = [];
  let partial = '';
  let cursor = 0;
  const waiters = new Set<() => void>();
  let closed = false;
  const feed = (c: Buffer) => {
    const parts = (partial + c.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      raw.push(p);
      try {
        const e = JSON.parse(p) as Event;
        if (typeof e?.type === 'string') all.push(e);
      } catch {
        // a log line, kept in raw
      }
    }
    for (const w of waiters) w();
  };
  child.stdout?.on('data', feed);
  child.stderr?.on('data', (c: Buffer) => raw.push(c.toString('utf8').trimEnd()));
  // 'close', not 'exit': only then has all its output been read.
  child.once('close', () => {
    closed = true;
    for (const w of waiters) w();
  });
  return {
    all,
    next(type: string, timeoutMs = 10_000): Promise<Event> {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = cursor; i < all.length; i++) {
            const e = all[i]!;
            if (e.type === 'error') {
              finish();
              reject(new Error(`${label}: ${JSON.stringify(e)}\n${raw.join('\n')}`));
              return;
            }
            if (e.type === type) {
              cursor = i + 1;
              finish();
              resolve(e);
              return;
            }
          }
          if (closed) {
            finish();
            reject(new Error(`${label} exited before '${type}':\n${raw.join('\n')}`));
          }
        };
        const finish = () => {
          waiters.delete(check);
          clearTimeout(timer);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${label}: no '${type}' within ${timeoutMs} ms:\n${raw.join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

async function waitForLine(child: ChildProcess, pattern: RegExp, label: string, timeoutMs = 10_000): Promise<void> {
  let text = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: no ${pattern} within ${timeoutMs} ms: ${text}`)), timeoutMs);
    child.stdout?.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (c: Buffer) => {
      text += c.toString('utf8');
    });
    child.once('exit', () => reject(new Error(`${label} exited: ${text}`)));
  });
}

describe('floating address on real hosts (miniupnpd, secure mode)', { skip, concurrency: false }, () => {
  let tb: Testbed;
  let h1: Host;
  let h2: Host;
  const holderConfig = (h: Host, address = FLOATING, noRouter = false): HolderConfig => ({
    address,
    prefixLength: 24,
    iface: h.ifname,
    gateway: tb.gateway,
    localAddress: h.address,
    externalPort: PUBLIC_PORT,
    internalPort: SERVICE_PORT,
    lifetimeSeconds: LIFETIME_S,
    noRouter,
  });
  const addrs = async (h: Host) => (await tb.exec(h, ['ip', '-o', '-4', 'addr', 'show', 'dev', h.ifname], { check: true })).stdout;
  const has = async (h: Host, address: string) => (await addrs(h)).includes(` inet ${address}/`);

  before(async () => {
    tb = await createTestbed({ mode: 'igd2', hosts: 2 });
    [h1, h2] = tb.hosts as [Host, Host];
  });
  after(async () => {
    await tb?.close();
  });

  it('the well-known port follows the address from h1 to h2 through the same router mapping', async () => {
    const servers = [h1, h2].map((h) => tb.spawn(h, [process.execPath, SERVER, h.name, String(SERVICE_PORT)]));
    await Promise.all(servers.map((s, i) => waitForLine(s, /listening/, `server in h${i + 1}`)));
    const holder1 = tb.spawn(h1, [process.execPath, HOLDER, JSON.stringify(holderConfig(h1))]);
    const holder2 = tb.spawn(h2, [process.execPath, HOLDER, JSON.stringify(holderConfig(h2))]);
    const ev1 = events(holder1, 'holder in h1');
    const ev2 = events(holder2, 'holder in h2');
    try {
      assert.equal((await ev1.next('ready')).protocol, 'upnp-igd2');
      await ev2.next('ready');

      holder1.stdin?.write('take\nmap\n');
      const taken1 = await ev1.next('taken');
      const mapped1 = await ev1.next('mapped');
      assert.equal(mapped1.internalClient, FLOATING);
      assert.equal(mapped1.externalPort, PUBLIC_PORT);
      assert.ok(await has(h1, FLOATING));
      const url = `http://${tb.wanAddress}:${PUBLIC_PORT}/`;
      const first = await tb.exec(tb.wan, ['curl', '-s', '--max-time', '3', url]);
      assert.equal(first.stdout, 'h1', `WAN client before the move: ${JSON.stringify(first)}\n${tb.explain()}`);

      await tb.linkDown(h1);
      // The internet client asks again and again on fresh connections while the address moves.
      const poller = tb.spawn(tb.wan, [process.execPath, POLLER, url, 'h2', '5', '500', '10000']);
      const evp = events(poller, 'WAN poller');
      await evp.next('started');
      await new Promise((r) => setTimeout(r, 200));

      // The arping duration on its own, for the record (not on the fast path).
      const a0 = performance.now();
      await tb.exec(h2, ['arping', '-U', '-c', '1', '-I', h2.ifname, h2.address], { check: true });
      const arpingMs = performance.now() - a0;

      holder2.stdin?.write('take\nmap\n');
      const taken2 = await ev2.next('taken');
      const mapped2 = await ev2.next('mapped');
      assert.equal(mapped2.internalClient, FLOATING, 'the router accepted the renewal from h2: same internal client');
      const answer = await evp.next('answer', 10_000).then(async (e) => (e.body === 'h2' ? e : evp.next('answer', 10_000)));
      assert.equal(answer.body, 'h2');
      const takeToAnswer = (answer.at as number) - (taken2.at as number);
      console.log(
        `floating address h1 -> h2: take() ${(taken2.ms as number).toFixed(1)} ms; ` +
          `(${String(taken2.steps)}); ` +
          `take() start -> first WAN answer from h2 ${takeToAnswer.toFixed(1)} ms ` +
          `(${((answer.at as number) - (taken2.at as number) - (taken2.ms as number)).toFixed(1)} ms after take() resolved; ` +
          `that request was sent ${((answer.sentAt as number) - (taken2.at as number)).toFixed(1)} ms after take() start); ` +
          `take() start -> mapping renewed ${((mapped2.at as number) + (mapped2.ms as number) - (taken2.at as number)).toFixed(1)} ms ` +
          `(renewal alone ${(mapped2.ms as number).toFixed(1)} ms); ` +
          `h1 take() ${(taken1.ms as number).toFixed(1)} ms, map ${(mapped1.ms as number).toFixed(1)} ms; ` +
          `arping -U -c 1 alone ${arpingMs.toFixed(0)} ms`,
      );
      assert.ok(takeToAnswer < 1000, `WAN answer from h2 only ${takeToAnswer} ms after take()`);
      const after = await tb.exec(tb.wan, ['curl', '-s', '--max-time', '3', url]);
      assert.equal(after.stdout, 'h2');
      assert.ok(
        (await tb.routerRules()).some((r) => r.includes(`${FLOATING}`) && r.includes(String(SERVICE_PORT))),
        `router rules: ${(await tb.routerRules()).join('\n')}`,
      );
    } catch (err) {
      (err as Error).message += `\n${tb.explain()}`;
      throw err;
    } finally {
      // SIGTERM: each holder drops the address.
      for (const c of [holder1, holder2]) killGroup(c, 'SIGTERM');
      await Promise.all([exited(holder1), exited(holder2)]);
      for (const s of servers) killGroup(s);
      await tb.linkUp(h1);
    }
    assert.equal(await has(h1, FLOATING), false, 'h1 dropped it on SIGTERM');
    assert.equal(await has(h2, FLOATING), false, 'h2 dropped it on SIGTERM');
  });

  it('refreshed while its holder lives; gone within the lifetime (+1 s) after the holder is SIGKILLed', async () => {
    const address = '192.168.77.101';
    const holder = tb.spawn(h1, [process.execPath, HOLDER, JSON.stringify(holderConfig(h1, address, true))]);
    const ev = events(holder, 'holder in h1');
    await ev.next('ready');
    holder.stdin?.write('take\n');
    await ev.next('taken');
    // Longer than the lifetime: only the refresh keeps it.
    await new Promise((r) => setTimeout(r, LIFETIME_S * 1000 + 600));
    assert.ok(await has(h1, address), `still there while refreshed:\n${await addrs(h1)}`);
    assert.equal(
      ev.all.some((e) => e.type === 'lost'),
      false,
    );
    killGroup(holder, 'SIGKILL');
    await exited(holder);
    const t0 = performance.now();
    while (await has(h1, address)) {
      assert.ok(performance.now() - t0 < (LIFETIME_S + 1) * 1000, `still on h1 ${performance.now() - t0} ms after SIGKILL`);
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`floating address lifetime ${LIFETIME_S} s: gone ${(performance.now() - t0).toFixed(0)} ms after SIGKILL of its holder`);
  });

  it('clearStale removes an address left behind; isPresent sees it', async () => {
    const address = '192.168.77.102';
    const init = { address, prefixLength: 24, interface: h2.ifname };
    await tb.exec(h2, ['ip', 'addr', 'add', `${address}/24`, 'dev', h2.ifname], { check: true });
    assert.equal(await tb.call(h2, OPS, 'isPresent', [init]), true);
    assert.equal(await tb.call(h2, OPS, 'clearStale', [init]), true);
    assert.equal(await has(h2, address), false);
    assert.ok(await has(h2, h2.address), "the host's own address stays");
    assert.equal(await tb.call(h2, OPS, 'isPresent', [init]), false);
    assert.equal(await tb.call(h2, OPS, 'clearStale', [init]), false);
  });

  it('without NET_ADMIN: capability says so and take fails with FD_FLOATING_NOT_PERMITTED', async () => {
    const init = { address: '192.168.77.103', prefixLength: 24, interface: h2.ifname };
    const withoutNetAdmin = async (exportName: string, args: unknown[]) => {
      const r = await tb.exec(h2, [
        'capsh',
        '--drop=cap_net_admin',
        '--',
        '-c',
        'exec "$0" "$@"',
        process.execPath,
        NS_CALL,
        fileURLToPath(OPS),
        exportName,
        JSON.stringify(args),
      ]);
      return parseNsCallOutput(r.stdout);
    };
    const cap = await withoutNetAdmin('capability', []);
    assert.ok('value' in cap, JSON.stringify(cap));
    const v = cap.value as { ok: boolean; reason?: string };
    assert.equal(v.ok, false);
    assert.match(v.reason ?? '', /NET_ADMIN/);
    const take = await withoutNetAdmin('takeAndDrop', [init]);
    assert.ok('error' in take, JSON.stringify(take));
    assert.equal(take.error.code, 'FD_FLOATING_NOT_PERMITTED');
    assert.match(take.error.message, /needs NET_ADMIN/);
    assert.equal(await has(h2, init.address), false);
    // With it (root in the namespace), all is well.
    assert.deepEqual(await tb.call(h2, OPS, 'capability', []), { ok: true });
  });
});
