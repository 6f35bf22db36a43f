import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, glyph, printable, textWidth } from '../../src/camera/bitmap-font.js';
import {
  AC_SYMBOLS,
  BACKGROUND,
  encodeGrayJpeg,
  INK,
  layoutText,
  placeholderJpeg,
  quantTable,
  renderPlaceholder,
} from '../../src/camera/placeholder.js';

/**
 * The placeholder frame a camera node serves when it has no picture. Structure is checked by
 * walking the markers ourselves; that it is a real JPEG is checked by Debian's ffmpeg/ffprobe
 * (a decoder we did not write), which the decode tests need and skip without.
 */

/** test-artifacts/camera/ at the repository root (from .build-*\/test/camera or dist/test/camera). */
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/camera/', import.meta.url));

const probe = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore', timeout: 5000 });
const noFfmpeg =
  probe.error !== undefined || probe.status !== 0
    ? 'needs ffmpeg at /usr/bin/ffmpeg (apt install ffmpeg) to decode the JPEG with a real decoder'
    : false;

const REASON = ['Camera not found', 'rpicam-vid: no cameras available', 'retrying in 5 s (attempt 3)'];

interface Parsed {
  markers: number[];
  precision: number;
  width: number;
  height: number;
  components: number;
}

/**
 * Walks the segments from SOI to SOS, then the entropy-coded data up to EOI, and throws on
 * anything a baseline decoder would trip on: a missing marker, a length running past the end,
 * an unstuffed 0xFF, bytes after EOI.
 */
function parseJpeg(jpeg: Buffer): Parsed {
  assert.equal(jpeg[0], 0xff, 'SOI');
  assert.equal(jpeg[1], 0xd8, 'SOI');
  const markers: number[] = [];
  let sof: Omit<Parsed, 'markers'> | undefined;
  let i = 2;
  for (;;) {
    assert.ok(i + 4 <= jpeg.length, 'segment header past the end');
    assert.equal(jpeg[i], 0xff, `marker expected at ${i}`);
    const marker = jpeg[i + 1]!;
    const length = jpeg.readUInt16BE(i + 2);
    assert.ok(length >= 2 && i + 2 + length <= jpeg.length, `segment ${marker.toString(16)} length`);
    markers.push(marker);
    if (marker === 0xc0) {
      sof = {
        precision: jpeg[i + 4]!,
        height: jpeg.readUInt16BE(i + 5),
        width: jpeg.readUInt16BE(i + 7),
        components: jpeg[i + 9]!,
      };
    }
    i += 2 + length;
    if (marker === 0xda) break;
  }
  for (; i < jpeg.length; i++) {
    if (jpeg[i] !== 0xff) continue;
    const next = jpeg[i + 1];
    if (next === 0x00) {
      i++;
      continue;
    }
    assert.equal(next, 0xd9, `unstuffed 0xFF in entropy data at ${i}`);
    assert.equal(i + 2, jpeg.length, 'bytes after EOI');
    assert.ok(sof !== undefined, 'no SOF0');
    return { markers, ...sof };
  }
  assert.fail('no EOI');
}

interface Decoded {
  status: number | null;
  stderr: string;
  pixels: Buffer;
}

function decode(jpeg: Buffer): Decoded {
  const r = spawnSync(
    'ffmpeg',
    ['-v', 'error', '-err_detect', 'explode', '-f', 'jpeg_pipe', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'],
    { input: jpeg, maxBuffer: 64 * 1024 * 1024, timeout: 20_000 },
  );
  return { status: r.status, stderr: r.stderr.toString(), pixels: r.stdout };
}

function decodeOk(jpeg: Buffer, width: number, height: number): Buffer {
  const d = decode(jpeg);
  assert.equal(d.status, 0, `ffmpeg failed: ${d.stderr}`);
  assert.equal(d.stderr, '', 'ffmpeg complained');
  assert.equal(d.pixels.length, width * height, 'decoded size');
  return d.pixels;
}

function median(pixels: Uint8Array): number {
  const histogram = new Array<number>(256).fill(0);
  for (const p of pixels) histogram[p]!++;
  let seen = 0;
  for (let v = 0; v < 256; v++) {
    seen += histogram[v]!;
    if (seen * 2 >= pixels.length) return v;
  }
  return 255;
}

/** Bounding box of the pixels above `threshold`, or undefined when there are none. */
function brightBox(pixels: Uint8Array, width: number, threshold: number) {
  let count = 0;
  let x0 = Number.POSITIVE_INFINITY;
  let y0 = Number.POSITIVE_INFINITY;
  let x1 = -1;
  let y1 = -1;
  for (let i = 0; i < pixels.length; i++) {
    if (pixels[i]! <= threshold) continue;
    count++;
    const x = i % width;
    const y = Math.floor(i / width);
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  return count === 0 ? undefined : { count, x0, y0, x1, y1 };
}

function psnr(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (sum / a.length));
}

/** A picture with everything a camera frame has: gradients, edges and noise (seeded). */
function testPicture(width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  let seed = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const noise = ((seed >>> 16) % 21) - 10;
      const edge = (x >> 4) % 2 === (y >> 4) % 2 ? 60 : 0;
      out[y * width + x] = Math.max(0, Math.min(255, Math.round((x * 180) / width + (y * 40) / height + edge + noise)));
    }
  }
  return out;
}

