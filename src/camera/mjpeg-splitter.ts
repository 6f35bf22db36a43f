import { isStandaloneMarker, isStartOfFrame } from './jpeg-info.js';

/**
 * Cuts the stdout of `rpicam-vid --codec mjpeg` or `ffmpeg -f mjpeg` (JPEG images back to back,
 * in chunks of any size) into frames. It walks the marker segments instead of looking for the
 * next FF D9, because an EXIF APP1 segment may carry a thumbnail JPEG with an EOI of its own.
 *
 * The stream is input we do not control, so:
 * - nothing before an SOI (FF D8 FF) is kept: it is counted in `skippedBytes`;
 * - a frame that turns out malformed (a segment length below 2, bytes where a marker belongs,
 *   an SOI inside the headers, a segment or a scan, an EOI before any SOF and SOS) is
 *   dropped and the search for an SOI starts again where it broke, so a good frame that a
 *   truncated one ran into is still found;
 * - a frame longer than `maxFrameBytes` (or declaring a segment that would make it so) is
 *   dropped and the bytes after it skipped up to the next SOI; after each `push` the splitter
 *   holds at most `maxFrameBytes` bytes.
 *
 * Every byte pushed ends up in exactly one of: an emitted frame, `skippedBytes`, or
 * `bufferedBytes`. After garbage the splitter may still be inside what looked like a frame
 * (a length field may swallow what follows), so the frames of the next `maxFrameBytes` plus
 * one chunk may be lost; every frame after that is found. `reset()` is how a caller that knows
 * the source restarted gets a clean start: the first good frame pushed after it is found.
 *
 * Cost: entropy-coded data (nearly all of a frame) is searched once, with `indexOf`; header
 * segments once per frame candidate that holds them, so only input crafted with many nested
 * SOIs costs more than one pass. Each emitted frame is copied out once.
 */

export interface MjpegSplitterOptions {
  /** Frames above this are dropped; also bounds what the splitter holds. */
  maxFrameBytes: number;
  /** Called synchronously from `push` with a Buffer the callee may keep. */
  onFrame: (jpeg: Buffer) => void;
}

export interface MjpegSplitterStats {
  frames: number;
  /** Bytes that were not part of an emitted frame: garbage, malformed and oversized frames. */
  skippedBytes: number;
  oversizedFrames: number;
  malformedFrames: number;
}

const SOI_PREFIX = Buffer.from([0xff, 0xd8, 0xff]);
const EOI_BYTES = Buffer.from([0xff, 0xd9]);
const MARKER = 0xff;
const STUFFED = 0x00;
const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const COM = 0xfe;
/** Below this, growing the buffer doubles it; a spike above `maxFrameBytes` is given back. */
const MIN_CAPACITY = 64 * 1024;

/** Where the parser is: looking for an SOI, at a marker, or inside entropy-coded data. */
type State = 'seek' | 'marker' | 'scan';

export class MjpegSplitter {
  private readonly maxFrameBytes: number;
  private readonly onFrame: (jpeg: Buffer) => void;
  private readonly counts: MjpegSplitterStats = { frames: 0, skippedBytes: 0, oversizedFrames: 0, malformedFrames: 0 };

  /** Bytes [0, filled) are live; the rest is spare capacity. */
  private buf: Buffer = Buffer.alloc(0);
  private filled = 0;
  /** Bytes before this are accounted for (emitted or to be counted as skipped). */
  private keep = 0;
  private state: State = 'seek';
  /** Where scanning resumes; in a frame it may point past `filled` (a segment not yet arrived). */
  private pos = 0;
  /** The current frame's SOI, or -1 while seeking. */
  private start = -1;
  private sawFrameHeader = false;
  private sawScan = false;
  private parsing = false;

  constructor(opts: MjpegSplitterOptions) {
    if (!Number.isSafeInteger(opts.maxFrameBytes) || opts.maxFrameBytes < 4) {
      throw new RangeError(`maxFrameBytes must be an integer of at least 4, got ${opts.maxFrameBytes}`);
    }
    this.maxFrameBytes = opts.maxFrameBytes;
    this.onFrame = opts.onFrame;
  }

