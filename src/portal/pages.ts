import type { NodeStatus, PeerStatus } from './status.js';

/**
 * Server-rendered pages. Every value that came from the LAN or the router goes through `esc`:
 * a node's name is whatever its owner typed, and the pages are on the internet. The one script
 * (/portal.js, script-src 'self') only polls /api/status and reloads when something changed.
 */

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:52rem;padding:1rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.35rem;margin:.2rem 0 .8rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
ul.cards{list-style:none;padding:0;display:grid;gap:.6rem;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr))}
.card{background:#fff;border:1px solid #d0d0d5;border-radius:.6rem;padding:.75rem}.card.rep{border-color:#1a7f4b;box-shadow:0 0 0 1px #1a7f4b}
.role{font-size:.8rem;color:#555}.off{color:#a33}.note{background:#fff7e0;border:1px solid #e6c75a;border-radius:.5rem;padding:.6rem .8rem}
div.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.85rem}td{word-break:break-word}td,th{border-bottom:1px solid #ddd;padding:.25rem .35rem;text-align:left}
small,.muted{color:#666}a{word-break:break-all;color:#0b5cad}form.inline{display:inline}
input,button{font:inherit;padding:.45rem .6rem}button{cursor:pointer}
img.thumb,figure.live img{display:block;width:100%;height:auto;background:#333;border-radius:.4rem}img.thumb{margin-bottom:.5rem;aspect-ratio:16/9;object-fit:cover}figure.live{margin:1rem 0}`;

function page(title: string, body: string, withScript: boolean): string {
  const script = withScript ? '<script src="/portal.js" defer></script>' : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style>${script}</head><body>${body}</body></html>`;
}

function ago(ms: number): string {
  if (ms < 3000) return 'online';
  if (ms < 120_000) return `last seen ${Math.round(ms / 1000)} s ago`;
  return `last seen ${Math.round(ms / 60_000)} min ago`;
}

export type ThumbnailLinks = 'wan' | 'lan';

/** Where a card's thumbnail comes from: the node's own port, as the visitor can reach it. */
function thumbnailUrl(p: PeerStatus, via: ThumbnailLinks): string | null {
  if (!p.camera) return null;
  const base = via === 'wan' ? (p.url ?? null) : p.lanUrl;
  return base === null ? null : `${base}camera.jpg`;
}

/** The origins the portal page loads thumbnails from, for its Content-Security-Policy. */
export function thumbnailOrigins(s: NodeStatus, via: ThumbnailLinks): string[] {
  const out = new Set<string>();
  for (const p of s.nodes) {
    const u = thumbnailUrl(p, via);
    if (u === null) continue;
    try {
      out.add(new URL(u).origin);
    } catch {
      // A malformed link from the LAN gets no thumbnail (the card still escapes it as text).
    }
  }
  return [...out];
}

function card(p: PeerStatus, via: ThumbnailLinks): string {
  const thumb = thumbnailUrl(p, via);
  const img =
    thumb === null
      ? ''
      : `<a href="${esc(p.url ?? p.lanUrl)}"><img class="thumb" src="${esc(thumb)}" data-src="${esc(thumb)}" alt="camera of ${esc(p.name)}" width="320" height="180" loading="lazy" decoding="async"></a>`;
  const link = p.url ? `<a class="node-link" href="${esc(p.url)}">${esc(p.url)}</a>` : '<span class="muted">no public port yet</span>';
  const seen = ago(p.lastSeenMsAgo);
  return (
    `<li class="card node${p.representative ? ' rep' : ''}" data-id="${esc(p.id)}">${img}` +
    `<strong class="node-name">${esc(p.name)}</strong> <span class="role">${p.representative ? 'representative' : 'member'}${p.self ? ' · this node' : ''}</span><br>` +
    `${link}<br><small>LAN <a class="lan-link" href="${esc(p.lanUrl)}">${esc(p.lanUrl)}</a> · <span class="${seen === 'online' ? '' : 'off'}">${seen}</span></small></li>`
  );
}

const WAN_TEXT: Record<string, string> = {
  public: 'public: links work from the internet',
  private: 'private: another router sits between this one and the internet (double NAT); links will not work from outside',
  cgnat: "carrier-grade NAT: your provider's NAT is in the way; links will not work from outside",
  reserved: 'reserved: not reachable from the internet',
  loopback: "loopback: the demo's stand-in for a WAN address",
  unknown: 'not an IPv4 address',
};

function notes(s: NodeStatus): string {
  const out: string[] = [];
  if (s.router.protocol === null) out.push(`The router did not answer UPnP, NAT-PMP or PCP (${esc(s.router.error ?? 'not found')}): turn UPnP or NAT-PMP on in its settings. Only LAN links work meanwhile.`);
  if (s.wanAddress === null && s.router.protocol !== null) out.push('The router has not told its WAN address yet.');
  else if (s.wanAddressClass !== null && s.wanAddressClass !== 'public' && s.wanAddressClass !== 'loopback') out.push(`The WAN address is ${esc(WAN_TEXT[s.wanAddressClass] ?? s.wanAddressClass)}.`);
  if (s.portalError !== null) out.push(`This node cannot serve the portal: ${esc(s.portalError)}. Another node serves it; stop the program that uses the port, or set --portal-port.`);
  if (s.nodes.length <= 1) out.push('Only this node is here so far: other nodes appear as they start (same LAN, same FRONTDOOR_SECRET).');
  return out.map((n) => `<p class="note">${n}</p>`).join('');
}

function routerSection(s: NodeStatus): string {
  const wan = s.wanAddress ? `${esc(s.wanAddress)} <small>(${esc(WAN_TEXT[s.wanAddressClass ?? 'unknown'] ?? '')})</small>` : 'not known yet';
  const rows = (s.routerMappings ?? [])
    .map(
      (m) =>
        `<tr class="${m.frontdoor ? 'fd' : 'other'}"><td>${m.protocol} ${m.externalPort}</td><td>${esc(m.internalClient)}:${m.internalPort}</td><td>${esc(m.description)}</td><td>${m.leaseSeconds > 0 ? `${m.leaseSeconds} s` : 'permanent'}</td><td>${m.frontdoor ? 'frontdoor' : 'other'}</td></tr>`,
    )
    .join('');
  const table =
    s.routerMappings === null
      ? '<p class="muted">The mapping table is read by the representative over UPnP; this router or protocol does not list it.</p>'
      : `<div class="scroll"><table id="mappings"><tr><th>port</th><th>to</th><th>description</th><th>lease</th><th>by</th></tr>${rows}</table></div>`;
  const events = s.events.length
    ? `<ul id="events">${s.events
        .slice(-8)
        .reverse()
        .map((e) => `<li><small>${esc(e.at.slice(0, 19).replace('T', ' '))}</small> ${esc(e.what)}</li>`)
        .join('')}</ul>`
    : '';
  return `<h2>Router</h2><p>WAN address: ${wan}<br>Protocol: ${esc(s.router.protocol ?? 'none')} at ${esc(s.router.gateway)}</p>${table}${events ? `<h2>Recent events</h2>${events}` : ''}`;
}

function passwordNote(note: string | undefined): string {
  return note ? `<p class="muted" id="password-note"><small>${esc(note)}</small></p>` : '';
}

const LOGOUT = '<form class="inline" method="post" action="/logout"><button type="submit">Log out</button></form>';

/** The representative's page on the well-known port: every node, linked by host name (claims 8, 9). */
export function portalPage(s: NodeStatus, opts: { thumbnails?: ThumbnailLinks; passwordNote?: string } = {}): string {
  const via = opts.thumbnails ?? 'wan';
  const nodes = [...s.nodes].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  const body =
    `<h1>frontdoor · ${nodes.length} node${nodes.length === 1 ? '' : 's'}</h1>` +
    `<p><small>served by ${esc(s.name)}</small> ${LOGOUT}</p>${passwordNote(opts.passwordNote)}${notes(s)}` +
    `<ul class="cards" id="nodes">${nodes.map((n) => card(n, via)).join('')}</ul>${routerSection(s)}`;
  return page('frontdoor', body, true);
}

/** A node's own page on its own port. */
export function nodePage(s: NodeStatus, opts: { passwordNote?: string } = {}): string {
  const rep = s.representative
    ? s.representative.url
      ? `Representative: <a id="portal-link" href="${esc(s.representative.url)}">${esc(s.representative.name)}</a>`
      : `Representative: ${esc(s.representative.name)}`
    : 'No representative yet';
  const body =
    `<h1 id="node-name">${esc(s.name)}</h1><p class="role" id="role">${esc(s.role)}</p><p>${rep}</p>${cameraSection(s)}` +
    `<p><small>public port ${s.ports.public || 'none yet'} · local port ${s.ports.local}</small> ${LOGOUT}</p>${passwordNote(opts.passwordNote)}${notes(s)}`;
  return page(s.name, body, true);
}

const CAMERA_TEXT: Record<string, string> = {
  off: 'camera idle: it starts when someone watches',
  starting: 'starting the camera',
  live: 'live',
  failed: 'no picture',
  unavailable: 'no camera',
};

function cameraSection(s: NodeStatus): string {
  const c = s.camera;
  if (c === null) return '';
  const state = `${CAMERA_TEXT[c.state] ?? c.state}${c.reason ? `: ${c.reason}` : ''}`;
  return (
    `<figure class="live"><img id="live" src="/camera.mjpg" alt="live view of ${esc(s.name)}" width="${c.width}" height="${c.height}">` +
    `<figcaption><small>${esc(c.source ?? 'camera')} · <span id="camera-state">${esc(state)}</span> · <a href="/camera.jpg">snapshot</a></small></figcaption></figure>`
  );
}

/**
 * The public login page says nothing of how the fleet is set up (which setting holds the
 * password, which command shows it): that is for the owner, after login (`passwordNote`).
 */
export function loginPage(opts: { failed?: boolean; waitSeconds?: number } = {}): string {
  const msg = opts.waitSeconds
    ? `<p class="note" id="login-error">Too many wrong passwords from your address: wait ${opts.waitSeconds} s.</p>`
    : opts.failed
      ? '<p class="note" id="login-error">Wrong password.</p>'
      : '';
  const body =
    `<h1>frontdoor</h1>${msg}<form id="login" method="post" action="/login">` +
    '<label for="password">Password</label><br><input id="password" name="password" type="password" autocomplete="current-password" required autofocus> ' +
    '<button type="submit">Log in</button></form><p><small>Ask whoever set up these cameras for the password.</small></p>';
  return page('frontdoor: log in', body, false);
}

/** Polls the status and reloads the page when the nodes, their roles or links change. */
export const PORTAL_SCRIPT = `(() => {
  let last;
  const key = (s) => JSON.stringify([s.role, s.representative && s.representative.id, s.wanAddress,
    s.nodes.map((n) => [n.id, n.name, n.representative, n.url, n.lastSeenMsAgo < 3000])]);
  const tick = async () => {
    try {
      const r = await fetch('/api/status', { credentials: 'same-origin', cache: 'no-store' });
      if (r.status === 401) { location.assign('/login'); return; }
      if (r.ok) {
        const k = key(await r.json());
        if (last !== undefined && k !== last) { location.reload(); return; }
        last = k;
      }
    } catch {}
    setTimeout(tick, 3000);
  };
  tick();
  // Thumbnails: a new snapshot every 5 s, each only after the last one has loaded (or failed),
  // so a slow node is never asked twice at once.
  for (const img of document.querySelectorAll('img.thumb')) {
    const again = () => setTimeout(() => { img.src = img.dataset.src + '?t=' + Date.now(); }, 5000);
    img.addEventListener('load', again);
    img.addEventListener('error', again);
    if (img.complete) again();
  }
})();
`;