describe('bitmap font', () => {
  it('has a distinct glyph with ink for every printable ASCII character but space', () => {
    const seen = new Map<string, string>();
    for (let code = 32; code <= 126; code++) {
      const ch = String.fromCharCode(code);
      const mask = glyph(ch);
      assert.equal(mask.length, GLYPH_WIDTH * GLYPH_HEIGHT);
      const ink = mask.reduce((a, b) => a + b, 0);
      assert.equal(ink === 0, ch === ' ', `ink of ${JSON.stringify(ch)}`);
      const key = Array.from(mask).join('');
      assert.equal(seen.get(key), undefined, `${JSON.stringify(ch)} looks like ${JSON.stringify(seen.get(key))}`);
      seen.set(key, ch);
    }
  });

  it('draws anything outside printable ASCII as ?, one per code point', () => {
    assert.equal(printable('ok ~'), 'ok ~');
    assert.equal(printable('caf\u00e9\t\u{1F4F7}!'), 'caf???!');
    assert.equal(printable('\u{1F4F7}'), '?');
    assert.equal(printable('\ud800x'), '?x');
    assert.deepEqual(glyph('\u00e9'), glyph('?'));
  });
});

describe('layoutText', () => {
  it('scales the text up to fill about 90 % of the width, never below 1', () => {
    const small = layoutText(320, 240, ['No camera']);
    const large = layoutText(1280, 720, ['No camera']);
    assert.ok(large.scale > small.scale);
    for (const [w, h, l] of [
      [320, 240, small],
      [1280, 720, large],
    ] as const) {
      assert.ok(textWidth(9, l.scale) <= w * 0.9);
      // One step larger would overflow the width or the height.
      assert.ok(textWidth(9, l.scale + 1) > w * 0.9 || GLYPH_HEIGHT * (l.scale + 1) > h * 0.9);
    }
    assert.equal(layoutText(16, 16, ['x']).scale, 1);
  });

  it('cuts a line too wide at scale 1 with ... and keeps it within the width', () => {
    const long = 'x'.repeat(500);
    const { lines, scale } = layoutText(200, 100, [long, 'short']);
    assert.equal(scale, 1);
    assert.ok(lines[0]!.endsWith('...'));
    assert.ok(lines[0]!.startsWith('xxx'));
    assert.ok(textWidth(lines[0]!.length, 1) <= 200 * 0.9);
    assert.equal(lines[1], 'short');
  });

  it('drops the lines that do not fit the height and says so', () => {
    const many = Array.from({ length: 50 }, (_, i) => `line ${i}`);
    const { lines } = layoutText(640, 64, many);
    assert.ok(lines.length >= 1 && lines.length < 50);
    assert.ok(lines.length * 11 - 2 <= 64 * 0.9);
    assert.equal(lines[0], 'line 0');
    assert.ok(lines.at(-1)!.endsWith('...'));
  });
});

describe('renderPlaceholder', () => {
  it('centres the text block in a dark frame', () => {
    const width = 640;
    const height = 360;
    const raster = renderPlaceholder(width, height, REASON);
    const box = brightBox(raster, width, 180)!;
    assert.ok(box !== undefined);
    // Centre of the ink within a glyph cell of the frame centre (ink boxes are not symmetric:
    // descenders, narrow first/last glyphs).
    const { scale } = layoutText(width, height, REASON);
    assert.ok(Math.abs((box.x0 + box.x1) / 2 - width / 2) <= ADVANCE * scale, `x centre ${box.x0}..${box.x1}`);
    assert.ok(Math.abs((box.y0 + box.y1) / 2 - height / 2) <= GLYPH_HEIGHT * scale, `y centre ${box.y0}..${box.y1}`);
    assert.ok(box.x1 - box.x0 < width * 0.9);
    assert.ok(raster.every((p) => p === BACKGROUND || p === INK));
  });
});

