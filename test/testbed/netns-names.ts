/**
 * Names of the test bed's namespaces and temp dirs: `fd<pid>x<counter>-<role>`. The owning pid in
 * the name is what lets a later run tell a crashed run's leftovers (pid dead: remove) from another
 * test file running right now (pid alive: leave alone).
 */

export interface TestbedName {
  /** `fd<pid>x<counter>`, shared by every namespace and the temp dir of one test bed. */
  prefix: string;
  pid: number;
  counter: number;
  /** `wan`, `rtr`, `h1`...; '' for a temp dir. */
  role: string;
}

export const TMP_DIR_PREFIX = 'frontdoor-testbed-';

const NS_NAME = /^fd([1-9][0-9]{0,9})x([1-9][0-9]{0,8})-([a-z][a-z0-9]{0,7})$/;
const TMP_NAME = /^frontdoor-testbed-fd([1-9][0-9]{0,9})x([1-9][0-9]{0,8})-[A-Za-z0-9]{0,16}$/;

export function testbedPrefix(pid: number, counter: number): string {
  return `fd${pid}x${counter}`;
}

export function parseTestbedNsName(name: string): TestbedName | undefined {
  const m = NS_NAME.exec(name);
  if (!m) return undefined;
  return named(m[1]!, m[2]!, m[3]!);
}

/** The name of a temp dir made by mkdtemp(`${TMP_DIR_PREFIX}${prefix}-`). */
export function parseTestbedTmpDirName(name: string): TestbedName | undefined {
  const m = TMP_NAME.exec(name);
  if (!m) return undefined;
  return named(m[1]!, m[2]!, '');
}

function named(pidText: string, counterText: string, role: string): TestbedName | undefined {
  const pid = Number(pidText);
  const counter = Number(counterText);
  // Linux pids stop at 2^22; a bigger number is not one of ours.
  if (pid > 4_194_304) return undefined;
  return { prefix: testbedPrefix(pid, counter), pid, counter, role };
}

/**
 * The names in `ip netns list` output: one per line, the name first, sometimes followed by
 * ` (id: N)`. At most `max` names, so a strange output cannot make cleanup run away.
 */
export function parseNetnsList(text: string, max = 10_000): string[] {
  const names: string[] = [];
  for (const line of text.split('\n')) {
    if (names.length >= max) break;
    const name = line.trim().split(/\s+/, 1)[0] ?? '';
    if (/^[A-Za-z0-9._-]{1,255}$/.test(name) && name !== '.' && name !== '..') names.push(name);
  }
  return names;
}
