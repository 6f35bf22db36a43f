import { ADVANCE, drawText, GLYPH_HEIGHT, LINE_PITCH, printable, textWidth } from './bitmap-font.js';

/**
 * The frame a camera node serves when it cannot produce pictures (no camera, no `rpicam-vid`,
 * the capture process keeps dying): a gray JPEG that says why. It is made here, in plain
 * TypeScript, because the tool that is missing may be exactly the one (ffmpeg) that would
 * otherwise make it.
 *
 * The encoder is the smallest thing a decoder accepts: baseline JFIF, one 8-bit gray component,
 * the example tables of ITU T.81 Annex K.
 */

export interface PlaceholderOptions {
  /** Pixels, 16..4096. */
  width: number;
  /** Pixels, 16..4096. */
  height: number;
  /** One text line per entry, centred; characters outside printable ASCII are drawn as `?`. */
  lines: readonly string[];
  /** IJG-style quality 1..100 (default 75). */
  quality?: number;
}

export const MIN_SIZE = 16;
export const MAX_SIZE = 4096;
export const DEFAULT_QUALITY = 75;
/** Dark gray rather than black, so the frame reads as "a picture saying something". */
export const BACKGROUND = 40;
export const INK = 235;
/** Share of the width and height the text may use. */
const FILL = 0.9;
/** Blank rows between two text lines (none after the last). */
const LINE_GAP = LINE_PITCH - GLYPH_HEIGHT;

export function placeholderJpeg(opts: PlaceholderOptions): Buffer {
  checkSize('width', opts.width);
  checkSize('height', opts.height);
  const quality = checkQuality(opts.quality ?? DEFAULT_QUALITY);
  const raster = renderPlaceholder(opts.width, opts.height, opts.lines);
  return encodeGrayJpeg(raster, opts.width, opts.height, quality);
}

function checkSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value < MIN_SIZE || value > MAX_SIZE) {
    throw new RangeError(`placeholder ${name} must be an integer ${MIN_SIZE}..${MAX_SIZE}, got ${value}`);
  }
}

function checkQuality(value: number): number {
  if (!Number.isFinite(value) || value < 1 || value > 100) {
    throw new RangeError(`placeholder quality must be 1..100, got ${value}`);
  }
  return Math.round(value);
}

/** What the text looks like once it is made to fit: the lines as drawn and the font scale. */
export interface TextLayout {
  lines: string[];
  scale: number;
}

/**
 * Fits the lines into ~90 % of the frame: as many lines as fit at scale 1 (the last one kept
 * ends in `...` when some are dropped), each cut with `...` when it is too wide at scale 1,
 * then the largest integer scale at which the whole block still fits.
 */
export function layoutText(width: number, height: number, lines: readonly string[]): TextLayout {
  if (lines.length === 0) return { lines: [], scale: 1 };
  const maxLines = Math.max(1, Math.floor((height * FILL + LINE_GAP) / LINE_PITCH));
  const maxChars = Math.max(1, Math.floor((width * FILL + 1) / ADVANCE));
  let out = lines.map(printable);
  if (out.length > maxLines) {
    out = out.slice(0, maxLines);
    out[maxLines - 1] += '...';
  }
  out = out.map((line) => {
    if (line.length <= maxChars) return line;
    return maxChars > 3 ? line.slice(0, maxChars - 3) + '...' : line.slice(0, maxChars);
  });
  const longest = Math.max(...out.map((line) => line.length));
  const blockHeight = out.length * LINE_PITCH - LINE_GAP;
  const byWidth = longest === 0 ? Number.POSITIVE_INFINITY : Math.floor((width * FILL) / textWidth(longest, 1));
  const byHeight = Math.floor((height * FILL) / blockHeight);
  return { lines: out, scale: Math.max(1, Math.min(byWidth, byHeight)) };
}

/** The placeholder as an 8-bit gray raster, row by row, `width * height` bytes. */
export function renderPlaceholder(width: number, height: number, lines: readonly string[]): Uint8Array {
  const raster = new Uint8Array(width * height).fill(BACKGROUND);
  const { lines: text, scale } = layoutText(width, height, lines);
  if (text.length === 0) return raster;
  const blockHeight = (text.length * LINE_PITCH - LINE_GAP) * scale;
  const top = Math.floor((height - blockHeight) / 2);
  text.forEach((line, i) => {
    const left = Math.floor((width - textWidth(line.length, scale)) / 2);
    drawText(raster, width, height, line, left, top + i * LINE_PITCH * scale, scale, INK);
  });
  return raster;
}

// ---------------------------------------------------------------------------------------------
// Baseline JPEG encoder, one gray component (ITU T.81).

