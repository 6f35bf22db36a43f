import type { CameraStatus } from '../../src/camera/camera.js';
import type { CameraCounters } from '../../src/camera/http.js';

/** The messages between bench/camera.ts and its two children (server.ts, viewers.ts). */

/** argv[2] of server.ts, as JSON. */
export interface ServerConfig {
  width: number;
  height: number;
  fps: number;
  quality: number;
  /** serveStream's stallTimeoutMs: a viewer not drained this long is dropped. */
  stallTimeoutMs: number;
}

export interface ServerReady {
  ready: true;
  port: number;
  password: string;
  /** The ffmpeg the camera runs (camera.capturePid). */
  ffmpegPid: number | undefined;
  /** Which test-pattern command ffmpeg runs (with the clock drawn in, or without). */
  command: string;
}

export interface ServerStats {
  /** performance.now() in the server when this was taken. */
  atMs: number;
  /** The longest event-loop delay since the previous stats, ms: was the server ever stuck? */
  loopDelayMaxMs: number;
  rss: number;
  /** Peak RSS so far (VmHWM). */
  peakRss: number;
  heapUsed: number;
  /** process.cpuUsage(), µs: the server's own view of its CPU time. */
  cpuUserUs: number;
  cpuSystemUs: number;
  ffmpegPid: number | undefined;
  camera: CameraStatus;
  counters: CameraCounters;
  /** Size of the newest frame (JPEG bytes), 0 before the first. */
  frameBytes: number;
  frameLive: boolean;
}

/** To viewers.ts: add `healthy` counting viewers (and one that stalls), take a sample, or close them all. */
export type ViewersCommand = { cmd: 'open'; port: number; password: string; healthy: number; stalled: boolean } | { cmd: 'sample' } | { cmd: 'close' };

export interface ViewersSample {
  /** performance.now() in the viewers' process. */
  atMs: number;
  /** The longest event-loop delay of the viewers' process since the previous sample, ms. */
  loopDelayMaxMs: number;
  /** Per healthy viewer: frames (part headers) seen so far. */
  frames: number[];
  /** Per healthy viewer: bytes received after the HTTP headers (chunked framing included). */
  bytes: number[];
  /** Healthy viewers whose connection ended before it was closed by the bench. */
  ended: number;
}
