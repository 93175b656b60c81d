/**
 * The state root is trusted like the config that names it: whoever can write it can replace,
 * rename away or read the states in it. So a state root that exists (or the directory a
 * `.gaib` symbolic link points to) must belong to the current user or root and must not be
 * writable by every user. A root that does not exist yet is created by gaib-state, mode 0700.
 *
 * @module
 */

import { octal, owner, WORLD_WRITABLE } from "./_config_search.ts";
import { BackendConfigError } from "./errors.ts";

/**
 * Refuses a state root that another user could write.
 *
 * @param root the state root, such as `/work/project/.gaib`
 * @throws {BackendConfigError} naming the root, why, and the fix
 */
export async function checkStateRoot(root: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root); // a link is judged by the directory it points to
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return;
    }
    throw error;
  }
  let uid: number | null;
  try {
    uid = Deno.uid();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    throw new BackendConfigError(
      `Cannot check who owns the state root ${root}: that needs --allow-sys=uid.`,
      { path: "backend.path", cause: error },
    );
  }
  if (uid === null) return; // no POSIX owners (Windows)
  const linked = (await Deno.lstat(root)).isSymlink ? " (where its symbolic link points)" : "";
  const owned = owner(info, uid);
  const mode = info.mode ?? 0;
  const reason = owned ??
    ((mode & WORLD_WRITABLE) ? `writable by every user (mode ${octal(mode)})` : undefined);
  if (reason === undefined) return;
  throw new BackendConfigError(
    `Not using the state root ${root}${linked}: it is ${reason}, so another user could ` +
      "replace or read the states in it. Make it yours (chown, chmod o-w), or choose another " +
      "state root (backend.path in gaib.yaml, or GAIB_STATE_PATH).",
    { path: "backend.path" },
  );
}
