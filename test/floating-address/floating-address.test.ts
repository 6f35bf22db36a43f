import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandResult } from '../../src/floating-address/command-runner.js';
import {
  FloatingAddress,
  FloatingAddressError,
  type FloatingAddressInit,
  floatingCapability,
  hasCapability,
  parseAddressPrefixes,
} from '../../src/floating-address/floating-address.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { FakeHost, recordingLogger, settle } from './fake-host.js';

const ADDR = '192.168.77.100';
const REPLACE = ['ip', 'addr', 'replace', `${ADDR}/24`, 'dev', 'eth0', 'valid_lft', '2', 'preferred_lft', '2'];
const SHOW = ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'];
const ARP = ['arping', '-U', '-c', '1', '-I', 'eth0', ADDR];
const DEL = ['ip', 'addr', 'del', `${ADDR}/24`, 'dev', 'eth0'];

function setup(init: Partial<FloatingAddressInit> = {}, host = new FakeHost()) {
  const clock = new ManualClock();
  const logger = recordingLogger();
  const lost: string[] = [];
  const fa = new FloatingAddress(
    { run: host.run, clock, logger },
    { address: ADDR, prefixLength: 24, interface: 'eth0', onLost: (r) => lost.push(r), ...init },
  );
  return { host, clock, logger, lost, fa };
}