/** Annex K.1, table K.1: luminance quantization, row by row (row = vertical frequency). */
const LUMA_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
  87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
  72, 92, 95, 98, 112, 100, 103, 99,
];

/** Annex K.3, table K.3: luminance DC codes, as code counts per length 1..16 and the symbols. */
const DC_COUNTS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_SYMBOLS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/** Annex K.3, table K.5: luminance AC codes (symbol = run << 4 | size), in code order. */
const AC_COUNTS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
export const AC_SYMBOLS = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32,
  0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16,
  0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
  0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
  0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
  0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
  0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
  0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
  0xf9, 0xfa,
];

const EOB = 0x00;
const ZRL = 0xf0;

/** ZIGZAG[k] = position (row * 8 + column) of the k-th coefficient in zig-zag order (figure 5). */
const ZIGZAG = buildZigzag();

function buildZigzag(): Uint8Array {
  const out = new Uint8Array(64);
  let k = 0;
  for (let diagonal = 0; diagonal < 15; diagonal++) {
    const first = Math.max(0, diagonal - 7);
    const last = Math.min(diagonal, 7);
    for (let i = first; i <= last; i++) {
      // Even diagonals run from bottom-left up to top-right, odd ones back down.
      const row = diagonal % 2 === 0 ? last - (i - first) : i;
      out[k++] = row * 8 + (diagonal - row);
    }
  }
  return out;
}

/** 1-D DCT basis with its C(u)/2 factor: COS[u * 8 + x]; applied on rows then columns. */
const COS = new Float64Array(64);
for (let u = 0; u < 8; u++) {
  for (let x = 0; x < 8; x++) {
    COS[u * 8 + x] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
}

interface HuffmanTable {
  counts: readonly number[];
  symbols: readonly number[];
  /** Code and length per symbol, indexed by symbol. */
  code: Uint16Array;
  size: Uint8Array;
}

/** Annex C: canonical codes, counting up within a length and shifting left between lengths. */
function huffmanTable(counts: readonly number[], symbols: readonly number[]): HuffmanTable {
  const code = new Uint16Array(256);
  const size = new Uint8Array(256);
  let next = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < counts[length - 1]!; i++) {
      const symbol = symbols[k++]!;
      code[symbol] = next++;
      size[symbol] = length;
    }
    next <<= 1;
  }
  return { counts, symbols, code, size };
}

const DC_TABLE = huffmanTable(DC_COUNTS, DC_SYMBOLS);
const AC_TABLE = huffmanTable(AC_COUNTS, AC_SYMBOLS);

/** IJG scaling of the Annex K table: 50 is the table itself, 100 all ones, below 50 coarser. */
export function quantTable(quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const percent = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
  return Uint8Array.from(LUMA_QUANT, (base) => Math.min(255, Math.max(1, Math.floor((base * percent + 50) / 100))));
}

/** Entropy-coded bytes, with a 0x00 stuffed after every 0xFF so no marker appears by accident. */
class BitWriter {
  private bytes: Uint8Array;
  private length = 0;
  private acc = 0;
  private bits = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(Math.max(1024, capacity));
  }

  raw(data: ArrayLike<number>): void {
    for (let i = 0; i < data.length; i++) this.byte(data[i]!);
  }

  /** The low `count` bits of `value`, most significant first (count <= 16). */
  put(value: number, count: number): void {
    this.acc = (this.acc << count) | (value & ((1 << count) - 1));
    this.bits += count;
    while (this.bits >= 8) {
      this.bits -= 8;
      const b = (this.acc >>> this.bits) & 0xff;
      this.byte(b);
      if (b === 0xff) this.byte(0x00);
    }
    this.acc &= (1 << this.bits) - 1;
  }

  /** Pads the last byte with 1-bits (F.1.2.3), as a decoder expects before a marker. */
  flush(): void {
    if (this.bits > 0) this.put(0xff, 8 - this.bits);
  }

  result(): Buffer {
    return Buffer.from(this.bytes.subarray(0, this.length));
  }

  private byte(b: number): void {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = b;
  }
}

function segment(marker: number, body: readonly number[]): number[] {
  const length = body.length + 2;
  return [0xff, marker, length >> 8, length & 0xff, ...body];
}

