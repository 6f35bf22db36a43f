import { directoryUrl } from '../acme/directories.js';
import type { AgentOptions } from '../agent/agent.js';
import { resolveDataDir, resolveIdentity } from '../agent/identity.js';
import type { Identity } from '../agent/identity.js';
import { ConfigError } from '../config/errors.js';
import type { Settings } from '../config/settings.js';
import { electionSettings } from '../election/config.js';
import type { LocalNetwork } from '../router/local-network.js';

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
