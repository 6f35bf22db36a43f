import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { MjpegSplitter } from './mjpeg-splitter.js';

/**
 * The camera as a boundary: something that, once opened, hands out JPEG frames until it is
 * stopped or ends by itself. The Pi camera, a USB webcam and the test pattern are all child
 * processes writing MJPEG to stdout (ProcessSource); tests also plug in sources of their own.
 */

export interface CaptureSink {
  frame(jpeg: Buffer): void;
  /** The capture ended by itself (never called after `stop()`): why, in a user's words. */
  ended(reason: string): void;
}

export interface Capture {
  /** The capture's process, when it is one (logs, tests). */
  readonly pid?: number | undefined;
  /** Ends the capture; resolves once its process is gone. Idempotent. */
  stop(): Promise<void>;
}

export type SourceKind = 'rpicam' | 'v4l2' | 'test';

export interface FrameSource {
  readonly kind: SourceKind;
  /** What the portal calls it: "Pi camera (rpicam-vid)", "USB webcam /dev/video0". */
  readonly label: string;
  open(sink: CaptureSink): Capture;
}

/**
 * One way to run the capture. A source may have several, tried in order: a USB webcam that
 * cannot hand out MJPEG as is gets it encoded by ffmpeg instead, and the test pattern drops its
 * clock when ffmpeg has no font for it. Each later variant is used once an earlier one has
 * ended without giving a single frame.
 */
export interface CommandVariant {
  argv: readonly string[];
  /** Logged when this variant is given up for the next. */
  what: string;
}

export interface ProcessSourceInit {
  kind: SourceKind;
  label: string;
  variants: readonly CommandVariant[];
  /** Frames above this are dropped by the splitter (a corrupt stream must not grow memory). */
  maxFrameBytes: number;
  /** Called when a variant is given up, e.g. to log it. */
  onFallback?: (from: CommandVariant, to: CommandVariant, reason: string) => void;
  /** Time a stopped process gets between SIGTERM and SIGKILL. */
  killAfterMs?: number;
}

const STDERR_TAIL = 2048;

export class ProcessSource implements FrameSource {
  readonly kind: SourceKind;
  readonly label: string;
  private readonly init: ProcessSourceInit;
  private variant = 0;

  constructor(init: ProcessSourceInit) {
    if (init.variants.length === 0) throw new RangeError('a process source needs at least one command');
    this.init = init;
    this.kind = init.kind;
    this.label = init.label;
  }

  /** The command line the next `open` runs (for logs and tests). */
  get argv(): readonly string[] {
    return this.current.argv;
  }

  private get current(): CommandVariant {
    return this.init.variants[this.variant] as CommandVariant;
  }

  open(sink: CaptureSink): Capture {
    const variant = this.current;
    const [file, ...args] = variant.argv as [string, ...string[]];
    let frames = 0;
    let stopping = false;
    let stderr = '';
    let spawnError: NodeJS.ErrnoException | undefined;
    const splitter = new MjpegSplitter({
      maxFrameBytes: this.init.maxFrameBytes,
      onFrame: (jpeg) => {
        frames++;
        if (!stopping) sink.frame(jpeg);
      },
    });
    const child: ChildProcess = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => splitter.push(chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_TAIL);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError ??= err;
    });
    const closed = new Promise<void>((resolve) => {
      child.on('close', (code, signal) => {
        resolve();
        if (stopping) return;
        const reason = endReason(file, spawnError, code, signal, stderr);
        if (frames === 0 && spawnError === undefined && this.variant < this.init.variants.length - 1) {
          this.variant++;
          this.init.onFallback?.(variant, this.current, reason);
        }
        sink.ended(reason);
      });
    });
    return {
      pid: child.pid,
      stop: async () => {
        if (!stopping) {
          stopping = true;
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), this.init.killAfterMs ?? 2000);
            t.unref();
            closed.finally(() => clearTimeout(t)).catch(() => {});
          }
        }
        await closed;
      },
    };
  }
}

/** The last thing the program said, which is usually why it stopped. */
function endReason(file: string, spawnError: NodeJS.ErrnoException | undefined, code: number | null, signal: NodeJS.Signals | null, stderr: string): string {
  if (spawnError?.code === 'ENOENT') return `${file} is not installed`;
  if (spawnError?.code === 'EACCES') return `${file} cannot be run (permission denied)`;
  if (spawnError) return `${file} could not start: ${spawnError.message}`;
  const last = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .pop();
  const how = signal ? `was killed by ${signal}` : code === 0 ? 'stopped' : `exited with code ${code}`;
  return `${file} ${how}${last ? `: ${last.slice(0, 200)}` : ''}`;
}
