/**
 * Workspace names and the selected workspace.
 *
 * @module
 */

import { BackendConfigError, BackendError, WorkspaceNotEmptyError } from "./errors.ts";
import type { GaibState } from "./types.ts";
import { instanceKey } from "./address.ts";
import { readSmallFile } from "./_regular_file.ts";

/** The largest `.current-workspace` read: a name and a line feed, with room to spare. */
const MAX_SELECTED_BYTES = 1024;
import { shellQuote } from "./_command_line.ts";

/** The workspace that always exists. */
export const DEFAULT_WORKSPACE = "default";

/** Longest workspace name accepted. */
export const MAX_WORKSPACE_NAME = 90;

// Terraform accepts a name only when it equals its URL path-escaped form (Go's
// url.PathEscape): these are the characters PathEscape leaves as they are.
const PATH_SAFE = /^[A-Za-z0-9\-._~$&+,:;=@]+$/;

/**
 * Checks a workspace name: Terraform's rule (the name must equal its URL path-escaped form),
 * not empty, not `.` or `..`, at most 90 characters.
 *
 * @param name the name to check
 * @returns the name
 * @throws {BackendConfigError} saying what is wrong and what names are allowed
 *
 * @example
 * ```ts
 * import { validateWorkspaceName } from "@gaib/state";
 * validateWorkspaceName("staging"); // fine
 * try {
 *   validateWorkspaceName("../etc");
 * } catch (error) {
 *   console.log((error as Error).name); // BackendConfigError
 * }
 * ```
 */
export function validateWorkspaceName(name: string): string {
  const allowed = "Use letters, digits and - . _ ~ (at most 90 characters).";
  if (typeof name !== "string" || name === "") {
    throw new BackendConfigError(`The workspace name is empty. ${allowed}`, { path: "workspace" });
  }
  const shown = JSON.stringify(name.length > 100 ? name.slice(0, 100) + "…" : name);
  if (name === "." || name === "..") {
    throw new BackendConfigError(`The workspace name ${shown} is not allowed. ${allowed}`, {
      path: "workspace",
    });
  }
  if (name.startsWith("-")) {
    throw new BackendConfigError(
      `The workspace name ${shown} starts with a dash, so a command line would read it as a ` +
        `flag. ${allowed}`,
      { path: "workspace" },
    );
  }
  if (name.length > MAX_WORKSPACE_NAME) {
    throw new BackendConfigError(
      `The workspace name ${shown} is ${name.length} characters long; the limit is ` +
        `${MAX_WORKSPACE_NAME}.`,
      { path: "workspace" },
    );
  }
  if (!PATH_SAFE.test(name)) {
    throw new BackendConfigError(
      `The workspace name ${shown} contains characters that are not allowed ` +
        `(a name must be usable unchanged in a URL path). ${allowed}`,
      { path: "workspace" },
    );
  }
  return name;
}

/**
 * Refuses `deleteState` of a workspace that cannot be deleted: `default` always exists.
 *
 * @param workspace the workspace to delete
 * @param stored where its state is, for the message (a file path or an S3 URL)
 * @param exists whether the workspace exists
 * @throws {BackendError} for `default` or a workspace that does not exist
 */
export function checkDeletable(workspace: string, stored: string, exists: boolean): void {
  if (workspace === DEFAULT_WORKSPACE) {
    throw new BackendError(
      'The "default" workspace cannot be deleted. Delete its resources instead, or remove ' +
        `its state (${stored}) by hand if you really mean to lose it.`,
    );
  }
  if (!exists) {
    throw new BackendError(
      `Workspace "${workspace}" does not exist (no ${stored}). Run "gaib-state workspace ` +
        'list" to see the workspaces.',
    );
  }
}

/**
 * How many managed resource instances a state tracks (an instance counts once with its deposed
 * objects, and also when only a deposed object is left; data sources do not count): what
 * Terraform's `workspace delete` refuses to lose.
 */
export function managedInstanceCount(state: GaibState | null): number {
  let count = 0;
  for (const resource of state?.resources ?? []) {
    if (resource.mode !== "managed") continue;
    // An instance's deposed objects are entries of their own, with the instance's key.
    const keys = new Set(
      (resource.instances ?? []).map((i) => `${typeof i.index_key}:${instanceKey(i)}`),
    );
    count += keys.size;
  }
  return count;
}

/**
 * Refuses `deleteState` of a workspace whose state still tracks managed resource instances,
 * unless `force`.
 *
 * @throws {WorkspaceNotEmptyError} naming the count and the way to delete anyway
 */
