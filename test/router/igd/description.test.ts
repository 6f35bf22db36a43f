import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadResponseError } from '../../../src/router/errors.js';
import { MAX_DESCRIPTION_CHARS, parseDeviceDescription } from '../../../src/router/igd/description.js';
import type { IgdDescription } from '../../../src/router/igd/description.js';
import { editsArb, IGD1_PPP_DESCRIPTION, miniupnpdDescription, mutate, RUNS, valueOrBadResponse } from './fixtures.js';

const LOCATION = 'http://192.168.77.1:5000/rootDesc.xml';

describe('parseDeviceDescription', () => {
  it('finds WANIPConnection:2 three devices deep in a miniupnpd description', () => {
    const d = parseDeviceDescription(miniupnpdDescription(), LOCATION);
    assert.equal(d.protocol, 'upnp-igd2');
    assert.equal(d.deviceVersion, 2);
    assert.deepEqual(d.service, {
      serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2',
      kind: 'WANIPConnection',
      version: 2,
      controlUrl: 'http://192.168.77.1:5000/ctl/IPConn',
    });
    assert.equal(d.services.length, 1, 'WANIPv6FirewallControl and the others are not WAN connections');
    assert.equal(d.friendlyName, 'Debian router');
    assert.equal(d.manufacturer, 'Debian');
    assert.equal(d.modelName, 'Debian router');
    assert.equal(d.location, LOCATION);
  });

  it('IGDv1 with URLBase, namespace prefixes and PPP listed first: prefers the IP service', () => {
    const d = parseDeviceDescription(IGD1_PPP_DESCRIPTION, 'http://192.168.1.254:80/desc.xml');
    assert.equal(d.protocol, 'upnp-igd1');
    assert.equal(d.deviceVersion, 1);
    assert.equal(d.service.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:1');
    // Resolved against URLBase, not LOCATION.
    assert.equal(d.service.controlUrl, 'http://192.168.1.254:49152/upnp/control/WANIPConn1');
    assert.deepEqual(
      d.services.map((s) => [s.kind, s.controlUrl]),
      [
        ['WANIPConnection', 'http://192.168.1.254:49152/upnp/control/WANIPConn1'],
        ['WANPPPConnection', 'http://192.168.1.254:49152/upnp/control/WANPPPConn1'],
      ],
    );
    assert.equal(d.friendlyName, 'Box & Co DSL');
  });

  it('a PPP-only router gets WANPPPConnection:1', () => {
    const xml = IGD1_PPP_DESCRIPTION.replace(/<d:service>\s*<d:serviceType> urn[\s\S]*?<\/d:service>/, '');
    const d = parseDeviceDescription(xml, 'http://192.168.1.254/desc.xml');
    assert.equal(d.service.kind, 'WANPPPConnection');
    assert.equal(d.protocol, 'upnp-igd1');
  });

  it('an unusable URLBase falls back to LOCATION', () => {
    const xml = miniupnpdDescription().replace('<specVersion>', '<URLBase>ftp://x/</URLBase><specVersion>');
    assert.equal(parseDeviceDescription(xml, LOCATION).service.controlUrl, 'http://192.168.77.1:5000/ctl/IPConn');
  });

  it('an IGD wrapped in another root device is still found', () => {
    const inner = miniupnpdDescription().replace(/^[\s\S]*?<device>/, '<device>').replace(/<\/root>$/, '');
    const xml =
      '<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:x:device:Media:1</deviceType>' +
      `<deviceList>${inner}</deviceList></device></root>`;
    const d = parseDeviceDescription(xml, LOCATION);
    assert.equal(d.deviceVersion, 2);
    assert.equal(d.friendlyName, 'Debian router');
    assert.equal(d.protocol, 'upnp-igd2');
  });

  for (const [name, xml] of [
    ['no WAN connection service', miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANFooConnection:2')],
    ['an empty control URL', miniupnpdDescription().replace('<controlURL>/ctl/IPConn</controlURL>', '<controlURL></controlURL>')],
    ['a control URL of another scheme', miniupnpdDescription().replace('/ctl/IPConn<', 'javascript:alert(1)<')],
    ['no root', '<foo/>'],
    ['not XML', 'HTTP/1.1 200 OK'],
    ['an empty document', ''],
    ['a DOCTYPE with entities', `<!DOCTYPE root [<!ENTITY a "aaaa">]>${miniupnpdDescription()}`],
    ['an oversized document', miniupnpdDescription().replace('<specVersion>', `<x>${'a'.repeat(MAX_DESCRIPTION_CHARS)}</x><specVersion>`)],
  ] as const) {
    it(`refuses ${name} with BadResponseError`, () => {
      assert.throws(() => parseDeviceDescription(xml, LOCATION), BadResponseError);
    });
  }

  it('refuses a bad location', () => {
    assert.throws(() => parseDeviceDescription(miniupnpdDescription(), 'not a url'), BadResponseError);
  });

  it('property: any string gives a value or BadResponseError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 4000 }), (s) => {
        const d = valueOrBadResponse(() => parseDeviceDescription(s, LOCATION));
        if (d) assertBounded(d);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: mutated valid descriptions give a value or BadResponseError, bounded', () => {
    const valid = [miniupnpdDescription(), IGD1_PPP_DESCRIPTION];
    fc.assert(
      fc.property(fc.constantFrom(...valid), editsArb, (xml, edits) => {
        const d = valueOrBadResponse(() => parseDeviceDescription(mutate(xml, edits), LOCATION));
        if (d) assertBounded(d);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: many nested or repeated devices stay bounded', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.boolean(), (n, nested) => {
        const svc =
          '<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>' +
          '<controlURL>/c</controlURL></service></serviceList>';
        const dev = `<device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>${svc}`;
        const body = nested
          ? `${dev}<deviceList>`.repeat(n) + '</deviceList></device>'.repeat(n)
          : `<deviceList>${`${dev}</device>`.repeat(n)}</deviceList>`;
        const xml = `<root><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>${body}</device></root>`;
        const d = valueOrBadResponse(() => parseDeviceDescription(xml, LOCATION));
        if (d) assertBounded(d);
      }),
      { numRuns: 60 },
    );
  });
});

function assertBounded(d: IgdDescription): void {
  assert.ok(d.services.length >= 1 && d.services.length <= 16);
  assert.equal(d.service, d.services[0]);
  for (const s of d.services) assert.equal(new URL(s.controlUrl).protocol, 'http:');
  assert.ok(d.friendlyName.length <= 256 && d.manufacturer.length <= 256 && d.modelName.length <= 256);
  assert.ok(d.protocol === 'upnp-igd1' || d.protocol === 'upnp-igd2');
}
