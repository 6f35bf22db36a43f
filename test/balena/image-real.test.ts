import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { NodeStatus } from '../../src/portal/status.js';
import { LineLog, waitUntil } from '../agent/fixtures/fleet.js';
import { exited, waitForOutput } from '../testbed/command.js';
import { parseDockerfile } from './dockerfile-lint.js';
import { canRunTestbed, createTestbed, type Host, type Testbed } from '../testbed/testbed.js';

/**
 * The image's /app, assembled the way Dockerfile.template does it (package.json and the lockfile,
 * `npm ci --omit=dev --ignore-scripts`, the built dist/src, config/), run as the container runs it
 * (`node dist/src/cli.js run`, settings as fleet variables, balena's variables set) in two LAN
 * hosts of the real-router test bed, each with a stand-in supervisor on 127.0.0.1:48484 as on a
 * balena device (host networking). The build is the one this file was compiled into: dist/ under
 * `npm test`, .build-* in a developer's own run.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** <build>/src: this file is <build>/test/balena/image-real.test.js. */
const BUILT_SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const FAKE_SUPERVISOR = fileURLToPath(new URL('./fixtures/fake-supervisor.js', import.meta.url));

const can = canRunTestbed();
const curl = spawnSync('curl', ['--version'], { stdio: 'ignore', timeout: 5000 });
const npm = spawnSync('npm', ['--version'], { stdio: 'ignore', timeout: 20_000 });
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : curl.status !== 0
    ? 'needs curl (apt install curl): the checks ask each node from inside its namespace'
    : npm.status !== 0
      ? 'needs npm to install the production dependencies as the image does'
      : false;

const SECRET = 'balena-image-test-fleet-secret-0b7f3e';
const PASSWORD = 'balena-image-test-password';
const SUPERVISOR_PORT = 48484;

/** The settings as balena fleet variables (the fast election of test/agent's fleet, UPnP only). */
const FLEET_VARIABLES: NodeJS.ProcessEnv = {
  FRONTDOOR_SECRET: SECRET,
  FRONTDOOR_PASSWORD: PASSWORD,
  FRONTDOOR_ROUTER_PROTOCOLS: 'upnp',
  FRONTDOOR_LEASE: '6s',
  FRONTDOOR_ROUTER_TIMEOUT: '2s',
  FRONTDOOR_INQUIRY_INTERVAL: '300ms',
  FRONTDOOR_SILENCE_TIMEOUT: '1200ms',
  FRONTDOOR_PROBE_INTERVAL: '200ms',
  FRONTDOOR_LOG_FORMAT: 'json',
};

interface Device {
  host: Host;
  uuid: string;
  nameAtInit: string;
  currentName: string;
  apiKey: string;
  node?: ChildProcess;
  log?: LineLog;
}

/** The image's HEALTHCHECK command, as Dockerfile.template writes it (exec form). */
async function healthcheckArgv(): Promise<string[]> {
  const text = await readFile(join(ROOT, 'Dockerfile.template'), 'utf8');
  const h = parseDockerfile(text).find((i) => i.keyword === 'HEALTHCHECK');
  const json = h?.args.slice(h.args.indexOf('CMD ') + 4);
  const argv = JSON.parse(json ?? 'null') as string[];
  assert.equal(argv[0], 'node');
  return [process.execPath, ...argv.slice(1)];
}

