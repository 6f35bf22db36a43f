/**
 * Reads the small YAML subset balena.yml is kept in, and refuses everything else, so the file can
 * be checked structurally without a YAML library: comment lines, `key: scalar`, `key:` followed by
 * an indented block, sequences of scalars and of one-key maps (`- KEY: value`), plain or
 * single-quoted scalars. Every scalar comes back as a string.
 */
export type YamlValue = string | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  no: number;
  indent: number;
  text: string;
}

const PLAIN = /^[A-Za-z0-9_./@+-][A-Za-z0-9_./@+ ,-]*$/;
const KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export class YamlSubsetError extends Error {
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = 'YamlSubsetError';
  }
}

function scalar(raw: string, no: number): string {
  if (raw.startsWith("'")) {
    if (!raw.endsWith("'") || raw.length < 2) throw new YamlSubsetError(no, `unterminated quote: ${raw}`);
    const inner = raw.slice(1, -1);
    if (/(^|[^'])'([^']|$)/.test(inner.replace(/''/g, ''))) throw new YamlSubsetError(no, `stray quote: ${raw}`);
    return inner.replace(/''/g, "'");
  }
  if (!PLAIN.test(raw) || raw.includes(' #')) throw new YamlSubsetError(no, `not a plain scalar of the subset: ${raw}`);
  return raw;
}

function keyValue(text: string, no: number): [string, string | undefined] {
  const i = text.indexOf(':');
  if (i <= 0) throw new YamlSubsetError(no, `expected "key: value": ${text}`);
  const key = text.slice(0, i);
  if (!KEY.test(key)) throw new YamlSubsetError(no, `bad key: ${key}`);
  const rest = text.slice(i + 1);
  if (rest === '') return [key, undefined];
  if (!rest.startsWith(' ')) throw new YamlSubsetError(no, `expected a space after the colon: ${text}`);
  return [key, scalar(rest.slice(1), no)];
}

export function parseYamlSubset(source: string): YamlValue {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new YamlSubsetError(i + 1, 'tab');
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) return;
    if (raw !== raw.trimEnd()) throw new YamlSubsetError(i + 1, 'trailing space');
    const text = raw.trimStart();
    lines.push({ no: i + 1, indent: raw.length - text.length, text });
  });
  let pos = 0;

  function block(indent: number): YamlValue {
    const first = lines[pos];
    if (!first || first.indent !== indent) throw new YamlSubsetError(first?.no ?? 0, `expected a block indented ${indent}`);
    if (first.text.startsWith('- ')) {
      const out: YamlValue[] = [];
      while (pos < lines.length && lines[pos]!.indent === indent && lines[pos]!.text.startsWith('- ')) {
        const l = lines[pos++]!;
        const item = l.text.slice(2);
        if (/^[A-Za-z_][A-Za-z0-9_-]*:( |$)/.test(item)) {
          const [k, v] = keyValue(item, l.no);
          if (v === undefined) throw new YamlSubsetError(l.no, 'a list item map must hold one scalar');
          out.push({ [k]: v });
        } else {
          out.push(scalar(item, l.no));
        }
      }
      return out;
    }
    const out: { [key: string]: YamlValue } = {};
    while (pos < lines.length && lines[pos]!.indent === indent) {
      const l = lines[pos++]!;
      if (l.text.startsWith('- ')) throw new YamlSubsetError(l.no, 'a list item among map keys');
      const [k, v] = keyValue(l.text, l.no);
      if (k in out) throw new YamlSubsetError(l.no, `duplicate key ${k}`);
      if (v !== undefined) {
        out[k] = v;
        continue;
      }
      const next = lines[pos];
      if (!next || next.indent <= indent) throw new YamlSubsetError(l.no, `${k} has no value`);
      out[k] = block(next.indent);
    }
    if (pos < lines.length && lines[pos]!.indent > indent) throw new YamlSubsetError(lines[pos]!.no, 'unexpected indentation');
    return out;
  }

  const doc = block(0);
  if (pos !== lines.length) throw new YamlSubsetError(lines[pos]!.no, 'unexpected line');
  return doc;
}
