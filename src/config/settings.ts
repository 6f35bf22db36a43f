/**
 * Every setting frontdoor has, in one place: its default, flag, environment variable, help text
 * and how it is checked. `frontdoor --help` and docs/configuration.md are made from this list,
 * so they cannot drift from the code.
 */
import { isIPv4 } from 'node:net';

export type SettingType = 'port' | 'int' | 'duration' | 'string' | 'ipv4' | 'bool' | 'enum' | 'list' | 'addresses';

export interface SettingSpec<T = unknown> {
  /** Key in code and in the config file. */
  key: string;
  flag: string;
  env: string;
  type: SettingType;
  default: T;
  /** How the default reads in help when it is computed at run time. */
  defaultText?: string;
  help: string;
  group: 'router' | 'node' | 'portal' | 'camera' | 'lan' | 'election' | 'logging';
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** For strings with a grammar: a JSON-schema pattern, checked at start like any other bound. */
  pattern?: string;
  /** What the pattern means, for the error message: `"x" is not <patternText>`. */
  patternText?: string;
}

function spec<T>(s: SettingSpec<T>): SettingSpec<T> {
  return s;
}

export const SETTINGS = [
  spec({
    key: 'config',
    flag: '--config',
    env: 'FRONTDOOR_CONFIG',
    type: 'string',
    default: '',
    defaultText: 'none',
    help: 'A JSON file of settings (keys as in config/frontdoor.json); the environment and flags win over it.',
    group: 'node',
  }),
  spec({
    key: 'gateway',
    flag: '--gateway',
    env: 'FRONTDOOR_GATEWAY',
    type: 'ipv4',
    default: '',
    defaultText: 'the default route',
    help: "The router's LAN address.",
    group: 'router',
  }),
  spec({
    key: 'interface',
    flag: '--interface',
    env: 'FRONTDOOR_INTERFACE',
    type: 'string',
    default: '',
    defaultText: "the default route's",
    help: 'Network interface to use; its first IPv4 address becomes --address.',
    group: 'router',
  }),
  spec({
    key: 'address',
    flag: '--address',
    env: 'FRONTDOOR_ADDRESS',
    type: 'ipv4',
    default: '',
    defaultText: 'the address facing the gateway',
    help: 'This node\'s LAN address: requests to the router are sent from it and mappings point to it.',
    group: 'router',
  }),
  spec({
    key: 'routerProtocols',
    flag: '--router-protocols',
    env: 'FRONTDOOR_ROUTER_PROTOCOLS',
    type: 'list',
    default: ['upnp', 'natpmp', 'pcp'],
    choices: ['upnp', 'natpmp', 'pcp'],
    help: 'Port-mapping protocols to try, comma-separated; UPnP is preferred since only it can list the table.',
    group: 'router',
  }),
  spec({
    key: 'discoveryTimeout',
    flag: '--discovery-timeout',
    env: 'FRONTDOOR_DISCOVERY_TIMEOUT',
    type: 'duration',
    default: 3000,
    min: 100,
    max: 60000,
    help: 'How long to wait for the router to answer discovery (it stops early once UPnP answers).',
    group: 'router',
  }),
  spec({
    key: 'routerTimeout',
    flag: '--router-timeout',
    env: 'FRONTDOOR_ROUTER_TIMEOUT',
    type: 'duration',
    default: 3000,
    min: 100,
    max: 60000,
    help: 'How long one request to the router may take.',
    group: 'router',
  }),
  spec({
    key: 'ssdpPort',
    flag: '--ssdp-port',
    env: 'FRONTDOOR_SSDP_PORT',
    type: 'port',
    default: 1900,
    help: "The router's SSDP (UPnP discovery) port; only an emulated router uses another.",
    group: 'router',
  }),
  spec({
    key: 'natpmpPort',
    flag: '--natpmp-port',
    env: 'FRONTDOOR_NATPMP_PORT',
    type: 'port',
    default: 5351,
    help: "The router's NAT-PMP and PCP port; only an emulated router uses another.",
    group: 'router',
  }),
  spec({
    key: 'publicPort',
    flag: '--public-port',
    env: 'FRONTDOOR_PUBLIC_PORT',
    type: 'port',
    default: 8080,
    help: 'The well-known public port: the representative serves the portal on it.',
    group: 'node',
  }),
  spec({
    key: 'name',
    flag: '--name',
    env: 'FRONTDOOR_NAME',
    type: 'string',
    default: '',
    defaultText: 'BALENA_DEVICE_NAME_AT_INIT, else the host name',
    help: 'The host name shown for this node in the portal and its links (claim 9).',
    group: 'node',
  }),
  spec({
    key: 'deviceId',
    flag: '--device-id',
    env: 'FRONTDOOR_DEVICE_ID',
    type: 'string',
    default: '',
    defaultText: 'BALENA_DEVICE_UUID, else /etc/machine-id',
    help: "A value unique to this device: the node's id on the LAN, and the device rule's order (hashed, never sent as is).",
    group: 'node',
  }),
  spec({
    key: 'httpPort',
    flag: '--http-port',
    env: 'FRONTDOOR_HTTP_PORT',
    type: 'port',
    default: 8081,
    help: "This node's own page and /api/status; the router maps a public port to it (this number when free).",
    group: 'node',
  }),
  spec({
    key: 'portalPort',
    flag: '--portal-port',
    env: 'FRONTDOOR_PORTAL_PORT',
    type: 'int',
    default: 0,
    min: 0,
    max: 65535,
    defaultText: 'the public port',
    help: 'The local port the representative serves the portal on; the well-known public port is mapped to it.',
    group: 'node',
  }),
  spec({
    key: 'dataDir',
    flag: '--data-dir',
    env: 'FRONTDOOR_DATA_DIR',
    type: 'string',
    default: '',
    defaultText: '/data when it exists (balena), else ~/.local/state/frontdoor',
    help: 'Where the node keeps what must survive a restart (the router it found last).',
    group: 'node',
  }),
  spec({
    key: 'password',
    flag: '--password',
    env: 'FRONTDOOR_PASSWORD',
    type: 'string',
    default: '',
    defaultText: 'derived from the fleet secret, else made at first start and kept in the data directory',
    help: 'The portal password (user admin for HTTP basic auth): one login serves every node. Prefer the environment (a balena fleet variable); flags show in ps. frontdoor status prints it.',
    group: 'portal',
  }),
  spec({
    key: 'lanOpen',
    flag: '--lan-open',
    env: 'FRONTDOOR_LAN_OPEN',
    type: 'bool',
    default: false,
    help: "Let clients of this node's subnet in without a login. Risk: anyone on your Wi-Fi sees every camera; the router's own address never counts, since some routers make internet clients look like it.",
    group: 'portal',
  }),
  spec({
    key: 'tls',
    flag: '--tls',
    env: 'FRONTDOOR_TLS',
    type: 'enum',
    default: 'auto',
    choices: ['auto', 'off'],
    help: "HTTPS on every public port (plain HTTP from outside gets a redirect): auto uses --tls-cert/--tls-key when given, else a certificate the fleet makes itself (docs/tls.md). off: plain HTTP, the password crosses the internet in the clear.",
    group: 'portal',
  }),
  spec({
    key: 'tlsCert',
    flag: '--tls-cert',
    env: 'FRONTDOOR_TLS_CERT',
    type: 'string',
    default: '',
    defaultText: 'none',
    help: 'Your own certificate (PEM, full chain), e.g. for a dynamic-DNS name; read again when it changes. Needs --tls-key.',
    group: 'portal',
  }),
  spec({
    key: 'tlsKey',
    flag: '--tls-key',
    env: 'FRONTDOOR_TLS_KEY',
    type: 'string',
    default: '',
    defaultText: 'none',
    help: "The private key of --tls-cert (PEM, unencrypted).",
    group: 'portal',
  }),
  spec({
    key: 'acme',
    flag: '--acme',
    env: 'FRONTDOOR_ACME',
    type: 'string',
    default: 'letsencrypt',
    pattern: '^(off|letsencrypt|letsencrypt-staging|https://[^\\s]{1,2000})$',
    patternText: 'one of off, letsencrypt, letsencrypt-staging or an https:// ACME directory URL',
    help: "Where the representative gets a trusted certificate for the WAN address (or --acme-name) when no --tls-cert is given, and shares it with every node (with a fleet secret): letsencrypt (you accept its subscriber agreement), letsencrypt-staging, an ACME directory URL, or off. Needs the router to forward --acme-challenge-port for a moment; else the fleet's own certificate is served (docs/tls.md).",
    group: 'portal',
  }),
  spec({
    key: 'acmeName',
    flag: '--acme-name',
    env: 'FRONTDOOR_ACME_NAME',
    type: 'string',
    default: '',
    defaultText: 'the WAN address',
    pattern: '^$|^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$',
    patternText: 'a DNS name such as cams.example.net',
    help: 'A DNS name that points at the router (dynamic DNS) to get the ACME certificate for, instead of the WAN address.',
    group: 'portal',
  }),
  spec({
    key: 'acmeChallengePort',
    flag: '--acme-challenge-port',
    env: 'FRONTDOOR_ACME_CHALLENGE_PORT',
    type: 'port',
    default: 80,
    help: 'The public port the CA connects to for the http-01 challenge, forwarded only while it looks: 80 for every public CA; only a test CA uses another.',
    group: 'portal',
  }),
  spec({
    key: 'acmeEmail',
    flag: '--acme-email',
    env: 'FRONTDOOR_ACME_EMAIL',
    type: 'string',
    default: '',
    defaultText: 'none',
    pattern: '^$|^[^\\s@]{1,64}@[^\\s@]{1,253}$',
    patternText: 'an e-mail address',
    help: "A contact address given to the CA for its notices (optional).",
    group: 'portal',
  }),
  spec({
    key: 'camera',
    flag: '--camera',
    env: 'FRONTDOOR_CAMERA',
    type: 'string',
    default: 'auto',
    pattern: '^(auto|rpicam|test|none|v4l2(:/dev/[A-Za-z0-9._/-]{1,64})?)$',
    patternText: 'one of auto, rpicam, v4l2, v4l2:/dev/videoN, test or none',
    help: 'The picture source (claim 17): auto (the Pi camera, else the first USB webcam, else none), rpicam, v4l2 or v4l2:/dev/videoN, test (a test pattern), none.',
    group: 'camera',
  }),
  spec({
    key: 'cameraWidth',
    flag: '--camera-width',
    env: 'FRONTDOOR_CAMERA_WIDTH',
    type: 'int',
    default: 1280,
    min: 16,
    max: 4096,
    help: 'Picture width in pixels.',
    group: 'camera',
  }),
  spec({
    key: 'cameraHeight',
    flag: '--camera-height',
    env: 'FRONTDOOR_CAMERA_HEIGHT',
    type: 'int',
    default: 720,
    min: 16,
    max: 4096,
    help: 'Picture height in pixels.',
    group: 'camera',
  }),
  spec({
    key: 'cameraFps',
    flag: '--camera-fps',
    env: 'FRONTDOOR_CAMERA_FPS',
    type: 'int',
    default: 15,
    min: 1,
    max: 60,
    help: 'Frames per second the camera captures.',
    group: 'camera',
  }),
  spec({
    key: 'cameraQuality',
    flag: '--camera-quality',
    env: 'FRONTDOOR_CAMERA_QUALITY',
    type: 'int',
    default: 80,
    min: 1,
    max: 100,
    help: 'JPEG quality, 1-100 (higher: sharper and larger frames).',
    group: 'camera',
  }),
  spec({
    key: 'cameraIdle',
    flag: '--camera-idle',
    env: 'FRONTDOOR_CAMERA_IDLE',
    type: 'duration',
    default: 30000,
    min: 0,
    max: 86_400_000,
    help: 'How long the camera keeps capturing after its last viewer left (the Pi stays cool while no one watches).',
    group: 'camera',
  }),
  spec({
    key: 'cameraAlwaysOn',
    flag: '--camera-always-on',
    env: 'FRONTDOOR_CAMERA_ALWAYS_ON',
    type: 'bool',
    default: false,
    help: 'Keep capturing with no viewer, so the first picture comes at once.',
    group: 'camera',
  }),
  spec({
    key: 'cameraWanFps',
    flag: '--camera-wan-fps',
    env: 'FRONTDOOR_CAMERA_WAN_FPS',
    type: 'int',
    default: 0,
    min: 0,
    max: 60,
    defaultText: 'no cap',
    help: "Frame-rate cap for live viewers outside the LAN (a phone on mobile data); 0: the camera's rate.",
    group: 'camera',
  }),
  spec({
    key: 'secret',
    flag: '--secret',
    env: 'FRONTDOOR_SECRET',
    type: 'string',
    default: '',
    defaultText: 'none (LAN messages unauthenticated)',
    help: 'The fleet secret: every LAN message carries an HMAC made with it. Set the same on every node (a balena fleet variable); prefer the environment, since flags show in ps.',
    group: 'lan',
  }),
  spec({
    key: 'lanMode',
    flag: '--lan-mode',
    env: 'FRONTDOOR_LAN_MODE',
    type: 'enum',
    default: 'multicast',
    choices: ['multicast', 'broadcast', 'unicast'],
    help: 'How nodes reach each other (claim 5); known peers also get a unicast copy, since Wi-Fi loses multicast.',
    group: 'lan',
  }),
  spec({
    key: 'lanGroup',
    flag: '--lan-group',
    env: 'FRONTDOOR_LAN_GROUP',
    type: 'ipv4',
    default: '239.255.70.68',
    help: 'The multicast group of the LAN protocol (site-local scope).',
    group: 'lan',
  }),
  spec({
    key: 'lanPort',
    flag: '--lan-port',
    env: 'FRONTDOOR_LAN_PORT',
    type: 'port',
    default: 4862,
    help: 'The UDP port of the LAN protocol; the same on every node.',
    group: 'lan',
  }),
  spec({
    key: 'peers',
    flag: '--peers',
    env: 'FRONTDOOR_PEERS',
    type: 'addresses',
    default: [],
    defaultText: 'none',
    help: 'Other nodes\' LAN addresses, comma-separated: needed in unicast mode, a fallback otherwise.',
    group: 'lan',
  }),
  spec({
    key: 'rule',
    flag: '--rule',
    env: 'FRONTDOOR_RULE',
    type: 'enum',
    default: 'random',
    choices: ['random', 'ports', 'device'],
    help: 'Who takes over the well-known port: random back-off (claim 11), lowest public port (12), device value order (13).',
    group: 'election',
  }),
  spec({
    key: 'detection',
    flag: '--detection',
    env: 'FRONTDOOR_DETECTION',
    type: 'list',
    default: ['withdrawal', 'silence', 'probe'],
    choices: ['withdrawal', 'silence', 'probe'],
    help: "How followers notice the representative left: its withdrawal notice (claim 14), missing inquiries (15), unanswered probes (16).",
    group: 'election',
  }),
  spec({
    key: 'lease',
    flag: '--lease',
    env: 'FRONTDOOR_LEASE',
    type: 'duration',
    default: 20000,
    min: 4000,
    max: 86_400_000,
    help: 'Lease asked for the well-known mapping, whole seconds; without a floating address it bounds crash failover.',
    group: 'election',
  }),
  spec({
    key: 'inquiryInterval',
    flag: '--inquiry-interval',
    env: 'FRONTDOOR_INQUIRY_INTERVAL',
    type: 'duration',
    default: 1000,
    min: 50,
    max: 60000,
    help: 'How often the representative sends its inquiry (claim 4), the heartbeat followers listen for.',
    group: 'election',
  }),
  spec({
    key: 'silenceTimeout',
    flag: '--silence-timeout',
    env: 'FRONTDOOR_SILENCE_TIMEOUT',
    type: 'duration',
    default: 5000,
    min: 150,
    max: 600000,
    help: 'Silence after which the representative is taken as gone (claim 15); must exceed two inquiry intervals.',
    group: 'election',
  }),
  spec({
    key: 'probeInterval',
    flag: '--probe-interval',
    env: 'FRONTDOOR_PROBE_INTERVAL',
    type: 'duration',
    default: 200,
    min: 50,
    max: 60000,
    help: 'How often followers probe the representative (claim 16); a probe not answered within 80 % of this is a miss.',
    group: 'election',
  }),
  spec({
    key: 'probeMisses',
    flag: '--probe-misses',
    env: 'FRONTDOOR_PROBE_MISSES',
    type: 'int',
    default: 3,
    min: 1,
    max: 100,
    help: 'Probes in a row unanswered that mean the representative is gone.',
    group: 'election',
  }),
  spec({
    key: 'floatingAddress',
    flag: '--floating-address',
    env: 'FRONTDOOR_FLOATING_ADDRESS',
    type: 'string',
    default: 'off',
    help: 'A spare LAN address the representative holds and the well-known port is mapped to, so a crash fails over in under a second (needs NET_ADMIN; docs/floating-address.md). off: map to the node\'s own address.',
    group: 'election',
  }),
  spec({
    key: 'logLevel',
    flag: '--log-level',
    env: 'FRONTDOOR_LOG_LEVEL',
    type: 'enum',
    default: 'info',
    choices: ['debug', 'info', 'warn', 'error'],
    help: 'Least severe log level printed.',
    group: 'logging',
  }),
  spec({
    key: 'logFormat',
    flag: '--log-format',
    env: 'FRONTDOOR_LOG_FORMAT',
    type: 'enum',
    default: 'auto',
    choices: ['auto', 'json', 'text'],
    help: 'Log lines as JSON or text; auto is text on a terminal, JSON otherwise.',
    group: 'logging',
  }),
] as const;