describe('placeholderJpeg structure', () => {
  it('is a baseline JFIF with one 8-bit component of the requested size', () => {
    for (const [width, height] of [
      [1280, 720],
      [16, 16],
      [17, 4096],
      [333, 99],
    ] as const) {
      const jpeg = placeholderJpeg({ width, height, lines: REASON });
      assert.deepEqual([jpeg[0], jpeg[1]], [0xff, 0xd8]);
      assert.deepEqual([jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd9]);
      const p = parseJpeg(jpeg);
      assert.deepEqual(p.markers, [0xe0, 0xdb, 0xc0, 0xc4, 0xda]);
      assert.equal(jpeg.toString('latin1', 6, 11), 'JFIF\0');
      assert.deepEqual([p.width, p.height, p.components, p.precision], [width, height, 1, 8]);
    }
  });

  it('refuses sizes outside 16..4096 and qualities outside 1..100 with a RangeError', () => {
    const bad = [15, 4097, 0, -16, 100.5, Number.NaN, Number.POSITIVE_INFINITY];
    for (const size of bad) {
      assert.throws(() => placeholderJpeg({ width: size, height: 100, lines: [] }), RangeError);
      assert.throws(() => placeholderJpeg({ width: 100, height: size, lines: [] }), RangeError);
    }
    for (const quality of [0, 101, -5, Number.NaN]) {
      assert.throws(() => placeholderJpeg({ width: 100, height: 100, lines: [], quality }), RangeError);
    }
  });

  it('has a Huffman code for every baseline AC symbol, each once', () => {
    const expected = [0x00, 0xf0];
    for (let run = 0; run < 16; run++) for (let size = 1; size <= 10; size++) expected.push((run << 4) | size);
    assert.deepEqual([...AC_SYMBOLS].sort((a, b) => a - b), expected.sort((a, b) => a - b));
  });

  it('scales the quantization table the IJG way', () => {
    const q50 = quantTable(50);
    assert.equal(q50[0], 16);
    assert.equal(q50[63], 99);
    assert.ok(quantTable(100).every((v) => v === 1));
    assert.ok(quantTable(1).every((v) => v === 255 || v > 200));
    const q75 = quantTable(75);
    assert.equal(q75[0], 8);
    for (let i = 0; i < 64; i++) assert.ok(q75[i]! <= q50[i]! && q50[i]! <= quantTable(25)[i]!);
  });

  it('stays small for a mostly flat frame, and better quality costs bytes', () => {
    const empty = placeholderJpeg({ width: 1280, height: 720, lines: [] });
    const text = placeholderJpeg({ width: 1280, height: 720, lines: REASON });
    const best = placeholderJpeg({ width: 1280, height: 720, lines: REASON, quality: 100 });
    const worst = placeholderJpeg({ width: 1280, height: 720, lines: REASON, quality: 10 });
    // With the Annex K tables a flat block costs 6 bits (DC difference 0, then EOB): the
    // floor for 14 400 blocks is ~10.8 KB, headers aside.
    const blocks = (1280 / 8) * (720 / 8);
    assert.ok(empty.length <= (blocks * 6) / 8 + 700, `empty ${empty.length} bytes`);
    assert.ok(text.length < 80_000, `text ${text.length} bytes`);
    assert.ok(worst.length < text.length && text.length < best.length);
  });

  it('encodes 1280x720 in well under 100 ms', () => {
    placeholderJpeg({ width: 1280, height: 720, lines: REASON });
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      placeholderJpeg({ width: 1280, height: 720, lines: [...REASON, `run ${i}`] });
      best = Math.min(best, performance.now() - start);
    }
    console.log(`[placeholder] 1280x720 best of 5: ${best.toFixed(1)} ms`);
    assert.ok(best < 100, `${best} ms`);
  });

  it('never throws and stays structurally valid for any size and text (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 16, max: 640 }),
        fc.integer({ min: 16, max: 640 }),
        fc.array(anyLine(), { maxLength: 60 }),
        (width, height, lines) => {
          const p = parseJpeg(placeholderJpeg({ width, height, lines }));
          assert.deepEqual([p.width, p.height, p.components], [width, height, 1]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

function anyLine(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(''),
    fc.string(),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: 300, maxLength: 3000 }),
  );
}

describe('placeholderJpeg through a real decoder (ffmpeg)', { skip: noFfmpeg }, () => {
  it('decodes without complaint to a dark frame with bright text in the middle', () => {
    const width = 1280;
    const height = 720;
    const jpeg = placeholderJpeg({ width, height, lines: REASON });
    const pixels = decodeOk(jpeg, width, height);
    assert.ok(median(pixels) < 100, `median ${median(pixels)}`);
    assert.ok(median(pixels) > 10, 'dark gray, not black');
    const box = brightBox(pixels, width, 180);
    assert.ok(box !== undefined && box.count > 1000, 'bright text pixels');
    assert.ok(Math.abs((box.x0 + box.x1) / 2 - width / 2) < width * 0.05, `x ${box.x0}..${box.x1}`);
    assert.ok(Math.abs((box.y0 + box.y1) / 2 - height / 2) < height * 0.05, `y ${box.y0}..${box.y1}`);

    mkdirSync(ARTIFACTS, { recursive: true });
    const png = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'jpeg_pipe', '-i', 'pipe:0', join(ARTIFACTS, 'placeholder.png')], {
      input: jpeg,
      timeout: 20_000,
    });
    assert.equal(png.status, 0, png.stderr?.toString());
  });

  it('has no bright pixels when there is nothing to say', () => {
    const pixels = decodeOk(placeholderJpeg({ width: 641, height: 359, lines: [] }), 641, 359);
    assert.equal(brightBox(pixels, 641, 180), undefined);
    assert.ok(median(pixels) < 100);
    const spaces = decodeOk(placeholderJpeg({ width: 200, height: 100, lines: ['   ', ''] }), 200, 100);
    assert.equal(brightBox(spaces, 200, 180), undefined);
  });

  it('ffprobe sees a gray mjpeg picture of the requested size', () => {
    const r = spawnSync(
      'ffprobe',
      ['-v', 'error', '-f', 'jpeg_pipe', '-i', 'pipe:0', '-show_entries', 'stream=codec_name,width,height,pix_fmt', '-of', 'json'],
      { input: placeholderJpeg({ width: 500, height: 123, lines: REASON }), timeout: 20_000 },
    );
    assert.equal(r.status, 0, r.stderr.toString());
    const stream = JSON.parse(r.stdout.toString()).streams[0];
    assert.equal(stream.codec_name, 'mjpeg');
    assert.equal(stream.width, 500);
    assert.equal(stream.height, 123);
    assert.match(stream.pix_fmt, /^(gray|yuvj?400p?)/);
  });

  it('reproduces a real picture closely, odd sizes included (the DCT and tables are right)', () => {
    for (const [width, height] of [
      [64, 64],
      [37, 23],
      [250, 131],
    ] as const) {
      const source = testPicture(width, height);
      const at90 = decodeOk(encodeGrayJpeg(source, width, height, 90), width, height);
      const at100 = decodeOk(encodeGrayJpeg(source, width, height, 100), width, height);
      const at30 = decodeOk(encodeGrayJpeg(source, width, height, 30), width, height);
      assert.ok(psnr(source, at100) > 45, `q100 ${width}x${height}: ${psnr(source, at100).toFixed(1)} dB`);
      assert.ok(psnr(source, at90) > 33, `q90 ${width}x${height}: ${psnr(source, at90).toFixed(1)} dB`);
      assert.ok(psnr(source, at30) > 25, `q30 ${width}x${height}: ${psnr(source, at30).toFixed(1)} dB`);
      assert.ok(psnr(source, at90) > psnr(source, at30));
    }
  });

  it('decodes to the right size for random sizes and text (property, 25 runs)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 16, max: 640 }),
        fc.integer({ min: 16, max: 640 }),
        fc.array(anyLine(), { maxLength: 20 }),
        (width, height, lines) => {
          const pixels = decodeOk(placeholderJpeg({ width, height, lines }), width, height);
          assert.ok(median(pixels) < 100);
          const drawn = layoutText(width, height, lines).lines.some((l) => l.trim() !== '');
          // Strokes one pixel wide lose some brightness to quantization; a threshold well
          // above the background still tells text from no text.
          const box = brightBox(pixels, width, 140);
          assert.equal(box !== undefined, drawn, `text drawn: ${drawn}`);
        },
      ),
      // Each run starts ffmpeg: report the first counterexample rather than shrink for minutes.
      { numRuns: 25, endOnFailure: true },
    );
  });
});
