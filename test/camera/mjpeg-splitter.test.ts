import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { jpegDimensions } from '../../src/camera/jpeg-info.js';
import { MjpegSplitter } from '../../src/camera/mjpeg-splitter.js';

// Compiled to <outDir>/test/camera/: the corpus stays in the source tree (tsc does not copy it).
const CORPUS = new URL('../../../test/camera/corpus/', import.meta.url);
const RUNS = { numRuns: 400 };
const MAX = 16 * 1024;

interface Frame {
  name: string;
  bytes: Buffer;
}

const corpus: Frame[] = readdirSync(CORPUS)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .map((name) => ({ name, bytes: readFileSync(new URL(name, CORPUS)) }));

/** Segment boundaries of a well-formed JPEG's headers: the offset of each marker up to SOS. */
function headerMarkers(jpeg: Buffer): number[] {
  const at: number[] = [];
  let p = 2;
  for (;;) {
    while (jpeg[p + 1] === 0xff) p++;
    at.push(p);
    const m = jpeg[p + 1];
    if (m === 0xda) return at;
    p += 2 + jpeg.readUInt16BE(p + 2);
  }
}

/** An EXIF-style APP1 segment right after SOI holding a whole JPEG, as cameras embed thumbnails. */
function withThumbnail(outer: Buffer, thumb: Buffer): Buffer {
  const payload = Buffer.concat([Buffer.from('Exif\0\0MM\0*\0\0\0\x08', 'latin1'), thumb, Buffer.alloc(5)]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([outer.subarray(0, 2), head, payload, outer.subarray(2)]);
}

/** Fill bytes (FF) before every header marker and before EOI: allowed, and seldom seen. */
function withFillBytes(jpeg: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of [...headerMarkers(jpeg), jpeg.length - 2]) {
    parts.push(jpeg.subarray(from, p), Buffer.from([0xff, 0xff, 0xff]));
    from = p;
  }
  parts.push(jpeg.subarray(from));
  return Buffer.concat(parts);
}

const thumbFrame: Frame = {
  name: 'thumbnail (built)',
  bytes: withThumbnail(corpus.find((f) => f.name === 'ffmpeg-testsrc-1.jpg')!.bytes, corpus.find((f) => f.name === 'ffmpeg-testsrc2-420.jpg')!.bytes),
};
const fillFrame: Frame = { name: 'fill bytes (built)', bytes: withFillBytes(corpus.find((f) => f.name === 'cjpeg-restart.jpg')!.bytes) };
const good: Frame[] = [...corpus, thumbFrame, fillFrame];

/** Deterministic bytes with no FF at all, so they can neither start nor end a frame. */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % 255;
  }
  return out;
}

/**
 * Garbage that looks like the start of something. Followed by more garbage it may look like a
 * frame header declaring a segment: that is only refuted once the segment's bytes have come.
 */
const tricky: Buffer[] = [
  [0xff, 0xd8],
  [0xff, 0xd8, 0x00, 0x12],
  [0xff, 0xd8, 0xff, 0xd9],
  [0xff, 0xd8, 0xff, 0x00],
  [0xff, 0xd8, 0xff, 0xfe, 0x00, 0x01],
  [0xff, 0xd8, 0xff, 0xe1, 0x00, 0x08, 0x45, 0x78, 0x69, 0x66, 0x00, 0x00],
  [0xff, 0xd9],
  [0xff, 0x00],
  [0xff, 0xff, 0xff],
  [0xff, 0xd8, 0xff, 0xd8, 0xff, 0xd8],
].map((b) => Buffer.from(b));

function split(chunks: Iterable<Uint8Array>, maxFrameBytes = MAX): { frames: Buffer[]; splitter: MjpegSplitter } {
  const frames: Buffer[] = [];
  const splitter = new MjpegSplitter({ maxFrameBytes, onFrame: (f) => frames.push(f) });
  for (const c of chunks) splitter.push(c);
  return { frames, splitter };
}

function* chunksOf(bytes: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

function* chunksAt(bytes: Buffer, cuts: readonly number[]): Generator<Buffer> {
  let from = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    yield bytes.subarray(from, c);
    from = c;
  }
  yield bytes.subarray(from);
}

function assertFrames(actual: Buffer[], expected: Buffer[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} frames, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) assert.ok(actual[i]!.equals(expected[i]!), `${what}: frame ${i} differs`);
}

