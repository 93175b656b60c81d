/**
 * Finding `gaib.yaml`, and never using one that another user could have written: a config
 * decides where the state (and its secrets) is sent, so a file planted in a shared parent
 * directory must not redirect it. This is git's rule since CVE-2022-24765 (`safe.directory`),
 * made precise for config files:
 *
 * 1. The search looks for `gaib.yaml`, `gaib.yml`, `.gaib.yaml`, `.gaib.yml` in the working
 *    directory, then in each parent, and stops at the first directory that has one.
 * 2. The file is used only if every directory from the working directory up to and including
 *    the file's own is owned by you or root and not writable by every user, and the file (and,
 *    for a symbolic link, the link and its target) is owned by you or root and not writable by
 *    every user. Write access for the group is allowed: the group is trusted like its members.
 * 3. A shared directory (writable by every user, with the sticky bit, such as `/tmp`) ends the
 *    search quietly: a config in it or above it is not used, and is listed as skipped with the
 *    reason (`gaib-state config show` shows it). Anyone can create files there, so a file there
 *    says nothing about the project.
 * 4. Anything else that fails rule 2 is an error that names the file, the owner or mode, and
 *    the fixes, rather than a silent fall back to another backend: a project checked out by
 *    another user (a CI container running as root) would otherwise write its state somewhere
 *    else without a word.
 * 5. A file named explicitly (`--config`, `configFile`) is used as it is: you chose it.
 *
 * Checking owners needs the current uid (`--allow-sys=uid`), and only when a config file is
 * found. Where files have no POSIX owner (Windows), rule 2 is not applied.
 *
 * @module
 */

import { dirname, join } from "./_path.ts";
import { checkConfigSize } from "./_config_load.ts";
import { BackendConfigError } from "./errors.ts";

/** Config file names looked for, in order, in each directory from `cwd` up. */
export const CONFIG_FILE_NAMES: readonly string[] = [
  "gaib.yaml",
  "gaib.yml",
  ".gaib.yaml",
  ".gaib.yml",
];

/** A config file that was found but not used, and why. */
export interface SkippedConfigFile {
  /** The file. */
  file: string;
  /** Why it is not used. */
  reason: string;
}

/** What the search found. */
export interface ConfigSearch {
  /** The config file to use, or `null`. */
  file: string | null;
  /** Files found but not used. */
  skipped: SkippedConfigFile[];
}

/** The mode bit that lets every user write. */
export const WORLD_WRITABLE = 0o002;
const STICKY = 0o1000;

interface Verdict {
  /** Why the file is not used, as a clause: "it is owned by uid 1001 ...". */
  reason: string;
  /** What the user can do about it. */
  fix: string;
  /** A shared directory such as /tmp: skip quietly instead of refusing. */
  shared?: boolean;
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw error;
  }
}

/** Whether `path` is (or links to) a regular file; `false` when it or a parent is missing. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw error;
  }
}

/** The current uid; `null` where files have no POSIX owner. */
function currentUid(file: string): number | null {
  try {
    return Deno.uid();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new BackendConfigError(
        `Found ${file}, but cannot check who owns it: that needs --allow-sys=uid. Run with ` +
          "that permission, or pass the file explicitly (--config, or configFile in the " +
          "library) if you trust it.",
        { file, cause: error },
      );
    }
    throw error;
  }
}

/** Why a file or directory is not the user's: owned by someone but them or root. */
export function owner(info: Deno.FileInfo, uid: number): string | undefined {
  if (info.uid === null || info.uid === uid || info.uid === 0) return undefined;
  return `owned by uid ${info.uid}, not by you (uid ${uid}) or root`;
}

/** A mode as four octal digits, such as `0777`. */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function judgeDirectory(
  info: Deno.FileInfo,
  dir: string,
  uid: number,
  holdsFile: boolean,
): Verdict | undefined {
  const where = holdsFile
    ? `its directory ${dir} is`
    : `the search for it passed through ${dir}, which is`;
  const owned = owner(info, uid);
  if (owned) return { reason: `${where} ${owned}`, fix: `make ${dir} yours (chown)` };
  const mode = info.mode ?? 0;
  if ((mode & WORLD_WRITABLE) === 0) return undefined;
  if (mode & STICKY) {
    return {
      reason: holdsFile
        ? `${dir} is a shared directory (every user may create files in it, mode ` +
          `${octal(mode)}), so a config there is not used`
        : `the search stops at ${dir}, a shared directory (every user may create files in ` +
          `it, mode ${octal(mode)}), so a config there or above is not used`,
      fix: "move the config into your project directory",
      shared: true,
    };
  }
  return {
    reason: `${where} writable by every user (mode ${octal(mode)})`,
    fix: `run chmod o-w ${dir}`,
  };
}

