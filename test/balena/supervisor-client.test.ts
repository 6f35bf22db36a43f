import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SupervisorResponseError, type SupervisorUnavailableError } from '../../src/balena/errors.js';
import { SupervisorClient } from '../../src/balena/supervisor-client.js';
import { parseDevice, parseDeviceName, parsePing } from '../../src/balena/supervisor-response.js';
import { type FakeSupervisor, startFakeSupervisor } from './fixtures/fake-supervisor.js';

const KEY = 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4';

async function rejectsWith(p: Promise<unknown>, name: string, check?: (e: Error) => void): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Error);
    assert.equal(e.name, name, e.message);
    assert.ok(!e.message.includes(KEY), `the API key leaked into: ${e.message}`);
    check?.(e);
    return e;
  }
  assert.fail(`expected ${name}`);
}

describe('supervisor client against a server answering as the documentation says', () => {
  let sup: FakeSupervisor;
  before(async () => {
    sup = await startFakeSupervisor({ apiKey: KEY, deviceName: 'holy-wildflower' });
  });
  after(() => sup.close());

  it('pings, reads the device state and the current name, sending the key as the apikey parameter', async () => {
    sup.behaviour = 'normal';
    const c = new SupervisorClient({ address: sup.address, apiKey: KEY });
    assert.equal(await c.ping(), true);
    const d = await c.device();
    assert.equal(d.apiPort, 48484);
    assert.deepEqual(d.ipAddresses, ['192.168.77.10', '10.114.102.1']);
    assert.equal(d.supervisorVersion, '16.7.1');
    assert.equal(d.downloadProgress, null);
    assert.equal(d.updatePending, false);
    assert.equal(await c.deviceName(), 'holy-wildflower');
    sup.deviceName = 'renamed-in-dashboard';
    assert.equal(await c.deviceName(), 'renamed-in-dashboard');
    assert.ok(sup.requests.filter((r) => r.path !== '/ping').every((r) => r.keyOk));
  });

  it('a wrong key is a response error carrying 401; a 500 likewise with its status', async () => {
    sup.behaviour = 'normal';
    const wrong = new SupervisorClient({ address: sup.address, apiKey: 'wrong' });
    await rejectsWith(wrong.deviceName(), 'SupervisorResponseError', (e) => assert.equal((e as SupervisorResponseError).status, 401));
    sup.behaviour = 'error500';
    const c = new SupervisorClient({ address: sup.address, apiKey: KEY });
    await rejectsWith(c.device(), 'SupervisorResponseError', (e) => assert.equal((e as SupervisorResponseError).status, 500));
  });

  it('a body past the size bound or not JSON is a response error, not a crash or a hang', async () => {
    const c = new SupervisorClient({ address: sup.address, apiKey: KEY, maxBodyBytes: 4096 });
    sup.behaviour = 'huge';
    await rejectsWith(c.deviceName(), 'SupervisorResponseError');
    sup.behaviour = 'garbage';
    await rejectsWith(c.deviceName(), 'SupervisorResponseError');
  });

  it('no answer within the timeout is "unavailable", and so is the caller aborting', async () => {
    sup.behaviour = 'slow';
    const c = new SupervisorClient({ address: sup.address, apiKey: KEY, timeoutMs: 150 });
    const t0 = Date.now();
    // The fake never answers: only the client's own timer ends the call, and the message says
    // which one (no upper bound in wall-clock time to race a loaded machine).
    await rejectsWith(c.deviceName(), 'SupervisorUnavailableError', (e) => assert.match(e.message, /no answer within 150 ms/));
    const took = Date.now() - t0;
    assert.ok(took >= 100, `gave up after ${took} ms, before its 150 ms timeout`);
    const ctl = new AbortController();
    const slow = new SupervisorClient({ address: sup.address, apiKey: KEY, timeoutMs: 10_000 });
    setTimeout(() => ctl.abort(), 50);
    await rejectsWith(slow.ping({ signal: ctl.signal }), 'SupervisorUnavailableError');
    sup.behaviour = 'normal';
  });

  it('nothing listening (off balena, supervisor not up) is "unavailable"; a bad address says so at once', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = new SupervisorClient({ address: `http://127.0.0.1:${port}`, apiKey: KEY });
    const e = await rejectsWith(c.ping(), 'SupervisorUnavailableError');
    assert.equal((e as SupervisorUnavailableError).code, 'FD_SUPERVISOR_UNAVAILABLE');
    assert.throws(() => new SupervisorClient({ address: 'not a url', apiKey: KEY }), { name: 'SupervisorUnavailableError' });
    assert.throws(() => new SupervisorClient({ address: 'https://127.0.0.1:48484', apiKey: KEY }), { name: 'SupervisorUnavailableError' });
  });
});

describe('supervisor response parsers', () => {
  const enc = (s: string) => new TextEncoder().encode(s);

  it('read the documented answers', () => {
    assert.equal(parsePing(200, enc('OK')), true);
    assert.equal(parseDeviceName(200, enc('{"status":"success","deviceName":"holy-wildflower"}')), 'holy-wildflower');
    assert.throws(() => parseDeviceName(200, enc('{"status":"failed","deviceName":"x"}')), { name: 'SupervisorResponseError' });
    assert.throws(() => parseDeviceName(200, enc('{"status":"success","deviceName":""}')), { name: 'SupervisorResponseError' });
    assert.throws(() => parsePing(200, enc('NOT OK')), { name: 'SupervisorResponseError' });
    // "some may be missing or null": a field of the wrong type is left out, the rest kept.
    assert.deepEqual(parseDevice(200, enc('{"api_port":"48484","status":"Idle","update_failed":1}')), { status: 'Idle' });
  });

  it('any status and any body give a typed value or a SupervisorResponseError, never anything else', () => {
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 200 }).map(enc),
      fc.jsonValue().map((v) => enc(JSON.stringify(v) ?? 'null')),
      fc.record({ status: fc.oneof(fc.constant('success'), fc.string()), deviceName: fc.jsonValue() }).map((v) => enc(JSON.stringify(v))),
      fc.dictionary(fc.constantFrom('api_port', 'ip_address', 'mac_address', 'status', 'download_progress', 'update_pending', '__proto__'), fc.jsonValue()).map((v) => enc(JSON.stringify(v))),
    );
    const statuses = fc.oneof(fc.constant(200), fc.integer({ min: 0, max: 999 }));
    fc.assert(
      fc.property(statuses, bodies, (status, body) => {
        for (const [parse, check] of [
          [parsePing, (v: unknown) => v === true],
          [parseDeviceName, (v: unknown) => typeof v === 'string' && v.trim() !== ''],
          [parseDevice, (v: unknown) => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype],
        ] as const) {
          try {
            const v = (parse as (s: number, b: Uint8Array) => unknown)(status, body);
            assert.equal(status, 200);
            assert.ok(check(v), `unexpected value ${JSON.stringify(v)}`);
          } catch (e) {
            if (!(e instanceof SupervisorResponseError)) throw e;
            assert.equal(e.code, 'FD_SUPERVISOR_RESPONSE');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a name the supervisor sends comes back as sent', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 100 }).filter((s) => s.trim() !== ''), (name) => {
        assert.equal(parseDeviceName(200, enc(JSON.stringify({ status: 'success', deviceName: name }))), name);
      }),
    );
  });
});
