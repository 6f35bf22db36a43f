import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runCommand } from './command.js';
import { RemoteError, TestbedError } from './testbed-error.js';

/**
 * Runs one export of our own compiled code in another network namespace and brings its result
 * back as JSON. This is how integration tests run the router clients inside a LAN host: a socket
 * cannot be moved into a namespace from Node, a process can.
 *
 * As a script:  node ns-call.js <absolute module path> <export name> <json array of args>
 * prints one line `{"value":...}` or `{"error":{"name","code","message",...}}` last on stdout
 * (anything the module printed before stays above it) and exits 0 or 1.
 */

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  /** Other primitive own fields of the error (`externalPort`, `upnpCode`...). */
  fields?: Record<string, string | number | boolean | null>;
}

export type NsCallOutcome = { value: unknown } | { error: SerializedError };

const MAX_TEXT = 4000;
const MAX_FIELDS = 32;

/** Any thrown value as a bounded, JSON-safe description. */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) {
    let text: string;
    try {
      text = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
    } catch {
      text = Object.prototype.toString.call(err);
    }
    return { name: 'NonError', message: clip(text) };
  }
  const out: SerializedError = { name: clip(String(err.name)), message: clip(String(err.message)) };
  const rec = err as unknown as Record<string, unknown>;
  if (typeof rec['code'] === 'string') out.code = clip(rec['code']);
  if (typeof err.stack === 'string') out.stack = clip(err.stack);
  const fields: Record<string, string | number | boolean | null> = {};
  let n = 0;
  for (const key of Object.keys(err)) {
    if (n >= MAX_FIELDS) break;
    if (key === 'code' || key === 'name' || key === 'message' || key === 'stack') continue;
    const v = rec[key];
    if (typeof v === 'string') fields[clip(key, 100)] = clip(v);
    else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean' || v === null) fields[clip(key, 100)] = v;
    else continue;
    n++;
  }
  if (n > 0) out.fields = fields;
  return out;
}

function clip(s: string, max = MAX_TEXT): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** The line the script prints; a leading newline so a module's unterminated output stays above it. */
export function formatNsCallOutcome(outcome: NsCallOutcome): string {
  if ('error' in outcome) return `\n${JSON.stringify({ error: outcome.error })}\n`;
  try {
    return `\n${JSON.stringify({ value: outcome.value ?? null })}\n`;
  } catch (err) {
    // BigInt, cycles: the call worked but its result cannot cross the boundary.
    return `\n${JSON.stringify({ error: { ...serializeError(err), code: 'TB_BAD_OUTPUT' } })}\n`;
  }
}

/**
 * The outcome in the script's stdout: its last non-empty line. Throws TestbedError TB_BAD_OUTPUT
 * for anything else (the process crashed before printing, or printed garbage last).
 */
export function parseNsCallOutput(stdout: string): NsCallOutcome {
  const trimmed = stdout.trimEnd();
  const last = trimmed.slice(trimmed.lastIndexOf('\n') + 1).trim();
  if (last === '') throw new TestbedError('TB_BAD_OUTPUT', 'ns-call printed nothing');
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    throw new TestbedError('TB_BAD_OUTPUT', `ns-call's last line is not JSON: ${clip(last, 200)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TestbedError('TB_BAD_OUTPUT', `ns-call's last line is not an outcome: ${clip(last, 200)}`);
  }
  const rec = parsed as Record<string, unknown>;
  if ('value' in rec && !('error' in rec)) return { value: rec['value'] };
  const e = rec['error'];
  if (typeof e === 'object' && e !== null && !('value' in rec)) {
    const er = e as Record<string, unknown>;
    if (typeof er['name'] === 'string' && typeof er['message'] === 'string') {
      const out: SerializedError = { name: clip(er['name']), message: clip(er['message']) };
      if (typeof er['code'] === 'string') out.code = clip(er['code']);
      if (typeof er['stack'] === 'string') out.stack = clip(er['stack']);
      const f = er['fields'];
      if (typeof f === 'object' && f !== null && !Array.isArray(f)) {
        const fields: Record<string, string | number | boolean | null> = {};
        for (const [k, v] of Object.entries(f).slice(0, MAX_FIELDS)) {
          if (typeof v === 'string') fields[clip(k, 100)] = clip(v);
          else if (typeof v === 'number' || typeof v === 'boolean' || v === null) fields[clip(k, 100)] = v;
        }
        out.fields = fields;
      }
      return { error: out };
    }
  }
  throw new TestbedError('TB_BAD_OUTPUT', `ns-call's last line is not an outcome: ${clip(last, 200)}`);
}