  /** A snapshot: counting goes on in the splitter, not in the object handed out. */
  get stats(): Readonly<MjpegSplitterStats> {
    return { ...this.counts };
  }

  /** What is held between pushes: a partial frame, or up to two bytes of a possible SOI. */
  get bufferedBytes(): number {
    return this.filled - this.keep;
  }

  push(chunk: Uint8Array): void {
    if (this.parsing) {
      // Pushed from inside onFrame: the running loop picks it up.
      this.append(chunk);
      return;
    }
    this.compact();
    this.append(chunk);
    this.parsing = true;
    try {
      this.parse();
    } finally {
      this.parsing = false;
      this.compact();
    }
  }

  /** Forgets any partial frame (its bytes count as skipped), e.g. after the source restarted. */
  reset(): void {
    this.counts.skippedBytes += this.filled - this.keep;
    this.filled = 0;
    this.keep = 0;
    this.pos = 0;
    this.start = -1;
    this.state = 'seek';
    if (this.buf.length > 2 * (this.maxFrameBytes + MIN_CAPACITY)) this.buf = Buffer.alloc(0);
  }

  private parse(): void {
    for (;;) {
      const progressed = this.state === 'seek' ? this.seek() : this.state === 'marker' ? this.marker() : this.scan();
      if (!progressed) break;
    }
    if (this.state !== 'seek' && this.filled - this.start > this.maxFrameBytes) {
      this.oversized(Math.min(this.pos, this.filled));
    }
  }

  private seek(): boolean {
    const view = this.buf.subarray(0, this.filled);
    const at = view.indexOf(SOI_PREFIX, this.pos);
    if (at >= 0) {
      this.start = at;
      this.pos = at + 2;
      this.state = 'marker';
      this.sawFrameHeader = false;
      this.sawScan = false;
      return true;
    }
    // Keep the tail that may be the first one or two bytes of an SOI split across chunks.
    let p = Math.max(this.pos, this.filled - 2);
    while (p < this.filled && !isSoiPrefix(view, p)) p++;
    this.pos = p;
    return false;
  }

  private marker(): boolean {
    const b = this.buf;
    const p = this.pos;
    if (p + 2 > this.filled) return false;
    if (b[p] !== MARKER) return this.malformed();
    const m = b[p + 1] as number;
    if (m === MARKER) {
      this.pos = p + 1;
      return true;
    }
    if (m === EOI) return this.endFrame(p + 2);
    if (m === SOI || m === STUFFED) return this.malformed();
    if (isStandaloneMarker(m)) {
      this.pos = p + 2;
      return true;
    }
    if (p + 4 > this.filled) return false;
    const length = ((b[p + 2] as number) << 8) | (b[p + 3] as number);
    if (length < 2) return this.malformed();
    const end = p + 2 + length;
    // Known to grow past the limit: give it up now, and look for an SOI right after the marker
    // (in a truncated frame these "length" bytes may be the next frame's FF D8).
    if (end - this.start > this.maxFrameBytes) return this.oversized(p + 2);
    // Judged once the segment and the two bytes after it are here (the frame holds them
    // anyway), from its length field on: a truncated frame's length may be made of the next
    // frame's FF D8, or its end may cut that SOI in two.
    if (end + 2 > this.filled) return false;
    if (this.hasForeignSoi(m, p + 2, end + 2)) return this.malformed();
    if (isStartOfFrame(m)) this.sawFrameHeader = true;
    this.pos = end;
    if (m === SOS) {
      this.sawScan = true;
      this.state = 'scan';
    }
    return true;
  }

