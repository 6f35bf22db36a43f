import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ffmpegQscale, rpicamCommand, testPatternCommand, v4l2Command } from '../../src/camera/commands.js';
import { parseCameraSetting, resolveCamera, systemProbe, usbCaptureNodes } from '../../src/camera/detect.js';
import type { CameraProbe } from '../../src/camera/detect.js';
import { parseSettingValue, SETTINGS } from '../../src/config/settings.js';
import type { SettingSpec } from '../../src/config/settings.js';

const FORMAT = { width: 1280, height: 720, fps: 15, quality: 80 };

function probe(p: Partial<CameraProbe> & { pi?: number; usb?: string[]; programs?: string[] }): CameraProbe {
  return {
    has: (program) => (p.programs ?? []).includes(program),
    piCameras: async () => p.pi ?? 0,
    usbCameras: () => p.usb ?? [],
  };
}

describe('camera setting', () => {
  const spec = (SETTINGS as readonly SettingSpec[]).find((s) => s.key === 'camera') as SettingSpec;
  it('accepts the documented values and names the bad ones', () => {
    for (const ok of ['auto', 'rpicam', 'v4l2', 'v4l2:/dev/video2', 'test', 'none']) {
      assert.ok('value' in parseSettingValue(spec, ok), ok);
      parseCameraSetting(ok);
    }
    for (const bad of ['raspicam', 'v4l2:video0', 'v4l2:/dev/video0;rm -rf /', 'v4l2:/dev/../etc/passwd x', '', 'AUTO']) {
      const r = parseSettingValue(spec, bad);
      assert.ok('error' in r, bad);
      assert.match((r as { error: string }).error, /auto, rpicam, v4l2/);
    }
    assert.deepEqual(parseCameraSetting('v4l2:/dev/video3'), { kind: 'v4l2', device: '/dev/video3' });
  });
});

describe('camera commands', () => {
  it('rpicam-vid writes MJPEG of the asked size, rate and quality to stdout, with no preview window', () => {
    const argv = rpicamCommand(FORMAT)[0]?.argv ?? [];
    const arg = (k: string) => argv[argv.indexOf(k) + 1];
    assert.equal(argv[0], 'rpicam-vid');
    assert.equal(arg('--codec'), 'mjpeg');
    assert.equal(arg('--timeout'), '0');
    assert.equal(arg('--output'), '-');
    assert.equal(arg('--width'), '1280');
    assert.equal(arg('--height'), '720');
    assert.equal(arg('--framerate'), '15');
    assert.equal(arg('--quality'), '80');
    assert.ok(argv.includes('--nopreview'));
  });

  it('a USB webcam: MJPEG passed through first, encoded by ffmpeg second', () => {
    const [pass, enc] = v4l2Command('/dev/video0', FORMAT);
    assert.ok(pass && enc);
    assert.deepEqual(pass.argv.slice(pass.argv.indexOf('-input_format'), pass.argv.indexOf('-input_format') + 2), ['-input_format', 'mjpeg']);
    assert.ok(pass.argv.includes('copy'));
    assert.ok(!enc.argv.includes('copy'));
    for (const v of [pass, enc]) {
      assert.equal(v.argv[0], 'ffmpeg');
      assert.equal(v.argv[v.argv.indexOf('-i') + 1], '/dev/video0');
      assert.equal(v.argv[v.argv.indexOf('-video_size') + 1], '1280x720');
      assert.equal(v.argv.at(-1), 'pipe:1');
    }
  });

  it('quality maps onto ffmpeg -q:v the other way round, within 2-31', () => {
    assert.equal(ffmpegQscale(100), 2);
    assert.equal(ffmpegQscale(1), 31);
    for (let q = 1; q <= 100; q++) {
      const v = ffmpegQscale(q);
      assert.ok(v >= 2 && v <= 31);
      if (q > 1) assert.ok(v <= ffmpegQscale(q - 1));
    }
  });

  it('the test pattern keeps real time, with a clock, and has a fallback without one', () => {
    const [withClock, plain] = testPatternCommand(FORMAT);
    assert.ok(withClock?.argv.includes('-re'));
    assert.match(withClock?.argv.join(' ') ?? '', /drawtext=text=%\{localtime\}/);
    assert.ok(!plain?.argv.join(' ').includes('drawtext'));
  });
});

describe('camera detection', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('finds USB webcams by their picture node, not the Pi\'s codec nodes or the metadata node', () => {
    const root = mkdtempSync(join(tmpdir(), 'fd-v4l2-'));
    dirs.push(root);
    const sys = join(root, 'class');
    mkdirSync(sys);
    const node = (name: string, devicePath: string, index: string) => {
      const dev = join(root, 'devices', devicePath);
      mkdirSync(dev, { recursive: true });
      mkdirSync(join(sys, name));
      writeFileSync(join(sys, name, 'index'), `${index}\n`);
      symlinkSync(dev, join(sys, name, 'device'));
    };
    node('video10', 'platform/soc/bcm2835-codec', '0');
    node('video12', 'platform/soc/bcm2835-isp', '0');
    node('video3', 'platform/soc/usb1/1-1/1-1.2/1-1.2:1.0', '0');
    node('video4', 'platform/soc/usb1/1-1/1-1.2/1-1.2:1.0', '1');
    node('video1', 'pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0', '0');
    assert.deepEqual(usbCaptureNodes(sys), ['/dev/video1', '/dev/video3']);
    assert.deepEqual(usbCaptureNodes(join(root, 'nothing-here')), []);
  });

  it('auto: the Pi camera first, then a USB webcam, else none', async () => {
    const o = { format: FORMAT, maxFrameBytes: 1 << 20 };
    const pi = await resolveCamera({ kind: 'auto' }, { ...o, probe: probe({ programs: ['rpicam-vid'], pi: 1, usb: ['/dev/video0'] }) });
    assert.equal(pi.source?.kind, 'rpicam');
    const noPiCam = await resolveCamera({ kind: 'auto' }, { ...o, probe: probe({ programs: ['rpicam-vid'], pi: 0, usb: ['/dev/video2'] }) });
    assert.equal(noPiCam.source?.kind, 'v4l2');
    assert.equal(noPiCam.source?.label, 'USB webcam /dev/video2');
    const nothing = await resolveCamera({ kind: 'auto' }, { ...o, probe: probe({}) });
    assert.equal(nothing.source, undefined);
    assert.equal('announced' in nothing && nothing.announced, false);
  });

  it('asked for by name: kept even when missing, so the node shows why there is no picture', async () => {
    const o = { format: FORMAT, maxFrameBytes: 1 << 20, probe: probe({}) };
    assert.equal((await resolveCamera({ kind: 'rpicam' }, o)).source?.kind, 'rpicam');
    const v = await resolveCamera({ kind: 'v4l2' }, o);
    assert.equal(v.source, undefined);
    assert.equal('announced' in v && v.announced, true);
    assert.match(v.why, /no USB webcam found/);
    assert.equal((await resolveCamera({ kind: 'v4l2', device: '/dev/video7' }, o)).source?.label, 'USB webcam /dev/video7');
    assert.equal((await resolveCamera({ kind: 'test' }, o)).source?.kind, 'test');
    const none = await resolveCamera({ kind: 'none' }, o);
    assert.equal(none.source, undefined);
  });

  it('the system probe looks programs up on PATH', () => {
    const p = systemProbe({ path: '/usr/bin:/bin', sysfs: '/nonexistent' });
    assert.equal(p.has('sh'), true);
    assert.equal(p.has('surely-not-a-program-frontdoor'), false);
    assert.deepEqual(p.usbCameras(), []);
  });
});
