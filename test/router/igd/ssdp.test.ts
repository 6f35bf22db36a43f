import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadResponseError } from '../../../src/router/errors.js';
import {
  IGD_SEARCH_TARGETS,
  MAX_SSDP_RESPONSE_BYTES,
  parseSsdpResponse,
  searchIgd,
} from '../../../src/router/igd/ssdp.js';
import type { SsdpResponse } from '../../../src/router/igd/ssdp.js';
import { editsArb, MINIUPNPD_SSDP_RESPONSE, mutate, RUNS, valueOrBadResponse } from './fixtures.js';
import { ManualClock } from '../../helpers/manual-clock.js';

describe('parseSsdpResponse', () => {
  it('reads a miniupnpd answer', () => {
    const r = parseSsdpResponse(Buffer.from(MINIUPNPD_SSDP_RESPONSE), { address: '192.168.77.1', port: 1900, elapsedMs: 12 });
    assert.equal(r.location, 'http://192.168.77.1:5000/rootDesc.xml');
    assert.equal(r.st, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2');
    assert.match(r.usn, /^uuid:6a1f3c2e/);
    assert.equal(r.server, 'Debian/12 UPnP/1.1 MiniUPnPd/2.3.1');
    assert.equal(r.maxAgeSeconds, 120);
    assert.equal(r.igdVersion, 2);
    assert.equal(r.headers.get('bootid.upnp.org'), '1764000000');
    assert.equal(r.headers.get('ext'), '');
    assert.deepEqual([r.address, r.port, r.elapsedMs], ['192.168.77.1', 1900, 12]);
  });

  it('takes header names in any case, bare LF line ends, HTTP/1.0 and IGD:1 types', () => {
    const r = parseSsdpResponse(
      Buffer.from(
        'HTTP/1.0 200 OK\nlocation:http://10.0.0.1:1780/igd.xml\nSt:urn:schemas-upnp-org:service:WANIPConnection:1\n' +
          'cache-control: no-cache, MAX-AGE = 1800\njunk line without colon\n\n',
      ),
    );
    assert.equal(r.location, 'http://10.0.0.1:1780/igd.xml');
    assert.equal(r.igdVersion, 1);
    assert.equal(r.maxAgeSeconds, 1800);
    assert.equal(r.address, '');
  });

  it('gives no version to a search target that is not an IGD one', () => {
    const r = parseSsdpResponse(Buffer.from('HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nLOCATION: http://10.0.0.1/\r\n\r\n'));
    assert.equal(r.igdVersion, undefined);
  });

  for (const [name, text] of [
    ['a NOTIFY', 'NOTIFY * HTTP/1.1\r\nLOCATION: http://10.0.0.1/\r\n\r\n'],
    ['a non-200 status', 'HTTP/1.1 404 Not Found\r\nLOCATION: http://10.0.0.1/\r\n\r\n'],
    ['no LOCATION', 'HTTP/1.1 200 OK\r\nST: x\r\n\r\n'],
    ['an empty LOCATION', 'HTTP/1.1 200 OK\r\nLOCATION:\r\n\r\n'],
    ['a relative LOCATION', 'HTTP/1.1 200 OK\r\nLOCATION: /rootDesc.xml\r\n\r\n'],
    ['an https LOCATION', 'HTTP/1.1 200 OK\r\nLOCATION: https://10.0.0.1/\r\n\r\n'],
    ['a file LOCATION', 'HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n'],
    ['LOCATION after the blank line', 'HTTP/1.1 200 OK\r\n\r\nLOCATION: http://10.0.0.1/\r\n'],
    ['nothing', ''],
  ] as const) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseSsdpResponse(Buffer.from(text)), BadResponseError);
    });
  }

  it('refuses oversized datagrams', () => {
    const big = Buffer.from(MINIUPNPD_SSDP_RESPONSE + `X-PAD: ${'a'.repeat(MAX_SSDP_RESPONSE_BYTES)}\r\n`);
    assert.throws(() => parseSsdpResponse(big), BadResponseError);
  });

  it('property: any bytes give a value or BadResponseError, with bounded fields', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        const r = valueOrBadResponse(() => parseSsdpResponse(Buffer.from(bytes)));
        if (r) assertBounded(r);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: mutated valid answers give a value or BadResponseError, with bounded fields', () => {
    fc.assert(
      fc.property(editsArb, (edits) => {
        const r = valueOrBadResponse(() => parseSsdpResponse(Buffer.from(mutate(MINIUPNPD_SSDP_RESPONSE, edits), 'latin1')));
        if (r) assertBounded(r);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: a header line of any length and content stays bounded', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 9000 }), (value) => {
        const r = valueOrBadResponse(() =>
          parseSsdpResponse(Buffer.from(`HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/\r\nX: ${value}\r\n\r\n`)),
        );
        if (r) assertBounded(r);
      }),
      { numRuns: 100 },
    );
  });
});