/** The accounting every push keeps: each byte is in a frame, skipped, or held. */
function assertAccounted(splitter: MjpegSplitter, frames: Buffer[], pushed: number): void {
  const emitted = frames.reduce((n, f) => n + f.length, 0);
  assert.equal(emitted + splitter.stats.skippedBytes + splitter.bufferedBytes, pushed);
}

/** A valid frame (for the splitter: headers of `base`, long entropy-coded data, EOI). */
function bigFrame(base: Buffer, entropyBytes: number, seed: number): Buffer {
  const sos = headerMarkers(base).at(-1)!;
  const headerEnd = sos + 2 + base.readUInt16BE(sos + 2);
  const data = noise(entropyBytes, seed);
  // Sprinkle stuffed FFs and restart markers, as a real scan has.
  for (let i = 97; i + 1 < data.length; i += 997) {
    data[i] = 0xff;
    data[i + 1] = i % 2 === 0 ? 0x00 : 0xd0 + (i % 8);
  }
  return Buffer.concat([base.subarray(0, headerEnd), data, Buffer.from([0xff, 0xd9])]);
}

describe('MjpegSplitter on the corpus', () => {
  it('has the corpus: baseline, 4:2:0, gray, odd size, restart markers, progressive', () => {
    assert.ok(corpus.length >= 6, `only ${corpus.length} corpus files in ${CORPUS.pathname}`);
    const total = corpus.reduce((n, f) => n + f.bytes.length, 0);
    assert.ok(total < 30 * 1024, `corpus is ${total} bytes`);
    const restart = corpus.find((f) => f.name === 'cjpeg-restart.jpg')!.bytes;
    assert.ok(restart.includes(Buffer.from([0xff, 0xd0])), 'restart frame has RST0');
    assert.ok(restart.includes(Buffer.from([0xff, 0xdd, 0x00, 0x04])), 'restart frame has DRI');
    const progressive = corpus.find((f) => f.name === 'cjpeg-progressive.jpg')!.bytes;
    assert.ok(progressive.includes(Buffer.from([0xff, 0xc2])), 'progressive frame has SOF2');
    for (const f of good) {
      assert.ok(f.bytes.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff])), f.name);
      assert.ok(f.bytes.subarray(-2).equals(Buffer.from([0xff, 0xd9])), f.name);
    }
  });

  it('finds each frame alone, in every chunk size', () => {
    for (const f of good) {
      for (let size = 1; size <= f.bytes.length; size++) {
        const { frames, splitter } = split(chunksOf(f.bytes, size));
        assertFrames(frames, [f.bytes], `${f.name} in chunks of ${size}`);
        assert.equal(splitter.bufferedBytes, 0);
        assert.deepEqual(splitter.stats, { frames: 1, skippedBytes: 0, oversizedFrames: 0, malformedFrames: 0 });
      }
    }
  });

  it('does not end a frame at the EOI of the thumbnail inside its APP1', () => {
    const { frames } = split([thumbFrame.bytes]);
    assertFrames(frames, [thumbFrame.bytes], 'thumbnail frame');
    assert.deepEqual(jpegDimensions(frames[0]!), { width: 64, height: 48, components: 3 });
  });

  it('finds every good frame between garbage, in many chunk sizes and single cuts', () => {
    const parts: Buffer[] = [noise(50, 1)];
    good.forEach((f, i) => {
      parts.push(f.bytes, tricky[i % tricky.length]!, noise(7 + i, i + 2));
      // A truncated frame, then a good one it must not swallow.
      if (f !== thumbFrame) parts.push(f.bytes.subarray(0, Math.floor(f.bytes.length / (i + 2))), good[(i + 3) % good.length]!.bytes);
    });
    parts.push(...tricky);
    const stream = Buffer.concat(parts);
    const expected = parts.filter((p) => good.some((f) => f.bytes === p));
    for (let size = 1; size <= stream.length; size += size < 300 ? 1 : 97) {
      const { frames, splitter } = split(chunksOf(stream, size));
      assertFrames(frames, expected, `chunks of ${size}`);
      assertAccounted(splitter, frames, stream.length);
    }
    // Chunks of 1 already cut everywhere at once; single cuts, at a stride that keeps this quick.
    for (let cut = 0; cut <= stream.length; cut += 7) {
      const { frames } = split(chunksAt(stream, [cut]));
      assertFrames(frames, expected, `cut at ${cut}`);
    }
  });

  it('does not lose a good frame to a frame truncated at any byte', () => {
    // A truncated frame's length field may reach past the good frame after it: which of the two
    // is a frame shows only once the next frame comes.
    const truncatable = good.filter((f) => f !== thumbFrame);
    truncatable.forEach((t, i) => {
      for (let cut = 1; cut < t.bytes.length; cut++) {
        const next = good[(i + cut) % good.length]!.bytes;
        const then = good[(i + cut + 1) % good.length]!.bytes;
        const { frames, splitter } = split([t.bytes.subarray(0, cut), next, then]);
        assertFrames(frames, [next, then], `${t.name} cut at ${cut}, then two good frames`);
        assert.equal(splitter.bufferedBytes, 0);
      }
    });
  });

  it('skips a frame truncated inside its thumbnail-holding APP1, at worst emitting that thumbnail', () => {
    // What an embedded JPEG of a broken frame looks like cannot be told from a frame: it may come out.
    const thumb = corpus.find((f) => f.name === 'ffmpeg-testsrc2-420.jpg')!.bytes;
    const next = corpus[0]!.bytes;
    for (let cut = 1; cut < thumbFrame.bytes.length; cut++) {
      const { frames } = split([thumbFrame.bytes.subarray(0, cut), next, next]);
      assert.ok(frames.length >= 2 && frames.at(-1)!.equals(next) && frames.at(-2)!.equals(next), `cut at ${cut}: the good frames come last`);
      for (const f of frames.slice(0, -2)) assert.ok(f.equals(thumb), `cut at ${cut}: only the thumbnail may come before`);
    }
  });
});