  /**
   * A segment (with its length and the next two bytes) holding an SOI is a truncated frame
   * whose length field ran into the next frame,
   * unless it is an APPn or COM segment that also holds that JPEG's end: an EXIF thumbnail.
   * Valid tables do not hold FF D8 FF: Huffman symbols are never FF, and no IJG quality 1..100
   * scales the standard quantisation tables into 255, 216, 255.
   */
  private hasForeignSoi(m: number, from: number, to: number): boolean {
    const body = this.buf.subarray(from, to);
    const soi = body.lastIndexOf(SOI_PREFIX);
    if (soi < 0) return false;
    const mayEmbed = (m >= 0xe0 && m <= 0xef) || m === COM;
    return !mayEmbed || body.lastIndexOf(EOI_BYTES) < soi;
  }

  /** Entropy-coded data: FF 00 is a stuffed FF, RSTn and fill bytes belong to it. */
  private scan(): boolean {
    if (this.pos >= this.filled) return false;
    const view = this.buf.subarray(0, this.filled);
    const at = view.indexOf(MARKER, this.pos);
    if (at < 0) {
      this.pos = this.filled;
      return false;
    }
    if (at + 1 >= this.filled) {
      this.pos = at;
      return false;
    }
    const next = view[at + 1] as number;
    if (next === STUFFED || (next >= 0xd0 && next <= 0xd7)) {
      this.pos = at + 2;
    } else if (next === MARKER) {
      this.pos = at + 1;
    } else {
      // EOI, or another table or scan of a progressive image.
      this.pos = at;
      this.state = 'marker';
    }
    return true;
  }

  private endFrame(end: number): boolean {
    if (!this.sawFrameHeader || !this.sawScan) return this.malformed();
    const start = this.start;
    if (end - start > this.maxFrameBytes) return this.oversized(end);
    this.counts.skippedBytes += start - this.keep;
    this.keep = end;
    this.pos = end;
    this.start = -1;
    this.state = 'seek';
    this.counts.frames++;
    // Its own memory, outside Buffer's shared pool: the callee may keep it as long as it likes.
    const frame = Buffer.allocUnsafeSlow(end - start);
    this.buf.copy(frame, 0, start, end);
    this.onFrame(frame);
    return true;
  }

  /**
   * Looks for the next SOI from where the frame broke (`pos`, the marker that did not fit). No
   * SOI can hide in what it passed over: one at a marker or in a scan breaks the frame there,
   * and segments holding one are refused, so nothing before `pos` needs a second look.
   */
  private malformed(): boolean {
    this.counts.malformedFrames++;
    this.start = -1;
    this.state = 'seek';
    return true;
  }

  private oversized(resumeAt: number): boolean {
    this.counts.oversizedFrames++;
    this.pos = resumeAt;
    this.start = -1;
    this.state = 'seek';
    return true;
  }

  /** Drops what is accounted for, so the live bytes start at 0. */
  private compact(): void {
    const from = this.state === 'seek' ? this.pos : this.start;
    this.counts.skippedBytes += from - this.keep;
    if (from > 0) {
      this.buf.copyWithin(0, from, this.filled);
      this.filled -= from;
      this.pos -= from;
      if (this.start >= 0) this.start -= from;
    }
    this.keep = 0;
    if (this.buf.length > 2 * (this.maxFrameBytes + MIN_CAPACITY) && this.filled <= this.maxFrameBytes) {
      this.buf = Buffer.from(this.buf.subarray(0, this.filled));
    }
  }

  private append(chunk: Uint8Array): void {
    const need = this.filled + chunk.length;
    if (need > this.buf.length) {
      // Doubling keeps 1-byte chunks linear; capped so a big frame limit is not doubled too.
      const doubled = Math.min(Math.max(2 * this.buf.length, MIN_CAPACITY), this.maxFrameBytes + MIN_CAPACITY);
      const grown = Buffer.allocUnsafe(Math.max(need, doubled));
      this.buf.copy(grown, 0, 0, this.filled);
      this.buf = grown;
    }
    this.buf.set(chunk, this.filled);
    this.filled = need;
  }
}

/** Whether the bytes from `at` to the end are the beginning of FF D8 FF. */
function isSoiPrefix(view: Uint8Array, at: number): boolean {
  for (let i = at; i < view.length; i++) {
    if (view[i] !== SOI_PREFIX[i - at]) return false;
  }
  return true;
}
