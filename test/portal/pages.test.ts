import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { esc, nodePage, portalPage, thumbnailOrigins } from '../../src/portal/pages.js';
import type { NodeStatus } from '../../src/portal/status.js';

function status(name: string): NodeStatus {
  return {
    name,
    id: 'abc',
    role: 'representative',
    roleSinceMs: 1000,
    uptimeMs: 2000,
    representative: { id: 'abc', name, url: 'http://203.0.114.1:8080/' },
    wanAddress: '203.0.114.1',
    wanAddressClass: 'public',
    ports: { local: 8081, public: 8081, wellKnown: 8080, portal: 8080 },
    floatingAddress: null,
    router: { protocol: 'upnp-igd2', gateway: '192.168.77.1', localAddress: '192.168.77.10', error: null },
    routerMappings: null,
    lan: { mode: 'multicast', port: 4862, authenticated: true, dropped: 0, received: 0 },
    nodes: [
      {
        id: 'abc',
        name,
        self: true,
        representative: true,
        addresses: ['192.168.77.10'],
        localPort: 8081,
        publicPort: 8081,
        url: 'http://203.0.114.1:8081/',
        lanUrl: 'http://192.168.77.10:8081/',
        lastSeenMsAgo: 0,
        camera: false,
      },
    ],
    camera: null,
    tls: null,
    events: [],
  };
}

describe('pages', () => {
  it('esc leaves no character that could open markup or end an attribute', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const out = esc(s);
        assert.ok(!/[<>"']/.test(out));
        // Reversible: nothing is lost, only written as entities.
        assert.equal(out.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))), s);
      }),
      { numRuns: 500 },
    );
  });

  it('a host name made of markup shows as text on both pages', () => {
    const evil = '<script>alert(1)</script>';
    for (const html of [portalPage(status(evil)), nodePage(status(evil))]) {
      assert.ok(!html.includes(evil));
      assert.ok(html.includes(esc(evil)));
    }
  });
});

describe('pages: cameras', () => {
  const cam = (): NodeStatus => {
    const s = status('garden');
    s.nodes = [
      { ...(s.nodes[0] as NodeStatus['nodes'][number]), camera: true },
      { id: 'def', name: 'porch', self: false, representative: false, addresses: ['192.168.77.11'], localPort: 8081, publicPort: 8082, url: null, lanUrl: 'http://192.168.77.11:8081/', lastSeenMsAgo: 100, camera: true },
    ];
    s.camera = { source: 'test pattern (ffmpeg)', kind: 'test', state: 'failed', reason: 'ffmpeg is not installed', width: 640, height: 360, fps: 15, viewers: 0, frames: 0, restarts: 2 };
    return s;
  };

  it('a camera node\'s card has a thumbnail from its own port; one without a public link has none from the WAN side', () => {
    const html = portalPage(cam(), { thumbnails: 'wan' });
    assert.equal(html.match(/<img class="thumb"/g)?.length, 1);
    assert.ok(html.includes('src="http://203.0.114.1:8081/camera.jpg"'));
    assert.deepEqual(thumbnailOrigins(cam(), 'wan'), ['http://203.0.114.1:8081']);
    const lan = portalPage(cam(), { thumbnails: 'lan' });
    assert.equal(lan.match(/<img class="thumb"/g)?.length, 2);
    assert.deepEqual(thumbnailOrigins(cam(), 'lan'), ['http://192.168.77.10:8081', 'http://192.168.77.11:8081']);
  });

  it('the node page shows the live view at the camera\'s size and why there is no picture', () => {
    const html = nodePage(cam());
    assert.match(html, /<img id="live" src="\/camera\.mjpg"[^>]* width="640" height="360">/);
    assert.match(html, /<span id="camera-state">no picture: ffmpeg is not installed<\/span>/);
    assert.ok(!nodePage(status('x')).includes('id="live"'), 'no camera, no live view');
  });
});
