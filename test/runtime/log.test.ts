import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AcmeError } from '../../src/acme/errors.js';
import { CodedError } from '../../src/runtime/errors.js';
import { createLogger } from '../../src/runtime/log.js';
import type { LogFields } from '../../src/runtime/log.js';
import { RouterTimeoutError } from '../../src/router/errors.js';

/** The one line a logger writes for `fields`, in JSON or text. */
function line(json: boolean, fields: LogFields, msg = 'something happened'): string {
  const lines: string[] = [];
  createLogger({ json, level: 'debug', write: (l) => lines.push(l) }).warn(msg, fields);
  assert.equal(lines.length, 1);
  return lines[0]!;
}
const jsonLine = (fields: LogFields) => JSON.parse(line(true, fields)) as Record<string, unknown>;
const textLine = (fields: LogFields) => line(false, fields);

class TestDiskError extends CodedError<'FD_TEST_DISK'> {}

describe('log: errors as field values', () => {
  const timeout = new RouterTimeoutError('no answer within 3000 ms');

  it('JSON: a CodedError subclass keeps its name, code and message', () => {
    const l = jsonLine({ port: 8443, error: timeout });
    assert.deepEqual(l['error'], { name: 'RouterTimeoutError', code: 'FD_ROUTER_TIMEOUT', message: 'no answer within 3000 ms' });
    assert.equal(l['port'], 8443);
    assert.equal(l['msg'], 'something happened');
    assert.equal(l['level'], 'warn');
  });

  it('text: Name[CODE]: message', () => {
    const t = textLine({ port: 8443, error: timeout });
    assert.ok(t.endsWith('warn  frontdoor: something happened port=8443 error=RouterTimeoutError[FD_ROUTER_TIMEOUT]: no answer within 3000 ms'), t);
  });

  it('a subclass of a subclass, and a Node error with its errno code', () => {
    assert.deepEqual(jsonLine({ error: new TestDiskError('FD_TEST_DISK', 'full') })['error'], { name: 'TestDiskError', code: 'FD_TEST_DISK', message: 'full' });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.match(textLine({ error: refused }), / error=Error\[ECONNREFUSED\]: connect ECONNREFUSED 127\.0\.0\.1:1$/);
  });

  it('no code, no brackets; a number as code (DOMException) is not one', () => {
    assert.deepEqual(jsonLine({ error: new TypeError('x is not a function') })['error'], { name: 'TypeError', message: 'x is not a function' });
    const aborted = AbortSignal.abort().reason as Error;
    const e = jsonLine({ error: aborted })['error'] as Record<string, unknown>;
    assert.equal(e['name'], 'AbortError');
    assert.equal(e['code'], undefined);
    assert.match(textLine({ error: aborted }), / error=AbortError: /);
  });

  it('the cause is said when the message does not say it already', () => {
    const inner = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const apart = new AcmeError('FD_ACME_CA', 'the CA hung up', { cause: inner });
    assert.deepEqual(jsonLine({ error: apart })['error'], {
      name: 'AcmeError',
      code: 'FD_ACME_CA',
      message: 'the CA hung up',
      cause: 'Error[ECONNRESET]: read ECONNRESET',
    });
    assert.match(textLine({ error: apart }), / error=AcmeError\[FD_ACME_CA\]: the CA hung up \(cause: Error\[ECONNRESET\]: read ECONNRESET\)$/);
    const within = new AcmeError('FD_ACME_CA', 'ordering: read ECONNRESET', { cause: inner });
    assert.equal((jsonLine({ error: within })['error'] as Record<string, unknown>)['cause'], undefined);
    assert.equal((jsonLine({ error: new Error('a', { cause: 'the disk' }) })['error'] as Record<string, unknown>)['cause'], 'the disk');
  });

  it('an Error inside another field value is written the same way', () => {
    const l = jsonLine({ failures: [{ protocol: 'pcp', error: timeout }] });
    assert.deepEqual(l['failures'], [{ protocol: 'pcp', error: { name: 'RouterTimeoutError', code: 'FD_ROUTER_TIMEOUT', message: 'no answer within 3000 ms' } }]);
  });
});

