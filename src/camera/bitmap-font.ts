/**
 * A 5x7 bitmap font (with 2 rows of descender) for printable ASCII, so a camera node can write
 * why it has no picture without any font file or image library on the machine.
 *
 * Each glyph is up to 9 rows of 5 columns, '#' = ink, rows separated by '/'. Rows 0..6 sit on
 * the baseline, rows 7..8 are for descenders (g j p q y , ;); missing rows are blank.
 */

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 9;
/** Horizontal step from one character to the next (one blank column between glyphs). */
export const ADVANCE = GLYPH_WIDTH + 1;
/** Vertical step from one text line to the next (two blank rows between lines). */
export const LINE_PITCH = GLYPH_HEIGHT + 2;

const GLYPH_SOURCE: Readonly<Record<string, string>> = {
  ' ': '',
  '!': '..#../..#../..#../..#../..#../...../..#..',
  '"': '.#.#./.#.#./.#.#.',
  '#': '.#.#./.#.#./#####/.#.#./#####/.#.#./.#.#.',
  $: '..#../.####/#.#../.###./..#.#/####./..#..',
  '%': '##.../##..#/...#./..#../.#.../#..##/...##',
  '&': '.##../#..#./#.#../.#.../#.#.#/#..#./.##.#',
  "'": '..#../..#../..#..',
  '(': '...#./..#../.#.../.#.../.#.../..#../...#.',
  ')': '.#.../..#../...#./...#./...#./..#../.#...',
  '*': '...../..#../#.#.#/.###./#.#.#/..#../.....',
  '+': '...../..#../..#../#####/..#../..#../.....',
  ',': '...../...../...../...../...../.##../..#../.#...',
  '-': '...../...../...../#####',
  '.': '...../...../...../...../...../.##../.##..',
  '/': '...../....#/...#./..#../.#.../#....',
  '0': '.###./#...#/#..##/#.#.#/##..#/#...#/.###.',
  '1': '..#../.##../..#../..#../..#../..#../.###.',
  '2': '.###./#...#/....#/...#./..#../.#.../#####',
  '3': '#####/...#./..#../...#./....#/#...#/.###.',
  '4': '...#./..##./.#.#./#..#./#####/...#./...#.',
  '5': '#####/#..../####./....#/....#/#...#/.###.',
  '6': '..##./.#.../#..../####./#...#/#...#/.###.',
  '7': '#####/....#/...#./..#../.#.../.#.../.#...',
  '8': '.###./#...#/#...#/.###./#...#/#...#/.###.',
  '9': '.###./#...#/#...#/.####/....#/...#./.##..',
  ':': '...../.##../.##../...../.##../.##..',
  ';': '...../.##../.##../...../.##../..#../.#...',
  '<': '...#./..#../.#.../#..../.#.../..#../...#.',
  '=': '...../...../#####/...../#####',
  '>': '.#.../..#../...#./....#/...#./..#../.#...',
  '?': '.###./#...#/....#/...#./..#../...../..#..',
  '@': '.###./#...#/....#/.##.#/#.#.#/#.#.#/.###.',
  A: '.###./#...#/#...#/#####/#...#/#...#/#...#',
  B: '####./#...#/#...#/####./#...#/#...#/####.',
  C: '.###./#...#/#..../#..../#..../#...#/.###.',
  D: '###../#..#./#...#/#...#/#...#/#..#./###..',
  E: '#####/#..../#..../####./#..../#..../#####',
  F: '#####/#..../#..../####./#..../#..../#....',
  G: '.###./#...#/#..../#.###/#...#/#...#/.####',
  H: '#...#/#...#/#...#/#####/#...#/#...#/#...#',
  I: '.###./..#../..#../..#../..#../..#../.###.',
  J: '..###/...#./...#./...#./...#./#..#./.##..',
  K: '#...#/#..#./#.#../##.../#.#../#..#./#...#',
  L: '#..../#..../#..../#..../#..../#..../#####',
  M: '#...#/##.##/#.#.#/#.#.#/#...#/#...#/#...#',
  N: '#...#/#...#/##..#/#.#.#/#..##/#...#/#...#',
  O: '.###./#...#/#...#/#...#/#...#/#...#/.###.',
  P: '####./#...#/#...#/####./#..../#..../#....',
  Q: '.###./#...#/#...#/#...#/#.#.#/#..#./.##.#',
  R: '####./#...#/#...#/####./#.#../#..#./#...#',
  S: '.####/#..../#..../.###./....#/....#/####.',
  T: '#####/..#../..#../..#../..#../..#../..#..',
  U: '#...#/#...#/#...#/#...#/#...#/#...#/.###.',
  V: '#...#/#...#/#...#/#...#/#...#/.#.#./..#..',
  W: '#...#/#...#/#...#/#.#.#/#.#.#/#.#.#/.#.#.',
  X: '#...#/#...#/.#.#./..#../.#.#./#...#/#...#',
  Y: '#...#/#...#/.#.#./..#../..#../..#../..#..',
  Z: '#####/....#/...#./..#../.#.../#..../#####',
  '[': '.###./.#.../.#.../.#.../.#.../.#.../.###.',
  '\\': '...../#..../.#.../..#../...#./....#',
  ']': '.###./...#./...#./...#./...#./...#./.###.',
  '^': '..#../.#.#./#...#',
  _: '...../...../...../...../...../...../#####',
  '`': '.#.../..#..',
  a: '...../...../.###./....#/.####/#...#/.####',
  b: '#..../#..../#.##./##..#/#...#/#...#/####.',
  c: '...../...../.###./#..../#..../#...#/.###.',
  d: '....#/....#/.##.#/#..##/#...#/#...#/.####',
  e: '...../...../.###./#...#/#####/#..../.###.',
  f: '..##./.#..#/.#.../###../.#.../.#.../.#...',
  g: '...../...../.####/#...#/#...#/#...#/.####/....#/.###.',
  h: '#..../#..../#.##./##..#/#...#/#...#/#...#',
  i: '..#../...../.##../..#../..#../..#../.###.',
  j: '...#./...../..##./...#./...#./...#./...#./#..#./.##..',
  k: '#..../#..../#..#./#.#../##.../#.#../#..#.',
  l: '.##../..#../..#../..#../..#../..#../.###.',
  m: '...../...../##.#./#.#.#/#.#.#/#.#.#/#.#.#',
  n: '...../...../#.##./##..#/#...#/#...#/#...#',
  o: '...../...../.###./#...#/#...#/#...#/.###.',
  p: '...../...../####./#...#/#...#/#...#/####./#..../#....',
  q: '...../...../.####/#...#/#...#/#...#/.####/....#/....#',
  r: '...../...../#.##./##..#/#..../#..../#....',
  s: '...../...../.####/#..../.###./....#/####.',
  t: '.#.../.#.../###../.#.../.#.../.#..#/..##.',
  u: '...../...../#...#/#...#/#...#/#..##/.##.#',
  v: '...../...../#...#/#...#/#...#/.#.#./..#..',
  w: '...../...../#...#/#...#/#.#.#/#.#.#/.#.#.',
  x: '...../...../#...#/.#.#./..#../.#.#./#...#',
  y: '...../...../#...#/#...#/#...#/#...#/.####/....#/.###.',
  z: '...../...../#####/...#./..#../.#.../#####',
  '{': '...#./..#../..#../.#.../..#../..#../...#.',
  '|': '..#../..#../..#../..#../..#../..#../..#..',
  '}': '.#.../..#../..#../...#./..#../..#../.#...',
  '~': '...../...../.#.../#.#.#/...#.',
};

