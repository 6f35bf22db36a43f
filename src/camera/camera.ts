import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { placeholderJpeg } from './placeholder.js';
import type { Capture, FrameSource } from './source.js';

/**
 * One capture per node, shared by every viewer. The camera runs only while someone watches
 * (plus `idleMs`, so a page reload does not restart it), unless `alwaysOn`. Viewers are told of
 * each new frame and take the newest when they are ready for one: nothing here queues frames, so
 * a slow viewer skips frames and costs no memory. A capture that ends, or stops giving frames,
 * is restarted with back-off; meanwhile the newest frame is a placeholder that says why.
 */

export type CameraState = 'off' | 'starting' | 'live' | 'failed' | 'unavailable';

export interface Frame {
  /** Grows by one per frame, placeholders included: a viewer sends a frame once. */
  readonly seq: number;
  readonly jpeg: Buffer;
  /** The multipart part header for this frame, made once for all viewers. */
  readonly part: Buffer;
  /** false for a placeholder. */
  readonly live: boolean;
  readonly atMs: number;
}

export interface CameraOptions {
  /** undefined: the node has no usable source; `unavailableReason` says why. */
  source: FrameSource | undefined;
  unavailableReason?: string;
  width: number;
  height: number;
  fps: number;
  idleMs: number;
  alwaysOn: boolean;
  /** A capture that gives no frame this long after starting is restarted. Default 10 s. */
  firstFrameTimeoutMs?: number;
  /** A live capture that goes quiet this long is restarted. Default 5 s. */
  stallTimeoutMs?: number;
  /** Waits before each restart; the last repeats. */
  restartBackoffMs?: readonly number[];
}

export interface CameraStatus {
  source: string | null;
  kind: string | null;
  state: CameraState;
  /** Why there is no picture (failed, unavailable), else null. */
  reason: string | null;
  width: number;
  height: number;
  fps: number;
  viewers: number;
  frames: number;
  restarts: number;
}

export const MULTIPART_BOUNDARY = 'frontdoor-frame';
const DEFAULT_BACKOFF = [1000, 2000, 5000, 10_000, 30_000];
/** Live this long and the next failure starts the back-off from the beginning again. */
const HEALTHY_MS = 30_000;

export class Camera {
  private readonly o: CameraOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly viewers = new Set<(f: Frame) => void>();
  private capture: Capture | undefined;
  private stateValue: CameraState;
  private reasonValue: string | null;
  private latestFrame: Frame | undefined;
  private seq = 0;
  private frames = 0;
  private restarts = 0;
  private attempt = 0;
  private liveSince = 0;
  private lastFrameAt = 0;
  private startedAt = 0;
  private idleTimer: Timer | undefined;
  private restartTimer: Timer | undefined;
  private watchdog: Timer | undefined;
  private closed = false;
  private readonly placeholders = new Map<string, Buffer>();
  /** Snapshot callers waiting for the capture's first frame. */
  private readonly waiters = new Set<(f: Frame) => void>();

  constructor(components: { clock: Clock; logger: Logger }, o: CameraOptions) {
    this.o = o;
    this.clock = components.clock;
    this.log = components.logger;
    this.stateValue = o.source ? 'off' : 'unavailable';
    this.reasonValue = o.source ? null : (o.unavailableReason ?? 'no camera');
    if (o.source && o.alwaysOn) this.want();
  }

  get state(): CameraState {
    return this.stateValue;
  }

  get reason(): string | null {
    return this.reasonValue;
  }

  /** The newest frame: live, or a placeholder saying why there is none. */
  get latest(): Frame | undefined {
    return this.latestFrame;
  }

  /** The running capture's process id, if any (tests, diagnostics). */
  get capturePid(): number | undefined {
    return this.capture?.pid;
  }

  status(): CameraStatus {
    return {
      source: this.o.source?.label ?? null,
      kind: this.o.source?.kind ?? null,
      state: this.stateValue,
      reason: this.reasonValue,
      width: this.o.width,
      height: this.o.height,
      fps: this.o.fps,
      viewers: this.viewers.size,
      frames: this.frames,
      restarts: this.restarts,
    };
  }

