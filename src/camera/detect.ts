import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { rpicamCommand, testPatternCommand, v4l2Command } from './commands.js';
import type { CaptureFormat } from './commands.js';
import { ProcessSource } from './source.js';
import type { CommandVariant, FrameSource } from './source.js';

/** `--camera`: auto, rpicam, v4l2, v4l2:/dev/videoN, test or none (the setting's pattern checks it). */
export type CameraSetting =
  | { kind: 'auto' }
  | { kind: 'none' }
  | { kind: 'rpicam' }
  | { kind: 'test' }
  | { kind: 'v4l2'; device?: string };

export function parseCameraSetting(raw: string): CameraSetting {
  const v = raw.trim();
  if (v === 'auto' || v === 'none' || v === 'rpicam' || v === 'test' || v === 'v4l2') return { kind: v };
  if (v.startsWith('v4l2:/dev/')) return { kind: 'v4l2', device: v.slice(5) };
  throw new RangeError(`"${raw}" is not auto, rpicam, v4l2, v4l2:/dev/videoN, test or none`);
}

/** What the machine has; a boundary so that detection is tested without a Pi. */
export interface CameraProbe {
  /** Whether a program is on PATH. */
  has(program: string): boolean;
  /** How many cameras libcamera sees; 0 when none, or when asking failed. */
  piCameras(signal?: AbortSignal): Promise<number>;
  /** USB webcams' capture nodes (/dev/videoN), lowest N first. */
  usbCameras(): string[];
}

export function systemProbe(opts: { sysfs?: string; path?: string } = {}): CameraProbe {
  const sysfs = opts.sysfs ?? '/sys/class/video4linux';
  const path = opts.path ?? process.env.PATH ?? '';
  return {
    has(program) {
      return path.split(delimiter).some((dir) => {
        if (dir === '') return false;
        try {
          accessSync(join(dir, program), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
    },
    piCameras(signal) {
      return new Promise((resolve) => {
        // "Available cameras" then one "N : sensor [...]" line per camera; "No cameras available!" else.
        execFile('rpicam-vid', ['--list-cameras'], { timeout: 10_000, signal, maxBuffer: 64 * 1024 }, (_err, stdout, stderr) => {
          const lines = `${stdout}\n${stderr}`.split('\n').filter((l) => /^\s*\d+\s*:\s*\S/.test(l));
          resolve(lines.length);
        });
      });
    },
    usbCameras() {
      return usbCaptureNodes(sysfs);
    },
  };
}

/**
 * A Pi has a dozen /dev/video nodes that are no camera (the ISP, the codecs), and every UVC
 * webcam has a second node for metadata. A USB webcam's picture node is the one whose device
 * sits on a USB bus and whose index is 0.
 */
export function usbCaptureNodes(sysfs: string): string[] {
  let names: string[];
  try {
    names = readdirSync(sysfs).filter((n) => /^video\d+$/.test(n));
  } catch {
    return [];
  }
  const out: Array<{ n: number; dev: string }> = [];
  for (const name of names) {
    try {
      const index = readFileSync(join(sysfs, name, 'index'), 'utf8').trim();
      const device = realpathSync(join(sysfs, name, 'device'));
      if (index === '0' && /\/usb\d*\//.test(device)) out.push({ n: Number(name.slice(5)), dev: `/dev/${name}` });
    } catch {
      // A node that went away while we looked, or without the attributes: not a webcam.
    }
  }
  return out.sort((a, b) => a.n - b.n).map((x) => x.dev);
}

export type CameraChoice =
  | { source: FrameSource; why: string }
  /** `announced`: the user asked for a camera, so the node still has one, showing why not. */
  | { source: undefined; why: string; announced: boolean };

export interface ResolveOptions {
  format: CaptureFormat;
  maxFrameBytes: number;
  probe: CameraProbe;
  signal?: AbortSignal;
  onFallback?: (from: CommandVariant, to: CommandVariant, reason: string) => void;
}

export async function resolveCamera(setting: CameraSetting, o: ResolveOptions): Promise<CameraChoice> {
  const make = (kind: FrameSource['kind'], label: string, variants: CommandVariant[]) =>
    new ProcessSource({ kind, label, variants, maxFrameBytes: o.maxFrameBytes, ...(o.onFallback ? { onFallback: o.onFallback } : {}) });
  const pi = () => make('rpicam', 'Pi camera (rpicam-vid)', rpicamCommand(o.format));
  const usb = (device: string) => make('v4l2', `USB webcam ${device}`, v4l2Command(device, o.format));
  switch (setting.kind) {
    case 'none':
      return { source: undefined, why: 'no camera (--camera none)', announced: false };
    case 'test':
      return { source: make('test', 'test pattern (ffmpeg)', testPatternCommand(o.format)), why: '--camera test' };
    case 'rpicam':
      return { source: pi(), why: '--camera rpicam' };
    case 'v4l2': {
      if (setting.device) return { source: usb(setting.device), why: `--camera v4l2:${setting.device}` };
      const first = o.probe.usbCameras()[0];
      if (first) return { source: usb(first), why: `--camera v4l2: first USB webcam ${first}` };
      return { source: undefined, why: 'no USB webcam found (no /dev/video node on a USB bus)', announced: true };
    }
    case 'auto': {
      if (o.probe.has('rpicam-vid') && (await o.probe.piCameras(o.signal)) > 0) return { source: pi(), why: 'auto: libcamera sees a camera' };
      const first = o.probe.usbCameras()[0];
      if (first) return { source: usb(first), why: `auto: USB webcam ${first}` };
      return { source: undefined, why: 'auto: no Pi camera and no USB webcam found', announced: false };
    }
  }
}
