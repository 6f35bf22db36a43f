import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveIdentity } from '../../src/agent/identity.js';
import { withSupervisorName } from '../../src/balena/device-name.js';
import { balenaEnvironment } from '../../src/balena/environment.js';
import { SupervisorUnavailableError } from '../../src/balena/errors.js';
import { createLogger } from '../../src/runtime/log.js';
import { startFakeSupervisor } from './fixtures/fake-supervisor.js';

const KEY = 'f00dfeedf00dfeedf00dfeedf00dfeed';
const HOST = { readMachineId: () => 'c'.repeat(32), hostName: () => 'raspberrypi' };

function recorder() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', json: true, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { logger, lines };
}

const balenaEnv = (address: string) => ({
  BALENA: '1',
  BALENA_DEVICE_UUID: 'b'.repeat(32),
  BALENA_DEVICE_NAME_AT_INIT: 'name-at-init',
  BALENA_DEVICE_TYPE: 'raspberrypi4-64',
  BALENA_SUPERVISOR_ADDRESS: address,
  BALENA_SUPERVISOR_API_KEY: KEY,
});

describe('device values from balena', () => {
  it('reads what balena injects; off balena everything is undefined', () => {
    const b = balenaEnvironment(balenaEnv('http://127.0.0.1:48484'));
    assert.deepEqual(b, {
      onBalena: true,
      deviceUuid: 'b'.repeat(32),
      deviceNameAtInit: 'name-at-init',
      deviceType: 'raspberrypi4-64',
      supervisor: { address: 'http://127.0.0.1:48484', apiKey: KEY },
    });
    assert.deepEqual(balenaEnvironment({ PATH: '/usr/bin' }), {
      onBalena: false,
      deviceUuid: undefined,
      deviceNameAtInit: undefined,
      deviceType: undefined,
      supervisor: undefined,
    });
    // An address without its key is no supervisor to ask.
    assert.equal(balenaEnvironment({ BALENA_SUPERVISOR_ADDRESS: 'http://127.0.0.1:48484' }).supervisor, undefined);
  });

  it('the supervisor\'s current name wins over BALENA_DEVICE_NAME_AT_INIT; the UUID stays the device value', async () => {
    const sup = await startFakeSupervisor({ apiKey: KEY, deviceName: 'front-porch' });
    try {
      const env = balenaEnv(sup.address);
      const { logger, lines } = recorder();
      const atStart = resolveIdentity({ name: '', deviceId: '', env, ...HOST });
      assert.equal(atStart.name, 'name-at-init');
      const id = await withSupervisorName(atStart, env, { logger });
      assert.deepEqual([id.name, id.nameSource, id.deviceValue, id.deviceSource, id.id], ['front-porch', 'supervisor', 'b'.repeat(32), 'balena', atStart.id]);
      assert.ok(lines.some((l) => l['msg'] === 'balena device' && l['deviceType'] === 'raspberrypi4-64'));
      assert.deepEqual(sup.requests.map((r) => [r.path, r.keyOk]), [['/v2/device/name', true]]);
    } finally {
      await sup.close();
    }
  });

  it('a name the user set wins and nothing is asked; off balena nothing is asked either', async () => {
    let asked = 0;
    const client = {
      deviceName: async () => {
        asked++;
        return 'from-supervisor';
      },
    };
    const { logger } = recorder();
    const set = resolveIdentity({ name: 'porch', deviceId: '', env: {}, ...HOST });
    assert.equal((await withSupervisorName(set, balenaEnv('http://127.0.0.1:1'), { logger, client })).name, 'porch');
    assert.equal(asked, 0);
    const plain = resolveIdentity({ name: '', deviceId: '', env: {}, ...HOST });
    const same = await withSupervisorName(plain, {}, { logger });
    assert.deepEqual(same, plain);
  });

  it('a supervisor that fails or sends an unusable name leaves the start name, with a warning naming the error', async () => {
    const env = balenaEnv('http://127.0.0.1:1');
    const atStart = resolveIdentity({ name: '', deviceId: '', env, ...HOST });
    const { logger, lines } = recorder();
    const failing = { deviceName: async (): Promise<string> => Promise.reject(new SupervisorUnavailableError('GET /v2/device/name: ECONNREFUSED')) };
    const id = await withSupervisorName(atStart, env, { logger, client: failing });
    assert.deepEqual(id, atStart);
    const warn = lines.find((l) => l['level'] === 'warn');
    assert.deepEqual(warn?.['error'], { name: 'SupervisorUnavailableError', code: 'FD_SUPERVISOR_UNAVAILABLE', message: 'GET /v2/device/name: ECONNREFUSED' });
    const blank = await withSupervisorName(atStart, env, { logger, client: { deviceName: async () => '\u200b\u0007 ' } });
    assert.deepEqual(blank, atStart);
  });

  it('a supervisor that never answers costs at most the timeout', async () => {
    const sup = await startFakeSupervisor({ apiKey: KEY, deviceName: 'x', behaviour: 'slow' });
    try {
      const env = balenaEnv(sup.address);
      const atStart = resolveIdentity({ name: '', deviceId: '', env, ...HOST });
      // The fake never answers: only a timeout ends this call, and the warning says it was the
      // one given (not the 2 s default); no wall-clock bound to race a loaded machine.
      const { logger, lines } = recorder();
      const id = await withSupervisorName(atStart, env, { logger, timeoutMs: 200 });
      assert.equal(id.name, 'name-at-init');
      const warned = lines.find((l) => l['level'] === 'warn')?.['error'] as { message?: string } | undefined;
      assert.match(warned?.message ?? '', /no answer within 200 ms/);
    } finally {
      await sup.close();
    }
  });
});
