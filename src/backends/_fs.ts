/**
 * File-system primitives of the local backend: durable temp files, directory fsync, and the
 * per-workspace guard that serializes every check-then-change of lock and state files.
 *
 * @module
 */

import { refuseLink } from "../_regular_file.ts";

/** Name prefix of temp files; orphans left by a crash are removed by later writes. */
export const TEMP_PREFIX = ".tmp-";
/** A temp file younger than this is never treated as an orphan (it may not be flocked yet). */
const ORPHAN_MIN_AGE_MS = 10_000;
const GUARD_FILE = ".guard";

/** Writes every byte (a single `write` may write fewer). */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await file.write(data.subarray(offset));
}

/** Makes a directory's entries (created, renamed, removed files) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (error) {
    // Some systems cannot fsync a directory; on Linux it must work.
    if (Deno.build.os === "linux") throw error;
  } finally {
    handle?.close();
  }
}

/** A temp file, written and synced, still open with an exclusive flock held on it. */
export interface TempFile {
  path: string;
  file: Deno.FsFile;
}

/**
 * Creates `<dir>/.tmp-<purpose>-<uuid>` (0600), writes `data`, syncs it, and keeps it open
 * with an exclusive flock, so that while the writer lives no cleanup takes it for an orphan.
 */
export async function createTempFile(
  dir: string,
  purpose: string,
  data: Uint8Array,
): Promise<TempFile> {
  const path = `${dir}/${TEMP_PREFIX}${purpose}-${crypto.randomUUID()}`;
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    await file.lock(true);
    await writeAll(file, data);
    await file.syncData();
    return { path, file };
  } catch (error) {
    file.close();
    await Deno.remove(path).catch(() => {});
    throw error;
  }
}

/** Closes a temp file and removes it if it is still there. */
export async function discardTempFile(temp: TempFile): Promise<void> {
  try {
    temp.file.close();
  } catch {
    // already closed
  }
  await Deno.remove(temp.path).catch(() => {});
}

/**
 * Reads a file that is not a symbolic link (see `_regular_file.ts`), or returns `null` when it
 * does not exist.
 */
export async function readIfExists(path: string, what: string): Promise<Uint8Array | null> {
  await refuseLink(path, what);
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Removes temp files whose writer is gone (no flock on them) and that are not brand new. */
export async function removeOrphanTemps(dir: string): Promise<number> {
  let removed = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.startsWith(TEMP_PREFIX)) continue;
    const path = `${dir}/${entry.name}`;
    let file: Deno.FsFile | undefined;
    try {
      const info = await Deno.stat(path);
      if (Date.now() - (info.mtime?.getTime() ?? Date.now()) < ORPHAN_MIN_AGE_MS) continue;
      file = await Deno.open(path, { read: true });
      if (await file.tryLock(true)) {
        await Deno.remove(path);
        removed++;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    } finally {
      file?.close();
    }
  }
  return removed;
}

/**
 * Runs `fn` holding the workspace directory's guard: an exclusive flock on `<dir>/.guard`.
 * The kernel releases it when its holder dies, so it never goes stale; it is held only for
 * the short check-then-change steps (never while a state is being written out).
 */
export async function withGuard<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const path = `${dir}/${GUARD_FILE}`;
  for (;;) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    try {
      await file.lock(true);
      // The directory may have been deleted (and recreated) while we waited: then this
      // flock guards a file nobody else will open. Start again with the current file.
      const held = await file.stat();
      const current = await Deno.stat(path).catch(() => null);
      if (current === null || current.ino !== held.ino || current.dev !== held.dev) continue;
      return await fn();
    } finally {
      file.close();
    }
  }
}