describe('MjpegSplitter contract', () => {
  it('hands out frames that stay intact when the caller reuses its chunk buffer', () => {
    const a = corpus[0]!.bytes;
    const b = corpus[1]!.bytes;
    const reused = Buffer.alloc(64);
    const frames: Buffer[] = [];
    const splitter = new MjpegSplitter({ maxFrameBytes: MAX, onFrame: (f) => frames.push(f) });
    const stream = Buffer.concat([a, b, a]);
    for (let i = 0; i < stream.length; i += reused.length) {
      const n = stream.copy(reused, 0, i, i + reused.length);
      splitter.push(reused.subarray(0, n));
      reused.fill(0xff);
    }
    assertFrames(frames, [a, b, a], 'reused chunk buffer');
    assert.notEqual(frames[0]!.buffer, frames[2]!.buffer);
  });

  it('lets an exception from onFrame propagate and carries on with the next push', () => {
    const a = corpus[0]!.bytes;
    const b = corpus[1]!.bytes;
    const frames: Buffer[] = [];
    let throwOnce = true;
    const splitter = new MjpegSplitter({
      maxFrameBytes: MAX,
      onFrame: (f) => {
        frames.push(f);
        if (throwOnce) {
          throwOnce = false;
          throw new Error('sink failed');
        }
      },
    });
    assert.throws(() => splitter.push(Buffer.concat([a, b])), /sink failed/);
    splitter.push(new Uint8Array(0));
    assertFrames(frames, [a, b], 'after a throwing onFrame');
  });

  it('reset() drops a partial frame: its bytes count as skipped', () => {
    const a = corpus[0]!.bytes;
    const { frames, splitter } = split([a.subarray(0, 500)]);
    assert.equal(splitter.bufferedBytes, 500);
    splitter.reset();
    assert.equal(splitter.bufferedBytes, 0);
    splitter.push(a.subarray(500));
    splitter.push(a);
    assertFrames(frames, [a], 'after reset');
    assertAccounted(splitter, frames, 500 + a.length + a.length - 500);
  });

  it('refuses a frame limit that cannot hold a JPEG', () => {
    assert.throws(() => new MjpegSplitter({ maxFrameBytes: 0, onFrame: () => {} }), RangeError);
    assert.throws(() => new MjpegSplitter({ maxFrameBytes: Number.NaN, onFrame: () => {} }), RangeError);
  });

  it('drops a frame over the limit, holds no more than the limit, and finds the next one', () => {
    const small = corpus[0]!.bytes;
    const big = bigFrame(small, 40_000, 7);
    for (const size of [1, 100, 4096, 65536, big.length + small.length]) {
      const frames: Buffer[] = [];
      const splitter = new MjpegSplitter({ maxFrameBytes: MAX, onFrame: (f) => frames.push(f) });
      let held = 0;
      for (const c of chunksOf(Buffer.concat([small, big, small, big, big, small]), size)) {
        splitter.push(c);
        held = Math.max(held, splitter.bufferedBytes);
      }
      assertFrames(frames, [small, small, small], `chunks of ${size}`);
      assert.equal(splitter.stats.oversizedFrames, 3);
      assert.ok(held <= MAX, `held ${held} bytes in chunks of ${size}`);
    }
    // Under a limit that fits it, the same big frame comes out whole.
    assertFrames(split([big], 64 * 1024).frames, [big], 'big frame under a larger limit');
  });

  // What this costs is `npm run bench -- splitter`'s to measure: a bound in wall-clock time here
  // would race a loaded machine.
  it('a 1 MB frame in 1-byte chunks, and 30 MB of 100 KB frames in 64 KB chunks, come out whole', () => {
    const base = corpus[0]!.bytes;
    const mb = bigFrame(base, 1_000_000, 3);
    const one = split(chunksOf(mb, 1), 2_000_000);
    assertFrames(one.frames, [mb], '1-byte chunks');

    const frames = Array.from({ length: 10 }, (_, i) => bigFrame(base, 100_000 + i * 17, i + 1));
    const stream = Buffer.concat(Array.from({ length: 30 }, () => frames).flat());
    const many = split(chunksOf(stream, 64 * 1024), 1_000_000);
    assert.equal(many.frames.length, 300);
    assertFrames(many.frames.slice(0, 10), frames, '64 KB chunks');
  });
});