describe('log: any value prints, bounded', () => {
  it('non-Error values print as before: strings bare in text, others as JSON', () => {
    assert.match(textLine({ reason: 'lease expired', n: 3, ok: false, names: ['a', 'b'], none: null }), / reason=lease expired n=3 ok=false names=\["a","b"\] none=null$/);
    const l = jsonLine({ reason: 'lease expired', n: 3, nested: { a: [1, 2] }, gone: undefined });
    assert.equal(l['reason'], 'lease expired');
    assert.deepEqual(l['nested'], { a: [1, 2] });
    assert.equal('gone' in l, false);
    assert.match(textLine({ error: 'a message as before' }), / error=a message as before$/);
    assert.match(textLine({ when: new Date('2030-01-02T03:04:05Z') }), / when="2030-01-02T03:04:05\.000Z"$/);
  });

  it('a circular value, a bigint, a throwing getter and a symbol do not throw', () => {
    const loop: Record<string, unknown> = { name: 'loop' };
    loop['self'] = loop;
    const trap = {
      get boom(): never {
        throw new Error('getter');
      },
    };
    const fields = { loop, big: 10n ** 30n, trap, sym: Symbol('s'), fn: function named() {}, nan: Number.NaN };
    const l = jsonLine(fields);
    assert.deepEqual(l['loop'], { name: 'loop', self: '[circular]' });
    assert.equal(l['big'], '1000000000000000000000000000000');
    assert.deepEqual(l['trap'], { boom: '[unreadable]' });
    assert.equal(l['sym'], 'Symbol(s)');
    assert.equal(l['fn'], '[function named]');
    assert.equal(l['nan'], 'NaN');
    assert.match(textLine(fields), / loop=\{"name":"loop","self":"\[circular\]"\} big="1000000000000000000000000000000" /);
  });

  it('an error whose own properties throw still prints', () => {
    const odd = new Error('odd');
    Object.defineProperty(odd, 'code', {
      get() {
        throw new Error('no code for you');
      },
    });
    assert.deepEqual(jsonLine({ error: odd })['error'], { name: 'Error', message: 'odd' });
  });

  it('a huge value is cut short: strings, arrays, objects, depth, an error message', () => {
    const page = '<html>'.repeat(100_000);
    const wide = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]));
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 1000; i++) deep = { deep };
    const fields = { page, list: Array.from({ length: 100_000 }, (_, i) => i), wide, deep, error: new Error(page), buf: Buffer.alloc(1_000_000) };
    for (const json of [true, false]) {
      const l = line(json, fields);
      assert.ok(l.length < 20_000, `${json ? 'JSON' : 'text'} line of ${l.length} characters`);
    }
    const l = jsonLine(fields);
    assert.match(String(l['page']), /…\(599000 more\)$/);
    assert.equal((l['list'] as unknown[]).at(-1), '…(99950 more)');
    assert.equal((l['wide'] as Record<string, unknown>)['…'], '9950 more');
    assert.match(JSON.stringify(l['deep']), /"\[…\]"/);
  });

  // The line's own keys are left out: a field named msg would stand for the message.
  const key = fc.string({ maxLength: 10 }).filter((k) => !['time', 'level', 'component', 'msg'].includes(k));
  const value = fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true });

  it('property: any field values give one JSON line that parses, and a text line, never an exception', () => {
    fc.assert(
      fc.property(fc.dictionary(key, value), (fields) => {
        const l = line(true, fields);
        assert.ok(!l.includes('\n'));
        assert.equal((JSON.parse(l) as Record<string, unknown>)['msg'], 'something happened');
        line(false, fields);
      }),
      { numRuns: 300 },
    );
  });
});