export interface Settings {
  config: string;
  gateway: string;
  interface: string;
  address: string;
  routerProtocols: Array<'upnp' | 'natpmp' | 'pcp'>;
  discoveryTimeout: number;
  routerTimeout: number;
  ssdpPort: number;
  natpmpPort: number;
  publicPort: number;
  name: string;
  deviceId: string;
  httpPort: number;
  portalPort: number;
  dataDir: string;
  password: string;
  lanOpen: boolean;
  tls: 'auto' | 'off';
  tlsCert: string;
  tlsKey: string;
  acme: string;
  acmeName: string;
  acmeChallengePort: number;
  acmeEmail: string;
  camera: string;
  cameraWidth: number;
  cameraHeight: number;
  cameraFps: number;
  cameraQuality: number;
  cameraIdle: number;
  cameraAlwaysOn: boolean;
  cameraWanFps: number;
  secret: string;
  lanMode: 'multicast' | 'broadcast' | 'unicast';
  lanGroup: string;
  lanPort: number;
  peers: string[];
  rule: 'random' | 'ports' | 'device';
  detection: Array<'withdrawal' | 'silence' | 'probe'>;
  lease: number;
  inquiryInterval: number;
  silenceTimeout: number;
  probeInterval: number;
  probeMisses: number;
  floatingAddress: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  logFormat: 'auto' | 'json' | 'text';
}