function headers(width: number, height: number, quant: Uint8Array): number[] {
  const jfif = [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]; // "JFIF\0" v1.1, aspect 1:1, no thumbnail
  const dqt = [0x00, ...Array.from(ZIGZAG, (pos) => quant[pos]!)]; // 8-bit table 0, zig-zag order
  const sof0 = [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0];
  const dht = [0x00, ...DC_COUNTS, ...DC_SYMBOLS, 0x10, ...AC_COUNTS, ...AC_SYMBOLS];
  const sos = [1, 1, 0x00, 0, 63, 0];
  return [
    0xff,
    0xd8,
    ...segment(0xe0, jfif),
    ...segment(0xdb, dqt),
    ...segment(0xc0, sof0),
    ...segment(0xc4, dht),
    ...segment(0xda, sos),
  ];
}

const bitLength = (n: number): number => 32 - Math.clz32(n);

/**
 * Encodes an 8-bit gray raster (`width * height` bytes, row by row) as a baseline JPEG. Edge
 * blocks are filled by repeating the last column and row, which keeps ringing off the border.
 */
export function encodeGrayJpeg(pixels: Uint8Array, width: number, height: number, quality: number): Buffer {
  if (pixels.length !== width * height) throw new RangeError(`raster has ${pixels.length} bytes, not ${width}x${height}`);
  const quant = quantTable(quality);
  const scale = Float64Array.from(quant, (q) => 1 / q);
  const out = new BitWriter(1024 + (width * height) / 8);
  out.raw(headers(width, height, quant));

  const block = new Float64Array(64);
  const rows = new Float64Array(64);
  const coeffs = new Int32Array(64);
  let previousDc = 0;
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      let flat = true;
      for (let y = 0; y < 8; y++) {
        const line = Math.min(by + y, height - 1) * width;
        for (let x = 0; x < 8; x++) block[y * 8 + x] = pixels[line + Math.min(bx + x, width - 1)]! - 128;
      }
      for (let i = 1; i < 64 && flat; i++) flat = block[i] === block[0];

      if (flat) {
        // A flat block (most of a placeholder) has only its DC term: 8 x the level-shifted value.
        coeffs.fill(0);
        coeffs[0] = Math.round(8 * block[0]! * scale[0]!);
      } else {
        forwardDct(block, rows);
        for (let k = 0; k < 64; k++) {
          const pos = ZIGZAG[k]!;
          const v = block[pos]! * scale[pos]!;
          coeffs[k] = v < 0 ? -Math.round(-v) : Math.round(v);
        }
      }
      previousDc = encodeBlock(out, coeffs, previousDc);
    }
  }
  out.flush();
  out.raw([0xff, 0xd9]);
  return out.result();
}

/** In-place 2-D DCT of a level-shifted block: rows into `tmp`, then columns back into `block`. */
function forwardDct(block: Float64Array, tmp: Float64Array): void {
  for (let y = 0; y < 8; y++) {
    for (let u = 0; u < 8; u++) {
      let sum = 0;
      for (let x = 0; x < 8; x++) sum += COS[u * 8 + x]! * block[y * 8 + x]!;
      tmp[y * 8 + u] = sum;
    }
  }
  for (let u = 0; u < 8; u++) {
    for (let v = 0; v < 8; v++) {
      let sum = 0;
      for (let y = 0; y < 8; y++) sum += COS[v * 8 + y]! * tmp[y * 8 + u]!;
      block[v * 8 + u] = sum;
    }
  }
}

/** Huffman-codes one block of quantized coefficients (zig-zag order); returns its DC value. */
function encodeBlock(out: BitWriter, coeffs: Int32Array, previousDc: number): number {
  // Baseline limits: DC differences fit 11 bits, AC values 10 bits; clamping only matters for
  // rounding at quality 100, never for a real picture.
  const dc = Math.max(-1024, Math.min(1023, coeffs[0]!));
  const diff = dc - previousDc;
  const dcSize = bitLength(Math.abs(diff));
  out.put(DC_TABLE.code[dcSize]!, DC_TABLE.size[dcSize]!);
  if (dcSize > 0) out.put(diff < 0 ? diff + (1 << dcSize) - 1 : diff, dcSize);

  let run = 0;
  for (let k = 1; k < 64; k++) {
    const v = Math.max(-1023, Math.min(1023, coeffs[k]!));
    if (v === 0) {
      run++;
      continue;
    }
    while (run > 15) {
      out.put(AC_TABLE.code[ZRL]!, AC_TABLE.size[ZRL]!);
      run -= 16;
    }
    const size = bitLength(Math.abs(v));
    const symbol = (run << 4) | size;
    out.put(AC_TABLE.code[symbol]!, AC_TABLE.size[symbol]!);
    out.put(v < 0 ? v + (1 << size) - 1 : v, size);
    run = 0;
  }
  if (run > 0) out.put(AC_TABLE.code[EOB]!, AC_TABLE.size[EOB]!);
  return dc;
}
