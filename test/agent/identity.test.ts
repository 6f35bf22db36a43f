import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cleanName, nodeIdOf, resolveDataDir, resolveIdentity } from '../../src/agent/identity.js';

const NAME = /^[^\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}]{1,63}$/u;

describe('identity', () => {
  it('the setting wins, then balena\'s variables, then the host\'s own values', () => {
    const env = { BALENA_DEVICE_NAME_AT_INIT: 'garden-cam', BALENA_DEVICE_UUID: 'b'.repeat(32) };
    const host = { readMachineId: () => 'c'.repeat(32), hostName: () => 'raspberrypi' };
    const set = resolveIdentity({ name: 'porch', deviceId: 'dev-1', env, ...host });
    assert.deepEqual([set.name, set.nameSource, set.deviceValue, set.deviceSource], ['porch', 'setting', 'dev-1', 'setting']);
    const balena = resolveIdentity({ name: '', deviceId: '', env, ...host });
    assert.deepEqual([balena.name, balena.nameSource, balena.deviceValue, balena.deviceSource], ['garden-cam', 'balena', 'b'.repeat(32), 'balena']);
    const plain = resolveIdentity({ name: '', deviceId: '', env: {}, ...host });
    assert.deepEqual([plain.name, plain.nameSource, plain.deviceValue, plain.deviceSource], ['raspberrypi', 'hostname', 'c'.repeat(32), 'machine-id']);
    const none = resolveIdentity({ name: '', deviceId: '', env: {}, readMachineId: () => undefined, hostName: () => '' });
    assert.equal(none.deviceSource, 'random');
    assert.equal(none.name, 'frontdoor');
  });

  it('the LAN id is the device value hashed: stable, 16 hex digits, never the value itself', () => {
    assert.equal(nodeIdOf('abc'), nodeIdOf('abc'));
    assert.notEqual(nodeIdOf('abc'), nodeIdOf('abd'));
    assert.match(nodeIdOf('b'.repeat(32)), /^[0-9a-f]{16}$/);
  });

  it('any name a user or balena gives becomes one the LAN protocol accepts, or empty', () => {
    assert.equal(cleanName(' cam\u200b\u202eone\u0007 '), 'camone');
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (raw) => {
        const n = cleanName(raw);
        assert.ok(n === '' || NAME.test(n), JSON.stringify(n));
        assert.ok([...n].length <= 63);
      }),
      { numRuns: 1000 },
    );
  });

  it('data directory: the setting, else a per-user state directory off balena', () => {
    assert.equal(resolveDataDir('/srv/fd'), '/srv/fd');
    assert.equal(resolveDataDir('', { XDG_STATE_HOME: '/tmp/state' }).startsWith('/'), true);
  });
});
