import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  candidateLocations,
  chooseLocations,
  onSubnet,
  pinControlUrl,
  rankResponses,
} from '../../../src/router/igd/location-policy.js';
import { parseSsdpResponse } from '../../../src/router/igd/ssdp.js';
import type { SsdpResponse } from '../../../src/router/igd/ssdp.js';

const lan = { localAddress: '192.168.77.20', prefixLength: 24 };

function resp(location: string, address: string, version: 1 | 2 = 2, elapsedMs = 0): SsdpResponse {
  const st = `urn:schemas-upnp-org:device:InternetGatewayDevice:${version}`;
  return parseSsdpResponse(Buffer.from(`HTTP/1.1 200 OK\r\nST: ${st}\r\nLOCATION: ${location}\r\n\r\n`), {
    address,
    port: 1900,
    elapsedMs,
  });
}

describe('onSubnet', () => {
  it('compares under the prefix', () => {
    assert.equal(onSubnet('192.168.77.1', lan), true);
    assert.equal(onSubnet('192.168.78.1', lan), false);
    assert.equal(onSubnet('192.168.78.1', { localAddress: '192.168.77.20', prefixLength: 16 }), true);
    assert.equal(onSubnet('router.lan', lan), false);
  });
});

describe('candidateLocations', () => {
  it('takes a LOCATION on the responder as is', () => {
    assert.deepEqual(candidateLocations(resp('http://192.168.77.1:5000/rootDesc.xml', '192.168.77.1'), lan), [
      'http://192.168.77.1:5000/rootDesc.xml',
    ]);
  });

  it('takes a LOCATION on the responder even when the prefix guess is too narrow', () => {
    // A /16 LAN seen with the default /24: the router answered us, so it is reachable.
    assert.deepEqual(candidateLocations(resp('http://10.0.0.1:5000/d.xml', '10.0.0.1'), { localAddress: '10.0.5.3' }), [
      'http://10.0.0.1:5000/d.xml',
    ]);
  });

  it('multi-homed router: another LAN address is tried first, then the responder', () => {
    assert.deepEqual(candidateLocations(resp('http://192.168.77.2:5000/rootDesc.xml', '192.168.77.1'), lan), [
      'http://192.168.77.2:5000/rootDesc.xml',
      'http://192.168.77.1:5000/rootDesc.xml',
    ]);
  });

  it('LOCATION off the subnet (WAN address, internet host) is never fetched as is', () => {
    assert.deepEqual(candidateLocations(resp('http://203.0.114.1:5000/rootDesc.xml?x=1', '192.168.77.1'), lan), [
      'http://192.168.77.1:5000/rootDesc.xml?x=1',
    ]);
  });

  it('a host name in LOCATION is replaced by the responder address', () => {
    assert.deepEqual(candidateLocations(resp('http://router.lan:80/igd.xml', '192.168.77.1'), lan), [
      'http://192.168.77.1/igd.xml',
    ]);
  });

  it('without a responder, only a LOCATION on the subnet', () => {
    assert.deepEqual(candidateLocations(resp('http://192.168.77.1/d.xml', ''), lan), ['http://192.168.77.1/d.xml']);
    assert.deepEqual(candidateLocations(resp('http://8.8.8.8/d.xml', ''), lan), []);
  });
});

describe('rankResponses / chooseLocations', () => {
  it('prefers the gateway, then IGD:2, then the earliest', () => {
    const other2 = resp('http://192.168.77.9/d.xml', '192.168.77.9', 2, 1);
    const gw1 = resp('http://192.168.77.1/v1.xml', '192.168.77.1', 1, 5);
    const gw2 = resp('http://192.168.77.1/v2.xml', '192.168.77.1', 2, 9);
    const other1 = resp('http://192.168.77.8/d.xml', '192.168.77.8', 1, 0);
    assert.deepEqual(
      rankResponses([other2, gw1, other1, gw2], '192.168.77.1').map((r) => r.location),
      [gw2.location, gw1.location, other2.location, other1.location],
    );
    // Without a gateway, version then time.
    assert.deepEqual(
      rankResponses([gw1, other2, other1, gw2]).map((r) => r.location),
      [other2.location, gw2.location, other1.location, gw1.location],
    );
  });

  it('lists each URL once, marking rewritten ones', () => {
    const hostile = resp('http://203.0.114.50/rootDesc.xml', '192.168.77.1', 2, 0);
    const gw = resp('http://192.168.77.1/rootDesc.xml', '192.168.77.1', 2, 3);
    const out = chooseLocations([hostile, gw], { ...lan, gateway: '192.168.77.1' });
    assert.deepEqual(
      out.map((c) => [c.url, c.rewritten]),
      [['http://192.168.77.1/rootDesc.xml', true]],
    );
  });
});

describe('pinControlUrl', () => {
  it('keeps a control URL on the description host', () => {
    assert.equal(pinControlUrl('http://192.168.77.1:5000/ctl/IPConn', 'http://192.168.77.1:5000/rootDesc.xml'), 'http://192.168.77.1:5000/ctl/IPConn');
  });
  it('moves a control URL on another host to the description host, keeping port and path', () => {
    assert.equal(
      pinControlUrl('http://203.0.114.1:49000/upnp/control?x=1', 'http://192.168.77.1:5000/rootDesc.xml'),
      'http://192.168.77.1:49000/upnp/control?x=1',
    );
  });
});
