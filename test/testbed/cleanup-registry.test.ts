import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exited, spawnBounded, waitForOutput } from './command.js';

// The registry installs process-wide handlers, so each case runs in a child process. With no
// namespaces the entry is only a temp dir and a child process: no root needed.
const registryJs = new URL('./cleanup-registry.js', import.meta.url).href;
const commandJs = new URL('./command.js', import.meta.url).href;

function runChild(tmpDir: string, keep: boolean, ending: string) {
  return spawnBounded([
    process.execPath,
    '--input-type=module',
    '-e',
    `import { cleanupRegistry } from ${JSON.stringify(registryJs)};
     import { spawnBounded } from ${JSON.stringify(commandJs)};
     const sleeper = spawnBounded(['sleep', '30'], { stdio: 'ignore' });
     cleanupRegistry.add({ namespaces: [], tmpDir: ${JSON.stringify(tmpDir)}, keep: ${keep}, children: () => [sleeper] });
     console.log(sleeper.pid);
     ${ending}`,
  ]);
}

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return true;
  }
}

describe('cleanupRegistry', () => {
  it('on SIGTERM removes the temp dir, kills the children, and dies of the signal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fd-registry-'));
    const child = runChild(dir, false, 'setInterval(() => {}, 1000);');
    const sleeper = Number(await waitForOutput(child, /^\d+$/));
    process.kill(child.pid!, 'SIGTERM');
    await exited(child);
    assert.equal(child.signalCode, 'SIGTERM');
    assert.equal(existsSync(dir), false);
    assert.ok(gone(sleeper));
  });

  it('on a plain exit (a forgotten close) cleans up too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fd-registry-'));
    const child = runChild(dir, false, 'setTimeout(() => process.exit(7), 20);');
    await waitForOutput(child, /^\d+$/);
    await exited(child);
    assert.equal(child.exitCode, 7);
    assert.equal(existsSync(dir), false);
  });

  it('leaves a kept entry alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fd-registry-'));
    const child = runChild(dir, true, 'setTimeout(() => process.exit(0), 20);');
    await waitForOutput(child, /^\d+$/);
    await exited(child);
    assert.equal(existsSync(dir), true);
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true });
  });
});
