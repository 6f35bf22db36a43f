import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Camera } from '../../src/camera/camera.js';
import type { CameraOptions } from '../../src/camera/camera.js';
import { testPatternCommand } from '../../src/camera/commands.js';
import { newCameraCounters } from '../../src/camera/http.js';
import type { CameraCounters } from '../../src/camera/http.js';
import { jpegDimensions } from '../../src/camera/jpeg-info.js';
import { ProcessSource } from '../../src/camera/source.js';
import type { Capture, CaptureSink, FrameSource } from '../../src/camera/source.js';
import { createPortalApp, newCounters } from '../../src/portal/app.js';
import { LoginThrottle } from '../../src/portal/auth.js';
import type { NodeStatus } from '../../src/portal/status.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import { openViewer } from './fixtures/mjpeg-client.js';

/**
 * The camera served over real HTTP on loopback, with ffmpeg's test pattern as the camera (the
 * same command `--camera test` runs): what a browser gets from /camera.jpg and /camera.mjpg.
 */

const HAS_FFMPEG = (() => {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const SKIP = HAS_FFMPEG ? false : 'needs ffmpeg (Debian package ffmpeg; scripts/setup-test.sh installs it)';

const PASSWORD = 'camera-test-password';
const AUTH = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
const W = 320;
const H = 240;

interface Rig {
  base: string;
  camera: Camera;
  counters: CameraCounters;
  close(): Promise<void>;
}

async function rig(source: FrameSource | undefined, over: Partial<CameraOptions> & { wanFps?: number; stallTimeoutMs?: number } = {}): Promise<Rig> {
  const camera = new Camera(
    { clock: systemClock, logger: silentLogger },
    { source, unavailableReason: 'no camera found', width: W, height: H, fps: 10, idleMs: 300, alwaysOn: false, restartBackoffMs: [300], ...over },
  );
  const counters = newCameraCounters();
  const app = createPortalApp({
    which: 'node',
    status: () => ({ camera: camera.status() }) as unknown as NodeStatus,
    credentials: { password: PASSWORD, passwordSource: 'setting', sessionKey: Buffer.alloc(32, 1) },
    throttle: new LoginThrottle(() => Date.now()),
    isLan: () => over.wanFps === undefined,
    lanOpen: false,
    logger: silentLogger,
    counters: newCounters(),
    passwordHint: '',
    camera: {
      http: { camera, clock: systemClock, isLan: () => over.wanFps === undefined, wanFps: over.wanFps ?? 0, stallTimeoutMs: over.stallTimeoutMs ?? 30_000 },
      counters,
    },
  });
  const server: Server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    camera,
    counters,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await camera.close();
    },
  };
}

function testPattern(fps = 10, w = W, h = H): ProcessSource {
  return new ProcessSource({ kind: 'test', label: 'test pattern (ffmpeg)', variants: testPatternCommand({ width: w, height: h, fps, quality: 80 }), maxFrameBytes: 8 << 20 });
}

function get(url: string, headers: Record<string, string> = AUTH): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

