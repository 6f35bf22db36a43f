import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PortConflictError } from '../../src/router/errors.js';
import { callInNs, formatNsCallOutcome, parseNsCallOutput, serializeError, toRemoteError } from './ns-call.js';
import { RemoteError, TestbedError } from './testbed-error.js';

// The call across a namespace runs in testbed.test.ts; here the script runs in this namespace
// (ns = null), which exercises everything but `ip netns exec`.
const fixture = new URL('./fixtures/ns-call-fixture.js', import.meta.url);

describe('parseNsCallOutput', () => {
  it('takes the last line, whatever the module printed before', () => {
    assert.deepEqual(parseNsCallOutput(`noise\n{"value":1}\n`), { value: 1 });
    assert.deepEqual(parseNsCallOutput(`{"value":1}\n${formatNsCallOutcome({ value: [2] })}`), { value: [2] });
    assert.deepEqual(parseNsCallOutput('{"error":{"name":"E","message":"m","code":"C"}}'), {
      error: { name: 'E', message: 'm', code: 'C' },
    });
  });

  it('rejects what is not an outcome with TB_BAD_OUTPUT', () => {
    for (const s of ['', '\n\n', 'not json', '[1]', '"x"', 'null', '{}', '{"value":1,"error":{}}', '{"error":{"name":1}}', '{"value":1}\nmore']) {
      assert.throws(() => parseNsCallOutput(s), { name: 'TestbedError', code: 'TB_BAD_OUTPUT' }, JSON.stringify(s));
    }
  });

  it('any text: an outcome or TB_BAD_OUTPUT, with bounded error text', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 500 }),
      fc.jsonValue().map((v) => JSON.stringify({ error: v })),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 6000 }).map((s) => JSON.stringify({ error: { name: s, message: s, code: s, fields: { [s]: s } } })),
    );
    fc.assert(
      fc.property(text, (s) => {
        let out: ReturnType<typeof parseNsCallOutput>;
        try {
          out = parseNsCallOutput(s);
        } catch (err) {
          assert.ok(err instanceof TestbedError && err.code === 'TB_BAD_OUTPUT', String(err));
          assert.ok(err.message.length < 1000);
          return;
        }
        if ('error' in out) {
          assert.ok(out.error.name.length <= 4003 && out.error.message.length <= 4003);
          assert.ok(Object.keys(out.error.fields ?? {}).length <= 32);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('round-trips any JSON value, after any output of the module', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.jsonValue(), (junk, value) => {
        const out = parseNsCallOutput(junk + formatNsCallOutcome({ value }));
        assert.deepEqual(out, { value: JSON.parse(JSON.stringify(value)) });
      }),
      { numRuns: 300 },
    );
  });
});

describe('serializeError', () => {
  it('keeps name, code, message and primitive fields of a typed error', () => {
    const s = serializeError(new PortConflictError(9000, undefined, 8081));
    assert.equal(s.name, 'PortConflictError');
    assert.equal(s.code, 'FD_PORT_CONFLICT');
    assert.deepEqual(s.fields, { externalPort: 9000, offeredPort: 8081 });
    const parsed = parseNsCallOutput(formatNsCallOutcome({ error: s }));
    assert.ok('error' in parsed);
    const back = toRemoteError(parsed.error);
    assert.ok(back instanceof RemoteError);
    assert.equal(back.name, 'PortConflictError');
    assert.equal(back.code, 'FD_PORT_CONFLICT');
    assert.equal(back['externalPort'], 9000);
  });

  it('any thrown value: a bounded JSON-safe description that survives the trip', () => {
    const thrown = fc.oneof(
      fc.anything(),
      fc
        .tuple(fc.string({ maxLength: 5000 }), fc.string(), fc.dictionary(fc.string({ maxLength: 200 }), fc.jsonValue(), { maxKeys: 50 }))
        .map(([msg, code, extra]) => Object.assign(new Error(msg), { code }, extra)),
    );
    fc.assert(
      fc.property(thrown, (v) => {
        const s = serializeError(v);
        assert.equal(typeof s.name, 'string');
        assert.ok(s.message.length <= 4003 && s.name.length <= 4003);
        assert.ok(Object.keys(s.fields ?? {}).length <= 32);
        const back = parseNsCallOutput(formatNsCallOutcome({ error: s }));
        assert.ok('error' in back);
        assert.equal(back.error.name, s.name);
        assert.equal(back.error.message, s.message);
        assert.equal(back.error.code, s.code);
      }),
      { numRuns: 300 },
    );
  });
});

describe('callInNs (in this namespace)', () => {
  it('returns the JSON result of the export', async () => {
    assert.equal(await callInNs(null, fixture, 'add', [2, 3]), 5);
    assert.deepEqual(await callInNs(null, fixture, 'noisy'), { ok: true });
    assert.equal(await callInNs(null, fixture, 'nothing'), null);
    const pid = await callInNs<number>(null, fixture, 'pid');
    assert.notEqual(pid, process.pid);
  });

  it('rethrows a remote typed error with its name, code and fields', async () => {
    await assert.rejects(callInNs(null, fixture, 'failTyped', [9000]), (err: unknown) => {
      assert.ok(err instanceof RemoteError);
      assert.equal(err.name, 'PortConflictError');
      assert.equal(err.code, 'FD_PORT_CONFLICT');
      assert.equal(err['externalPort'], 9000);
      assert.match(err.remoteStack ?? '', /failTyped/);
      return true;
    });
    await assert.rejects(callInNs(null, fixture, 'throwString'), { name: 'NonError', message: 'plain string' });
    await assert.rejects(callInNs(null, fixture, 'bigint'), { name: 'TypeError', code: 'TB_BAD_OUTPUT' });
  });

  it('reports a missing export or module as a remote error', async () => {
    await assert.rejects(callInNs(null, fixture, 'nope'), { name: 'TestbedError', code: 'TB_BAD_CONFIG' });
    await assert.rejects(callInNs(null, fixture, 'notAFunction'), { code: 'TB_BAD_CONFIG' });
    await assert.rejects(callInNs(null, new URL('./fixtures/missing.js', import.meta.url), 'x'), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
  });

  it('returns although the module left a timer running', async () => {
    assert.equal(await callInNs(null, fixture, 'leavesTimer', [], { timeoutMs: 5000 }), 'done');
  });

  it('kills a call that does not finish in time, or that the caller aborts', async () => {
    // 'hang' never returns: only the call's timer can end it (no wall-clock bound needed).
    await assert.rejects(callInNs(null, fixture, 'hang', [], { timeoutMs: 300 }), { name: 'TestbedError', code: 'TB_TIMEOUT' });
    const ac = new AbortController();
    const p = callInNs(null, fixture, 'hang', [], { signal: ac.signal });
    ac.abort(new Error('caller gave up'));
    await assert.rejects(p, { message: 'caller gave up' });
  });
});
