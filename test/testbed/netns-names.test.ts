import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseNetnsList, parseTestbedNsName, parseTestbedTmpDirName, testbedPrefix } from './netns-names.js';

describe('test bed names', () => {
  it('round-trip: prefix, pid, counter and role come back out of a namespace name', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4_194_304 }),
        fc.integer({ min: 1, max: 99_999 }),
        fc.constantFrom('wan', 'rtr', 'h1', 'h42', 'h100'),
        (pid, counter, role) => {
          const prefix = testbedPrefix(pid, counter);
          assert.deepEqual(parseTestbedNsName(`${prefix}-${role}`), { prefix, pid, counter, role });
          // Names the kernel accepts for interfaces are not at stake, but keep namespace names short.
          assert.ok(`${prefix}-${role}`.length <= 25);
        },
      ),
    );
  });

  it('does not mistake other namespaces for ours', () => {
    for (const n of ['wan', 'fd-rtr', 'fd0x1-rtr', 'fd12x0-rtr', 'fd12x1', 'fd12x1-', 'fd12x1-RTR', 'xfd12x1-rtr', 'fd99999999x1-rtr', 'fd12x1-rtr ']) {
      assert.equal(parseTestbedNsName(n), undefined, n);
    }
  });

  it('any string: undefined or a consistent name, never a throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.stringMatching(/^fd[0-9]{1,12}x[0-9]{1,10}-[a-z0-9]{0,9}$/)), (s) => {
        const p = parseTestbedNsName(s);
        if (p === undefined) return;
        assert.equal(s, `${p.prefix}-${p.role}`);
        assert.ok(p.pid >= 1 && p.pid <= 4_194_304);
      }),
      { numRuns: 500 },
    );
  });

  it('reads the owner of a temp dir made by mkdtemp', () => {
    assert.deepEqual(parseTestbedTmpDirName('frontdoor-testbed-fd4711x3-Ab12Cd'), {
      prefix: 'fd4711x3',
      pid: 4711,
      counter: 3,
      role: '',
    });
    assert.equal(parseTestbedTmpDirName('frontdoor-testbed-fd4711x3'), undefined);
    assert.equal(parseTestbedTmpDirName('frontdoor-testbed-fd4711x3-../x'), undefined);
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        const p = parseTestbedTmpDirName(`frontdoor-testbed-${s}`);
        if (p) assert.ok(s.startsWith(`${p.prefix}-`));
      }),
    );
  });
});

describe('parseNetnsList', () => {
  it('takes the name of each line, with or without an id', () => {
    assert.deepEqual(parseNetnsList('fd1x1-h1 (id: 4)\nfd1x1-rtr\n\nother (id: 0)\n'), ['fd1x1-h1', 'fd1x1-rtr', 'other']);
    assert.deepEqual(parseNetnsList(''), []);
  });

  it('any text: bounded names of safe characters that occur in it', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), fc.integer({ min: 0, max: 30 }), (text, max) => {
        const names = parseNetnsList(text, max);
        assert.ok(names.length <= max);
        for (const n of names) {
          assert.match(n, /^[A-Za-z0-9._-]{1,255}$/);
          assert.ok(text.includes(n));
          assert.ok(n !== '.' && n !== '..');
        }
      }),
      { numRuns: 300 },
    );
  });
});
