import { createRequire } from 'node:module';
import { BadResponseError } from '../errors.js';

// fast-xml-parser's ESM entry loads a few dozen small files (~65 ms on this machine), its
// CommonJS bundle one (~12 ms). Discovery waits on this import, so take the bundle.
const { XMLParser } = createRequire(import.meta.url)('fast-xml-parser') as typeof import('fast-xml-parser');

/**
 * The XML reading shared by the IGD parsers. Everything here comes from the LAN, where any device
 * may answer a search, so it is treated as hostile: sizes are bounded, DOCTYPE (and with it
 * entity expansion) is refused, and the tree is read through own-property lookups only.
 */

/** A parsed element: text, or children by local name (namespace prefixes removed). */
export type XmlNode = string | XmlElement;
export interface XmlElement {
  [name: string]: XmlNode | XmlNode[];
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  // Values stay strings: "0012" is a port, "1" an enabled flag; we convert where we know the type.
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
  maxNestedTags: 64,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

/** No UPnP document needs a DTD; refusing it closes the door on entity-expansion bombs. */
const doctype = /<!DOCTYPE|<!ENTITY/i;

export function parseXml(text: string, what: string, maxChars: number): XmlElement {
  if (text.length > maxChars) throw new BadResponseError(`${what}: larger than ${maxChars} characters`);
  if (doctype.test(text)) throw new BadResponseError(`${what}: DOCTYPE is not allowed`);
  let doc: unknown;
  try {
    doc = parser.parse(text);
  } catch (err) {
    throw new BadResponseError(`${what}: not well-formed XML`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new BadResponseError(`${what}: not an XML document`);
  }
  return doc as XmlElement;
}

/** The children named `name` (an element may repeat). */
export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  if (node === undefined || typeof node !== 'object' || !Object.hasOwn(node, name)) return [];
  const v = node[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

/** The element's text: its own value, or the text mixed among its children. */
export function text(node: XmlNode | undefined): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node;
  if (typeof node === 'number' || typeof node === 'boolean') return String(node);
  const t = Object.hasOwn(node, '#text') ? node['#text'] : undefined;
  if (typeof t === 'string') return t;
  if (typeof t === 'number' || typeof t === 'boolean') return String(t);
  return '';
}

export function childText(node: XmlNode | undefined, name: string): string {
  return text(child(node, name));
}

export function isElement(node: XmlNode | undefined): node is XmlElement {
  return typeof node === 'object' && node !== null && !Array.isArray(node);
}

/** Element names of `node`, without the text pseudo-child. */
export function elementNames(node: XmlNode | undefined): string[] {
  if (!isElement(node)) return [];
  return Object.keys(node).filter((k) => k !== '#text');
}

/**
 * Escapes a value for element content. Characters XML 1.0 cannot carry at all (control
 * characters, lone surrogates) are dropped, since they make the router's parser refuse the whole
 * request; tab, CR and LF become spaces, since XML parsers rewrite line ends and argument values
 * (descriptions, addresses) are single-line anyway.
 */
export function escapeXml(value: string): string {
  return value
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/[\t\n\r]/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Bounds a string from the router before it reaches logs or the user. */
export function clip(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) : s;
}
