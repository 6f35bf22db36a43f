import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { electionConfig } from '../../src/election/config.js';
import { DepartureDetector } from '../../src/election/detector.js';
import type { DepartureReason } from '../../src/election/detector.js';
import type { PeerMessage } from '../../src/peers/messages.js';
import type { LanTransport } from '../../src/peers/transport.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** Records what the detector sends; nothing is delivered anywhere. */
class SentLog implements LanTransport {
  readonly probes: Array<{ at: number; nonce: string }> = [];
  constructor(private readonly clock: ManualClock) {}
  broadcast(): void {}
  unicast(body: PeerMessage): void {
    if (body.type === 'probe') this.probes.push({ at: this.clock.now(), nonce: body.nonce });
  }
  onMessage(): void {}
  close(): void {}
}

function setup(probeOnly = true) {
  const clock = new ManualClock(0);
  const sent = new SentLog(clock);
  const config = electionConfig({
    probeIntervalMs: 1000,
    probeTimeoutMs: 800,
    probeMisses: 4,
    detection: { withdrawal: true, silence: !probeOnly, probe: true },
  });
  const departures: Array<{ at: number; reason: DepartureReason }> = [];
  const detector = new DepartureDetector(
    { clock, transport: sent, random: () => 0.5 },
    { config, onDeparture: (_id, reason) => departures.push({ at: clock.now(), reason }) },
  );
  return { clock, sent, detector, departures };
}

describe('DepartureDetector probes', () => {
  it('sends no probe while the representative is heard every interval (its inquiries)', () => {
    const { clock, sent, detector, departures } = setup();
    detector.watch('rep', '192.168.77.10', 4862);
    for (let i = 0; i < 30; i++) {
      clock.advance(1000);
      detector.heard('rep');
    }
    assert.deepEqual(sent.probes, []);
    assert.deepEqual(departures, []);
  });

  it('probes a representative that fell silent, soon after its next message was due, and gives up after the misses', () => {
    const { clock, sent, detector, departures } = setup();
    detector.watch('rep', '192.168.77.10', 4862);
    clock.advance(700);
    detector.heard('rep'); // its last inquiry, at 700
    clock.advance(20_000);
    // Due again at 1700; the first probe goes out a tenth of an interval after that.
    assert.equal(sent.probes[0]?.at, 1800);
    assert.deepEqual(
      sent.probes.slice(0, 4).map((p) => p.at),
      [1800, 2800, 3800, 4800],
    );
    assert.deepEqual(departures, [{ at: 4800 + 800, reason: 'probe' }]);
  });

  it('a probe answered keeps the representative; misses start over', () => {
    const { clock, sent, detector, departures } = setup();
    detector.watch('rep', '192.168.77.10', 4862);
    clock.advance(1500); // silent since the watch began at 0: a look at 500 (heard 500 ms ago), the probe at 1100
    assert.deepEqual(sent.probes.map((p) => p.at), [1100]);
    detector.acked(sent.probes[0]!.nonce);
    clock.advance(3500); // probes at 2100, 3100, 4100 unanswered: three misses, one short
    assert.equal(sent.probes.length, 4);
    assert.deepEqual(departures, []);
    clock.advance(1000); // the fourth, at 5100, times out at 5900
    assert.deepEqual(departures, [{ at: 5900, reason: 'probe' }]);
  });
});
