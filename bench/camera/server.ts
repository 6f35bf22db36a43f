/**
 * The camera node of the camera bench, in its own process (forked with IPC): a Camera running
 * ffmpeg's test pattern (what `--camera test` runs), always on, served by createPortalApp
 * (which = 'node') behind NodeHttpServer, as a node serves /camera.mjpg. 127.0.0.1 only.
 *
 * argv[2]: a ServerConfig as JSON. IPC: first {ready, port, password, ffmpegPid, command} once
 * the camera is live; then answers {cmd: 'stats'} with {stats: ServerStats}. {cmd: 'stop'},
 * SIGTERM, SIGINT, the parent going away, or 10 minutes whatever happens: the camera is closed
 * (ffmpeg stopped) and the process ends.
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Camera } from '../../src/camera/camera.js';
import { testPatternCommand } from '../../src/camera/commands.js';
import { newCameraCounters } from '../../src/camera/http.js';
import { MAX_FRAME_BYTES } from '../../src/camera/setup.js';
import { ProcessSource } from '../../src/camera/source.js';
import { createPortalApp, newCounters } from '../../src/portal/app.js';
import { LoginThrottle } from '../../src/portal/auth.js';
import { NodeHttpServer } from '../../src/portal/http-server.js';
import type { NodeStatus } from '../../src/portal/status.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import { statusBytes } from './proc.js';
import type { ServerConfig, ServerReady, ServerStats } from './protocol.js';
import { freeTcpPort } from '../../test/helpers/free-port.js';

if (!process.send || process.argv[2] === undefined) {
  process.stderr.write('server.js is forked by bench/camera.js\n');
  process.exit(2);
}
const config = JSON.parse(process.argv[2]) as ServerConfig;

let ending = false;
let closeAll: () => Promise<void> = async () => {};
/** Ends the process once ffmpeg is stopped; at most 5 s, so a stuck close cannot keep it alive. */
function end(code: number): void {
  if (ending) return;
  ending = true;
  setTimeout(() => process.exit(code), 5000).unref();
  void closeAll().finally(() => process.exit(code));
}
process.on('disconnect', () => end(0));
process.on('SIGTERM', () => end(0));
process.on('SIGINT', () => end(130));
setTimeout(() => end(3), 600_000).unref();

const password = randomBytes(12).toString('base64url');
const source = new ProcessSource({
  kind: 'test',
  label: 'test pattern (ffmpeg)',
  variants: testPatternCommand({ width: config.width, height: config.height, fps: config.fps, quality: config.quality }),
  maxFrameBytes: MAX_FRAME_BYTES,
});
// The node's defaults but always on: the capture runs before the viewers come, as with
// --camera-always-on, so no case measures a camera starting.
const camera = new Camera(
  { clock: systemClock, logger: silentLogger },
  { source, width: config.width, height: config.height, fps: config.fps, idleMs: 30_000, alwaysOn: true },
);
const counters = newCameraCounters();
const app = createPortalApp({
  which: 'node',
  // The node page is not what is measured; /camera.* only reads the camera.
  status: () => ({ camera: camera.status() }) as unknown as NodeStatus,
  credentials: { password, passwordSource: 'setting', sessionKey: randomBytes(32) },
  throttle: new LoginThrottle(() => Date.now()),
  isLan: () => true,
  lanOpen: false,
  logger: silentLogger,
  counters: newCounters(),
  passwordHint: '',
  camera: { http: { camera, clock: systemClock, isLan: () => true, wanFps: 0, stallTimeoutMs: config.stallTimeoutMs }, counters },
});
// NodeHttpServer listens on a fixed port: take a free one from the kernel first (loopback,
// nothing else races for it here).
const port = await freeTcpPort();
const server = new NodeHttpServer({ logger: silentLogger }, { listenAddress: '127.0.0.1', httpPort: port, portalPort: 0, nodeApp: app, portalApp: app });
closeAll = async () => {
  await Promise.allSettled([server.close(), camera.close()]);
};
await server.listenNodePage();

const liveBy = Date.now() + 20_000;
while (camera.state !== 'live') {
  if (Date.now() > liveBy) {
    process.send({ error: `the camera is not live after 20 s: ${camera.state}, ${camera.reason ?? ''}` });
    end(1);
    break;
  }
  await new Promise((r) => setTimeout(r, 50));
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function stats(): ServerStats {
  const m = process.memoryUsage();
  const loopDelayMaxMs = loopDelay.max / 1e6;
  loopDelay.reset();
  const cpu = process.cpuUsage();
  const latest = camera.latest;
  return {
    atMs: performance.now(),
    loopDelayMaxMs,
    rss: m.rss,
    peakRss: statusBytes('self', 'VmHWM') ?? process.resourceUsage().maxRSS * 1024,
    heapUsed: m.heapUsed,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    ffmpegPid: camera.capturePid,
    camera: camera.status(),
    counters: { ...counters },
    frameBytes: latest?.jpeg.length ?? 0,
    frameLive: latest?.live ?? false,
  };
}


if (!ending) {
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'stats') process.send?.({ stats: stats() });
    else if (m.cmd === 'stop') end(0);
  });
  const ready: ServerReady = { ready: true, port, password, ffmpegPid: camera.capturePid, command: source.argv.join(' ') };
  process.send(ready);
}
