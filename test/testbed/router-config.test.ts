import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { classifyWanAddress } from '../../src/router/wan-address.js';
import {
  DEFAULT_ALLOW,
  TESTBED_MODES,
  buildMiniupnpdConfig,
  parseNftDnatRules,
  readinessMarkers,
  runsDaemon,
  wanForMode,
} from './router-config.js';
import type { TestbedMode } from './router-config.js';

const HTTP_READY = 'HTTP listening on port 5000';
const PMP_READY = 'Listening for NAT-PMP/PCP traffic on port 5351';

function settings(conf: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of conf.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}

describe('miniupnpd config per mode', () => {
  const daemonModes = TESTBED_MODES.filter(runsDaemon);

  it('every mode but none runs a daemon wired to the test bed interfaces and chains', () => {
    assert.deepEqual(TESTBED_MODES.filter((m) => !runsDaemon(m)), ['none']);
    for (const mode of daemonModes) {
      const s = settings(buildMiniupnpdConfig({ mode, uuid: 'u-1' }));
      assert.equal(s.get('ext_ifname'), 'ext0', mode);
      assert.equal(s.get('listening_ip'), 'br0', mode);
      assert.equal(s.get('http_port'), '5000', mode);
      assert.equal(s.get('enable_natpmp'), 'yes', mode);
      assert.equal(s.get('upnp_forward_chain'), 'miniupnpd', mode);
      assert.equal(s.get('upnp_nat_chain'), 'prerouting_miniupnpd', mode);
      assert.equal(s.get('upnp_nat_postrouting_chain'), 'postrouting_miniupnpd', mode);
      assert.equal(s.get('uuid'), 'u-1', mode);
    }
  });

  it('sets what differs between modes, and nothing else', () => {
    const expect: Record<Exclude<TestbedMode, 'none'>, [upnp: string, secure: string, v1: boolean]> = {
      igd2: ['yes', 'yes', false],
      igd1: ['yes', 'yes', true],
      'pmp-only': ['no', 'yes', false],
      insecure: ['yes', 'no', false],
      cgnat: ['yes', 'yes', false],
      'private-wan': ['yes', 'yes', false],
    };
    for (const [mode, [upnp, secure, v1]] of Object.entries(expect)) {
      const conf = buildMiniupnpdConfig({ mode: mode as TestbedMode, uuid: 'u' });
      const s = settings(conf);
      assert.equal(s.get('enable_upnp'), upnp, mode);
      assert.equal(s.get('secure_mode'), secure, mode);
      assert.equal(s.get('force_igd_desc_v1'), v1 ? 'yes' : undefined, mode);
      // The option miniupnpd rejects (and then does not start).
      assert.ok(!conf.includes('force_igd_v1='), mode);
    }
  });

  it('refuses to build a config for mode none', () => {
    assert.throws(() => buildMiniupnpdConfig({ mode: 'none', uuid: 'u' }), { name: 'TestbedError', code: 'TB_BAD_CONFIG' });
  });

  it('by default allows the LAN ports 1024-65535 only, allow before deny', () => {
    const lines = buildMiniupnpdConfig({ mode: 'igd2', uuid: 'u' }).split('\n');
    const allow = lines.findIndex((l) => l.startsWith('allow '));
    const deny = lines.findIndex((l) => l.startsWith('deny '));
    assert.equal(lines[allow], 'allow 1024-65535 192.168.77.0/24 1024-65535');
    assert.equal(lines[deny], 'deny 0-65535 0.0.0.0/0 0-65535');
    assert.ok(allow < deny);
    assert.deepEqual(DEFAULT_ALLOW, [lines[allow], lines[deny]]);
  });

  it('replaces the allow lines and appends extra lines last, so they win', () => {
    const conf = buildMiniupnpdConfig({
      mode: 'igd2',
      uuid: 'u',
      allow: ['allow 80-80 192.168.77.0/24 80-80'],
      miniupnpdConf: ['secure_mode=no', 'friendly_name=x'],
      minLifetime: 60,
      maxLifetime: 3600,
    });
    const lines = conf.trimEnd().split('\n');
    assert.ok(lines.includes('allow 80-80 192.168.77.0/24 80-80'));
    assert.ok(!lines.some((l) => l.startsWith('deny ')));
    assert.deepEqual(lines.slice(-2), ['secure_mode=no', 'friendly_name=x']);
    assert.equal(settings(conf).get('secure_mode'), 'no');
    assert.equal(settings(conf).get('min_lifetime'), '60');
    assert.equal(settings(conf).get('max_lifetime'), '3600');
  });

  it('rejects a line that would smuggle in another setting, and impossible lifetimes', () => {
    assert.throws(() => buildMiniupnpdConfig({ mode: 'igd2', uuid: 'u', miniupnpdConf: ['a=1\nsecure_mode=no'] }), {
      code: 'TB_BAD_CONFIG',
    });
    assert.throws(() => buildMiniupnpdConfig({ mode: 'igd2', uuid: 'u\r' }), { code: 'TB_BAD_CONFIG' });
    assert.throws(() => buildMiniupnpdConfig({ mode: 'igd2', uuid: 'u', minLifetime: -1 }), { code: 'TB_BAD_CONFIG' });
    assert.throws(() => buildMiniupnpdConfig({ mode: 'igd2', uuid: 'u', maxLifetime: 1.5 }), { code: 'TB_BAD_CONFIG' });
  });
});

