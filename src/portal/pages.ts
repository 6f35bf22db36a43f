import type { NodeStatus, PeerStatus } from './status.js';

/**
 * Server-rendered pages. Every value that came from the LAN or the router goes through `esc`:
 * a node's name is whatever its owner typed, and the pages are on the internet.
 */

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;max-width:46rem;padding:1rem;color:#222}
h1{font-size:1.4rem;margin:.2rem 0 1rem}ul{list-style:none;padding:0}
li{border:1px solid #ccc;border-radius:.5rem;padding:.7rem;margin:.5rem 0}
.role{font-size:.8rem;color:#555}.rep{border-color:#2a7}small{color:#666}a{word-break:break-all}`;

function page(title: string, body: string, refreshSeconds?: number): string {
  const refresh = refreshSeconds ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">${refresh}<title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

function ago(ms: number): string {
  if (ms < 2000) return 'now';
  if (ms < 120_000) return `${Math.round(ms / 1000)} s ago`;
  return `${Math.round(ms / 60_000)} min ago`;
}

function nodeItem(p: PeerStatus): string {
  const link = p.url ? `<a class="node-link" href="${esc(p.url)}">${esc(p.url)}</a>` : '<small>no public port yet</small>';
  return `<li class="node${p.representative ? ' rep' : ''}" data-id="${esc(p.id)}"><strong class="node-name">${esc(p.name)}</strong> <span class="role">${p.representative ? 'representative' : 'member'}${p.self ? ', this node' : ''}</span><br>${link}<br><small>LAN <a href="${esc(p.lanUrl)}">${esc(p.lanUrl)}</a> · seen ${ago(p.lastSeenMsAgo)}</small></li>`;
}

/** The representative's page on the well-known port: every node, linked by host name (claims 8, 9). */
export function portalPage(s: NodeStatus): string {
  const nodes = [...s.nodes].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  const wan = s.wanAddress ? `WAN address ${esc(s.wanAddress)}` : 'WAN address not known yet';
  const body = `<h1>frontdoor · ${nodes.length} node${nodes.length === 1 ? '' : 's'}</h1><p><small>${wan} · served by ${esc(s.name)}</small></p><ul id="nodes">${nodes.map(nodeItem).join('')}</ul>`;
  return page('frontdoor', body, 5);
}

/** A node's own page on its own port. */
export function nodePage(s: NodeStatus): string {
  const rep = s.representative
    ? s.representative.url
      ? `Representative: <a id="portal-link" href="${esc(s.representative.url)}">${esc(s.representative.name)}</a>`
      : `Representative: ${esc(s.representative.name)}`
    : 'No representative yet';
  const body = `<h1 id="node-name">${esc(s.name)}</h1><p class="role" id="role">${esc(s.role)}</p><p>${rep}</p><p><small>public port ${s.ports.public || 'none yet'} · local port ${s.ports.local}</small></p>`;
  return page(s.name, body, 10);
}
