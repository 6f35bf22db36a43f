import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { writeFileAtomic } from '../../src/runtime/atomic-write.js';

describe('writeFileAtomic', () => {
  const dirs: string[] = [];
  const dir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'fd-atomic-'));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) {
      await chmod(d, 0o700).catch(() => {});
      await rm(d, { recursive: true, force: true });
    }
  });
  const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

  it('writes the content with the mode asked, whatever the umask, and leaves only the file', async () => {
    const d = await dir();
    const file = join(d, 'secret');
    const before = process.umask(0o077);
    try {
      await writeFileAtomic(file, 'one\n', { mode: 0o600 });
      assert.equal(await readFile(file, 'utf8'), 'one\n');
      assert.equal(await modeOf(file), 0o600);
      // A certificate is for everyone to read even where the umask would hide it.
      await writeFileAtomic(join(d, 'cert.pem'), Buffer.from('cert'), { mode: 0o644 });
      assert.equal(await modeOf(join(d, 'cert.pem')), 0o644);
    } finally {
      process.umask(before);
    }
    assert.deepEqual((await readdir(d)).sort(), ['cert.pem', 'secret']);
  });

  it('replaces a file, its mode too (a key once left readable is made private)', async () => {
    const d = await dir();
    const file = join(d, 'key.pem');
    await writeFile(file, 'old key, longer than the new one\n', { mode: 0o644 });
    await chmod(file, 0o644);
    await writeFileAtomic(file, 'new\n', { mode: 0o600 });
    assert.equal(await readFile(file, 'utf8'), 'new\n');
    assert.equal(await modeOf(file), 0o600);
  });

  it('writes chunks from an iterable and an async iterable', async () => {
    const d = await dir();
    await writeFileAtomic(join(d, 'a'), ['ab', Buffer.from('cd'), 'é'], { mode: 0o600 });
    assert.equal(await readFile(join(d, 'a'), 'utf8'), 'abcdé');
    async function* parts() {
      yield 'x';
      await tick();
      yield 'y';
    }
    await writeFileAtomic(join(d, 'b'), parts(), { mode: 0o600 });
    assert.equal(await readFile(join(d, 'b'), 'utf8'), 'xy');
  });

  it('data that fails mid-way leaves the old file whole and no temporary file', async () => {
    const d = await dir();
    const file = join(d, 'portal-password');
    await writeFile(file, 'the old password\n');
    const boom = new Error('the source broke');
    async function* failing() {
      yield 'the new pass';
      await tick();
      throw boom;
    }
    await assert.rejects(writeFileAtomic(file, failing(), { mode: 0o600 }), (err) => err === boom);
    assert.equal(await readFile(file, 'utf8'), 'the old password\n');
    assert.deepEqual(await readdir(d), ['portal-password']);
  });

  it('a rename that fails (a directory in the way) leaves no temporary file', async () => {
    const d = await dir();
    const target = join(d, 'gateway.json');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'x');
    await assert.rejects(writeFileAtomic(target, '{}\n', { mode: 0o600 }), (err: NodeJS.ErrnoException) => {
      assert.ok(['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(err.code ?? ''), String(err));
      return true;
    });
    assert.deepEqual(await readdir(d), ['gateway.json']);
    assert.deepEqual(await readdir(target), ['inside']);
  });

  it('a data directory that is a file is an error and creates nothing', async () => {
    const d = await dir();
    await writeFile(join(d, 'not-a-dir'), 'x');
    await assert.rejects(writeFileAtomic(join(d, 'not-a-dir', 'key.pem'), 'k', { mode: 0o600 }), { code: 'ENOTDIR' });
    assert.deepEqual(await readdir(d), ['not-a-dir']);
  });

  // root writes into a read-only directory all the same: the case cannot happen there.
  it('a read-only directory is an error and the old file stays', { skip: process.getuid?.() === 0 ? 'running as root' : false }, async () => {
    const d = await dir();
    const file = join(d, 'session-key');
    await writeFile(file, 'old\n');
    await chmod(d, 0o500);
    try {
      await assert.rejects(writeFileAtomic(file, 'new\n', { mode: 0o600 }), { code: 'EACCES' });
    } finally {
      await chmod(d, 0o700);
    }
    assert.equal(await readFile(file, 'utf8'), 'old\n');
    assert.deepEqual(await readdir(d), ['session-key']);
  });

  it('concurrent writers to one path leave one of the contents, whole, and no temporary file', async () => {
    const d = await dir();
    const file = join(d, 'acme-cert.pem');
    const writers = 16;
    const chunk = 16 * 1024;
    // Each writer's content is its own letter, the first writer's the longest; chunks yielded one
    // per tick, so the writers' writes interleave (writing in place would leave a later writer's
    // short content over the start of an earlier one's long content).
    const contentOf = (i: number) => String.fromCharCode(97 + i).repeat(chunk * (writers - i));
    async function* slowly(i: number) {
      const all = contentOf(i);
      for (let off = 0; off < all.length; off += chunk) {
        yield all.slice(off, off + chunk);
        await tick();
      }
    }
    await Promise.all(Array.from({ length: writers }, (_, i) => writeFileAtomic(file, slowly(i), { mode: 0o644 })));
    const got = await readFile(file, 'utf8');
    const which = got.charCodeAt(0) - 97;
    assert.ok(which >= 0 && which < writers, `starts with ${JSON.stringify(got.slice(0, 1))}`);
    assert.equal(got, contentOf(which));
    assert.deepEqual(await readdir(d), ['acme-cert.pem']);
  });
});
