import type { AcmeStatus } from '../acme/manager.js';
import { resolveDataDir } from '../agent/identity.js';
import { resolveCredentials } from '../portal/auth.js';
import type { NodeStatus } from '../portal/status.js';
import type { CommandContext } from './main.js';

/** `frontdoor status`: asks the local node (GET /api/status) and says it in words. */
export async function statusCommand(ctx: CommandContext): Promise<number> {
  const s = ctx.config.settings;
  const url = typeof ctx.options.url === 'string' ? ctx.options.url : `http://127.0.0.1:${s.httpPort}/api/status`;
  let status: NodeStatus;
  // The same password the node uses: from the setting, the fleet secret or its data directory.
  // Only readable where the node's data directory is, which is the point: this runs on the node.
  let password: string | undefined;
  try {
    password =
      s.password !== '' || s.secret !== ''
        ? (await resolveCredentials({ password: s.password, secret: s.secret })).password
        : await readPassword(resolveDataDir(s.dataDir, ctx.io.env));
  } catch {
    password = undefined;
  }
  try {
    const headers: Record<string, string> = password ? { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } : {};
    const res = await fetch(url, { headers, signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(s.routerTimeout)]) });
    if (res.status === 401) {
      throw new Error('the node wants a password this command does not have: run it with the same FRONTDOOR_SECRET/FRONTDOOR_PASSWORD and --data-dir as the node');
    }
    if (!res.ok) throw new Error(`the node answered ${res.status} ${res.statusText}`);
    status = (await res.json()) as NodeStatus;
  } catch (err) {
    const why = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    ctx.io.stderr(`frontdoor status: cannot reach the node at ${url} (${why}). Is \`frontdoor run\` running, with this --http-port?\n`);
    return 1;
  }
  ctx.io.stdout(ctx.options.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, password));
  return 0;
}

async function readPassword(dataDir: string): Promise<string | undefined> {
  const { readFile } = await import('node:fs/promises');
  const { passwordFile } = await import('../portal/auth.js');
  try {
    return (await readFile(passwordFile(dataDir), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

const TLS_SOURCE: Record<string, string> = {
  files: 'your certificate files',
  acme: 'a trusted certificate from the ACME CA (--acme)',
  fleet: "the fleet's own certificate (the same on every node; check this fingerprint when your browser asks)",
  node: "this node's own certificate (no fleet secret)",
};

function acmeLine(a: AcmeStatus): string {
  const names = a.names.join(', ') || 'the WAN address';
  switch (a.state) {
    case 'valid':
      return `certificate for ${names}, shared with ${a.sharedWith} other node(s)`;
    case 'obtaining':
      return `asking the CA for ${names}`;
    case 'waiting':
      return `waiting: ${a.error ?? ''}`;
    default:
      return `failed: ${a.error ?? ''}; next try ${a.nextAt ?? '?'}`;
  }
}

function seconds(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

export function formatStatus(s: NodeStatus, password?: string): string {
  const out: string[] = [];
  const role = s.role === 'representative' ? 'the representative' : s.role === 'follower' ? 'a member' : s.role;
  out.push(`Node        ${s.name} (id ${s.id}) is ${role}, for ${seconds(s.roleSinceMs)}`);
  if (s.representative) {
    out.push(`Portal      ${s.representative.url ?? '(WAN address not known yet)'}  served by ${s.representative.name}`);
  } else {
    out.push('Portal      no representative yet');
  }
  const self = s.nodes.find((n) => n.self);
  out.push(
    `This node   ${self?.url ?? (s.ports.public ? `public port ${s.ports.public}` : 'no public port yet')}  (LAN ${self?.lanUrl ?? `port ${s.ports.local}`})`,
  );
  const router = s.router.protocol ? `${s.router.protocol} at ${s.router.gateway}` : `not found at ${s.router.gateway}`;
  out.push(`Router      ${router}${s.router.error ? ` (${s.router.error})` : ''}`);
  out.push(`WAN         ${s.wanAddress ? `${s.wanAddress} (${s.wanAddressClass})` : 'not known yet'}`);
  out.push(
    `LAN         ${s.lan.mode}, port ${s.lan.port}, ${s.lan.authenticated ? 'authenticated' : 'NOT authenticated (set FRONTDOOR_SECRET)'}; ${s.lan.dropped} of ${s.lan.received} messages dropped`,
  );
  out.push(
    s.tls
      ? `TLS         ${TLS_SOURCE[s.tls.source] ?? s.tls.source}, SHA-256 ${s.tls.fingerprint}${s.tls.error ? `\n            problem with the certificate files: ${s.tls.error}` : ''}`
      : 'TLS         off: plain HTTP, the password crosses the internet in the clear (--tls off)',
  );
  const acme = s.tls?.acme;
  if (acme && acme.state !== 'idle') out.push(`ACME        ${acmeLine(acme)}`);
  if (password !== undefined) out.push(`Password    ${password}  (user admin; the portal's login on every node)`);
  out.push(`Nodes (${s.nodes.length}):`);
  const width = Math.max(...s.nodes.map((n) => n.name.length), 4);
  for (const n of s.nodes) {
    const mark = n.representative ? '*' : ' ';
    const seen = n.self ? 'this node' : `seen ${seconds(n.lastSeenMsAgo)} ago`;
    out.push(`  ${mark} ${n.name.padEnd(width)}  ${(n.url ?? 'no public port').padEnd(28)}  LAN ${n.lanUrl}  ${seen}`);
  }
  if (s.events.length > 0) {
    out.push('Recent:');
    for (const e of s.events.slice(-5)) out.push(`  ${e.at.slice(11, 19)} ${e.what}`);
  }
  return `${out.join('\n')}\n`;
}
