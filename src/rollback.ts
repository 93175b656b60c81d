/**
 * Rollback: putting an earlier version of a state back, as a new write. Never a rewind: the
 * version's content is written with the next serial, so everyone else's lost-update checks
 * (which compare serials) keep working.
 *
 * @module
 */

import { gaibCommand } from "./_command_line.ts";
import { StateLineageError } from "./errors.ts";
import { withLock } from "./lock.ts";
import type { GaibState, StateBackend } from "./types.ts";

/** Options for {@linkcode rollbackState}. */
export interface RollbackOptions {
  /**
   * Work under this lock, already held, instead of taking one.
   * @default {undefined}
   */
  lockId?: string;
  /**
   * Roll back to a version of another lineage too. The version then keeps its own lineage
   * (it is another history: the write replaces the current one, as `state push --force`
   * does).
   * @default {false}
   */
  force?: boolean;
  /**
   * How long to wait for a busy lock when no `lockId` is given.
   * @default {0}
   */
  timeoutMs?: number;
  /**
   * Who takes the lock when no `lockId` is given.
   * @default {"<user>@<hostname>"}
   */
  who?: string;
}

/** What {@linkcode rollbackState} wrote. */
export interface RollbackResult {
  /** The version rolled back to. */
  versionId: string;
  /** The serial of that version as it was stored. */
  versionSerial: number;
  /** The serial of the state that was current before, or `null` when there was none. */
  previousSerial: number | null;
  /** The serial written: the previous one plus 1 (above the version's, if that is higher). */
  serial: number;
  /** The lineage written. */
  lineage: string;
}

/**
 * The state a rollback writes: `version`'s content with serial `current + 1` and the current
 * lineage. Shared by {@linkcode rollbackState} and the CLI.
 *
 * @throws {StateLineageError} when the lineages differ and `force` is not set
 */
export function rollbackTarget(
  workspace: string,
  versionId: string,
  current: GaibState | null,
  version: GaibState,
  force = false,
): GaibState {
  if (current === null) return { ...version, serial: version.serial + 1 };
  if (version.lineage !== current.lineage && !force) {
    throw new StateLineageError(
      `Cannot roll workspace "${workspace}" back to version ${versionId}: its lineage ` +
        `"${version.lineage}" differs from the current state's "${current.lineage}", so it is ` +
        "the history of other infrastructure. Check the version; to put it back anyway, run " +
        `"${gaibCommand(workspace, "state rollback --force", versionId)}".`,
      current.lineage,
      version.lineage,
    );
  }
  const serial = Math.max(current.serial, version.serial) + 1;
  return { ...version, serial, lineage: force ? version.lineage : current.lineage };
}

/**
 * Rolls a workspace back to one of its stored versions (see `StateHistory.listVersions`):
 * reads that version and writes its content as a new state, with serial = current serial + 1
 * and the current lineage, under the workspace lock (taken here, and released, unless
 * `lockId` names one already held). A version of another lineage is refused unless `force`.
 *
 * @param backend the backend
 * @param workspace the workspace
 * @param versionId the version to put back
 * @param options `lockId`, `force`, and how to take the lock
 * @returns what was written
 * @throws {StateVersionNotFoundError} when the workspace has no such version
 * @throws {StateLineageError} when the version is of another lineage and `force` is not set
 * @throws {StateLockError} when the lock is busy, or `lockId` is not the current lock
 *
 * @example Undoing a bad write
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEmptyState, LocalBackend, rollbackState } from "@gaib/state";
 *
 * const root = await Deno.makeTempDir();
 * await using backend = new LocalBackend({ path: root });
 * const good = { ...createEmptyState(), serial: 1 };
 * await backend.setState("default", good);
 * const bad = { ...good, serial: 2, outputs: { oops: { value: "x", type: "string" } } };
 * await backend.setState("default", bad);
 * const [, before] = await backend.listVersions("default");
 * const result = await rollbackState(backend, "default", before.versionId);
 * assert.equal(result.serial, 3);
 * assert.deepEqual((await backend.getState("default"))?.outputs, good.outputs);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function rollbackState(
  backend: StateBackend,
  workspace: string,
  versionId: string,
  options: RollbackOptions = {},
): Promise<RollbackResult> {
  const run = async (lockId: string): Promise<RollbackResult> => {
    const version = await backend.getStateVersion(workspace, versionId);
    const current = await backend.getState(workspace);
    const next = rollbackTarget(workspace, versionId, current, version, options.force);
    await backend.setState(workspace, next, {
      lockId,
      force: options.force === true && current !== null && current.lineage !== version.lineage,
    });
    return {
      versionId,
      versionSerial: version.serial,
      previousSerial: current?.serial ?? null,
      serial: next.serial,
      lineage: next.lineage,
    };
  };
  if (options.lockId !== undefined) return await run(options.lockId);
  return await withLock(
    backend,
    workspace,
    options.who ?? "",
    "state rollback",
    ({ lockId }) => run(lockId),
    { timeoutMs: options.timeoutMs },
  );
}
