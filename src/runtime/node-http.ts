import { createRequire } from 'node:module';

/**
 * node:http's functions, taken with require instead of an ES import. From Node 22 node:http has
 * lazy getters (WebSocket, CloseEvent, MessageEvent) that an ES import's namespace evaluates at
 * once, which loads Node's bundled undici: about 13 MB more RSS on Node 24 for an idle node that
 * never opens a WebSocket. Types still come from `import type … from 'node:http'`.
 */
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export const { createServer, request } = http;