const result = (code: number, stderr = '', stdout = ''): CommandResult => ({ code, stdout, stderr });

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<FloatingAddressError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FloatingAddressError, `expected a FloatingAddressError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('FloatingAddress: take, refresh, drop', () => {
  it('take adds the address with its lifetime, then sends one gratuitous ARP', async () => {
    const { host, fa } = setup();
    assert.equal(fa.held, false);
    await fa.take();
    assert.deepEqual(host.calls, [REPLACE, ARP]);
    assert.equal(fa.held, true);
    assert.ok(host.addrs.has(`${ADDR}/24`));
  });

  it('lifetime, ARP count and prefix go into the argv', async () => {
    const { host, fa } = setup({ lifetimeSeconds: 5, refreshMs: 1000, arpCount: 3, prefixLength: 16 });
    await fa.take();
    assert.deepEqual(host.calls, [
      ['ip', 'addr', 'replace', `${ADDR}/16`, 'dev', 'eth0', 'valid_lft', '5', 'preferred_lft', '5'],
      ['arping', '-U', '-c', '3', '-I', 'eth0', ADDR],
    ]);
  });

  it('refreshes every refreshMs on the injected clock: a check that it is there, then the lifetime renewed', async () => {
    const { host, clock, fa } = setup();
    await fa.take();
    host.calls.length = 0;
    clock.advance(499);
    await settle();
    assert.deepEqual(host.calls, []);
    clock.advance(1);
    await settle();
    assert.deepEqual(host.calls, [SHOW, REPLACE]);
    for (let i = 0; i < 4; i++) {
      clock.advance(500);
      await settle();
    }
    assert.equal(host.calls.length, 10);
    assert.deepEqual(host.calls.slice(-2), [SHOW, REPLACE]);
    // One refresh timer pending, nothing else.
    assert.equal(clock.pendingCount, 1);
  });

  it('a refresh that finds the address gone calls onLost once and stops', async () => {
    const { host, clock, fa, lost, logger } = setup();
    await fa.take();
    host.addrs.delete(`${ADDR}/24`);
    host.calls.length = 0;
    clock.advance(500);
    await settle();
    assert.deepEqual(host.calls, [SHOW], 'no replace: that would bring a lost address back');
    assert.equal(lost.length, 1);
    assert.match(lost[0]!, /192\.168\.77\.100\/24 is no longer on eth0/);
    assert.equal(fa.held, false);
    assert.equal(clock.pendingCount, 0);
    clock.advance(5000);
    await settle();
    assert.deepEqual(host.calls, [SHOW]);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && l.msg === 'floating address lost'));
  });

  it('the same address with another prefix length does not count as ours', async () => {
    const { host, clock, fa, lost } = setup();
    await fa.take();
    host.addrs.delete(`${ADDR}/24`);
    host.addrs.add(`${ADDR}/32`);
    clock.advance(500);
    await settle();
    assert.equal(lost.length, 1);
  });

  it('refresh failures are logged once per streak and retried; recovery is logged', async () => {
    const { host, clock, fa, logger, lost } = setup();
    await fa.take();
    let failing = true;
    host.fail = (argv) => (failing && argv[2] === 'replace' ? result(2, 'RTNETLINK answers: No buffer space available\n') : undefined);
    for (let i = 0; i < 3; i++) {
      clock.advance(500);
      await settle();
    }
    const warns = () => logger.lines.filter((l) => l.level === 'warn' && l.msg.startsWith('floating address refresh failed'));
    assert.equal(warns().length, 1);
    assert.match(String(warns()[0]!.fields?.['error']), /No buffer space/);
    assert.equal(host.calls.filter((c) => c[2] === 'replace').length, 1 + 3, 'each tick retried');
    failing = false;
    clock.advance(500);
    await settle();
    const back = logger.lines.find((l) => l.msg === 'floating address refresh works again');
    assert.equal(back?.fields?.['failed'], 3);
    failing = true;
    clock.advance(500);
    await settle();
    assert.equal(warns().length, 2, 'a new streak is logged again');
    assert.equal(fa.held, true);
    assert.deepEqual(lost, []);
  });

  it('a refresh that hangs is given up after the lifetime and the next one is tried', async () => {
    const { host, clock, fa, logger } = setup();
    await fa.take();
    let release!: () => void;
    host.gate = new Promise<void>((r) => {
      release = r;
    });
    clock.advance(500);
    await settle();
    assert.deepEqual(host.calls.at(-1), SHOW);
    clock.advance(2000);
    await settle();
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /longer than the lifetime/.test(String(l.fields?.['error']))));
    host.gate = undefined;
    release();
    clock.advance(500);
    await settle();
    assert.deepEqual(host.calls.slice(-2), [SHOW, REPLACE]);
  });

  it('drop stops the refresh and removes the address; a missing address is not an error', async () => {
    const { host, clock, fa } = setup();
    await fa.take();
    await fa.drop();
    assert.equal(fa.held, false);
    assert.deepEqual(host.calls.at(-1), DEL);
    assert.equal(host.has(ADDR), false);
    assert.equal(clock.pendingCount, 0);
    await fa.drop();
    host.fail = (argv) => (argv[2] === 'del' ? result(2, 'RTNETLINK answers: Cannot assign requested address\n') : undefined);
    await fa.drop();
  });

  it('drop during a refresh in flight: the refresh never re-adds what drop removed', async () => {
    const { host, clock, fa } = setup();
    await fa.take();
    let release!: () => void;
    host.gate = new Promise<void>((r) => {
      release = r;
    });
    clock.advance(500);
    await settle();
    const dropped = fa.drop();
    await settle();
    host.gate = undefined;
    release();
    await dropped;
    await settle();
    assert.equal(host.has(ADDR), false);
    const after = host.calls.slice(host.calls.findIndex((c) => c[2] === 'del'));
    assert.deepEqual(after, [DEL]);
  });

  it('take while held renews and announces again, without a second refresh timer', async () => {
    const { host, clock, fa } = setup();
    await fa.take();
    await fa.take();
    assert.deepEqual(host.calls, [REPLACE, ARP, REPLACE, ARP]);
    assert.equal(clock.pendingCount, 1);
  });

  it('announce sends another gratuitous ARP, and refuses when the address is not held', async () => {
    const { host, fa } = setup();
    await rejectsWith(fa.announce(), 'FD_FLOATING_FAILED', /not held/);
    await fa.take();
    host.calls.length = 0;
    await fa.announce();
    assert.deepEqual(host.calls, [ARP]);
  });

  it('clearStale removes the address with any prefix length, and says whether there was one', async () => {
    const { host, fa } = setup();
    host.addrs.add(`${ADDR}/24`);
    host.addrs.add(`${ADDR}/32`);
    assert.equal(await fa.isPresent(), true);
    assert.equal(await fa.clearStale(), true);
    assert.equal(host.has(ADDR), false);
    assert.ok(host.addrs.has('192.168.77.10/24'), 'our own address stays');
    assert.deepEqual(
      host.calls.filter((c) => c[2] === 'del'),
      [DEL, ['ip', 'addr', 'del', `${ADDR}/32`, 'dev', 'eth0']],
    );
    assert.equal(await fa.isPresent(), false);
    assert.equal(await fa.clearStale(), false);
  });

  it('with a runner that can start, take does not wait for arping to end; its failure is logged', async () => {
    const host = new FakeHost();
    const starting = host.startingRunner();
    const clock = new ManualClock();
    const logger = recordingLogger();
    const fa = new FloatingAddress({ run: starting.run, clock, logger }, { address: ADDR, prefixLength: 24, interface: 'eth0' });
    await fa.take();
    assert.equal(fa.held, true);
    assert.equal(starting.started, 1);
    starting.finishArp(result(2, 'arping: socket: Operation not permitted\n'));
    await settle();
    const warn = logger.lines.find((l) => l.msg === 'gratuitous ARP failed');
    assert.match(String(warn?.fields?.['error']), /needs NET_RAW/);
  });
});

describe('FloatingAddress: errors say what to do', () => {
  it('Operation not permitted is FD_FLOATING_NOT_PERMITTED and names NET_ADMIN and the way out', async () => {
    const { host, fa } = setup();
    host.fail = () => result(2, 'RTNETLINK answers: Operation not permitted\n');
    const err = await rejectsWith(fa.take(), 'FD_FLOATING_NOT_PERMITTED', /NET_ADMIN/);
    assert.match(err.message, /privileged/);
    assert.match(err.message, /FRONTDOOR_FLOATING_ADDRESS=off/);
    assert.equal(fa.held, false);
  });

  it('a missing ip is FD_FLOATING_COMMAND_MISSING naming the package', async () => {
    const { host, fa } = setup();
    host.fail = (argv) => {
      if (argv[0] === 'ip') throw Object.assign(new Error('spawn ip ENOENT'), { code: 'ENOENT' });
      return undefined;
    };
    await rejectsWith(fa.take(), 'FD_FLOATING_COMMAND_MISSING', /iproute2/);
    await rejectsWith(fa.isPresent(), 'FD_FLOATING_COMMAND_MISSING');
  });

  it('a missing arping fails take and leaves no half-taken address behind', async () => {
    const { host, fa, clock } = setup();
    host.fail = (argv) => {
      if (argv[0] === 'arping') throw Object.assign(new Error('spawn arping ENOENT'), { code: 'ENOENT' });
      return undefined;
    };
    await rejectsWith(fa.take(), 'FD_FLOATING_COMMAND_MISSING', /iputils-arping/);
    assert.equal(fa.held, false);
    assert.equal(host.has(ADDR), false);
    assert.deepEqual(host.calls.at(-1), DEL);
    assert.equal(clock.pendingCount, 0);
  });

  it('a missing arping with a starting runner is caught at the start', async () => {
    const host = new FakeHost();
    const run = Object.assign(host.run, {
      start: async () => {
        throw Object.assign(new Error('spawn arping ENOENT'), { code: 'ENOENT' });
      },
    });
    const fa = new FloatingAddress({ run, clock: new ManualClock(), logger: recordingLogger() }, { address: ADDR, prefixLength: 24, interface: 'eth0' });
    await rejectsWith(fa.take(), 'FD_FLOATING_COMMAND_MISSING', /arping/);
  });

  it('an unknown interface is FD_FLOATING_FAILED and says to check it', async () => {
    const { fa } = setup({ interface: 'wlan9' });
    await rejectsWith(fa.take(), 'FD_FLOATING_FAILED', /no interface wlan9.*--interface/);
    await rejectsWith(fa.isPresent(), 'FD_FLOATING_FAILED', /wlan9/);
  });

  it('other failures are FD_FLOATING_FAILED with the command and its message', async () => {
    const { host, fa } = setup();
    host.fail = (argv) => (argv[0] === 'ip' ? result(2, 'RTNETLINK answers: File exists\n') : undefined);
    await rejectsWith(fa.take(), 'FD_FLOATING_FAILED', /ip addr replace 192\.168\.77\.100\/24 .* exited 2: RTNETLINK answers: File exists/);
  });

  it('drop reports a real failure', async () => {
    const { host, fa } = setup();
    host.fail = (argv) => (argv[2] === 'del' ? result(2, 'RTNETLINK answers: Operation not permitted\n') : undefined);
    await rejectsWith(fa.drop(), 'FD_FLOATING_NOT_PERMITTED');
  });

  it('an abort is passed through as the signal reason', async () => {
    const { fa } = setup();
    const reason = new Error('stopping');
    await assert.rejects(fa.take(AbortSignal.abort(reason)), (e) => e === reason);
  });

  it('bad settings are refused at construction', () => {
    const make = (init: Partial<FloatingAddressInit>) => () => setup(init);
    assert.throws(make({ address: 'eth0' }), TypeError);
    assert.throws(make({ prefixLength: 33 }), RangeError);
    assert.throws(make({ interface: 'eth0; reboot' }), TypeError);
    assert.throws(make({ lifetimeSeconds: 1.5 }), RangeError);
    assert.throws(make({ lifetimeSeconds: 2, refreshMs: 1500 }), RangeError);
    assert.throws(make({ refreshMs: 0 }), RangeError);
    assert.throws(make({ arpCount: 0 }), RangeError);
  });
});

describe('parseAddressPrefixes', () => {
  it('reads ip -o -4 addr show output (iproute2 6.1)', () => {
    const text =
      '2: eth0    inet 192.168.77.10/24 brd 192.168.77.255 scope global eth0\\       valid_lft forever preferred_lft forever\n' +
      '2: eth0    inet 192.168.77.100/24 scope global secondary dynamic eth0\\       valid_lft 2sec preferred_lft 2sec\n' +
      '2: eth0    inet 192.168.77.100/32 scope global dynamic eth0\\       valid_lft 1sec preferred_lft 1sec\n' +
      '2: eth0    inet 192.168.77.101/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n';
    assert.deepEqual(parseAddressPrefixes(text, '192.168.77.100'), [24, 32]);
    assert.deepEqual(parseAddressPrefixes(text, '192.168.77.10'), [24]);
    assert.deepEqual(parseAddressPrefixes(text, '192.168.77.1'), []);
    assert.deepEqual(parseAddressPrefixes('', '192.168.77.1'), []);
  });
});

describe('floatingCapability', () => {
  const status = (capEff: string) => async () => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

  it('needs NET_ADMIN (bit 12 of CapEff)', async () => {
    assert.equal(hasCapability('CapEff:\t000001ffffffffff\n', 12), true);
    assert.equal(hasCapability('CapEff:\t000001fffeffefff\n', 12), false, 'capsh --drop=cap_net_admin, measured');
    assert.equal(hasCapability('CapEff:\t0000000000001000\n', 12), true);
    assert.equal(hasCapability('Name:\tx\n', 12), undefined);
    const host = new FakeHost();
    const r = await floatingCapability(host.run, { readStatus: status('000001fffeffefff') });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /NET_ADMIN.*privileged/);
    assert.deepEqual(host.calls, []);
  });

  it('with NET_ADMIN, asks ip and arping for their version', async () => {
    const calls: string[][] = [];
    const run = async (argv: readonly string[]) => {
      calls.push([...argv]);
      return result(0, '', `${argv[0]} version`);
    };
    assert.deepEqual(await floatingCapability(run, { readStatus: status('0000000000001000') }), { ok: true });
    assert.deepEqual(calls, [
      ['ip', '-V'],
      ['arping', '-V'],
    ]);
  });

  it('names the package of a missing tool', async () => {
    const run = async (argv: readonly string[]) => {
      if (argv[0] === 'arping') throw Object.assign(new Error('spawn arping ENOENT'), { code: 'ENOENT' });
      return result(0);
    };
    const r = await floatingCapability(run, { readStatus: status('000001ffffffffff') });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /arping.*iputils-arping/);
  });

  it('without /proc (not Linux) says so', async () => {
    const r = await floatingCapability(new FakeHost().run, {
      readStatus: async () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      },
    });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /needs Linux/);
  });
});