  /**
   * A viewer: `onFrame` runs on every new frame (placeholders included) until the returned
   * function is called. It must not block; it decides whether to send this frame or skip it.
   */
  watch(onFrame: (f: Frame) => void): () => void {
    this.viewers.add(onFrame);
    this.want();
    if (this.latestFrame === undefined && this.stateValue !== 'live') this.publishPlaceholder(this.placeholderText());
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.viewers.delete(onFrame);
      this.maybeIdle();
    };
  }

  /**
   * A fresh frame for a snapshot: the newest while live; else the capture is started and its
   * first frame awaited. When none comes in `timeoutMs`, or there is no camera, the placeholder.
   */
  snapshot(timeoutMs: number, signal?: AbortSignal): Promise<Frame> {
    if (this.stateValue === 'live' && this.latestFrame?.live) return Promise.resolve(this.latestFrame);
    if (this.o.source === undefined || this.closed) return Promise.resolve(this.placeholderFrame());
    return new Promise((resolve) => {
      const finish = (f: Frame) => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(finish);
        resolve(f);
        this.maybeIdle();
      };
      const onAbort = () => finish(this.placeholderFrame());
      const timer = this.clock.setTimeout(() => finish(this.placeholderFrame()), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(finish);
      this.want();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.idleTimer?.cancel();
    this.restartTimer?.cancel();
    this.watchdog?.cancel();
    for (const w of [...this.waiters]) w(this.placeholderFrame());
    this.viewers.clear();
    await this.stopCapture();
  }

  // ---- lifecycle ------------------------------------------------------------------------

  private get wanted(): boolean {
    return !this.closed && (this.o.alwaysOn || this.viewers.size > 0 || this.waiters.size > 0);
  }

  private want(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    if (this.capture || this.restartTimer || this.o.source === undefined || this.closed) return;
    this.startCapture();
  }

  private maybeIdle(): void {
    if (this.wanted || this.idleTimer || this.closed) return;
    const stop = () => {
      this.idleTimer = undefined;
      if (this.wanted) return;
      this.restartTimer?.cancel();
      this.restartTimer = undefined;
      this.attempt = 0;
      const was = this.stateValue;
      void this.stopCapture().then(() => {
        if (this.wanted || this.closed) return;
        this.stateValue = 'off';
        this.reasonValue = null;
        // An old picture must not greet the next viewer as if it were now.
        this.latestFrame = undefined;
        if (was === 'live') this.log.info('camera stopped: no viewer', { source: this.o.source?.label });
      });
    };
    if (this.o.idleMs <= 0) stop();
    else this.idleTimer = this.clock.setTimeout(stop, this.o.idleMs);
  }

  private startCapture(): void {
    const source = this.o.source;
    if (source === undefined) return;
    this.stateValue = 'starting';
    this.startedAt = this.clock.now();
    this.lastFrameAt = 0;
    let ended = false;
    const capture = source.open({
      frame: (jpeg) => {
        if (this.capture !== capture) return;
        this.onLiveFrame(jpeg);
      },
      ended: (reason) => {
        if (ended) return;
        ended = true;
        if (this.capture !== capture) return;
        this.capture = undefined;
        this.failed(reason);
      },
    });
    this.capture = capture;
    this.armWatchdog();
  }

  private onLiveFrame(jpeg: Buffer): void {
    const now = this.clock.now();
    if (this.stateValue !== 'live') {
      this.stateValue = 'live';
      this.reasonValue = null;
      this.liveSince = now;
      this.log.info('camera live', { source: this.o.source?.label, afterMs: Math.round(now - this.startedAt) });
    }
    this.lastFrameAt = now;
    this.frames++;
    const f = this.makeFrame(jpeg, true);
    for (const w of [...this.waiters]) w(f);
    for (const v of this.viewers) v(f);
  }

  /** The capture ended by itself or was cut by the watchdog: placeholder now, retry later. */
  private failed(reason: string): void {
    const now = this.clock.now();
    if (this.stateValue === 'live' && now - this.liveSince >= HEALTHY_MS) this.attempt = 0;
    this.stateValue = 'failed';
    this.reasonValue = reason;
    this.watchdog?.cancel();
    this.watchdog = undefined;
    const backoff = this.o.restartBackoffMs ?? DEFAULT_BACKOFF;
    const wait = backoff[Math.min(this.attempt, backoff.length - 1)] ?? 1000;
    this.attempt++;
    if (!this.wanted) {
      this.log.warn('camera stopped', { source: this.o.source?.label, reason });
      this.stateValue = 'off';
      this.latestFrame = undefined;
      return;
    }
    this.log.warn('camera failed; restarting', { source: this.o.source?.label, reason, inMs: wait });
    this.publishPlaceholder([this.o.source?.label ?? 'camera', reason, `retrying in ${Math.ceil(wait / 1000)} s`]);
    // Snapshot callers get the placeholder now rather than waiting out their timeout.
    for (const w of [...this.waiters]) w(this.latestFrame as Frame);
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.wanted || this.capture) return;
      this.restarts++;
      this.startCapture();
    }, wait);
  }

  /** One timer while capturing, not one per frame: checks that frames still come. */
  private armWatchdog(): void {
    this.watchdog?.cancel();
    const first = this.o.firstFrameTimeoutMs ?? 10_000;
    const stall = this.o.stallTimeoutMs ?? 5000;
    const tick = () => {
      const capture = this.capture;
      if (capture === undefined) return;
      const now = this.clock.now();
      const why =
        this.lastFrameAt === 0
          ? now - this.startedAt >= first
            ? `no picture from the camera ${Math.round(first / 1000)} s after starting it`
            : undefined
          : now - this.lastFrameAt >= stall
            ? `the camera stopped giving pictures for ${Math.round(stall / 1000)} s`
            : undefined;
      if (why === undefined) {
        this.watchdog = this.clock.setTimeout(tick, Math.min(1000, stall / 2));
        return;
      }
      this.capture = undefined;
      void capture.stop();
      this.failed(why);
    };
    this.watchdog = this.clock.setTimeout(tick, Math.min(1000, stall / 2));
  }

  private async stopCapture(): Promise<void> {
    const c = this.capture;
    this.capture = undefined;
    this.watchdog?.cancel();
    this.watchdog = undefined;
    await c?.stop();
  }

  // ---- frames ---------------------------------------------------------------------------

  private makeFrame(jpeg: Buffer, live: boolean): Frame {
    const part = Buffer.from(`--${MULTIPART_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`, 'latin1');
    const f: Frame = { seq: ++this.seq, jpeg, part, live, atMs: this.clock.now() };
    this.latestFrame = f;
    return f;
  }

  private placeholderText(): string[] {
    const label = this.o.source?.label ?? 'camera';
    if (this.stateValue === 'unavailable') return [this.reasonValue ?? 'no camera'];
    if (this.stateValue === 'failed') return [label, this.reasonValue ?? 'failed'];
    return [label, 'starting the camera...'];
  }

  private placeholderFrame(): Frame {
    if (this.latestFrame && !this.latestFrame.live) return this.latestFrame;
    return this.publishPlaceholder(this.placeholderText(), false);
  }

  /** Placeholders are drawn once per text: a camera failing every second redraws nothing. */
  private publishPlaceholder(lines: string[], notify = true): Frame {
    const key = lines.join('\n');
    let jpeg = this.placeholders.get(key);
    if (jpeg === undefined) {
      jpeg = placeholderJpeg({ width: this.o.width, height: this.o.height, lines });
      if (this.placeholders.size >= 16) this.placeholders.clear();
      this.placeholders.set(key, jpeg);
    }
    const f = this.makeFrame(jpeg, false);
    if (notify) for (const v of this.viewers) v(f);
    return f;
  }
}
