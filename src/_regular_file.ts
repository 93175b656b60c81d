/**
 * Reads of the files gaib-state keeps in a state root (states, lock records,
 * `.current-workspace`): only the file itself, never what a symbolic link points to. A link
 * can be committed to a repository; followed, `.gaib/.current-workspace -> ~/.aws/credentials`
 * would print a secret in an error, and a link to `/dev/zero` would read for ever. gaib-state
 * writes these files itself, always as regular files, so a link there was planted.
 *
 * @module
 */

import { shellQuote } from "./_command_line.ts";
import { BackendError } from "./errors.ts";

/**
 * Refuses a path that is a symbolic link; does nothing when it does not exist.
 *
 * @param path the file
 * @param what what it is, for the message (`state file`, `lock file`)
 * @throws {BackendError} naming the link and the fix
 */
export async function refuseLink(path: string, what: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return;
    }
    throw error;
  }
  if (info.isSymlink) {
    throw new BackendError(
      `The ${what} ${path} is a symbolic link. gaib-state writes it as a plain file and never ` +
        "reads through a link (one may have been planted, e.g. committed to the repository): " +
        `look at where it points, then remove it (rm ${shellQuote(path)}).`,
    );
  }
}

/**
 * Opens a file that is not a link for reading, or returns `null` when it does not exist.
 *
 * @param path the file
 * @param what what it is, for messages
 * @returns the open file (the caller closes it), or `null`
 * @throws {BackendError} for a link
 */
export async function openUnlinked(path: string, what: string): Promise<Deno.FsFile | null> {
  await refuseLink(path, what);
  try {
    return await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Reads a small file that is not a link, or returns `null` when it does not exist. At most
 * `maxBytes` are read: a larger file is refused, not read to its end.
 *
 * @param path the file
 * @param what what it is, for messages
 * @param maxBytes the largest size accepted
 * @returns its bytes, or `null`
 * @throws {BackendError} for a link or a file larger than `maxBytes`
 */
export async function readSmallFile(
  path: string,
  what: string,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const file = await openUnlinked(path, what);
  if (file === null) return null;
  try {
    const buffer = new Uint8Array(maxBytes + 1);
    let size = 0;
    while (size < buffer.length) {
      const n = await file.read(buffer.subarray(size));
      if (n === null) break;
      size += n;
    }
    if (size > maxBytes) {
      throw new BackendError(
        `The ${what} ${path} is larger than ${maxBytes} bytes, so it is not one gaib-state ` +
          `wrote. Look at it, then remove it (rm ${shellQuote(path)}).`,
      );
    }
    return buffer.slice(0, size);
  } finally {
    file.close();
  }
}
