import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { killGroup } from './command.js';

/**
 * Last-resort cleanup when a test process ends without calling `close()`: a failed assertion that
 * skipped `after`, an uncaught exception, Ctrl-C, the test runner's SIGTERM on timeout. Runs
 * synchronously because an 'exit' listener cannot wait. A SIGKILLed process runs nothing: its
 * children die through their parent-death signal and its namespaces are removed by the next run
 * (stale-cleanup.ts).
 */
export interface CleanupEntry {
  readonly namespaces: readonly string[];
  readonly tmpDir: string;
  /** FRONTDOOR_TESTBED_KEEP: leave it all for a human to inspect. */
  readonly keep: boolean;
  children(): Iterable<ChildProcess>;
}

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export class CleanupRegistry {
  readonly #entries = new Set<CleanupEntry>();
  #installed = false;
  readonly #onExit = () => this.runSync();
  readonly #onSignal = (sig: NodeJS.Signals) => {
    this.runSync();
    this.#uninstall();
    // Die of the signal as we would have without our handler, unless someone else handles it.
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };

  add(entry: CleanupEntry): void {
    this.#entries.add(entry);
    if (!this.#installed) {
      this.#installed = true;
      process.on('exit', this.#onExit);
      for (const s of SIGNALS) process.on(s, this.#onSignal);
    }
  }

  delete(entry: CleanupEntry): void {
    this.#entries.delete(entry);
    if (this.#entries.size === 0) this.#uninstall();
  }

  get size(): number {
    return this.#entries.size;
  }

  runSync(): void {
    for (const entry of this.#entries) {
      if (!entry.keep) removeSync(entry);
    }
    this.#entries.clear();
  }

  #uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    process.off('exit', this.#onExit);
    for (const s of SIGNALS) process.off(s, this.#onSignal);
  }
}

function removeSync(entry: CleanupEntry): void {
  for (const child of entry.children()) killGroup(child);
  if (entry.namespaces.length > 0) {
    // -force: go on after a name that is already gone.
    spawnSync('ip', ['-force', '-batch', '-'], {
      input: entry.namespaces.map((n) => `netns delete ${n}`).join('\n'),
      stdio: ['pipe', 'ignore', 'ignore'],
      timeout: 5000,
    });
  }
  rmSync(entry.tmpDir, { recursive: true, force: true });
}

export const cleanupRegistry = new CleanupRegistry();
