import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Camera } from '../../src/camera/camera.js';
import type { CameraOptions, Frame } from '../../src/camera/camera.js';
import type { Capture, CaptureSink, FrameSource } from '../../src/camera/source.js';
import { silentLogger } from '../../src/runtime/log.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A source the test drives: frames and endings come when the test says. */
class FakeSource implements FrameSource {
  readonly kind = 'test' as const;
  readonly label = 'fake camera';
  opened = 0;
  stopped = 0;
  sink: CaptureSink | undefined;

  open(sink: CaptureSink): Capture {
    this.opened++;
    this.sink = sink;
    return {
      stop: async () => {
        this.stopped++;
        if (this.sink === sink) this.sink = undefined;
      },
    };
  }

  get running(): boolean {
    return this.sink !== undefined;
  }

  frame(n: number): void {
    // A JPEG-shaped buffer; Camera never decodes frames.
    this.sink?.frame(Buffer.from([0xff, 0xd8, n & 0xff, 0xff, 0xd9]));
  }

  end(reason: string): void {
    const s = this.sink;
    this.sink = undefined;
    s?.ended(reason);
  }
}

function rig(over: Partial<CameraOptions> = {}) {
  const clock = new ManualClock(1000);
  const source = new FakeSource();
  const camera = new Camera({ clock, logger: silentLogger }, { source, width: 64, height: 48, fps: 10, idleMs: 30_000, alwaysOn: false, ...over });
  return { clock, source, camera };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Camera', () => {
  it('captures only while watched, and stops after the idle period', async () => {
    const { clock, source, camera } = rig();
    assert.equal(camera.state, 'off');
    assert.equal(source.opened, 0, 'nobody watches: the camera stays off');
    const got: Frame[] = [];
    const stop = camera.watch((f) => got.push(f));
    assert.equal(source.opened, 1);
    assert.equal(camera.state, 'starting');
    source.frame(1);
    assert.equal(camera.state, 'live');
    assert.deepEqual(got.filter((f) => f.live).map((f) => f.jpeg[2]), [1]);
    stop();
    for (let i = 0; i < 29; i++) {
      clock.advance(1000);
      source.frame(i);
    }
    assert.ok(source.running, 'still capturing within the idle period');
    assert.equal(source.opened, 1);
    clock.advance(1000);
    await tick();
    assert.equal(source.running, false);
    assert.equal(camera.state, 'off');
    assert.equal(camera.latest, undefined, 'an old frame must not greet the next viewer');
  });

  it('shares one capture among viewers; a viewer coming back within the idle period does not restart it', async () => {
    const { clock, source, camera } = rig();
    const a: number[] = [];
    const b: number[] = [];
    const stopA = camera.watch((f) => f.live && a.push(f.jpeg[2] as number));
    const stopB = camera.watch((f) => f.live && b.push(f.jpeg[2] as number));
    source.frame(1);
    source.frame(2);
    assert.deepEqual(a, [1, 2]);
    assert.deepEqual(b, [1, 2]);
    stopA();
    stopB();
    const frames = (seconds: number) => {
      for (let i = 0; i < seconds; i++) {
        clock.advance(1000);
        source.frame(i);
      }
    };
    frames(10);
    const stopC = camera.watch(() => {});
    frames(60);
    await tick();
    assert.equal(source.opened, 1);
    assert.ok(source.running);
    stopC();
  });

  it('a viewer joining a live camera gets the newest frame at once (via latest)', () => {
    const { source, camera } = rig();
    camera.watch(() => {});
    source.frame(7);
    assert.equal(camera.latest?.live, true);
    assert.equal(camera.latest?.jpeg[2], 7);
    assert.match(camera.latest?.part.toString('latin1') ?? '', /^--frontdoor-frame\r\nContent-Type: image\/jpeg\r\nContent-Length: 5\r\n\r\n$/);
  });

  it('restarts a capture that ended, with growing back-off, showing why meanwhile', async () => {
    const { clock, source, camera } = rig({ restartBackoffMs: [1000, 2000, 4000] });
    const got: Frame[] = [];
    camera.watch((f) => got.push(f));
    source.end('rpicam-vid exited with code 255: no cameras available');
    assert.equal(camera.state, 'failed');
    assert.equal(camera.reason, 'rpicam-vid exited with code 255: no cameras available');
    const ph = got.at(-1);
    assert.equal(ph?.live, false, 'viewers get a placeholder frame');
    assert.deepEqual([...(ph?.jpeg.subarray(0, 2) ?? [])], [0xff, 0xd8]);
    clock.advance(999);
    assert.equal(source.opened, 1);
    clock.advance(1);
    assert.equal(source.opened, 2, 'restarted after 1 s');
    source.end('again');
    clock.advance(1999);
    assert.equal(source.opened, 2);
    clock.advance(1);
    assert.equal(source.opened, 3, 'then after 2 s');
    source.end('again');
    clock.advance(4000);
    assert.equal(source.opened, 4, 'then 4 s');
    source.end('again');
    clock.advance(4000);
    assert.equal(source.opened, 5, 'the last wait repeats');
    source.frame(9);
    assert.equal(camera.state, 'live');
    assert.equal(camera.reason, null);
    assert.equal(camera.status().restarts, 4);
  });

  it('a capture that gives no first frame, or goes quiet, is restarted by the watchdog', async () => {
    const { clock, source, camera } = rig({ firstFrameTimeoutMs: 5000, stallTimeoutMs: 3000, restartBackoffMs: [500] });
    camera.watch(() => {});
    clock.advance(5000);
    assert.equal(camera.state, 'failed');
    assert.match(camera.reason ?? '', /no picture from the camera 5 s after starting/);
    assert.equal(source.stopped, 1, 'the silent process was stopped');
    clock.advance(500);
    assert.equal(source.opened, 2);
    source.frame(1);
    clock.advance(2000);
    source.frame(2);
    clock.advance(2000);
    assert.equal(camera.state, 'live', 'frames keep coming: no restart');
    clock.advance(1000);
    assert.equal(camera.state, 'failed');
    assert.match(camera.reason ?? '', /stopped giving pictures/);
  });

  it('a snapshot starts the camera, waits for its first frame, then lets it idle', async () => {
    const { clock, source, camera } = rig({ idleMs: 1000 });
    const p = camera.snapshot(5000);
    assert.equal(source.opened, 1);
    source.frame(3);
    const f = await p;
    assert.equal(f.live, true);
    assert.equal(f.jpeg[2], 3);
    clock.advance(1000);
    await tick();
    assert.equal(source.running, false);
  });

  it('a snapshot that gets no frame in time is the placeholder; a failing source answers at once', async () => {
    const { clock, source, camera } = rig();
    const p = camera.snapshot(2000);
    clock.advance(2000);
    const f = await p;
    assert.equal(f.live, false);
    const q = camera.snapshot(2000);
    source.end('ffmpeg is not installed');
    const g = await q;
    assert.equal(g.live, false);
    assert.equal(camera.reason, 'ffmpeg is not installed');
  });

  it('without a source: unavailable, the reason shown, nothing started', async () => {
    const clock = new ManualClock();
    const camera = new Camera({ clock, logger: silentLogger }, { source: undefined, unavailableReason: 'no USB webcam found', width: 64, height: 48, fps: 10, idleMs: 0, alwaysOn: false });
    assert.equal(camera.state, 'unavailable');
    const got: Frame[] = [];
    camera.watch((f) => got.push(f));
    const snap = await camera.snapshot(1000);
    assert.equal(snap.live, false);
    assert.equal(camera.status().reason, 'no USB webcam found');
    assert.equal(clock.pendingCount, 0);
  });

  it('always on: captures with no viewer and never idles', async () => {
    const { clock, source, camera } = rig({ alwaysOn: true });
    assert.equal(source.opened, 1);
    source.frame(1);
    const stop = camera.watch(() => {});
    stop();
    // An hour of frames with no viewer: the capture goes on, the watchdog stays quiet.
    for (let i = 0; i < 3600; i++) {
      clock.advance(1000);
      source.frame(i);
    }
    assert.ok(source.running);
    assert.equal(source.opened, 1);
    await camera.close();
    assert.equal(source.running, false);
  });

  it('close stops the capture and answers waiting snapshots', async () => {
    const { source, camera } = rig();
    const p = camera.snapshot(60_000);
    await camera.close();
    assert.equal((await p).live, false);
    assert.equal(source.running, false);
  });
});