function assertBounded(r: SsdpResponse): void {
  assert.ok(r.location.length <= 2048);
  assert.ok(new URL(r.location).protocol === 'http:');
  for (const [k, v] of r.headers) assert.ok(k.length <= 512 && v.length <= 512);
  assert.ok(r.headers.size <= MAX_SSDP_RESPONSE_BYTES);
}

// --- searchIgd against fake responders on loopback -------------------------------------------

interface FakeResponder {
  /** The port M-SEARCHes go to. */
  port: number;
  /** M-SEARCH datagrams received, as text. */
  searches: string[];
  close(): void;
}

/**
 * A router's SSDP side on 127.0.0.1: it listens on one port and answers from ANOTHER socket
 * (another source port, optionally another loopback address), as some routers do.
 */
async function fakeResponder(opts: {
  replyFrom?: string;
  answer: (st: string, n: number) => string[] | undefined;
}): Promise<FakeResponder> {
  const listen = createSocket('udp4');
  const reply = createSocket('udp4');
  listen.bind(0, '127.0.0.1');
  reply.bind(0, opts.replyFrom ?? '127.0.0.1');
  await Promise.all([once(listen, 'listening'), once(reply, 'listening')]);
  const searches: string[] = [];
  listen.on('message', (msg, rinfo) => {
    const text = msg.toString('latin1');
    searches.push(text);
    const st = /\r\nST: (.*)\r\n/.exec(text)?.[1] ?? '';
    for (const a of opts.answer(st, searches.length) ?? []) reply.send(a, rinfo.port, rinfo.address);
  });
  return {
    port: listen.address().port,
    searches,
    close() {
      listen.close();
      reply.close();
    },
  };
}

function answer(st: string, location: string): string {
  return `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: ${st}\r\nUSN: uuid:x::${st}\r\nLOCATION: ${location}\r\n\r\n`;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  // Waits on I/O events, not on time: yields to the event loop until the datagrams arrived.
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}

