/**
 * What a JPEG says about itself in its frame header (SOF), read without decoding it: the server
 * checks a camera frame's size this way. The input comes from a child process we do not
 * control, so every read is bounds-checked and anything unexpected gives `undefined`.
 */

export interface JpegDimensions {
  width: number;
  height: number;
  /** 1 for gray, 3 for YCbCr, 4 for CMYK. */
  components: number;
}

const MARKER = 0xff;
const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const TEM = 0x01;

/** SOF0..SOF15; C4 (DHT), C8 (JPG, reserved) and CC (DAC) share the range but are not frames. */
export function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** RSTn and TEM stand alone: no length follows them. */
export function isStandaloneMarker(marker: number): boolean {
  return marker === TEM || (marker >= 0xd0 && marker <= 0xd7);
}

/**
 * Walks the marker segments from SOI to the first SOF. A scan (SOS) before any SOF, a second
 * SOI, an EOI, a length below 2 or running past the end: all `undefined`. A height of 0 (to be
 * given later by a DNL marker) is also `undefined`: the size is not known from the header.
 */
export function jpegDimensions(buf: Uint8Array): JpegDimensions | undefined {
  const end = buf.length;
  if (end < 4 || buf[0] !== MARKER || buf[1] !== SOI) return undefined;
  let pos = 2;
  while (pos + 1 < end) {
    if (buf[pos] !== MARKER) return undefined;
    const marker = buf[pos + 1] as number;
    if (marker === MARKER) {
      // Fill bytes: any number of FF may precede a marker.
      pos += 1;
      continue;
    }
    if (isStandaloneMarker(marker)) {
      pos += 2;
      continue;
    }
    if (marker === 0x00 || marker === SOI || marker === EOI || marker === SOS) return undefined;
    if (pos + 4 > end) return undefined;
    const length = ((buf[pos + 2] as number) << 8) | (buf[pos + 3] as number);
    if (length < 2 || pos + 2 + length > end) return undefined;
    if (isStartOfFrame(marker)) return readFrameHeader(buf, pos + 4, length - 2);
    pos += 2 + length;
  }
  return undefined;
}

/** SOF body: precision, height (2), width (2), component count, then 3 bytes per component. */
function readFrameHeader(buf: Uint8Array, at: number, bodyLength: number): JpegDimensions | undefined {
  if (bodyLength < 6) return undefined;
  const height = ((buf[at + 1] as number) << 8) | (buf[at + 2] as number);
  const width = ((buf[at + 3] as number) << 8) | (buf[at + 4] as number);
  const components = buf[at + 5] as number;
  if (width === 0 || height === 0 || components === 0) return undefined;
  if (bodyLength < 6 + 3 * components) return undefined;
  return { width, height, components };
}