describe('MjpegSplitter properties', () => {
  const goodArb = fc.constantFrom(...good.map((f) => f.bytes));
  const truncatable = good.filter((f) => f !== thumbFrame).map((f) => f.bytes);
  // A truncated frame is always followed by a good one: garbage after it could end it for real.
  const piece = fc.oneof(
    goodArb.map((b) => ({ bytes: [b], frame: b })),
    fc.integer({ min: 1, max: 300 }).chain((n) => fc.integer().map((seed) => ({ bytes: [noise(n, seed)], frame: undefined }))),
    fc.constantFrom(...tricky).map((b) => ({ bytes: [b], frame: undefined })),
    fc
      .tuple(fc.constantFrom(...truncatable), fc.double({ min: 0, max: 1, noNaN: true }), goodArb)
      .map(([t, at, g]) => ({ bytes: [t.subarray(0, Math.max(1, Math.floor(at * (t.length - 1)))), g], frame: g })),
  );

  const tail = Array.from({ length: Math.ceil(MAX / corpus[0]!.bytes.length) + 1 }, () => ({ bytes: [corpus[0]!.bytes], frame: corpus[0]!.bytes }));

  it('(a) any interleaving of frames and garbage, cut anywhere, gives exactly the frames', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (body, cutSeeds) => {
        // More than MAX of good frames at the end: whatever garbage declared, it is settled by then.
        const pieces = [...body, ...tail];
        const stream = Buffer.concat(pieces.flatMap((p) => p.bytes));
        const cuts = cutSeeds.map((c) => c % (stream.length + 1));
        const { frames, splitter } = split(chunksAt(stream, cuts));
        const expected = pieces.flatMap((p) => (p.frame ? [p.frame] : []));
        assertFrames(frames, expected, 'interleaving');
        assertAccounted(splitter, frames, stream.length);
      }),
      RUNS,
    );
  });

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

  function mutate(bytes: Buffer, ms: Mutation[]): Buffer {
    let b = Buffer.from(bytes);
    for (const m of ms) {
      const at = m.at % (b.length + 1);
      if (m.kind === 'flip' && at < b.length) b[at]! ^= 1 << m.bit;
      else if (m.kind === 'truncate') b = b.subarray(0, at);
      else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
      else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
    }
    return b;
  }

  const junk = fc.oneof(
    fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
    fc.tuple(fc.array(goodArb, { minLength: 1, maxLength: 3 }), fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([fs, ms]) => mutate(Buffer.concat(fs), ms)),
    // Dense in FF and marker bytes, where a parser's corner cases live.
    fc.array(fc.constantFrom(0xff, 0xd8, 0xd9, 0xda, 0x00, 0xd0, 0xc0, 0xe1, 0xfe, 0x01, 0x02), { maxLength: 400 }).map((a) => Buffer.from(a)),
  );

  it('(b) survives any junk: never throws, emits only bounded JPEG-shaped frames, and finds a good frame after reset()', () => {
    fc.assert(
      fc.property(junk, fc.array(fc.nat(), { maxLength: 20 }), goodArb, fc.integer({ min: 600, max: 4096 }), (bytes, cutSeeds, after, max) => {
        const frames: Buffer[] = [];
        const splitter = new MjpegSplitter({ maxFrameBytes: max, onFrame: (f) => frames.push(f) });
        for (const c of chunksAt(bytes, cutSeeds.map((c) => c % (bytes.length + 1)))) {
          splitter.push(c);
          assert.ok(splitter.bufferedBytes <= max, `holds ${splitter.bufferedBytes} > ${max}`);
        }
        for (const f of frames) {
          assert.ok(f.length >= 4 && f.length <= max);
          assert.ok(f[0] === 0xff && f[1] === 0xd8 && f[2] === 0xff, 'starts with SOI');
          assert.ok(f.at(-2) === 0xff && f.at(-1) === 0xd9, 'ends with EOI');
        }
        assertAccounted(splitter, frames, bytes.length);
        const s = splitter.stats;
        assert.equal(s.frames, frames.length);
        splitter.reset();
        const before = frames.length;
        splitter.push(after);
        if (after.length <= max) assertFrames(frames.slice(before), [after], 'good frame after reset');
        else assert.equal(frames.length, before);
      }),
      RUNS,
    );
  });

  it('(b) without reset(), finds every frame that starts more than maxFrameBytes plus a chunk after the junk', () => {
    fc.assert(
      fc.property(junk, fc.array(fc.nat(), { maxLength: 30 }), fc.integer({ min: 600, max: 4096 }), fc.nat(), (bytes, cutSeeds, max, pick) => {
        const fitting = good.map((f) => f.bytes).filter((b) => b.length <= max);
        const tail: Buffer[] = [];
        for (let n = 0, i = pick; n < 3 * max + 3000; i++) {
          const f = fitting[i % fitting.length]!;
          tail.push(f);
          n += f.length;
        }
        const stream = Buffer.concat([bytes, ...tail]);
        const chunks = [...chunksAt(stream, cutSeeds.map((c) => c % (stream.length + 1)))];
        const biggest = Math.max(...chunks.map((c) => c.length));
        const { frames } = split(chunks, max);
        let at = bytes.length;
        const sure: Buffer[] = [];
        for (const f of tail) {
          if (at >= bytes.length + max + biggest) sure.push(f);
          at += f.length;
        }
        assertFrames(frames.slice(frames.length - sure.length), sure, 'frames after the junk');
      }),
      RUNS,
    );
  });

  it('(c) a frame over the limit is dropped and the next small one is found', () => {
    fc.assert(
      // Not the thumbnail frame as the big one: its APP1 alone is over the limit, and skipping to the
      // next SOI from there finds the thumbnail, a frame in its own right.
      fc.property(fc.constantFrom(...truncatable), fc.integer({ min: 2000, max: 20_000 }), fc.integer(), fc.integer({ min: 1, max: 5000 }), (small, entropy, seed, size) => {
        const max = 1500 + (entropy % 500);
        const fitting = good.map((f) => f.bytes).filter((b) => b.length <= max);
        const next = fitting[Math.abs(seed) % fitting.length]!;
        const big = bigFrame(small, entropy, seed);
        const { frames, splitter } = split(chunksOf(Buffer.concat([big, next]), size), max);
        assertFrames(frames, [next], 'after an oversized frame');
        assert.equal(splitter.stats.oversizedFrames, 1);
      }),
      RUNS,
    );
  });
});

describe('MjpegSplitter on a real ffmpeg stream', () => {
  const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).error === undefined;

  it('cuts 30 frames of 320x240 out of `ffmpeg -f mjpeg pipe:1`', { skip: hasFfmpeg ? false : 'ffmpeg is not installed' }, async () => {
    const frames: Buffer[] = [];
    const splitter = new MjpegSplitter({ maxFrameBytes: 1024 * 1024, onFrame: (f) => frames.push(f) });
    const args = ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=15', '-frames:v', '30', '-f', 'mjpeg', '-q:v', '5', 'pipe:1'];
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let pushed = 0;
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    child.stdout.on('data', (chunk: Buffer) => {
      pushed += chunk.length;
      splitter.push(chunk);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `ffmpeg failed: ${stderr}`);
    assert.equal(frames.length, 30);
    for (const f of frames) assert.deepEqual(jpegDimensions(f), { width: 320, height: 240, components: 3 });
    assert.deepEqual(splitter.stats, { frames: 30, skippedBytes: 0, oversizedFrames: 0, malformedFrames: 0 });
    assert.equal(splitter.bufferedBytes, 0);
    assertAccounted(splitter, frames, pushed);
  });
});