/** The error a caller sees for a remote `{error}`: same name, code, message and fields. */
export function toRemoteError(e: SerializedError): RemoteError {
  const err = new RemoteError(e.name, e.message, e.code, e.stack);
  for (const [k, v] of Object.entries(e.fields ?? {})) {
    if (!(k in err)) err[k] = v;
  }
  return err;
}

/** The script's work, given its three arguments. Never throws: failures become `{error}`. */
export async function runNsCall(argv: readonly string[]): Promise<NsCallOutcome> {
  try {
    const [modulePath, exportName, argsJson = '[]'] = argv;
    if (!modulePath || !exportName || !isAbsolute(modulePath)) {
      throw new TestbedError('TB_BAD_CONFIG', 'usage: node ns-call.js <absolute module path> <export name> <json args>');
    }
    const args: unknown = JSON.parse(argsJson);
    if (!Array.isArray(args)) throw new TestbedError('TB_BAD_CONFIG', 'the arguments must be a JSON array');
    const mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
    const fn = mod[exportName];
    if (typeof fn !== 'function') {
      throw new TestbedError('TB_BAD_CONFIG', `${modulePath} has no function export ${exportName}`);
    }
    return { value: await (fn as (...a: unknown[]) => unknown)(...args) };
  } catch (err) {
    return { error: serializeError(err) };
  }
}

export interface NsCallOptions {
  /** Default 30 s; the process is SIGKILLed after it. */
  timeoutMs?: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

const SCRIPT = fileURLToPath(import.meta.url);

/**
 * Calls `exportName(...args)` of `module` (a compiled .js file, absolute path or file URL) in a
 * fresh Node process inside namespace `ns` (null: this namespace, for tests of the call itself).
 * Resolves with the JSON result; rejects with a RemoteError carrying the remote error's name and
 * code, or a TestbedError when the process itself failed. Args travel on the command line, so
 * keep them under ~100 kB.
 */
export async function callInNs<T = unknown>(
  ns: string | null,
  module: string | URL,
  exportName: string,
  args: readonly unknown[] = [],
  opts: NsCallOptions = {},
): Promise<T> {
  const modulePath = module instanceof URL ? fileURLToPath(module) : resolve(module);
  const node = [process.execPath, SCRIPT, modulePath, exportName, JSON.stringify(args)];
  const argv = ns === null ? node : ['ip', 'netns', 'exec', ns, ...node];
  const r = await runCommand(argv, { timeoutMs: opts.timeoutMs ?? 30_000, signal: opts.signal, env: opts.env });
  let outcome: NsCallOutcome;
  try {
    outcome = parseNsCallOutput(r.stdout);
  } catch (err) {
    throw new TestbedError(
      'TB_BAD_OUTPUT',
      `${exportName} in ${ns ?? 'this namespace'}: exit ${r.code ?? r.signal}, no outcome\nstdout: ${clip(r.stdout)}\nstderr: ${clip(r.stderr)}`,
      { cause: err },
    );
  }
  if ('error' in outcome) throw toRemoteError(outcome.error);
  return outcome.value as T;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === SCRIPT) {
  const outcome = await runNsCall(process.argv.slice(2));
  process.stdout.write(formatNsCallOutcome(outcome), () => {
    // Exit even if the module left sockets or timers behind: the answer is out.
    process.exit('error' in outcome ? 1 : 0);
  });
}