describe('WAN addresses per mode', () => {
  it('are what the router layer classifies as public, CGNAT and private', () => {
    assert.equal(classifyWanAddress(wanForMode('igd2').address), 'public');
    assert.equal(classifyWanAddress(wanForMode('cgnat').address), 'cgnat');
    assert.equal(classifyWanAddress(wanForMode('private-wan').address), 'private');
    for (const mode of TESTBED_MODES) {
      const w = wanForMode(mode);
      assert.notEqual(w.address, w.clientAddress, mode);
      // Same link: for these prefixes (/24 and /10) the first two octets agree.
      assert.equal(w.address.split('.').slice(0, 2).join('.'), w.clientAddress.split('.').slice(0, 2).join('.'), mode);
    }
  });
});

describe('readinessMarkers', () => {
  it('waits for the services the config enables', () => {
    assert.deepEqual(readinessMarkers(buildMiniupnpdConfig({ mode: 'igd2', uuid: 'u' })), [HTTP_READY, PMP_READY]);
    assert.deepEqual(readinessMarkers(buildMiniupnpdConfig({ mode: 'pmp-only', uuid: 'u' })), [PMP_READY]);
    assert.deepEqual(
      readinessMarkers(buildMiniupnpdConfig({ mode: 'igd2', uuid: 'u', miniupnpdConf: ['enable_natpmp=no'] })),
      [HTTP_READY],
    );
    assert.deepEqual(readinessMarkers('# enable_upnp=no\n enable_upnp = no \n'), [PMP_READY]);
  });

  it('any text gives a subset of the two markers, in order', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (text) => {
        const m = readinessMarkers(text);
        assert.ok(m.length <= 2);
        assert.deepEqual(m, [HTTP_READY, PMP_READY].filter((x) => m.includes(x)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseNftDnatRules', () => {
  it('finds the forwarding rules in nft output', () => {
    const text = `table inet nat {
	chain prerouting_miniupnpd {
		iif "ext0" @nh,72,8 0x6 th dport 9000 dnat ip to 192.168.77.10:9000
		iif "ext0" @nh,72,8 0x11 th dport 9001 dnat ip to 192.168.77.11:9001
	}
}`;
    assert.deepEqual(parseNftDnatRules(text), [
      'iif "ext0" @nh,72,8 0x6 th dport 9000 dnat ip to 192.168.77.10:9000',
      'iif "ext0" @nh,72,8 0x11 th dport 9001 dnat ip to 192.168.77.11:9001',
    ]);
    assert.deepEqual(parseNftDnatRules('table inet nat {\n\tchain prerouting_miniupnpd {\n\t}\n}\n'), []);
  });

  it('any text gives bounded rule lines that each hold a dnat', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 3000 }), fc.integer({ min: 0, max: 20 }), (text, max) => {
        const rules = parseNftDnatRules(text, max);
        assert.ok(rules.length <= max);
        for (const r of rules) {
          assert.match(r, /\bdnat\b/);
          assert.ok(r.length <= 500);
        }
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.array(fc.constantFrom('dnat to 1.2.3.4:5', 'x', '\n', ' dnat ', 'accept'), { maxLength: 50 }), (parts) => {
        const text = parts.join('\n');
        const expected = text.split('\n').filter((l) => /\bdnat\b/.test(l)).length;
        assert.equal(parseNftDnatRules(text).length, expected);
      }),
    );
  });
});
