/**
 * What every backend's history shares: the check of `listVersions` options and the error for
 * a version that is not there.
 *
 * @module
 */

import { gaibCommand } from "./_command_line.ts";
import { printable } from "./_printable.ts";
import { BackendError, StateVersionNotFoundError } from "./errors.ts";
import type { ListVersionsOptions } from "./types.ts";

/**
 * The `limit` of `listVersions` options, checked.
 *
 * @returns the limit, or `Infinity` when none is given
 * @throws {BackendError} when `limit` is not a whole number of at least 1
 */
export function versionLimit(options: ListVersionsOptions = {}): number {
  const { limit } = options;
  if (limit === undefined) return Infinity;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new BackendError(
      `listVersions: limit must be a whole number of at least 1, not ${printable(String(limit))}.`,
    );
  }
  return limit;
}

/**
 * The error for a version ID a workspace does not have.
 *
 * @param workspace the workspace
 * @param versionId the ID as given (escaped in the message)
 * @param why what is wrong with it, when more is known than "not there"
 */
export function versionNotFound(
  workspace: string,
  versionId: string,
  why = "it is unknown, or was pruned from the history",
): StateVersionNotFoundError {
  return new StateVersionNotFoundError(
    `Workspace "${workspace}" has no state version "${printable(versionId)}": ${why}. List ` +
      `the versions there are with "${gaibCommand(workspace, "state history")}".`,
    workspace,
    versionId,
  );
}
