/**
 * What the MJPEG splitter costs on the inputs that would show a second pass over held bytes:
 * one 1 MB frame pushed a byte at a time, and 30 MB of 100 KB frames in 64 KB chunks (a pipe's
 * reads). Rescanning what is held on every push would take minutes on the first.
 *
 *   npm run bench -- splitter
 */
import { MjpegSplitter } from '../src/camera/mjpeg-splitter.js';
import { placeholderJpeg } from '../src/camera/placeholder.js';

/** A frame with `base`'s headers, `entropyBytes` of data with stuffed FFs and restart markers, EOI. */
function bigFrame(base: Buffer, entropyBytes: number, seed: number): Buffer {
  const sos = base.lastIndexOf(Buffer.from([0xff, 0xda]));
  const headerEnd = sos + 2 + base.readUInt16BE(sos + 2);
  const data = Buffer.alloc(entropyBytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < entropyBytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = (x >>> 0) % 255;
  }
  for (let i = 97; i + 1 < data.length; i += 997) {
    data[i] = 0xff;
    data[i + 1] = i % 2 === 0 ? 0x00 : 0xd0 + (i % 8);
  }
  return Buffer.concat([base.subarray(0, headerEnd), data, Buffer.from([0xff, 0xd9])]);
}

function timeSplit(bytes: Buffer, chunk: number, maxFrameBytes: number): { ms: number; frames: number } {
  let frames = 0;
  const splitter = new MjpegSplitter({ maxFrameBytes, onFrame: () => frames++ });
  const t0 = performance.now();
  for (let i = 0; i < bytes.length; i += chunk) splitter.push(bytes.subarray(i, i + chunk));
  return { ms: performance.now() - t0, frames };
}

export async function run(_args: string[]): Promise<void> {
  const base = placeholderJpeg({ width: 160, height: 90, lines: ['splitter bench'] });
  const one = timeSplit(bigFrame(base, 1_000_000, 3), 1, 2_000_000);
  const frames = Array.from({ length: 10 }, (_, i) => bigFrame(base, 100_000 + i * 17, i + 1));
  const stream = Buffer.concat(Array.from({ length: 30 }, () => frames).flat());
  const many = timeSplit(stream, 64 * 1024, 1_000_000);
  console.log(`splitter: 1 MB frame in 1-byte chunks: ${one.ms.toFixed(0)} ms (${one.frames} frame)`);
  console.log(`splitter: ${(stream.length / 1e6).toFixed(0)} MB of 100 KB frames in 64 KB chunks: ${many.ms.toFixed(0)} ms (${many.frames} frames)`);
}
