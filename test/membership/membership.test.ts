import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Membership } from '../../src/membership/membership.js';
import type { MembershipEvent } from '../../src/membership/membership.js';
import type { NodeInfo, PeerMessage, Received } from '../../src/peers/messages.js';
import type { LanTransport } from '../../src/peers/transport.js';
import { silentLogger } from '../../src/runtime/log.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** Membership alone: messages handed in by hand, time on the manual clock. */

function info(name: string, publicPort = 8081): NodeInfo {
  return { name, addresses: ['192.168.77.10'], localPort: 8081, publicPort, camera: false, rank: 'aa' };
}

function rig() {
  const clock = new ManualClock(1_000);
  const sent: PeerMessage[] = [];
  let handler: ((m: Received) => void) | undefined;
  const transport: LanTransport = {
    broadcast: (b) => sent.push(b),
    unicast: (b) => sent.push(b),
    onMessage: (h) => {
      handler = h;
    },
    close: () => {},
  };
  const m = new Membership(
    { clock, transport, logger: silentLogger },
    { self: { id: 'me', boot: 'b0' }, info: info('me'), lanPort: 4862, refreshIntervalMs: 5_000, directoryTtlMs: 20_000 },
  );
  const events: MembershipEvent[] = [];
  m.on((e) => events.push(e));
  const passed: Received[] = [];
  m.onMessage((msg) => passed.push(msg));
  let seq = 0;
  const deliver = (id: string, boot: string, body: PeerMessage, at = ++seq) => handler?.({ from: { id, boot }, seq: at, sentAt: 0, body, address: '192.168.77.20', port: 4862 });
  m.start();
  return { clock, sent, m, events, passed, deliver };
}

const ids = (m: Membership) => m.entries().map((e) => e.id);

describe('Membership', () => {
  it('lists itself at start and says so on the LAN; answers an inquiry after the election saw it', () => {
    const r = rig();
    assert.deepEqual(ids(r.m), ['me']);
    assert.deepEqual(r.sent.map((b) => b.type), ['reply']);
    r.deliver('rep', 'x', { type: 'inquiry', publicPort: 8080, wanAddress: '', heir: '' });
    assert.equal(r.passed.length, 1, 'handed on');
    assert.deepEqual(r.sent.map((b) => b.type), ['reply', 'reply']);
  });

  it('a node is listed from its first reply, relisted with a new boot (a restart), touched by any message', () => {
    const r = rig();
    r.deliver('n1', 'a', { type: 'reply', node: info('one') });
    assert.deepEqual(ids(r.m), ['me', 'n1']);
    assert.equal(r.events.filter((e) => e.type === 'joined').length, 1);
    r.deliver('n1', 'b', { type: 'reply', node: info('one') });
    const joined = r.events.filter((e) => e.type === 'joined');
    assert.equal(joined.length, 2);
    assert.equal(joined[1]?.type === 'joined' && joined[1].restarted, true);
    r.clock.advance(15_000);
    r.deliver('n1', 'b', { type: 'probe', nonce: 'x' });
    r.clock.advance(10_000);
    assert.deepEqual(ids(r.m), ['me', 'n1'], 'the probe kept it');
    r.clock.advance(20_000);
    assert.deepEqual(ids(r.m), ['me'], 'not heard for the TTL: gone');
  });

  it('a withdraw removes the node at once; its late messages do not bring it back, a later one does', () => {
    const r = rig();
    r.deliver('n1', 'a', { type: 'reply', node: info('one') }, 1);
    r.deliver('n1', 'a', { type: 'withdraw', wasRepresentative: true, successor: '' }, 5);
    assert.deepEqual(ids(r.m), ['me']);
    // Sent before the withdraw, arriving after it (reordered): dropped, not handed on.
    const before = r.passed.length;
    r.deliver('n1', 'a', { type: 'reply', node: info('one') }, 4);
    r.deliver('n1', 'a', { type: 'withdraw', wasRepresentative: true, successor: '' }, 6);
    assert.deepEqual(ids(r.m), ['me']);
    assert.equal(r.passed.length, before);
    // Sent after it: the node gave up a role and stays on.
    r.deliver('n1', 'a', { type: 'reply', node: info('one') }, 9);
    assert.deepEqual(ids(r.m), ['me', 'n1']);
  });

  it('a new public port of its own goes out at once; a leaving node says nothing more', () => {
    const r = rig();
    r.m.updateInfo({ publicPort: 8090 });
    assert.equal(r.m.entries()[0]?.info.publicPort, 8090);
    assert.deepEqual(r.sent.map((b) => b.type), ['reply', 'reply']);
    assert.ok(r.events.some((e) => e.type === 'self'));
    r.m.leave();
    r.deliver('rep', 'x', { type: 'inquiry', publicPort: 8080, wanAddress: '', heir: '' });
    r.clock.advance(12_000);
    assert.equal(r.sent.length, 2, 'no answer and no refresh while leaving');
  });

  it('an unasked reply every refresh interval unless one went out lately', () => {
    const r = rig();
    r.clock.advance(5_000);
    assert.equal(r.sent.length, 2);
    r.clock.advance(3_000);
    r.deliver('rep', 'x', { type: 'inquiry', publicPort: 8080, wanAddress: '', heir: '' });
    r.clock.advance(2_000);
    assert.equal(r.sent.length, 3, 'the answer at 8 s stands for the refresh at 10 s');
  });
});
