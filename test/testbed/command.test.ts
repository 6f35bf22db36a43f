import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { exited, killGroup, lifetimePrefix, runCommand, spawnBounded, waitForOutput } from './command.js';

/** Gone, or a zombie nobody reaps yet (its parent died; a container's init may never reap it). */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A deadline for a kill to land, far above what it takes (milliseconds), not a measurement. */
async function eventuallyGone(pid: number, ms = 10_000): Promise<boolean> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    if (processGone(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return processGone(pid);
}

describe('runCommand', () => {
  it('returns exit code, output and takes input', async () => {
    const r = await runCommand([process.execPath, '-e', 'process.stdin.pipe(process.stdout); console.error("e"); process.exitCode = 3'], {
      input: 'in',
    });
    assert.deepEqual(r, { stdout: 'in', stderr: 'e\n', code: 3, signal: null });
  });

  it('with check, rejects a non-zero exit; an unknown program is TB_COMMAND_FAILED too', async () => {
    await assert.rejects(runCommand(['false'], { check: true }), { name: 'TestbedError', code: 'TB_COMMAND_FAILED' });
    // Through setpriv an unknown program is a failed exit rather than a spawn error: same answer.
    await assert.rejects(runCommand(['/nonexistent/prog'], { check: true }), { code: 'TB_COMMAND_FAILED' });
  });

  // The grandchild would outlive any test run: only the group kill ends it, and a timeout that
  // waited for it instead hangs into the test's own deadline. No wall-clock bound to race.
  it('times out by killing the whole process group', { timeout: 60_000 }, async () => {
    const err = await runCommand(['sh', '-c', 'sleep 3600 & echo $!; wait'], { timeoutMs: 300 }).then(
      () => assert.fail('should time out'),
      (e: unknown) => e as Error & { code: string },
    );
    assert.equal(err.code, 'TB_TIMEOUT');
    const grandchild = Number(/stdout: (\d+)/.exec(err.message)?.[1]);
    assert.ok(grandchild > 0, err.message);
    try {
      assert.ok(await eventuallyGone(grandchild), `sleep ${grandchild} survived the timeout`);
    } finally {
      if (!processGone(grandchild)) process.kill(grandchild, 'SIGKILL');
    }
  });

  it('stops when aborted, with the abort reason', async () => {
    const ac = new AbortController();
    const p = runCommand(['sleep', '30'], { signal: ac.signal });
    setImmediate(() => ac.abort(new Error('stop')));
    await assert.rejects(p, { message: 'stop' });
    await assert.rejects(runCommand(['true'], { signal: AbortSignal.abort(new Error('early')) }), { message: 'early' });
  });

  it('keeps at most maxOutputBytes of each stream', async () => {
    const r = await runCommand([process.execPath, '-e', 'process.stdout.write("x".repeat(100000))'], { maxOutputBytes: 1000 });
    assert.equal(r.stdout.length, 1000);
  });
});

describe('spawnBounded', () => {
  it('a child dies with its parent even when the parent is SIGKILLed', { skip: lifetimePrefix().length === 0 && 'no setpriv' }, async () => {
    const commandJs = new URL('./command.js', import.meta.url).href;
    const parent = spawnBounded([
      process.execPath,
      '--input-type=module',
      '-e',
      `import { spawnBounded } from ${JSON.stringify(commandJs)};
       const c = spawnBounded(['sleep', '30'], { stdio: 'ignore' });
       console.log(c.pid);
       setInterval(() => {}, 1000);`,
    ]);
    const line = await waitForOutput(parent, /^\d+$/);
    const sleeper = Number(line);
    // The pid is setpriv's until it has set the death signal and exec'd sleep; killing the
    // parent before that would test nothing (and, on a loaded machine, let sleep live).
    const until = performance.now() + 5000;
    while (readComm(sleeper) !== 'sleep' && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(readComm(sleeper), 'sleep', 'sleep should be running');
    process.kill(parent.pid!, 'SIGKILL');
    await exited(parent);
    assert.ok(await eventuallyGone(sleeper), `sleep ${sleeper} outlived its SIGKILLed parent`);
  });

  it('killGroup reaches what the child forked', async () => {
    const child = spawnBounded(['sh', '-c', 'sleep 30 & echo $!; wait']);
    const grandchild = Number(await waitForOutput(child, /^\d+$/));
    killGroup(child);
    await exited(child);
    assert.ok(await eventuallyGone(grandchild));
  });
});

describe('waitForOutput', () => {
  it('resolves with the matching line from stdout or stderr', async () => {
    const child = spawnBounded([process.execPath, '-e', 'console.log("a"); setTimeout(() => console.error("ready on 5"), 50); setTimeout(() => {}, 5000)']);
    assert.equal(await waitForOutput(child, /^ready on \d+$/), 'ready on 5');
    killGroup(child);
    await exited(child);
  });

  it('rejects when the child exits first, or on timeout', async () => {
    const quits = spawnBounded([process.execPath, '-e', 'console.log("bye")']);
    await assert.rejects(waitForOutput(quits, /ready/), { code: 'TB_COMMAND_FAILED', message: /bye/ });
    const silent = spawnBounded(['sleep', '30']);
    await assert.rejects(waitForOutput(silent, /ready/, { timeoutMs: 100 }), { code: 'TB_TIMEOUT' });
    killGroup(silent);
    await exited(silent);
  });
});
