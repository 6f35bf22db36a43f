import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadResponseError } from '../../../src/router/errors.js';
import { buildSoapEnvelope, MAX_SOAP_RESPONSE_BYTES, parseSoapResponse } from '../../../src/router/igd/soap.js';
import type { SoapOutcome } from '../../../src/router/igd/soap.js';
import { parseXml, text, child } from '../../../src/router/igd/xml.js';
import { editsArb, mutate, RUNS, soapFault, soapResponse, valueOrBadResponse } from './fixtures.js';

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';

describe('buildSoapEnvelope', () => {
  it('writes the action in the service namespace with escaped arguments', () => {
    const xml = buildSoapEnvelope(WANIP2, 'AddPortMapping', [
      ['NewExternalPort', 8080],
      ['NewPortMappingDescription', `a<b>&"c'\u0000\u0007d\r\ne`],
    ]);
    assert.match(xml, /^<\?xml version="1.0"\?>/);
    assert.ok(xml.includes(`<u:AddPortMapping xmlns:u="${WANIP2}">`));
    assert.ok(xml.includes('<NewExternalPort>8080</NewExternalPort>'));
    assert.ok(xml.includes('<NewPortMappingDescription>a&lt;b&gt;&amp;&quot;c&apos;d  e</NewPortMappingDescription>'));
  });

  it('property: any argument text survives the round trip, minus what XML cannot carry', () => {
    // Any code points, ASCII (markup, controls) often, lone surrogates included; built from
    // integers because fc.string's binary unit is slow to generate.
    const anyText = fc
      .array(fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0, max: 0x10ffff })), { maxLength: 200 })
      .map((cps) => String.fromCodePoint(...cps));
    fc.assert(
      fc.property(anyText, (value) => {
        // Brackets keep the parser's whitespace trimming out of the comparison.
        const xml = buildSoapEnvelope(WANIP2, 'X', [['NewDescription', `[${value}]`]]);
        const doc = parseXml(xml, 'test', 1e6);
        const got = text(child(child(child(child(doc, 'Envelope'), 'Body'), 'X'), 'NewDescription'));
        const carried = value
          .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
          .replace(/[\t\n\r]/g, ' ');
        assert.equal(got, `[${carried}]`);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('parseSoapResponse', () => {
  it('reads output arguments', () => {
    const out = parseSoapResponse(
      soapResponse('GetExternalIPAddress', WANIP2, '<NewExternalIPAddress>203.0.114.1</NewExternalIPAddress>'),
      'GetExternalIPAddress',
    );
    assert.deepEqual(out, { kind: 'response', args: new Map([['NewExternalIPAddress', '203.0.114.1']]) });
  });

  it('reads an empty response (miniupnpd AddPortMapping: self-closing element)', () => {
    const xml =
      '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
      `s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:AddPortMappingResponse xmlns:u="${WANIP2}"/></s:Body></s:Envelope>`;
    assert.deepEqual(parseSoapResponse(xml, 'AddPortMapping'), { kind: 'response', args: new Map() });
  });

  it('keeps empty and numeric-looking values as strings', () => {
    const out = parseSoapResponse(
      soapResponse('GetGenericPortMappingEntry', WANIP2, '<NewRemoteHost></NewRemoteHost><NewExternalPort>08080</NewExternalPort>'),
      'GetGenericPortMappingEntry',
    );
    assert.ok(out.kind === 'response');
    assert.equal(out.args.get('NewRemoteHost'), '');
    assert.equal(out.args.get('NewExternalPort'), '08080');
  });

  it('accepts a response element of another case or name', () => {
    const out = parseSoapResponse(
      soapResponse('getexternalipaddress', WANIP2, '<NewExternalIPAddress>1.2.3.4</NewExternalIPAddress>'),
      'GetExternalIPAddress',
    );
    assert.ok(out.kind === 'response');
    assert.equal(out.args.get('NewExternalIPAddress'), '1.2.3.4');
  });

  it('reads a miniupnpd fault', () => {
    assert.deepEqual(parseSoapResponse(soapFault(718, 'ConflictInMappingEntry'), 'AddPortMapping'), {
      kind: 'fault',
      errorCode: 718,
      errorDescription: 'ConflictInMappingEntry',
    });
  });

  it('reads a fault without UPnPError detail as code 0 with the faultstring', () => {
    const xml =
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>' +
      '<faultcode>s:Server</faultcode><faultstring>Internal error</faultstring></s:Fault></s:Body></s:Envelope>';
    assert.deepEqual(parseSoapResponse(xml, 'X'), { kind: 'fault', errorCode: 0, errorDescription: 'Internal error' });
  });

  for (const [name, xml] of [
    ['no envelope', '<foo/>'],
    ['no body', '<s:Envelope xmlns:s="x"></s:Envelope>'],
    ['an empty body', '<s:Envelope xmlns:s="x"><s:Body></s:Body></s:Envelope>'],
    ['HTML', '<html><body>404</body></html>'],
    ['empty text', ''],
    ['a DOCTYPE', '<!DOCTYPE x [<!ENTITY a "b">]><s:Envelope><s:Body><XResponse>&a;</XResponse></s:Body></s:Envelope>'],
    ['oversized', `<s:Envelope><s:Body><XResponse><a>${'x'.repeat(MAX_SOAP_RESPONSE_BYTES)}</a></XResponse></s:Body></s:Envelope>`],
  ] as const) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseSoapResponse(xml, 'X'), BadResponseError);
    });
  }

  it('property: any string gives a value or BadResponseError, bounded', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 3000 }), (s) => {
        const out = valueOrBadResponse(() => parseSoapResponse(s, 'GetExternalIPAddress'));
        if (out) assertBounded(out);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: mutated responses and faults give a value or BadResponseError, bounded', () => {
    const valid = [
      soapResponse('GetExternalIPAddress', WANIP2, '<NewExternalIPAddress>203.0.114.1</NewExternalIPAddress>'),
      soapFault(606, 'Action not authorized'),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...valid), editsArb, (xml, edits) => {
        const out = valueOrBadResponse(() => parseSoapResponse(mutate(xml, edits), 'GetExternalIPAddress'));
        if (out) assertBounded(out);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: many arguments are capped', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), (n) => {
        const inner = Array.from({ length: n }, (_, i) => `<A${i}>${i}</A${i}>`).join('');
        const out = parseSoapResponse(soapResponse('X', WANIP2, inner), 'X');
        assert.ok(out.kind === 'response');
        assert.equal(out.args.size, Math.min(n, 64));
      }),
      { numRuns: 30 },
    );
  });
});

function assertBounded(out: SoapOutcome): void {
  if (out.kind === 'fault') {
    assert.ok(Number.isInteger(out.errorCode) && out.errorCode >= 0 && out.errorCode < 1e6);
    assert.ok(out.errorDescription.length <= 256);
  } else {
    assert.ok(out.args.size <= 64);
    for (const [k, v] of out.args) assert.ok(typeof k === 'string' && typeof v === 'string');
  }
}
