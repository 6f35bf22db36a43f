import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export type AtomicData = string | Uint8Array | Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>;

export interface AtomicWriteOptions {
  /** The file's mode, exactly (the umask does not widen or narrow it). */
  mode: number;
}

/**
 * Replaces `path` so that a crash or a failure at any point leaves either the old content or the
 * new, whole: a Pi loses power by the plug, and a half-written key or password file would be read
 * back at the next start. The new content goes to a temporary file beside the target (a rename
 * is atomic only within one file system), is flushed to the disk, and is renamed over the target.
 *
 * The temporary file is created with `mode` (never wider: the umask can only take bits away), so
 * a secret is not readable by others even before the rename; it is then set to `mode` exactly.
 * Each call has its own temporary name: concurrent writers to one path each rename a whole file,
 * and the last rename wins. On any failure the temporary file is removed and the error rethrown.
 * The directory is not created here.
 */
export async function writeFileAtomic(path: string, data: AtomicData, opts: AtomicWriteOptions): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    // 'wx': a name someone else made (a link planted in the directory) is an error, not followed.
    handle = await open(tmp, 'wx', opts.mode & 0o777);
    await handle.chmod(opts.mode & 0o777);
    await writeAll(handle, data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await syncDirectory(dir);
}

async function writeAll(handle: FileHandle, data: AtomicData): Promise<void> {
  if (typeof data === 'string' || data instanceof Uint8Array) {
    await writeChunk(handle, data);
    return;
  }
  for await (const chunk of data) await writeChunk(handle, chunk);
}

async function writeChunk(handle: FileHandle, chunk: string | Uint8Array): Promise<void> {
  const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await handle.write(buf, off, buf.length - off, null);
    off += bytesWritten;
  }
}

/**
 * The rename is in the directory's entries, which are on the disk only once the directory is
 * flushed. Best effort: some file systems refuse to sync a directory, and the new content is in
 * place either way.
 */
async function syncDirectory(dir: string): Promise<void> {
  let d: FileHandle | undefined;
  try {
    d = await open(dir, 'r');
    await d.sync();
  } catch {
    // See above.
  } finally {
    await d?.close().catch(() => {});
  }
}
