/**
 * Where a read command (`state list`, `state show`, `output`) takes its state from: the
 * selected workspace of the backend, or, with `--state FILE`, a state file such as one
 * `state pull` saved or a backup, without opening any backend.
 *
 * A file named with `--state` gets the trust rules of the files gaib-state reads elsewhere:
 * it is never read through a symbolic link (one may have been planted, pointing at a secret
 * or at `/dev/zero`), and it must be a regular file (not a FIFO, a device or a directory,
 * which could block or never end).
 *
 * @module
 */

import { shellQuote } from "../_command_line.ts";
import { parseStateBytes } from "../state.ts";
import type { GaibState } from "../types.ts";
import type { GlobalFlags } from "./_context.ts";
import { CliError } from "./_errors.ts";
import type { Output } from "./_output.ts";
import { openSession } from "./_session.ts";

/** The flags of a read command. */
export interface ReadFlags extends GlobalFlags {
  /** `--state FILE`: read this state file instead of the backend. */
  readonly state?: string;
}

/** A state to read and where it came from. */
export interface StateSource {
  /** The state, or `null` when there is none. */
  state: GaibState | null;
  /** The workspace, or `null` for a file. */
  workspace: string | null;
  /** For messages: `workspace "prod"` or `state file x.tfstate`. */
  label: string;
  /** The file named with `--state`, if any. */
  file: string | null;
}

function fileError(file: string, problem: string): CliError {
  return new CliError(`Cannot read state file ${file} (--state): ${problem}.`, "StateFileError", {
    file,
  });
}

/**
 * Reads a state file named with `--state`: a regular file, not a link.
 *
 * @param file the path
 * @returns the state, or `null` for an empty file
 * @throws {CliError} (`StateFileError`) for a missing file, a link, or not a regular file
 * @throws {StateFormatError} when it is not a valid state
 */
export async function readStateFile(file: string): Promise<GaibState | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      throw fileError(file, `it does not exist (relative paths start at ${Deno.cwd()})`);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw fileError(file, "permission denied; check the file's owner and mode");
    }
    throw error;
  }
  if (info.isSymlink) {
    throw fileError(
      file,
      "it is a symbolic link, and gaib-state never reads a state through one (it may have " +
        `been planted). Name the file it points to, after checking it (ls -l ${shellQuote(file)})`,
    );
  }
  if (!info.isFile) {
    throw fileError(
      file,
      info.isDirectory
        ? "it is a directory; name the state file in it, such as terraform.tfstate"
        : "it is not a regular file (a FIFO or a device); save the state to a file first",
    );
  }
  let bytes: Uint8Array;
  try {
    // Deno has no O_NOFOLLOW: make sure what was opened is the file checked above, not a
    // link swapped in meanwhile.
    using handle = await Deno.open(file, { read: true });
    const opened = await handle.stat();
    if (!opened.isFile || opened.ino !== info.ino || opened.dev !== info.dev) {
      throw fileError(file, "it was replaced while being opened; try again");
    }
    bytes = new Uint8Array(await new Response(handle.readable).arrayBuffer());
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) {
      throw fileError(file, "permission denied; check the file's owner and mode");
    }
    throw error;
  }
  return parseStateBytes(bytes, `state file ${file}`);
}

/**
 * Runs `fn` with the state a read command works on: `--state FILE`, else the selected
 * workspace's (the backend is closed when `fn` returns).
 *
 * @param flags the command's flags
 * @param out the output
 * @param fn what to do with the state
 * @returns what `fn` returns
 */
export async function withStateSource<T>(
  flags: ReadFlags,
  out: Output,
  fn: (source: StateSource) => T | Promise<T>,
): Promise<T> {
  if (flags.state !== undefined) {
    out.debug(`reading state file ${flags.state} (--state); no backend is opened`);
    const state = await readStateFile(flags.state);
    return await fn({
      state,
      workspace: null,
      label: `state file ${flags.state}`,
      file: flags.state,
    });
  }
  await using session = await openSession(flags, out);
  const state = await session.backend.getState(session.workspace);
  const ws = session.workspace;
  return await fn({ state, workspace: ws, label: `workspace "${ws}"`, file: null });
}
