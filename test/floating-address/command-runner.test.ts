import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CommandTimeoutError, createCommandRunner } from '../../src/floating-address/command-runner.js';

/** The real runner, with node itself as the command (nothing here touches the network). */
const node = (code: string) => [process.execPath, '-e', code];

describe('createCommandRunner', () => {
  const run = createCommandRunner({ timeoutMs: 5000 });

  it('returns exit code, stdout and stderr; a non-zero exit is a result', async () => {
    const r = await run(node('process.stdout.write("out"); process.stderr.write("err"); process.exit(3)'));
    assert.deepEqual(r, { code: 3, stdout: 'out', stderr: 'err' });
  });

  it('runs with LC_ALL=C, so the tools print the messages we read', async () => {
    const r = await run(node('process.stdout.write(process.env.LC_ALL)'));
    assert.equal(r.stdout, 'C');
  });

  it('a command that is not installed rejects with code ENOENT', async () => {
    await assert.rejects(run(['frontdoor-no-such-command-x']), (e: unknown) => (e as { code?: string }).code === 'ENOENT');
  });

  it('a command that dies of a signal gets 128 + the signal number', async () => {
    const r = await run(node('process.kill(process.pid, "SIGKILL")'));
    assert.equal(r.code, 137);
  });

  it('kills a command that runs out of time', async () => {
    const short = createCommandRunner({ timeoutMs: 200 });
    // Only the runner's timer makes this error, so no wall-clock bound is needed to tell it fired.
    await assert.rejects(short(node('setTimeout(() => {}, 10000)')), (e: unknown) => e instanceof CommandTimeoutError && /no exit within 200 ms/.test(e.message));
  });

  it('an abort kills the command and rejects with the reason', async () => {
    const ac = new AbortController();
    const p = run(node('setTimeout(() => {}, 10000)'), ac.signal);
    const reason = new Error('stop');
    setTimeout(() => ac.abort(reason), 100);
    await assert.rejects(p, (e) => e === reason);
    await assert.rejects(run(node('1'), AbortSignal.abort(reason)), (e) => e === reason);
  });

  it('start resolves once the command runs, before it exits; its result comes later', async () => {
    assert.ok(run.start);
    // The command exits only once the test lets it (a file appears), so 'before it exits' is
    // an order of events, not a race with the wall clock.
    const dir = mkdtempSync(join(tmpdir(), 'fd-runner-'));
    const go = join(dir, 'go');
    try {
      const patient = createCommandRunner({ timeoutMs: 60_000 });
      const code = `const t = setInterval(() => { if (require('fs').existsSync(${JSON.stringify(go)})) { clearInterval(t); process.stdout.write('done'); } }, 20);`;
      const started = await patient.start!(node(code));
      let exited = false;
      const ended = () => {
        exited = true;
      };
      void started.result.then(ended, ended);
      await new Promise((r) => setImmediate(r));
      assert.equal(exited, false, 'the result came before the command could exit');
      writeFileSync(go, '');
      const r = await started.result;
      assert.equal(r.stdout, 'done');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await assert.rejects(run.start(['frontdoor-no-such-command-x']), (e: unknown) => (e as { code?: string }).code === 'ENOENT');
  });

  it('bounds the output it keeps', async () => {
    const small = createCommandRunner({ maxOutputBytes: 10 });
    const r = await small(node('process.stdout.write("x".repeat(100000))'));
    assert.equal(r.stdout, 'x'.repeat(10));
  });
});
