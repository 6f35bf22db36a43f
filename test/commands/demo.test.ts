import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect } from 'node:tls';
import { jpegDimensions } from '../../src/camera/jpeg-info.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const HAS_FFMPEG = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;

/** `frontdoor demo` as a user runs it: a child process, its printed URLs fetched while it runs. */
describe('frontdoor demo', () => {
  it('the built command is executable, so `npx frontdoor` runs it', () => {
    assert.ok((statSync(CLI).mode & 0o111) !== 0, `${CLI} lacks the execute bit`);
  });

  it('Ctrl-C (SIGINT) stops everything and exits 0', async () => {
    const child = spawn(process.execPath, [CLI, 'demo', '--public-port', '28180', '--http-port', '28181', '--lan-port', '28162'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const end = performance.now() + 8000;
    while (!out.includes('Ctrl-C') && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.match(out, /demo stopped\./);
    await assert.rejects(fetch('http://127.0.1.1:28180/healthz', { signal: AbortSignal.timeout(1000) }));
  });

  it('prints the portal and node URLs, they answer, and it stops by itself leaving nothing running', async () => {
    // Ports off the defaults so a developer's own 8080 does not matter.
    const child = spawn(process.execPath, [CLI, 'demo', '--duration', '9s', '--public-port', '28080', '--http-port', '28081', '--lan-port', '28062'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const end = performance.now() + 8000;
    while (!out.includes('Ctrl-C') && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
    const printed = /Portal, served by the representative (\S+):\s+(https:\/\/\S+)/.exec(out);
    assert.ok(printed, `portal line in:\n${out}\n${err}`);
    const printedNodes = [...out.matchAll(/^\s+(demo-node-\d)\s+(https:\/\/127\.0\.1\.1:\d+\/)/gm)];
    assert.equal(printedNodes.length, 3, out);
    // HTTPS with the fleet's own certificate, whose fingerprint the demo prints.
    const fingerprint = /fingerprint is\n\s+([0-9A-F:]{95})/.exec(out)?.[1];
    assert.ok(fingerprint, out);
    const served = await new Promise<string | undefined>((resolve, reject) => {
      const u = new URL(printed[2]!);
      const c = tlsConnect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
        resolve(c.getPeerX509Certificate()?.fingerprint256);
        c.destroy();
      });
      c.on('error', reject);
    });
    assert.equal(served, fingerprint);
    // Plain HTTP from this machine (loopback) is served as is: the same URLs with http.
    const plain = (u: string) => u.replace(/^https:/, 'http:');
    const portal = [printed[0], printed[1], plain(printed[2]!)] as const;
    const nodes = printedNodes.map((m) => [m[0], m[1], plain(m[2]!)] as const);
    const password = /Password \(user admin\): (\S+)/.exec(out)?.[1];
    assert.ok(password, out);
    const auth = { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` };
    assert.equal((await fetch(`${portal[2]}api/nodes`)).status, 401, 'locked without the password');
    const list = (await (await fetch(`${portal[2]}api/nodes`, { headers: auth })).json()) as Array<{ name: string }>;
    assert.deepEqual(list.map((n) => n.name).sort(), ['demo-node-1', 'demo-node-2', 'demo-node-3']);
    for (const [, name, url] of nodes) {
      const st = (await (await fetch(`${url}api/status`, { headers: auth })).json()) as { name: string };
      assert.equal(st.name, name);
    }
    // demo-node-1 is a camera node with ffmpeg's test pattern.
    const cam = /Camera of demo-node-1 \(test pattern \(ffmpeg\)\): live (\S+)\s+snapshot (\S+)/.exec(out);
    assert.ok(cam, out);
    const snap = await fetch(plain(cam[2]!), { headers: auth });
    const jpeg = Buffer.from(await snap.arrayBuffer());
    assert.equal(snap.headers.get('content-type'), 'image/jpeg');
    // Without ffmpeg the node still answers, with the placeholder saying so.
    assert.equal(snap.status, HAS_FFMPEG ? 200 : 503, `${snap.headers.get('x-camera-state')}`);
    assert.deepEqual(jpegDimensions(jpeg), { width: 1280, height: 720, components: HAS_FFMPEG ? 3 : 1 });
    assert.equal(await exited, 0, err);
    assert.match(out, /demo stopped\./);
    await assert.rejects(fetch(`${portal[2]}healthz`, { signal: AbortSignal.timeout(1000) }));
  });
});