/** Ink masks indexed by char code (32..126): GLYPH_WIDTH * GLYPH_HEIGHT bytes, 1 = ink. */
const GLYPHS: readonly Uint8Array[] = buildGlyphs();

function buildGlyphs(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let code = 32; code <= 126; code++) {
    const source = GLYPH_SOURCE[String.fromCharCode(code)];
    if (source === undefined) throw new Error(`bitmap font: no glyph for ${code}`);
    const mask = new Uint8Array(GLYPH_WIDTH * GLYPH_HEIGHT);
    const rows = source === '' ? [] : source.split('/');
    if (rows.length > GLYPH_HEIGHT) throw new Error(`bitmap font: glyph ${code} is too tall`);
    rows.forEach((row, y) => {
      if (row.length !== GLYPH_WIDTH) throw new Error(`bitmap font: glyph ${code} row ${y} is not ${GLYPH_WIDTH} wide`);
      for (let x = 0; x < GLYPH_WIDTH; x++) mask[y * GLYPH_WIDTH + x] = row[x] === '#' ? 1 : 0;
    });
    out.push(mask);
  }
  return out;
}

/**
 * The characters the font draws for `text`, one per code point (so an emoji made of a
 * surrogate pair is one `?`, not two); anything outside printable ASCII becomes `?`.
 */
export function printable(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    out += code >= 32 && code <= 126 ? ch : '?';
  }
  return out;
}

/** The ink mask of one printable ASCII character (`?` for anything else). */
export function glyph(ch: string): Uint8Array {
  const code = ch.length === 1 ? ch.charCodeAt(0) : 0;
  return GLYPHS[code >= 32 && code <= 126 ? code - 32 : '?'.charCodeAt(0) - 32]!;
}

/** Width in pixels of `chars` characters drawn at `scale` (no trailing gap). */
export function textWidth(chars: number, scale: number): number {
  return chars === 0 ? 0 : (chars * ADVANCE - 1) * scale;
}

/**
 * Draws `text` (already passed through `printable`) into an 8-bit gray raster with its top-left
 * corner at (left, top), each font pixel a `scale` x `scale` square; ink outside the raster is
 * dropped rather than wrapped.
 */
export function drawText(
  raster: Uint8Array,
  width: number,
  height: number,
  text: string,
  left: number,
  top: number,
  scale: number,
  ink: number,
): void {
  for (let i = 0; i < text.length; i++) {
    const mask = glyph(text[i]!);
    const gx = left + i * ADVANCE * scale;
    for (let fy = 0; fy < GLYPH_HEIGHT; fy++) {
      for (let fx = 0; fx < GLYPH_WIDTH; fx++) {
        if (mask[fy * GLYPH_WIDTH + fx] === 0) continue;
        const x0 = Math.max(0, gx + fx * scale);
        const x1 = Math.min(width, gx + (fx + 1) * scale);
        const y0 = Math.max(0, top + fy * scale);
        const y1 = Math.min(height, top + (fy + 1) * scale);
        for (let y = y0; y < y1; y++) raster.fill(ink, y * width + x0, y * width + Math.max(x0, x1));
      }
    }
  }
}
