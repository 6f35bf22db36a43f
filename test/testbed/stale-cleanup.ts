import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from './command.js';
import { TMP_DIR_PREFIX, parseNetnsList, parseTestbedNsName, parseTestbedTmpDirName } from './netns-names.js';

/** Whether a pid is a live process. EPERM means it exists and is someone else's. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StaleCleanupOptions {
  signal?: AbortSignal;
  /** For tests: which owners count as dead. Default: not this process and not alive. */
  isDead?: (pid: number) => boolean;
}

/**
 * Removes namespaces and temp dirs left by test bed runs whose process is gone (SIGKILL, OOM,
 * power cut), killing whatever still runs inside them. Namespaces of live processes are another
 * test file running in parallel and are left alone. (A dead run's pid reused by an unrelated
 * process keeps its leftovers until that process ends: rare and harmless.)
 * Returns the namespaces removed.
 */
export async function removeStaleTestbeds(opts: StaleCleanupOptions = {}): Promise<string[]> {
  const isDead = opts.isDead ?? ((pid: number) => pid !== process.pid && !pidAlive(pid));
  const listed = await runCommand(['ip', 'netns', 'list'], { signal: opts.signal, timeoutMs: 10_000 });
  const stale = parseNetnsList(listed.stdout).filter((n) => {
    const parsed = parseTestbedNsName(n);
    return parsed !== undefined && isDead(parsed.pid);
  });
  for (const ns of stale) {
    const pids = await runCommand(['ip', 'netns', 'pids', ns], { signal: opts.signal, timeoutMs: 10_000 });
    for (const p of pids.stdout.split('\n')) {
      const pid = Number(p.trim());
      if (Number.isInteger(pid) && pid > 1) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  if (stale.length > 0) {
    // -force: another test process may be removing the same leftovers right now.
    await runCommand(['ip', '-force', '-batch', '-'], {
      input: stale.map((n) => `netns delete ${n}`).join('\n'),
      signal: opts.signal,
      timeoutMs: 10_000,
    });
  }
  const dir = tmpdir();
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (!entry.startsWith(TMP_DIR_PREFIX)) continue;
    const parsed = parseTestbedTmpDirName(entry);
    if (parsed && isDead(parsed.pid)) await rm(join(dir, entry), { recursive: true, force: true });
  }
  return stale;
}
