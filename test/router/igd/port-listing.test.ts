import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadResponseError } from '../../../src/router/errors.js';
import { entryToMapping, MAX_LISTED_MAPPINGS, parsePortListing } from '../../../src/router/igd/port-listing.js';
import { parseSoapResponse } from '../../../src/router/igd/soap.js';
import type { Mapping } from '../../../src/router/types.js';
import { editsArb, escapeForXml, mutate, portMappingList, RUNS, soapResponse, valueOrBadResponse } from './fixtures.js';

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
const entries = [
  { externalPort: 8080, protocol: 'TCP', internalPort: 80, internalClient: '192.168.77.20', description: 'frontdoor', lease: 3600 },
  { remoteHost: '203.0.113.9', externalPort: 5351, protocol: 'UDP', internalPort: 5351, internalClient: '192.168.77.21', description: 'NAT-PMP 5351 udp', lease: 0 },
];
const expected: Mapping[] = [
  {
    protocol: 'TCP',
    externalPort: 8080,
    internalClient: '192.168.77.20',
    internalPort: 80,
    leaseSeconds: 3600,
    description: 'frontdoor',
    enabled: true,
    remoteHost: '',
    via: 'upnp-igd2',
  },
  {
    protocol: 'UDP',
    externalPort: 5351,
    internalClient: '192.168.77.21',
    internalPort: 5351,
    leaseSeconds: 0,
    description: 'NAT-PMP 5351 udp',
    enabled: true,
    remoteHost: '203.0.113.9',
    via: 'upnp-igd2',
  },
];

/** The listing as it comes out of the SOAP layer. */
function throughSoap(inner: string): string {
  const out = parseSoapResponse(
    soapResponse('GetListOfPortMappings', WANIP2, `<NewPortListing>${inner}</NewPortListing>`),
    'GetListOfPortMappings',
  );
  assert.ok(out.kind === 'response');
  return out.args.get('NewPortListing') ?? '';
}

describe('parsePortListing', () => {
  it('reads miniupnpd’s CDATA listing', () => {
    assert.deepEqual(parsePortListing(throughSoap(`<![CDATA[${portMappingList(entries)}]]>`)), expected);
  });

  it('reads an escaped listing (the spec’s way, other routers)', () => {
    assert.deepEqual(parsePortListing(throughSoap(escapeForXml(`<?xml version="1.0"?>${portMappingList(entries)}`))), expected);
  });

  it('reads an empty listing and an empty list', () => {
    assert.deepEqual(parsePortListing(''), []);
    assert.deepEqual(parsePortListing(throughSoap('<![CDATA[]]>')), []);
    assert.deepEqual(parsePortListing(portMappingList([])), []);
  });

  it('skips unusable entries, keeps the rest', () => {
    const xml = portMappingList([
      { ...entries[0]!, externalPort: 70000 },
      { ...entries[0]!, protocol: 'SCTP' },
      { ...entries[0]!, internalClient: '' },
      entries[1]!,
    ]);
    assert.deepEqual(parsePortListing(xml), [expected[1]]);
  });

  it('stops at the cap', () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ ...entries[0]!, externalPort: 1000 + i }));
    const out = parsePortListing(portMappingList(many), 'upnp-igd2', 10);
    assert.deepEqual(
      out.map((m) => m.externalPort),
      Array.from({ length: 10 }, (_, i) => 1000 + i),
    );
  });

  it('refuses a document that is not a PortMappingList', () => {
    assert.throws(() => parsePortListing('<foo/>'), BadResponseError);
    assert.throws(() => parsePortListing('not xml at all'), BadResponseError);
    assert.throws(() => parsePortListing('<p:PortMappingList><p:PortMappingEntry></p:Port'), BadResponseError);
  });

  it('property: any string gives at most the cap of mappings or BadResponseError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 3000 }), (s) => {
        const out = valueOrBadResponse(() => parsePortListing(s));
        if (out) assertBounded(out, MAX_LISTED_MAPPINGS);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: mutated listings give valid mappings or BadResponseError', () => {
    const valid = portMappingList(entries);
    fc.assert(
      fc.property(editsArb, fc.integer({ min: 0, max: 5 }), (edits, max) => {
        const out = valueOrBadResponse(() => parsePortListing(mutate(valid, edits), 'upnp-igd2', max));
        if (out) assertBounded(out, max);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('entryToMapping', () => {
  it('reads GetGenericPortMappingEntry fields', () => {
    const m = entryToMapping(
      new Map([
        ['NewRemoteHost', '*'],
        ['NewExternalPort', '8080'],
        ['NewProtocol', 'tcp'],
        ['NewInternalPort', '80'],
        ['NewInternalClient', '192.168.77.20'],
        ['NewEnabled', '0'],
        ['NewPortMappingDescription', 'frontdoor'],
        ['NewLeaseDuration', '42'],
      ]),
      'upnp-igd1',
    );
    assert.deepEqual(m, {
      protocol: 'TCP',
      externalPort: 8080,
      internalClient: '192.168.77.20',
      internalPort: 80,
      leaseSeconds: 42,
      description: 'frontdoor',
      enabled: false,
      remoteHost: '',
      via: 'upnp-igd1',
    });
  });
});

function assertBounded(out: Mapping[], max: number): void {
  assert.ok(out.length <= max);
  for (const m of out) {
    assert.ok(m.protocol === 'TCP' || m.protocol === 'UDP');
    assert.ok(Number.isInteger(m.externalPort) && m.externalPort >= 1 && m.externalPort <= 65535);
    assert.ok(Number.isInteger(m.internalPort) && m.internalPort >= 1 && m.internalPort <= 65535);
    assert.ok(Number.isInteger(m.leaseSeconds) && m.leaseSeconds >= 0);
    assert.ok(m.internalClient.length >= 1 && m.internalClient.length <= 64);
    assert.ok(m.description.length <= 256 && m.remoteHost.length <= 64);
  }
}
