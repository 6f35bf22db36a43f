import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../runtime/clock.js';
import { MULTIPART_BOUNDARY } from './camera.js';
import type { Camera, Frame } from './camera.js';

/**
 * The camera over HTTP: GET /camera.jpg and GET /camera.mjpg (multipart/x-mixed-replace, which
 * every browser shows in an <img>). Mounted behind the portal's login by createPortalApp.
 *
 * Each stream viewer holds at most the frame it is writing: when the socket has not drained,
 * newer frames are skipped, never queued, so a slow phone gets fewer frames and a stalled one
 * costs one frame of memory until it is dropped.
 */

export interface CameraHttpOptions {
  camera: Camera;
  clock: Clock;
  /** Whether a client is on this LAN; others are held to `wanFps` when it is set. */
  isLan: (address: string) => boolean;
  /** 0: no cap. */
  wanFps: number;
  /** A viewer whose socket has not drained this long is disconnected. Default 30 s. */
  stallTimeoutMs?: number;
  /** How long a snapshot waits for the camera to start. Default 8 s. */
  snapshotTimeoutMs?: number;
}

export interface CameraCounters {
  streams: number;
  streamFramesSent: number;
  streamFramesSkipped: number;
  streamsDroppedStalled: number;
  snapshots: number;
}

export function newCameraCounters(): CameraCounters {
  return { streams: 0, streamFramesSent: 0, streamFramesSkipped: 0, streamsDroppedStalled: 0, snapshots: 0 };
}

const CRLF = Buffer.from('\r\n');

function stateHeaders(f: Frame, camera: Camera): Record<string, string> {
  return { 'x-camera-state': f.live ? 'live' : camera.state };
}

export async function serveSnapshot(o: CameraHttpOptions, counters: CameraCounters, req: IncomingMessage, res: ServerResponse): Promise<void> {
  counters.snapshots++;
  const ac = new AbortController();
  const onClose = () => ac.abort();
  res.once('close', onClose);
  const f = await o.camera.snapshot(o.snapshotTimeoutMs ?? 8000, ac.signal);
  res.off('close', onClose);
  if (res.destroyed) return;
  // A placeholder is a picture too (an <img> shows it), but not a success: clients and
  // monitoring see 503 and the state header.
  res.writeHead(f.live ? 200 : 503, {
    'content-type': 'image/jpeg',
    'content-length': String(f.jpeg.length),
    ...stateHeaders(f, o.camera),
    ...(f.live ? {} : { 'retry-after': '5' }),
  });
  res.end(req.method === 'HEAD' ? undefined : f.jpeg);
}

export function serveStream(o: CameraHttpOptions, counters: CameraCounters, req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': `multipart/x-mixed-replace; boundary=${MULTIPART_BOUNDARY}`,
    // Proxies must not buffer a stream that never ends.
    'x-accel-buffering': 'no',
    connection: 'close',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  counters.streams++;
  const socket = res.socket;
  socket?.setNoDelay(true);
  const capped = o.wanFps > 0 && !o.isLan(req.socket.remoteAddress ?? '');
  const stallMs = o.stallTimeoutMs ?? 30_000;
  let lastSeq = 0;
  let waitingSince = 0;
  // Token bucket: `capped` viewers may send one frame per 1/wanFps s on average.
  let credit = 1;
  let creditAt = o.clock.now();

  const send = (f: Frame): void => {
    if (res.destroyed || f.seq <= lastSeq) return;
    const now = o.clock.now();
    if (waitingSince !== 0) {
      counters.streamFramesSkipped++;
      if (now - waitingSince >= stallMs) {
        counters.streamsDroppedStalled++;
        res.destroy();
      }
      return;
    }
    if (capped && f.live) {
      credit = Math.min(1, credit + ((now - creditAt) * o.wanFps) / 1000);
      creditAt = now;
      if (credit < 1) {
        counters.streamFramesSkipped++;
        return;
      }
      credit -= 1;
    }
    lastSeq = f.seq;
    counters.streamFramesSent++;
    res.cork();
    res.write(f.part);
    res.write(f.jpeg);
    const ok = res.write(CRLF);
    res.uncork();
    if (!ok) {
      waitingSince = now;
      res.once('drain', () => {
        waitingSince = 0;
        // The newest frame may have come while this one was on its way.
        const latest = o.camera.latest;
        if (latest) send(latest);
      });
    }
  };

  const unwatch = o.camera.watch(send);
  res.once('close', unwatch);
  const first = o.camera.latest;
  if (first) send(first);
}