/** Parses "250ms", "2s", "1.5m", "1h" or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const factor = unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1;
  const ms = Math.round(n * factor);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Turns one raw text value into a typed one, or says what is wrong with it. */
export function parseSettingValue(s: SettingSpec, raw: string): { value: unknown } | { error: string } {
  switch (s.type) {
    case 'port':
    case 'int': {
      if (!/^\d{1,10}$/.test(raw.trim())) return { error: `"${raw}" is not a whole number` };
      const n = Number(raw.trim());
      const min = s.min ?? (s.type === 'port' ? 1 : 0);
      const max = s.max ?? (s.type === 'port' ? 65535 : Number.MAX_SAFE_INTEGER);
      if (n < min || n > max) return { error: `${n} is outside ${min}-${max}` };
      return { value: n };
    }
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined) return { error: `"${raw}" is not a duration (e.g. 500ms, 3s, 2m)` };
      if (s.min !== undefined && ms < s.min) return { error: `${raw} is shorter than ${s.min} ms` };
      if (s.max !== undefined && ms > s.max) return { error: `${raw} is longer than ${s.max} ms` };
      return { value: ms };
    }
    case 'ipv4':
      if (raw !== '' && !isIPv4(raw)) return { error: `"${raw}" is not an IPv4 address` };
      return { value: raw };
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return { value: true };
      if (['0', 'false', 'no', 'off'].includes(v)) return { value: false };
      return { error: `"${raw}" is not true or false` };
    }
    case 'enum':
      if (!s.choices?.includes(raw)) return { error: `"${raw}" is not one of ${s.choices?.join(', ')}` };
      return { value: raw };
    case 'list': {
      const items = raw
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      if (items.length === 0) return { error: 'the list is empty' };
      const bad = items.find((i) => s.choices && !s.choices.includes(i));
      if (bad) return { error: `"${bad}" is not one of ${s.choices?.join(', ')}` };
      return { value: [...new Set(items)] };
    }
    case 'addresses': {
      const items = raw
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      if (items.length > 64) return { error: 'lists more than 64 addresses' };
      const bad = items.find((i) => !isIPv4(i));
      if (bad !== undefined) return { error: `"${bad}" is not an IPv4 address` };
      return { value: [...new Set(items)] };
    }
    case 'string':
      if (raw.length > 256) return { error: 'is longer than 256 characters' };
      if (s.pattern !== undefined && !new RegExp(s.pattern).test(raw)) return { error: `"${raw}" is not ${s.patternText ?? `a match of ${s.pattern}`}` };
      return { value: raw };
  }
}
