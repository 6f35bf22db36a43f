import type { CommandVariant } from './source.js';

/**
 * The command lines of the three sources. Each writes a raw MJPEG stream (JPEG after JPEG) on
 * stdout, which MjpegSplitter cuts into frames.
 */

export interface CaptureFormat {
  width: number;
  height: number;
  fps: number;
  /** 1-100, as rpicam-vid takes it. */
  quality: number;
}

/**
 * The Pi camera through libcamera. raspivid/raspistill (the "raspicam" stack) are gone from
 * Raspberry Pi OS since Bullseye; rpicam-vid is what current images ship. rpicam-vid encodes
 * MJPEG itself, so nothing is re-encoded here.
 */
export function rpicamCommand(f: CaptureFormat): CommandVariant[] {
  return [
    {
      argv: [
        'rpicam-vid',
        '--nopreview',
        '--timeout',
        '0',
        '--codec',
        'mjpeg',
        '--width',
        String(f.width),
        '--height',
        String(f.height),
        '--framerate',
        String(f.fps),
        '--quality',
        String(f.quality),
        '--output',
        '-',
      ],
      what: 'rpicam-vid',
    },
  ];
}

const FFMPEG = ['ffmpeg', '-hide_banner', '-loglevel', 'error', '-nostdin'];

/** ffmpeg's -q:v runs 2 (best) to 31; rpicam-vid's quality 1-100 the other way. */
export function ffmpegQscale(quality: number): number {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  return Math.round(2 + ((100 - q) * 29) / 99);
}

/**
 * A USB webcam through V4L2. Most UVC cameras encode MJPEG themselves: passing it through costs
 * the Pi nothing. A camera that only gives raw frames at this size makes the first command fail
 * at once, and ffmpeg then encodes instead.
 */
export function v4l2Command(device: string, f: CaptureFormat): CommandVariant[] {
  const input = ['-f', 'v4l2', '-framerate', String(f.fps), '-video_size', `${f.width}x${f.height}`];
  return [
    { argv: [...FFMPEG, ...input, '-input_format', 'mjpeg', '-i', device, '-c:v', 'copy', '-f', 'mjpeg', 'pipe:1'], what: 'MJPEG from the camera as is' },
    {
      argv: [...FFMPEG, ...input, '-i', device, '-vf', `scale=${f.width}:${f.height}`, '-c:v', 'mjpeg', '-q:v', String(ffmpegQscale(f.quality)), '-f', 'mjpeg', 'pipe:1'],
      what: 'raw frames encoded by ffmpeg',
    },
  ];
}

/**
 * ffmpeg's moving test pattern, paced to real time, with the wall clock drawn in so a frozen
 * picture is told from a live one. drawtext needs a font; without one the clock is left out.
 */
export function testPatternCommand(f: CaptureFormat): CommandVariant[] {
  const src = ['-re', '-f', 'lavfi', '-i', `testsrc2=size=${f.width}x${f.height}:rate=${f.fps}`];
  const out = ['-c:v', 'mjpeg', '-q:v', String(ffmpegQscale(f.quality)), '-f', 'mjpeg', 'pipe:1'];
  const size = Math.max(12, Math.round(f.height / 16));
  const clock = `drawtext=text=%{localtime}:x=${Math.round(size / 2)}:y=${Math.round(size / 2)}:fontsize=${size}:fontcolor=white:box=1:boxcolor=black@0.6`;
  return [
    { argv: [...FFMPEG, ...src, '-vf', clock, ...out], what: 'test pattern with the clock' },
    { argv: [...FFMPEG, ...src, ...out], what: 'test pattern without the clock' },
  ];
}