export function checkEmptyForDelete(
  workspace: string,
  state: GaibState | null,
  force: boolean | undefined,
): void {
  const instances = managedInstanceCount(state);
  if (instances === 0 || force) return;
  throw new WorkspaceNotEmptyError(
    `Cannot delete workspace "${workspace}": its state still tracks ${instances} managed ` +
      "resource instance(s), which nothing would track after the delete. Destroy or move them " +
      `first, or delete it anyway with "gaib-state workspace delete --force ${
        shellQuote(workspace)
      }".`,
    workspace,
    instances,
  );
}

/** Options for {@linkcode readSelectedWorkspace}. */
export interface SelectedWorkspaceOptions {
  /**
   * The environment to read `GAIB_WORKSPACE` from.
   * @default {Deno.env}
   */
  env?: { get(name: string): string | undefined };
}

/**
 * Reads the selected workspace: `GAIB_WORKSPACE` when set, else the name stored in
 * `<root>/.current-workspace`, else `default`.
 *
 * Needs `--allow-read` of the root and `--allow-env=GAIB_WORKSPACE`.
 *
 * @param root the state root, such as `.gaib`
 * @param options where to read the environment from
 * @returns the workspace name
 * @throws {BackendConfigError} when the stored or given name is invalid
 *
 * @example
 * ```ts ignore
 * import { readSelectedWorkspace } from "@gaib/state";
 * console.log(await readSelectedWorkspace(".gaib")); // "default" on a fresh project
 * ```
 */
export async function readSelectedWorkspace(
  root: string,
  options: SelectedWorkspaceOptions = {},
): Promise<string> {
  return (await resolveSelectedWorkspace(root, options)).name;
}

/** The selected workspace and where the choice came from. */
export interface SelectedWorkspace {
  /** The workspace name. */
  name: string;
  /** `GAIB_WORKSPACE`, the stored `.current-workspace`, or the `default` fallback. */
  source: "GAIB_WORKSPACE" | ".current-workspace" | "default";
}

/**
 * Like {@linkcode readSelectedWorkspace}, and also says where the name came from.
 *
 * @param root the state root, such as `.gaib`
 * @param options where to read the environment from
 * @returns the name and its source
 * @throws {BackendConfigError} when the stored or given name is invalid
 *
 * @example
 * ```ts ignore
 * import { resolveSelectedWorkspace } from "@gaib/state";
 * const { name, source } = await resolveSelectedWorkspace(".gaib");
 * ```
 */
export async function resolveSelectedWorkspace(
  root: string,
  options: SelectedWorkspaceOptions = {},
): Promise<SelectedWorkspace> {
  let fromEnv: string | undefined;
  try {
    fromEnv = (options.env ?? Deno.env).get("GAIB_WORKSPACE");
  } catch {
    // not allowed to read it: as if unset
  }
  if (fromEnv !== undefined && fromEnv !== "") {
    return { name: validateWorkspaceName(fromEnv), source: "GAIB_WORKSPACE" };
  }
  const file = `${root}/.current-workspace`;
  // A name is short: anything longer (or a link) was not written by gaib-state.
  const bytes = await readSmallFile(file, "selected-workspace file", MAX_SELECTED_BYTES);
  if (bytes === null) return { name: DEFAULT_WORKSPACE, source: "default" };
  let stored: string;
  try {
    stored = new TextDecoder("utf-8", { fatal: true }).decode(bytes).trim();
  } catch {
    stored = "\uFFFD"; // not UTF-8: refused below as an invalid name
  }
  if (stored === "") return { name: DEFAULT_WORKSPACE, source: "default" };
  try {
    return { name: validateWorkspaceName(stored), source: ".current-workspace" };
  } catch {
    // Its content is not repeated: it may be anything that was put there.
    throw new BackendConfigError(
      `${file} does not hold a valid workspace name. Select one with ` +
        '"gaib-state workspace select NAME", or remove the file to select "default".',
      { file },
    );
  }
}

/**
 * Stores the selected workspace in `<root>/.current-workspace` (atomically).
 *
 * Needs `--allow-read` and `--allow-write` of the root.
 *
 * @param root the state root
 * @param name the workspace to select
 * @throws {BackendConfigError} when the name is invalid
 *
 * @example
 * ```ts ignore
 * import { writeSelectedWorkspace } from "@gaib/state";
 * await writeSelectedWorkspace(".gaib", "staging");
 * ```
 */
export async function writeSelectedWorkspace(root: string, name: string): Promise<void> {
  validateWorkspaceName(name);
  await Deno.mkdir(root, { recursive: true, mode: 0o700 });
  const temp = `${root}/.current-workspace.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(temp, name + "\n", { mode: 0o600, createNew: true });
    await Deno.rename(temp, `${root}/.current-workspace`);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