async function assembleApp(): Promise<string> {
  const app = await mkdtemp(join(tmpdir(), 'frontdoor-image-app-'));
  await cp(join(ROOT, 'package.json'), join(app, 'package.json'));
  await cp(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
  // As the image's deps stage: the lockfile's production dependencies, no install scripts.
  await promisify(execFile)('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: app,
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  await mkdir(join(app, 'dist'));
  await cp(BUILT_SRC, join(app, 'dist', 'src'), { recursive: true });
  await cp(join(ROOT, 'config'), join(app, 'config'), { recursive: true });
  return app;
}

describe('the image\'s /app on two balena devices in the real-router test bed', { skip, timeout: 120_000 }, () => {
  let tb: Testbed;
  let app: string;
  const devices: Device[] = [];

  async function get(where: Host | { ns: string }, url: string, login = true): Promise<{ code: number; body: string } | undefined> {
    const auth = login ? ['-u', `admin:${PASSWORD}`] : [];
    // -k: the image serves the fleet's own self-signed certificate by default.
    const r = await tb.exec(where, ['curl', '-s', '-k', ...auth, '--max-time', '2', '-o', '-', '-w', '\n%{http_code}', url], { timeoutMs: 5000 });
    const cut = r.stdout.lastIndexOf('\n');
    const code = Number(r.stdout.slice(cut + 1));
    return r.code === 0 && code > 0 ? { code, body: r.stdout.slice(0, cut) } : undefined;
  }

  async function status(d: Device): Promise<NodeStatus | undefined> {
    const a = await get(d.host, `https://${d.host.address}:8081/api/status`);
    if (a?.code !== 200) return undefined;
    return JSON.parse(a.body) as NodeStatus;
  }

  function explain(): string {
    return devices.map((d) => `--- ${d.currentName} (${d.node?.exitCode ?? 'running'}):\n${d.log?.tail(20) ?? ''}`).join('\n') + `\n${tb.explain(10)}`;
  }

  before(async () => {
    [app, tb] = await Promise.all([assembleApp(), createTestbed({ mode: 'igd2', hosts: 2 })]);
    const names = [
      ['init-name-one', 'porch-camera'],
      ['init-name-two', 'garden-camera'],
    ] as const;
    for (const [i, host] of tb.hosts.entries()) {
      const [nameAtInit, currentName] = names[i]!;
      devices.push({ host, uuid: `${String(i + 1).repeat(8)}a1b2c3d4e5f6a7b8c9d0e1f2a3b4`, nameAtInit, currentName, apiKey: `key${i}${'0'.repeat(29)}` });
    }
  });

  after(async () => {
    await tb?.close();
    if (app) await rm(app, { recursive: true, force: true });
  });

  it('starts from the assembled /app, answers /healthz, shows the supervisor\'s current name, elects one representative; SIGTERM withdraws, exits 0, the other takes over', async () => {
    for (const d of devices) {
      const sup = tb.spawn(d.host, [process.execPath, FAKE_SUPERVISOR, String(SUPERVISOR_PORT), d.apiKey, d.currentName]);
      await waitForOutput(sup, /fake supervisor listening/, { timeoutMs: 10_000 });
    }
    for (const d of devices) {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env['PATH'],
        HOME: tmpdir(),
        ...FLEET_VARIABLES,
        FRONTDOOR_DATA_DIR: join(tb.tmpDir, d.currentName),
        BALENA: '1',
        BALENA_DEVICE_UUID: d.uuid,
        BALENA_DEVICE_NAME_AT_INIT: d.nameAtInit,
        BALENA_DEVICE_TYPE: 'raspberrypi4-64',
        BALENA_SUPERVISOR_ADDRESS: `http://127.0.0.1:${SUPERVISOR_PORT}`,
        BALENA_SUPERVISOR_API_KEY: d.apiKey,
      };
      // The container's CMD: node dist/src/cli.js run, from /app.
      d.node = tb.spawn(d.host, [process.execPath, join(app, 'dist', 'src', 'cli.js'), 'run'], { env });
      d.log = new LineLog(d.node);
    }

    for (const d of devices) {
      // What the image's HEALTHCHECK asks: loopback, no login.
      const ok = await waitUntil(async () => ((await get(d.host, 'http://127.0.0.1:8081/healthz', false))?.body.trim() === 'ok' ? true : undefined), {
        timeoutMs: 15_000,
        what: `/healthz of ${d.currentName}`,
      }).catch((e: unknown) => assert.fail(`${(e as Error).message}\n${explain()}`));
      assert.equal(ok, true);
      const hc = await tb.exec(d.host, await healthcheckArgv(), { env: { PATH: process.env['PATH'], FRONTDOOR_HTTP_PORT: '8081' }, timeoutMs: 10_000 });
      assert.equal(hc.code, 0, `the image's HEALTHCHECK failed: ${hc.stderr}`);
    }

    const rep = await waitUntil(
      async () => {
        const st = await Promise.all(devices.map(status));
        if (st.some((s) => s === undefined)) return undefined;
        const reps = st.filter((s) => s!.role === 'representative');
        if (reps.length !== 1 || st.some((s) => s!.representative?.name !== reps[0]!.name)) return undefined;
        return { st: st as NodeStatus[], rep: reps[0]!.name };
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'one representative both nodes name' },
    ).catch((e: unknown) => assert.fail(`${(e as Error).message}\n${explain()}`));

    // The name each node shows is its supervisor's current one, not BALENA_DEVICE_NAME_AT_INIT.
    assert.deepEqual(rep.st.map((s) => s.name), devices.map((d) => d.currentName));
    for (const d of devices) {
      const identity = d.log!.records().find((r) => r['msg'] === 'identity');
      assert.equal(identity?.['from'], 'supervisor', explain());
      assert.equal(identity?.['deviceValueFrom'], 'balena');
    }
    const wanPortal = await get(tb.wan, `https://${tb.wanAddress}:8080/api/status`);
    assert.equal(wanPortal?.code, 200);
    assert.equal((JSON.parse(wanPortal!.body) as NodeStatus).name, rep.rep);

    // balena stops the container with SIGTERM: the representative withdraws and exits 0.
    const leaving = devices.find((d) => d.currentName === rep.rep)!;
    const staying = devices.find((d) => d !== leaving)!;
    const gone = exited(leaving.node!);
    leaving.node!.kill('SIGTERM');
    await Promise.race([gone, new Promise((_, reject) => setTimeout(() => reject(new Error(`no exit 10 s after SIGTERM\n${explain()}`)), 10_000))]);
    assert.equal(leaving.node!.exitCode, 0, explain());
    const down = await tb.exec(leaving.host, await healthcheckArgv(), { env: { PATH: process.env['PATH'] }, timeoutMs: 10_000 });
    assert.equal(down.code, 1, 'the HEALTHCHECK must fail once the node is gone');
    const records = leaving.log!.records().map((r) => r['msg']);
    assert.ok(records.includes('withdrew from the LAN'), explain());
    assert.ok(records.indexOf('withdrew from the LAN') < records.lastIndexOf('node stopped'), explain());

    await waitUntil(
      async () => {
        const s = await status(staying);
        const portal = await get(tb.wan, `https://${tb.wanAddress}:8080/api/status`);
        const name = portal?.code === 200 ? (JSON.parse(portal.body) as NodeStatus).name : undefined;
        return s?.role === 'representative' && name === staying.currentName ? true : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100, what: `${staying.currentName} to take over` },
    ).catch((e: unknown) => assert.fail(`${(e as Error).message}\n${explain()}`));
    const departed = staying.log!.records().find((r) => r['msg'] === 'representative departed');
    assert.equal(departed?.['detectedBy'], 'withdrawal', explain());
  });
});