/** Decodes with ffmpeg: what a browser's decoder would make of it. */
function decodes(jpeg: Buffer): { width: number; height: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-f', 'jpeg_pipe', '-i', 'pipe:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0'], { input: jpeg }).toString().trim();
  const [w, h] = out.split(',').map(Number);
  // A full decode too, not only the header: ffmpeg errors out on a corrupt scan.
  execFileSync('ffmpeg', ['-v', 'error', '-xerror', '-f', 'jpeg_pipe', '-i', 'pipe:0', '-f', 'null', '-'], { input: jpeg });
  return { width: w ?? 0, height: h ?? 0 };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('camera over HTTP, ffmpeg test pattern', { skip: SKIP }, () => {
  let r: Rig;
  before(async () => {
    r = await rig(testPattern());
  });
  after(async () => {
    await r?.close();
  });

  it('is locked like every page: no picture without the password', async () => {
    for (const path of ['/camera.jpg', '/camera.mjpg']) {
      const res = await get(`${r.base}${path}`, {});
      assert.equal(res.status, 401);
      assert.ok(!res.headers['content-type']?.toString().startsWith('image/'));
    }
    assert.equal(r.camera.state, 'off', 'a refused request does not start the camera');
  });

  it('a snapshot starts the camera and is a JPEG of the configured size that decodes', async () => {
    const res = await get(`${r.base}/camera.jpg`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'image/jpeg');
    assert.equal(res.headers['x-camera-state'], 'live');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(Number(res.headers['content-length']), res.body.length);
    assert.deepEqual(jpegDimensions(res.body), { width: W, height: H, components: 3 });
    assert.deepEqual(decodes(res.body), { width: W, height: H });
  });

  it('the stream is multipart/x-mixed-replace; every part is a JPEG of the configured size', async () => {
    const v = await openViewer(`${r.base}/camera.mjpg`, AUTH);
    assert.equal(v.response.headers['content-type'], 'multipart/x-mixed-replace; boundary=frontdoor-frame');
    await until(() => v.frames >= 12, 10_000, '12 frames');
    v.close();
    const live = v.parts.filter((p) => jpegDimensions(p.body)?.components === 3);
    assert.ok(live.length >= 10, `live frames: ${live.length}`);
    for (const p of v.parts) {
      assert.equal(p.headers['content-type'], 'image/jpeg');
      assert.equal(Number(p.headers['content-length']), p.body.length);
      const d = jpegDimensions(p.body);
      assert.equal(d?.width, W);
      assert.equal(d?.height, H);
    }
    for (const p of live.slice(0, 3)) assert.deepEqual(decodes(p.body), { width: W, height: H });
    // ffmpeg repeats a frame now and then when it runs short of CPU (its constant output rate):
    // moving means most frames differ, not every one.
    const distinct = new Set(live.map((p) => p.body.toString('base64'))).size;
    assert.ok(distinct >= Math.ceil(live.length / 2), `the picture moves: ${distinct} distinct of ${live.length}`);
  });

  it('10 viewers share one capture and each gets frames; leaving frees everything', async () => {
    const viewers = await Promise.all(Array.from({ length: 10 }, () => openViewer(`${r.base}/camera.mjpg`, AUTH, { keepLast: 2 })));
    const pid = r.camera.capturePid;
    await until(() => viewers.every((v) => v.frames >= 8), 10_000, 'every viewer to get 8 frames');
    assert.equal(r.camera.status().viewers, 10);
    assert.equal(r.camera.capturePid, pid, 'one ffmpeg for all');
    for (const v of viewers) v.close();
    await until(() => r.camera.status().viewers === 0, 3000, 'the viewers to be let go');
    await until(() => r.camera.state === 'off', 3000, 'the camera to stop after its idle period');
    await until(() => !alive(pid), 3000, 'ffmpeg to exit');
  });

  it('ffmpeg killed mid-stream: the viewer stays, gets a placeholder saying why, then pictures again', async () => {
    const v = await openViewer(`${r.base}/camera.mjpg`, AUTH);
    await until(() => v.frames >= 3 && r.camera.state === 'live', 10_000, 'live frames');
    const pid = r.camera.capturePid;
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await until(() => r.camera.state === 'failed', 3000, 'the failure to be seen');
    assert.match(r.camera.reason ?? '', /killed by SIGKILL/);
    const before = v.frames;
    await until(() => r.camera.state === 'live' && v.frames >= before + 5, 10_000, 'pictures again');
    const placeholder = v.parts.find((p) => jpegDimensions(p.body)?.components === 1);
    assert.ok(placeholder, 'a placeholder frame (grayscale) was sent');
    assert.deepEqual(decodes(placeholder.body), { width: W, height: H });
    assert.notEqual(r.camera.capturePid, pid);
    assert.equal(r.camera.status().restarts, 1);
    v.close();
  });
});

describe('camera over HTTP, when there is no picture', { skip: SKIP }, () => {
  it('no camera: the snapshot is a placeholder (503, still a JPEG) and the stream shows it', async () => {
    const r = await rig(undefined);
    try {
      const res = await get(`${r.base}/camera.jpg`);
      assert.equal(res.status, 503);
      assert.equal(res.headers['content-type'], 'image/jpeg');
      assert.equal(res.headers['x-camera-state'], 'unavailable');
      assert.deepEqual(decodes(res.body), { width: W, height: H });
      const v = await openViewer(`${r.base}/camera.mjpg`, AUTH);
      await until(() => v.frames >= 1, 3000, 'the placeholder frame');
      assert.deepEqual(jpegDimensions(v.parts[0]?.body ?? Buffer.alloc(0)), { width: W, height: H, components: 1 });
      v.close();
    } finally {
      await r.close();
    }
  });

  it('a camera program that is not installed: the placeholder says so, and restarts keep trying', async () => {
    const missing = new ProcessSource({ kind: 'rpicam', label: 'Pi camera (rpicam-vid)', variants: [{ argv: ['rpicam-vid-not-here-frontdoor', '-o', '-'], what: 'x' }], maxFrameBytes: 1 << 20 });
    const r = await rig(missing);
    try {
      const res = await get(`${r.base}/camera.jpg`);
      assert.equal(res.status, 503);
      assert.equal(r.camera.state, 'failed');
      assert.equal(r.camera.reason, 'rpicam-vid-not-here-frontdoor is not installed');
      assert.deepEqual(decodes(res.body), { width: W, height: H });
    } finally {
      await r.close();
    }
  });

  it('a command that fails before its first frame falls back to the next (the test pattern without its clock)', async () => {
    const broken = new ProcessSource({
      kind: 'test',
      label: 'test pattern',
      variants: [
        { argv: ['ffmpeg', '-v', 'error', '-f', 'lavfi', '-i', 'nosuchsource=size=8x8', '-f', 'mjpeg', 'pipe:1'], what: 'broken' },
        ...testPatternCommand({ width: W, height: H, fps: 10, quality: 80 }).slice(1),
      ],
      maxFrameBytes: 1 << 20,
    });
    const r = await rig(broken);
    try {
      const v = await openViewer(`${r.base}/camera.mjpg`, AUTH);
      await until(() => r.camera.state === 'live' && v.frames >= 3, 10_000, 'frames from the second command');
      v.close();
    } finally {
      await r.close();
    }
  });
});

/** Big frames, fast, so a paused socket fills in a moment; the frames need not be JPEGs. */
class FloodSource implements FrameSource {
  readonly kind = 'test' as const;
  readonly label = 'flood';
  open(sink: CaptureSink): Capture {
    let n = 0;
    const t = setInterval(() => {
      const f = Buffer.alloc(256 * 1024, n++ & 0xff);
      f[0] = 0xff;
      f[1] = 0xd8;
      sink.frame(f);
    }, 40);
    return { stop: async () => clearInterval(t) };
  }
}

describe('camera over HTTP, slow and stalled viewers', () => {
  it('a viewer that stops reading does not slow the others, holds no queue, and is dropped', async () => {
    const r = await rig(new FloodSource(), { stallTimeoutMs: 1500 });
    try {
      const stalled = await openViewer(`${r.base}/camera.mjpg`, AUTH, { keep: false });
      stalled.pause();
      const ok = await openViewer(`${r.base}/camera.mjpg`, AUTH, { keep: false });
      const t0 = Date.now();
      const f0 = ok.frames;
      await until(() => r.counters.streamsDroppedStalled === 1, 10_000, 'the stalled viewer to be dropped');
      const rate = ((ok.frames - f0) * 1000) / (Date.now() - t0);
      // The source makes 25 frames/s; the healthy viewer keeps getting most of them.
      assert.ok(rate > 15, `healthy viewer got ${rate.toFixed(1)} frames/s while the other stalled`);
      assert.ok(r.counters.streamFramesSkipped > 0, 'frames were skipped for the stalled viewer, not queued');
      // The dropped viewer is let go when its socket's close event comes, a moment later.
      await until(() => r.camera.status().viewers === 1, 3000, 'the dropped viewer to be let go');
      ok.close();
    } finally {
      await r.close();
    }
  });

  it('viewers outside the LAN are held to the WAN frame-rate cap', async () => {
    const r = await rig(new FloodSource(), { wanFps: 5 });
    try {
      // Every frame the viewer has was sent after it connected, so the cap (a token bucket holding
      // one frame, refilled 5 times a second; one more frame of slack) bounds how many it can have
      // by now, however slow a loaded machine makes the camera or the socket. A floor on the rate
      // would be a speed figure, the camera bench's to measure.
      const c0 = performance.now();
      const v = await openViewer(`${r.base}/camera.mjpg`, AUTH, { keep: false });
      await until(() => v.frames >= 2, 10_000, 'frames to the capped viewer');
      await new Promise((res) => setTimeout(res, 2000));
      const frames = v.frames;
      const allowed = 2 + (5 * (performance.now() - c0)) / 1000;
      assert.ok(frames <= allowed, `capped viewer got ${frames} frames where the cap allows ${allowed.toFixed(1)} (cap 5/s, camera 25/s)`);
      v.close();
    } finally {
      await r.close();
    }
  });
});

// The same program a user runs, checked from outside: `frontdoor` itself is not involved here,
// but ffmpeg's own reading of our stream is the closest thing to a browser outside the browser test.
describe('camera over HTTP, read by ffmpeg', { skip: SKIP }, () => {
  it('ffmpeg reads /camera.mjpg as an MJPEG stream of the configured size', async () => {
    const r = await rig(testPattern());
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const p = spawn('ffprobe', ['-v', 'error', '-headers', `Authorization: ${AUTH.authorization}\r\n`, '-f', 'mpjpeg', '-i', `${r.base}/camera.mjpg`, '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let s = '';
        let e = '';
        p.stdout.on('data', (c) => (s += c));
        p.stderr.on('data', (c) => (e += c));
        const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
        p.on('close', (code) => {
          clearTimeout(t);
          if (code === 0) resolve(s.trim());
          else reject(new Error(`ffprobe exited ${code}: ${e}`));
        });
      });
      assert.equal(out.split('\n')[0], `mjpeg,${W},${H}`);
    } finally {
      await r.close();
    }
  });
});
