import { directoryUrl } from '../acme/directories.js';
import type { AgentOptions } from '../agent/agent.js';
import { resolveDataDir, resolveIdentity } from '../agent/identity.js';
import type { Identity } from '../agent/identity.js';
import { ConfigError } from '../config/errors.js';
import type { Settings } from '../config/settings.js';
import type { ElectionConfigInit } from '../election/config.js';
import { electionConfig } from '../election/config.js';
import { ElectionConfigError } from '../election/errors.js';
import type { LocalNetwork } from '../router/local-network.js';

/** The election's internal knob names, as the user knows them. */
const ELECTION_SETTING: Record<string, string> = {
  leaseMs: '--lease',
  inquiryIntervalMs: '--inquiry-interval',
  silenceTimeoutMs: '--silence-timeout',
  probeIntervalMs: '--probe-interval',
  probeTimeoutMs: '--probe-interval',
  probeMisses: '--probe-misses',
  routerTimeoutMs: '--router-timeout',
  renewFraction: '--lease',
  wellKnownPort: '--public-port',
  detection: '--detection',
  rule: '--rule',
};

export function electionSettings(s: Settings): ElectionConfigInit {
  const init: ElectionConfigInit = {
    wellKnownPort: s.publicPort,
    rule: s.rule,
    leaseMs: s.lease,
    inquiryIntervalMs: s.inquiryInterval,
    silenceTimeoutMs: s.silenceTimeout,
    probeIntervalMs: s.probeInterval,
    probeTimeoutMs: Math.max(1, Math.round(s.probeInterval * 0.8)),
    probeMisses: s.probeMisses,
    routerTimeoutMs: s.routerTimeout,
    detection: {
      withdrawal: s.detection.includes('withdrawal'),
      silence: s.detection.includes('silence'),
      probe: s.detection.includes('probe'),
    },
  };
  // The leaderless wait must outlast a heartbeat gap; keep it tied to the heartbeat the user set.
  init.leaderlessTimeoutMs = Math.max(5000, s.silenceTimeout);
  init.startupListenMs = Math.max(3000, 3 * s.inquiryInterval + 1);
  try {
    electionConfig(init);
  } catch (err) {
    if (err instanceof ElectionConfigError) {
      const key = err.setting.split('.')[0] ?? err.setting;
      if (key === 'renewFraction') {
        const least = Math.ceil((2 * (s.routerTimeout + 500) + 1000) / 1000);
        throw new ConfigError(
          '--lease',
          `${s.lease / 1000} s leaves no time for a failed renewal and a retry before the lease ends: with --router-timeout ${s.routerTimeout} ms it must be at least ${least} s`,
        );
      }
      throw new ConfigError(ELECTION_SETTING[key] ?? err.setting, err.message);
    }
    throw err;
  }
  return init;
}

/** Everything `run` and `status` decide from the settings, checked before anything starts. */
export function agentOptions(s: Settings, net: LocalNetwork, env: NodeJS.ProcessEnv): { options: AgentOptions; identity: Identity } {
  const portalPort = s.portalPort === 0 ? s.publicPort : s.portalPort;
  if (portalPort === s.httpPort) {
    throw new ConfigError(s.portalPort === 0 ? '--public-port' : '--portal-port', `the portal port ${portalPort} must differ from --http-port`);
  }
  if (s.lanMode === 'unicast' && s.peers.length === 0) {
    throw new ConfigError('--peers', 'unicast mode needs the other nodes\' addresses');
  }
  if ((s.tlsCert === '') !== (s.tlsKey === '')) {
    throw new ConfigError(s.tlsCert === '' ? '--tls-key' : '--tls-cert', s.tlsCert === '' ? 'needs --tls-cert too' : 'needs --tls-key too');
  }
  if (s.tls === 'off' && s.tlsCert !== '') throw new ConfigError('--tls-cert', 'is set while --tls is off: drop one of them');
  if (s.acmeChallengePort === s.publicPort) throw new ConfigError('--acme-challenge-port', `must differ from --public-port (${s.publicPort})`);
  const identity = resolveIdentity({ name: s.name, deviceId: s.deviceId, env });
  const options: AgentOptions = {
    name: identity.name,
    id: identity.id,
    deviceValue: identity.deviceValue,
    address: net.localAddress,
    gateway: net.gateway,
    httpPort: s.httpPort,
    portalPort,
    wellKnownPort: s.publicPort,
    router: {
      protocols: s.routerProtocols,
      discoveryTimeoutMs: s.discoveryTimeout,
      requestTimeoutMs: s.routerTimeout,
      ssdpPort: s.ssdpPort,
      natpmpPort: s.natpmpPort,
      multicast: true,
    },
    lan: { mode: s.lanMode, group: s.lanGroup, port: s.lanPort, peers: s.peers, secret: s.secret },
    election: electionSettings(s),
    dataDir: resolveDataDir(s.dataDir, env),
    portal: { password: s.password, lanOpen: s.lanOpen },
    ...(s.tls === 'off' ? {} : { tls: { certFile: s.tlsCert, keyFile: s.tlsKey } }),
    // The user's own certificate wins over ACME; without TLS there is nothing to certify.
    ...(s.tls === 'off' || s.tlsCert !== '' || s.acme === 'off'
      ? {}
      : { acme: { directoryUrl: directoryUrl(s.acme), names: s.acmeName === '' ? [] : [s.acmeName.toLowerCase()], challengePort: s.acmeChallengePort, email: s.acmeEmail } }),
  };
  return { options, identity };
}