describe('searchIgd', () => {
  it('sends unicast M-SEARCHes for every IGD target and resolves early on an IGD:2 answer from the gateway', async () => {
    const clock = new ManualClock();
    const responder = await fakeResponder({
      answer: (st) => (st.includes(':2') ? [answer(st, 'http://127.0.0.1:5000/rootDesc.xml')] : undefined),
    });
    try {
      const seen: SsdpResponse[] = [];
      // The clock never moves: only the early resolve can end this search.
      const found = await searchIgd({
        localAddress: '127.0.0.1',
        gateway: '127.0.0.1',
        ssdpPort: responder.port,
        multicast: false,
        clock,
        onResponse: (r) => seen.push(r),
      });
      assert.equal(found.length, 1);
      assert.equal(found[0]!.location, 'http://127.0.0.1:5000/rootDesc.xml');
      assert.equal(found[0]!.address, '127.0.0.1');
      assert.notEqual(found[0]!.port, responder.port, 'the answer came from another source port');
      assert.equal(found[0]!.igdVersion, 2);
      assert.equal(seen.length, 1);
      const sts = responder.searches.map((s) => /\r\nST: (.*)\r\n/.exec(s)?.[1]);
      for (const st of IGD_SEARCH_TARGETS) assert.ok(sts.includes(st), `searched ${st}`);
      assert.match(responder.searches[0]!, /^M-SEARCH \* HTTP\/1\.1\r\n/);
      assert.match(responder.searches[0]!, /\r\nMAN: "ssdp:discover"\r\n/);
      assert.match(responder.searches[0]!, /\r\nMX: \d\r\n/);
      assert.equal(clock.pendingCount, 0, 'all timers cancelled');
    } finally {
      responder.close();
    }
  });

  it('dedups answers by LOCATION, keeps the first arrival and learns IGD:2 from a later answer', async () => {
    const clock = new ManualClock();
    const igd1 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';
    const igd2 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2';
    const responder = await fakeResponder({
      replyFrom: '127.0.0.2',
      // After the last M-SEARCH of the burst: an IGD:1 answer, the same LOCATION as IGD:2, and a
      // second device that tells us the first two have been read (loopback keeps the order).
      answer: (_st, n) =>
        n === IGD_SEARCH_TARGETS.length
          ? [
              answer(igd1, 'http://127.0.0.2:5000/rootDesc.xml'),
              answer(igd2, 'http://127.0.0.2:5000/rootDesc.xml'),
              answer(igd1, 'http://127.0.0.2:6000/other.xml'),
            ]
          : undefined,
    });
    try {
      const seen: SsdpResponse[] = [];
      const search = searchIgd({
        localAddress: '127.0.0.1',
        gateway: '127.0.0.1',
        ssdpPort: responder.port,
        multicast: false,
        clock,
        onResponse: (r) => seen.push(r),
      });
      await until(() => seen.length === 2, 'both devices');
      // Answers not from the gateway do not end the search; the timeout does.
      clock.advance(2000);
      const found = await search;
      assert.deepEqual(
        found.map((r) => [r.location, r.address, r.igdVersion, r.st]),
        [
          ['http://127.0.0.2:5000/rootDesc.xml', '127.0.0.2', 2, igd1],
          ['http://127.0.0.2:6000/other.xml', '127.0.0.2', 1, igd1],
        ],
      );
    } finally {
      responder.close();
    }
  });

  it('resends when the first M-SEARCHes are lost', async () => {
    const clock = new ManualClock();
    const responder = await fakeResponder({
      // Drop the whole first burst, answer from the second on.
      answer: (st, n) => (n > IGD_SEARCH_TARGETS.length ? [answer(st, 'http://127.0.0.1:5000/d.xml')] : undefined),
    });
    try {
      const search = searchIgd({ localAddress: '127.0.0.1', gateway: '127.0.0.1', ssdpPort: responder.port, multicast: false, clock });
      await until(() => responder.searches.length === IGD_SEARCH_TARGETS.length, 'first burst');
      clock.advance(250);
      const found = await search;
      assert.equal(found.length, 1);
      assert.ok(responder.searches.length > IGD_SEARCH_TARGETS.length);
      assert.equal(found[0]!.elapsedMs, 250);
    } finally {
      responder.close();
    }
  });

  it('after an IGD:1-only answer from the gateway, finishes after the settle delay', async () => {
    const clock = new ManualClock();
    const responder = await fakeResponder({
      answer: (st) => (st.endsWith(':1') ? [answer(st, 'http://127.0.0.1:5000/igd1.xml')] : undefined),
    });
    try {
      let settled = false;
      const search = searchIgd({
        localAddress: '127.0.0.1',
        gateway: '127.0.0.1',
        ssdpPort: responder.port,
        multicast: false,
        clock,
        settleMs: 300,
      }).finally(() => {
        settled = true;
      });
      // The delayed multicast, two resends and the timeout are pending; the IGD:1 answer adds the
      // settle timer.
      await until(() => clock.pendingCount === 5, 'the IGD:1 answer');
      assert.equal(settled, false);
      clock.advance(300);
      const found = await search;
      assert.equal(found.length, 1);
      assert.equal(found[0]!.igdVersion, 1);
    } finally {
      responder.close();
    }
  });

  it('resolves with [] when nothing answers, at the timeout', async () => {
    const clock = new ManualClock();
    const responder = await fakeResponder({ answer: () => undefined });
    try {
      const search = searchIgd({
        localAddress: '127.0.0.1',
        gateway: '127.0.0.1',
        ssdpPort: responder.port,
        multicast: false,
        clock,
        timeoutMs: 1000,
      });
      await until(() => responder.searches.length === IGD_SEARCH_TARGETS.length, 'first burst');
      clock.advance(999);
      await until(() => responder.searches.length === 3 * IGD_SEARCH_TARGETS.length, 'two resends');
      clock.advance(1);
      assert.deepEqual(await search, []);
    } finally {
      responder.close();
    }
  });

  it('ignores garbage datagrams', async () => {
    const clock = new ManualClock();
    const responder = await fakeResponder({
      answer: (st) => ['garbage', 'HTTP/1.1 200 OK\r\nST: x\r\n\r\n', answer(st, 'http://127.0.0.1:1/x.xml')],
    });
    try {
      const found = await searchIgd({ localAddress: '127.0.0.1', gateway: '127.0.0.1', ssdpPort: responder.port, multicast: false, clock });
      assert.deepEqual(
        found.map((r) => r.location),
        ['http://127.0.0.1:1/x.xml'],
      );
    } finally {
      responder.close();
    }
  });

  it('rejects with the reason when aborted, and frees its socket', async () => {
    const clock = new ManualClock();
    const responder = await fakeResponder({ answer: () => undefined });
    try {
      const ac = new AbortController();
      const search = searchIgd({
        localAddress: '127.0.0.1',
        gateway: '127.0.0.1',
        ssdpPort: responder.port,
        multicast: false,
        clock,
        signal: ac.signal,
      });
      await until(() => responder.searches.length > 0, 'a search');
      const reason = new Error('stop');
      ac.abort(reason);
      await assert.rejects(search, (err) => err === reason);
      assert.equal(clock.pendingCount, 0);
    } finally {
      responder.close();
    }
  });

  it('rejects with a RouterError when the local address cannot be bound', async () => {
    // 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind fails, nothing is sent.
    await assert.rejects(
      searchIgd({ localAddress: '192.0.2.1', multicast: false, clock: new ManualClock() }),
      (err: Error & { code?: string }) => err.name === 'RouterError' && err.code === 'FD_ROUTER_ERROR',
    );
  });
});