/** Judges a config file (or the link to it): owned by you or root, not writable by all. */
export function judgeFile(
  info: Deno.FileInfo,
  file: string,
  uid: number,
): Verdict | undefined {
  const owned = owner(info, uid);
  const what = info.isSymlink ? "the symbolic link" : "it";
  if (owned) return { reason: `${what} is ${owned}`, fix: `make ${file} yours (chown)` };
  if (!info.isSymlink && ((info.mode ?? 0) & WORLD_WRITABLE)) {
    return {
      reason: `it is writable by every user (mode ${octal(info.mode!)})`,
      fix: `run chmod o-w ${file}`,
    };
  }
  return undefined;
}

function untrusted(file: string, verdict: Verdict): BackendConfigError {
  return new BackendConfigError(
    `Not using ${file}: ${verdict.reason}, so another user could have written it to send ` +
      `your state elsewhere. If you trust it, pass it explicitly with --config ${file} ` +
      `(configFile in the library), or ${verdict.fix}.`,
    { file },
  );
}

/**
 * Looks for the config file from `cwd` up, applying the rules above.
 *
 * @param cwd where to start
 * @returns the file to use (or `null`) and the files skipped quietly
 * @throws {BackendConfigError} when the nearest config file may have been written by another
 * user (outside a shared directory), or its owner cannot be checked
 */
export async function searchConfigFile(cwd: string): Promise<ConfigSearch> {
  const visited: string[] = [];
  let found: { dir: string; file: string; info: Deno.FileInfo } | undefined;
  for (let dir = cwd.replace(/\/+$/, "") || "/"; !found;) {
    visited.push(dir);
    for (const name of CONFIG_FILE_NAMES) {
      const file = join(dir, name);
      const info = await lstatOrNull(file);
      if (!info || !(info.isFile || (info.isSymlink && await isFile(file)))) continue;
      found = { dir, file, info };
      break;
    }
    const parent = dirname(dir);
    if (!found && (parent === dir || dir === ".")) return { file: null, skipped: [] };
    dir = parent;
  }
  const uid = currentUid(found.file);
  if (uid === null) return { file: found.file, skipped: [] };
  for (const dir of visited) {
    const verdict = judgeDirectory(await Deno.stat(dir), dir, uid, dir === found.dir);
    if (!verdict) continue;
    if (verdict.shared) {
      return { file: null, skipped: [{ file: found.file, reason: verdict.reason }] };
    }
    throw untrusted(found.file, verdict);
  }
  const verdict = judgeFile(found.info, found.file, uid);
  if (verdict) throw untrusted(found.file, verdict);
  return { file: found.file, skipped: [] };
}

/**
 * Reads a config file. A discovered file (`check`) is judged again on the open file, so what is
 * read is what was judged, also when the name was a symbolic link.
 *
 * @param file the file
 * @param check judge the open file's owner and mode (for files found by the search)
 * @returns the file's bytes
 * @throws {BackendConfigError} for a file that is not a regular file, too large, or untrusted
 */
export async function readConfigFile(file: string, check: boolean): Promise<Uint8Array> {
  const handle = await Deno.open(file, { read: true });
  try {
    const info = await handle.stat();
    if (!info.isFile) {
      throw new BackendConfigError(`${file} is not a regular file.`, { file });
    }
    if (check) {
      const uid = currentUid(file);
      const verdict = uid === null ? undefined : judgeFile(info, file, uid);
      if (verdict) throw untrusted(file, verdict);
    }
    checkConfigSize(info.size, file);
    return new Uint8Array(await new Response(handle.readable).arrayBuffer());
  } finally {
    try {
      handle.close();
    } catch {
      // closed by reading it to the end
    }
  }
}
