import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';

import { isStartOfFrame, jpegDimensions } from '../../src/camera/jpeg-info.js';

// Compiled to <outDir>/test/camera/: the corpus stays in the source tree (tsc does not copy it).
const CORPUS = new URL('../../../test/camera/corpus/', import.meta.url);
const execFileAsync = promisify(execFile);

/** What each corpus file is, as ffprobe reported it when the corpus was made. */
const EXPECTED: Record<string, { width: number; height: number; components: number }> = {
  'cjpeg-gray.jpg': { width: 48, height: 32, components: 1 },
  'cjpeg-odd-size.jpg': { width: 33, height: 17, components: 3 },
  'cjpeg-progressive.jpg': { width: 48, height: 32, components: 3 },
  'cjpeg-restart.jpg': { width: 48, height: 32, components: 3 },
  'ffmpeg-testsrc-1.jpg': { width: 64, height: 48, components: 3 },
  'ffmpeg-testsrc-2.jpg': { width: 64, height: 48, components: 3 },
  'ffmpeg-testsrc2-420.jpg': { width: 32, height: 16, components: 3 },
};

const corpus = readdirSync(CORPUS)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .map((name) => ({ name, bytes: readFileSync(new URL(name, CORPUS)) }));

/** Where the SOF segment ends, found the simple way (a search), to check the walk against. */
function sofEnd(jpeg: Buffer): number {
  for (let i = 2; i + 1 < jpeg.length; i++) {
    if (jpeg[i] === 0xff && isStartOfFrame(jpeg[i + 1]!)) return i + 2 + jpeg.readUInt16BE(i + 2);
  }
  throw new Error('no SOF');
}

describe('jpegDimensions', () => {
  it('reads every corpus file', () => {
    assert.deepEqual(corpus.map((f) => f.name), Object.keys(EXPECTED).sort(), 'corpus and expectations list the same files');
    for (const f of corpus) assert.deepEqual(jpegDimensions(f.bytes), EXPECTED[f.name], f.name);
  });

  const hasFfprobe = spawnSync('ffprobe', ['-version'], { stdio: 'ignore' }).error === undefined;
  it('agrees with ffprobe', { skip: hasFfprobe ? false : 'ffprobe is not installed' }, async () => {
    const probes = corpus.map(async (f) => {
      const args = ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', fileURLToPath(new URL(f.name, CORPUS))];
      const { stdout } = await execFileAsync('ffprobe', args, { encoding: 'utf8' });
      const [width, height] = stdout.trim().split(',').map(Number);
      const dims = jpegDimensions(f.bytes);
      assert.deepEqual([dims?.width, dims?.height], [width, height], f.name);
    });
    await Promise.all(probes);
  });

  it('is undefined for every truncation that ends before the frame header, and right after', () => {
    for (const f of corpus) {
      const end = sofEnd(f.bytes);
      for (let n = 0; n <= f.bytes.length; n++) {
        const dims = jpegDimensions(f.bytes.subarray(0, n));
        if (n < end) assert.equal(dims, undefined, `${f.name} cut at ${n}`);
        else assert.deepEqual(dims, EXPECTED[f.name], `${f.name} cut at ${n}`);
      }
    }
  });

  it('skips fill bytes and standalone markers before the frame header', () => {
    const f = corpus.find((c) => c.name === 'ffmpeg-testsrc-1.jpg')!.bytes;
    const padded = Buffer.concat([f.subarray(0, 2), Buffer.from([0xff, 0xff, 0xff, 0x01, 0xff, 0xd3]), f.subarray(2)]);
    assert.deepEqual(jpegDimensions(padded), { width: 64, height: 48, components: 3 });
  });

  it('is undefined for what is not a JPEG, or breaks the rules before its frame header', () => {
    const f = corpus.find((c) => c.name === 'ffmpeg-testsrc-1.jpg')!.bytes;
    const cases: Record<string, Buffer> = {
      empty: Buffer.alloc(0),
      'no SOI': f.subarray(2),
      'SOI then EOI': Buffer.from([0xff, 0xd8, 0xff, 0xd9]),
      'scan before the frame header': Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 1, 1, 0, 0, 63, 0]),
      'length below 2': Buffer.concat([f.subarray(0, 2), Buffer.from([0xff, 0xfe, 0x00, 0x01]), f.subarray(2)]),
      'second SOI': Buffer.concat([f.subarray(0, 2), f]),
      'garbage where a marker belongs': Buffer.concat([f.subarray(0, 2), Buffer.from([0x00]), f.subarray(2)]),
      'zero width': Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 8, 0, 16, 0, 0, 1, 1, 0x11, 0]),
      'zero height': Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 8, 0, 0, 0, 16, 1, 1, 0x11, 0]),
      'fewer component bytes than components': Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 8, 0, 16, 0, 16, 3, 1, 0x11, 0]),
    };
    for (const [what, bytes] of Object.entries(cases)) assert.equal(jpegDimensions(bytes), undefined, what);
    // DHT, JPG and DAC sit among the SOF codes but are not frame headers.
    for (const m of [0xc4, 0xc8, 0xcc]) assert.equal(isStartOfFrame(m), false);
    for (const m of [0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc9, 0xcf]) assert.equal(isStartOfFrame(m), true);
  });

  it('never throws and never answers nonsense, whatever the bytes', () => {
    const frames = fc.constantFrom(...corpus.map((c) => c.bytes));
    const mutated = fc
      .tuple(frames, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat())
      .map(([f, edits, cut]) => {
        const b = Buffer.from(f);
        for (const [at, v] of edits) b[at % b.length] = v;
        return b.subarray(0, cut % (b.length + 1));
      });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 600 })), (bytes) => {
        const dims = jpegDimensions(bytes);
        if (dims === undefined) return;
        for (const v of [dims.width, dims.height, dims.components]) assert.ok(Number.isInteger(v) && v > 0);
        assert.ok(dims.width <= 65535 && dims.height <= 65535 && dims.components <= 255);
      }),
      { numRuns: 1000 },
    );
  });
});
