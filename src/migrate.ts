/**
 * Moving states from one backend to another: `migrateStates` copies each workspace's current
 * state as it is (same lineage, same serial, every field and every number's text), under the
 * workspace lock of both backends, and reads it back from the target before it says so.
 *
 * It works through the `StateBackend` interface alone, so a wrapper (encryption, metrics)
 * around either backend is migrated through like any other backend. History (earlier
 * versions, local backups) does not move: only the current state of each workspace.
 *
 * @module
 */

import {
  BackendError,
  StateFormatError,
  StateLineageError,
  StateLockError,
  StateSerialError,
} from "./errors.ts";
import { describeHolder, releaseFailedError } from "./lock.ts";
import { printable } from "./_printable.ts";
import { serializeState } from "./state.ts";
import type { GaibState, LockInfo, LockOptions, LockResult, StateBackend } from "./types.ts";
import { validateWorkspaceName } from "./workspace.ts";

/**
 * What happened to one workspace:
 *
 * - `"copied"`: the target now holds the source's state, read back and compared;
 * - `"unchanged"`: the target already held the same state (same lineage, serial and content);
 * - `"refused"`: nothing was written, `reason` says why (another lineage or a newer serial on
 *   the target, a busy lock, an unreadable state);
 * - `"empty"`: the source has no state for the workspace, so there is nothing to copy.
 *
 * With `dryRun`, the action is what a real run would do, and nothing is written.
 */
export type MigrationAction = "copied" | "unchanged" | "refused" | "empty";

/** One workspace's outcome, as {@linkcode migrateStates} returns it. */
export interface MigrationEntry {
  /** The workspace. */
  workspace: string;
  /** What happened (see {@linkcode MigrationAction}). */
  action: MigrationAction;
  /** The source state's serial; `null` when the source has no state or was not read. */
  serial: number | null;
  /** The source state's lineage; `null` when the source has no state or was not read. */
  lineage: string | null;
  /** Why the workspace was refused (or copied over a conflict with `force`). */
  reason?: string;
  /** The target's state before the migration, when it held one. */
  target?: { serial: number; lineage: string };
  /** The lock in the way, when a busy lock refused the workspace (or, in a dry run, a lock). */
  holder?: LockInfo;
  /** Which backend {@linkcode MigrationEntry.holder} locks. */
  lockedOn?: "source" | "target";
  /** Set when `action` says what a real run would do: nothing was written. */
  dryRun?: true;
}

/** A step of a migration, for progress reports. */
export interface MigrationProgress {
  /** The workspace. */
  workspace: string;
  /** Its position, from 1. */
  index: number;
  /** How many workspaces the migration covers. */
  total: number;
  /**
   * `"start"` before a workspace is locked, `"waiting"` when a lock is busy and the migration
   * waits for it (`lockTimeoutMs` > 0), `"locked"` once both locks are held (before the
   * states are read), `"done"` with the workspace's entry.
   */
  phase: "start" | "waiting" | "locked" | "done";
  /** For `"waiting"`: which backend's lock is busy. */
  side?: "source" | "target";
  /** For `"waiting"`: the lock in the way. */
  holder?: LockInfo;
  /** For `"done"`: the outcome. */
  entry?: MigrationEntry;
}

/** Options for {@linkcode migrateStates}. */
export interface MigrateOptions {
  /**
   * The workspaces to migrate; each must exist in the source.
   * @default {every workspace of the source}
   */
  workspaces?: string[];
  /**
   * Work out and report what would happen, reading both backends and writing (and locking)
   * nothing.
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * Copy over a target that holds another lineage, a newer serial or other content with the
   * same serial (which is then lost from the target).
   * @default {false}
   */
  force?: boolean;
  /**
   * How long to wait for each busy lock before refusing the workspace. `0` refuses at once.
   * @default {0}
   */
  lockTimeoutMs?: number;
  /**
   * Called under both locks just before `force` writes over a state the target holds (another
   * lineage, a newer serial or other content), with that state: to keep a copy of what is
   * replaced. An error it throws stops the migration before the write.
   * @default {undefined}
   */
  onReplace?: (workspace: string, replaced: GaibState) => void | Promise<void>;
  /**
   * Stops the migration: a wait for a lock ends, a copy in flight finishes and is released,
   * and `migrateStates` throws a {@linkcode MigrationError} whose `results` list what was done.
   */
  signal?: AbortSignal;
  /**
   * Called at each step (see {@linkcode MigrationProgress}). An error it throws stops the
   * migration like an abort.
   * @default {undefined}
   */
  onProgress?: (progress: MigrationProgress) => void;
}

/**
 * A migration that stopped before its end: aborted, a source and a target that are the same
 * store, a state that did not read back as written, or an error that is not about one
 * workspace (a server that cannot be reached). Every lock it took is released (or the error
 * says which could not be). `results` lists the workspaces finished before it stopped; a
 * re-run finishes the job without copying them again.
 *
 * @example Finished workspaces travel with the error
 * ```ts
 * import { MigrationError } from "@gaib/state";
 * const error = new MigrationError("stopped", [
 *   { workspace: "default", action: "copied", serial: 3, lineage: "f6c5" },
 * ]);
 * console.log(error.results.length); // 1
 * ```
 */
export class MigrationError extends BackendError {
  /** The workspaces finished before the migration stopped. */
  readonly results: MigrationEntry[];

  /**
   * Creates the error.
   *
   * @param message what stopped the migration and what to do
   * @param results the workspaces finished before
   * @param options `cause`
   */
  constructor(message: string, results: MigrationEntry[], options?: ErrorOptions) {
    super(message, options);
    this.name = "MigrationError";
    this.results = results;
  }
}

/** Errors about one workspace's data or lock: the workspace is refused, the rest goes on. */
function isRefusal(error: unknown): error is BackendError {
  return error instanceof StateLockError || error instanceof StateLineageError ||
    error instanceof StateSerialError || error instanceof StateFormatError;
}

/** What the target's state means for the copy. */
type Verdict =
  | { kind: "copy"; reason?: string }
  | { kind: "unchanged" }
  | { kind: "conflict"; reason: string };

function judge(source: GaibState, sourceText: string, target: GaibState | null): Verdict {
  if (target === null) return { kind: "copy" };
  const held = `the target holds lineage ${printable(target.lineage)} serial ${target.serial}`;
  const empty = (target.resources?.length ?? 0) === 0 &&
      Object.keys(target.outputs ?? {}).length === 0
    ? " (an empty state: no resources, no outputs)"
    : "";
  if (target.lineage !== source.lineage) {
    return {
      kind: "conflict",
      reason: `${held}${empty}, another lineage than the source's ` +
        `${printable(source.lineage)}: it is the history of other infrastructure. Check ` +
        "which one to keep; copying replaces it (force)",
    };
  }
  if (target.serial < source.serial) return { kind: "copy" };
  if (target.serial > source.serial) {
    return {
      kind: "conflict",
      reason: `${held}, newer than the source's serial ${source.serial}: the target was ` +
        "written after the states parted. Copying would lose those changes (force)",
    };
  }
  if (serializeState(target) === sourceText) return { kind: "unchanged" };
  return {
    kind: "conflict",
    reason: `${held}, the source's serial, with other content: both were changed ` +
      "independently. Copying replaces the target's (force)",
  };
}

function sameLocationError(workspace: string, results: MigrationEntry[]): MigrationError {
  return new MigrationError(
    `The source and the target are the same store: the target's lock on workspace ` +
      `"${workspace}" is the one this migration took on the source. Nothing was copied; ` +
      "choose another target.",
    results,
  );
}

/**
 * Copies workspaces' states from one backend to another, one workspace at a time, each under
 * the workspace lock of both backends (source first), released on every path.
 *
 * For each workspace:
 * - no state in the source: `"empty"`;
 * - no state in the target, or the same lineage with a lower serial: the state is written as
 *   it is (same lineage and serial, every field kept), read back and compared: `"copied"`;
 * - the same lineage, serial and content: `"unchanged"` (so a re-run after an interruption
 *   copies nothing twice);
 * - another lineage, a newer serial, or the same serial with other content: `"refused"`
 *   with the reason, unless `force`, which copies over it;
 * - a lock still busy after `lockTimeoutMs`: `"refused"` with the holder.
 *
 * History (earlier versions of a state) does not move. Needs the permissions of both backends.
 *
 * @param from the backend to copy from (only read, and locked)
 * @param to the backend to copy to
 * @param options workspaces, dry run, force, lock timeout, abort signal, progress
 * @returns one entry per workspace, in the order of the workspaces (sorted by default)
 * @throws {BackendError} when a requested workspace is missing from the source or its name is
 *   invalid, or `from` and `to` are the same object (nothing is done)
 * @throws {MigrationError} when the migration stops before its end (see the class)
 *
 * @example Moving every workspace to another state root
 * ```ts
 * import { createEmptyState, LocalBackend, migrateStates } from "@gaib/state";
 *
 * const [a, b] = [await Deno.makeTempDir(), await Deno.makeTempDir()];
 * const from = new LocalBackend({ path: a });
 * const to = new LocalBackend({ path: b });
 * await from.setState("default", { ...createEmptyState(), serial: 7 });
 * const results = await migrateStates(from, to);
 * console.log(results[0].action, (await to.getState("default"))?.serial); // copied 7
 * console.log((await migrateStates(from, to))[0].action); // unchanged
 * await from.close();
 * await to.close();
 * await Deno.remove(a, { recursive: true });
 * await Deno.remove(b, { recursive: true });
 * ```
 */
export async function migrateStates(
  from: StateBackend,
  to: StateBackend,
  options: MigrateOptions = {},
): Promise<MigrationEntry[]> {
  if (from === to) {
    throw new BackendError(
      "The source and the target are the same backend; nothing to migrate. Choose another target.",
    );
  }
  const workspaces = await chooseWorkspaces(from, options.workspaces);
  const results: MigrationEntry[] = [];
  const total = workspaces.length;
  for (const [i, workspace] of workspaces.entries()) {
    const step = { workspace, index: i + 1, total };
    let entry: MigrationEntry;
    try {
      options.signal?.throwIfAborted();
      options.onProgress?.({ ...step, phase: "start" });
      entry = options.dryRun
        ? await preview(from, to, workspace)
        : await migrateOne(from, to, workspace, options, {
          waiting: (side, holder) =>
            options.onProgress?.({ ...step, phase: "waiting", side, holder }),
          locked: () => options.onProgress?.({ ...step, phase: "locked" }),
        });
    } catch (error) {
      throw stopped(error, workspace, results, options.signal);
    }
    results.push(entry);
    try {
      options.onProgress?.({ ...step, phase: "done", entry });
    } catch (error) {
      throw stopped(error, workspace, results, options.signal);
    }
  }
  return results;
}

/** The error that ends a migration, with the results so far. */
function stopped(
  error: unknown,
  workspace: string,
  results: MigrationEntry[],
  signal: AbortSignal | undefined,
): MigrationError {
  const done = `${results.length} workspace(s) were finished before; running the migration ` +
    "again finishes the job without copying them twice.";
  if (signal?.aborted) {
    return new MigrationError(
      `The migration was stopped at workspace "${workspace}". ${done}`,
      results,
      { cause: signal.reason },
    );
  }
  if (error instanceof MigrationError) {
    return new MigrationError(`${error.message} ${done}`, results, { cause: error.cause });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new MigrationError(
    `The migration stopped at workspace "${workspace}": ${message} ${done}`,
    results,
    { cause: error },
  );
}

/** The workspaces to migrate: the requested ones (checked), else every one of the source. */
async function chooseWorkspaces(
  from: StateBackend,
  requested: string[] | undefined,
): Promise<string[]> {
  const existing = await from.listWorkspaces();
  if (requested === undefined) return existing;
  const names = [...new Set(requested.map((name) => validateWorkspaceName(name)))];
  const missing = names.filter((name) => !existing.includes(name));
  if (missing.length > 0) {
    throw new BackendError(
      `The source has no workspace ${missing.map((n) => `"${n}"`).join(", ")}` +
        `${
          existing.length <= 10 ? ` (it has ${existing.map((n) => `"${n}"`).join(", ")})` : ""
        }. Nothing was migrated; check the names.`,
    );
  }
  return names;
}

function entryOf(
  workspace: string,
  state: GaibState | null,
  target: GaibState | null,
): MigrationEntry {
  const entry: MigrationEntry = {
    workspace,
    action: "empty",
    serial: state?.serial ?? null,
    lineage: state?.lineage ?? null,
  };
  if (target) entry.target = { serial: target.serial, lineage: target.lineage };
  return entry;
}

/** What a real run would do, from both states and locks; nothing is locked or written. */
async function preview(
  from: StateBackend,
  to: StateBackend,
  workspace: string,
): Promise<MigrationEntry> {
  const state = await from.getState(workspace);
  const target = state === null ? null : await to.getState(workspace);
  const entry: MigrationEntry = { ...entryOf(workspace, state, target), dryRun: true };
  if (state === null) return entry;
  const verdict = judge(state, serializeState(state), target);
  entry.action = verdict.kind === "copy"
    ? "copied"
    : verdict.kind === "unchanged"
    ? "unchanged"
    : "refused";
  if (verdict.kind === "conflict") entry.reason = verdict.reason;
  const locks: string[] = [];
  for (const [side, backend] of [["source", from], ["target", to]] as const) {
    const holder = await backend.getLockInfo(workspace);
    if (holder) {
      entry.lockedOn ??= side;
      entry.holder ??= holder;
      locks.push(`locked on the ${side}, ${describeHolder(holder)}`);
    }
  }
  if (locks.length > 0) {
    entry.reason = [entry.reason, `${locks.join("; ")}: a real run waits for the lock or refuses`]
      .filter(Boolean).join("; ");
  }
  return entry;
}

/** A busy lock as a refusal, or `null` for any other error. */
function busyLock(
  error: unknown,
  side: "source" | "target",
  workspace: string,
  signal: AbortSignal | undefined,
): MigrationEntry | null {
  if (signal?.aborted || !(error instanceof StateLockError) || error.lockInfo === null) {
    return null;
  }
  return {
    workspace,
    action: "refused",
    serial: null,
    lineage: null,
    reason: `locked on the ${side}, ${describeHolder(error.lockInfo)}; run the migration again ` +
      "once it is released, or wait longer for it (lock timeout)",
    holder: error.lockInfo,
    lockedOn: side,
  };
}

/** Locks a workspace on both sides, copies it, and releases both locks on every path. */
async function migrateOne(
  from: StateBackend,
  to: StateBackend,
  workspace: string,
  options: MigrateOptions,
  report: {
    waiting: (side: "source" | "target", holder: LockInfo) => void;
    locked: () => void;
  },
): Promise<MigrationEntry> {
  const lockOptions = (side: "source" | "target"): LockOptions => ({
    operation: "migrate",
    info: `gaib-state migrate (${side})`,
    timeoutMs: options.lockTimeoutMs ?? 0,
    signal: options.signal,
    onWait: (holder: LockInfo) => report.waiting(side, holder),
  });
  let source: LockResult;
  try {
    source = await from.lock(workspace, lockOptions("source"));
  } catch (error) {
    const refused = busyLock(error, "source", workspace, options.signal);
    if (refused) return refused;
    throw error;
  }
  const held: Array<{ backend: StateBackend; lockId: string; side: string }> = [
    { backend: from, lockId: source.lockId, side: "source" },
  ];
  let outcome: { entry: MigrationEntry } | { error: unknown };
  try {
    // Read under the source's lock: a source without a state needs no target lock at all.
    const state = await from.getState(workspace);
    outcome = state === null ? { entry: entryOf(workspace, null, null) } : {
      entry: await lockTargetAndCopy(to, workspace, state, source.lockId, held, {
        ...options,
        lockOptions,
        locked: report.locked,
      }),
    };
  } catch (error) {
    outcome = { error };
  }
  return await releaseAll(held, workspace, outcome, options.signal);
}

/** Takes the target's lock (added to `held`), then copies; a busy lock refuses the workspace. */
async function lockTargetAndCopy(
  to: StateBackend,
  workspace: string,
  state: GaibState,
  sourceLockId: string,
  held: Array<{ backend: StateBackend; lockId: string; side: string }>,
  options: MigrateOptions & { lockOptions: (side: "target") => LockOptions; locked: () => void },
): Promise<MigrationEntry> {
  let target: LockResult;
  try {
    target = await to.lock(workspace, options.lockOptions("target"));
  } catch (error) {
    // Only the same store can hold this very lock.
    if (error instanceof StateLockError && error.lockInfo?.ID === sourceLockId) {
      throw sameLocationError(workspace, []);
    }
    const refused = busyLock(error, "target", workspace, options.signal);
    if (refused) return { ...refused, serial: state.serial, lineage: state.lineage };
    throw error;
  }
  held.push({ backend: to, lockId: target.lockId, side: "target" });
  options.locked();
  return await copyLocked(to, workspace, state, target.lockId, options);
}

/**
 * Releases every lock held (target first), then returns the entry or throws the error; a
 * release that fails becomes the error (with the work's error as its cause).
 */
async function releaseAll(
  held: Array<{ backend: StateBackend; lockId: string; side: string }>,
  workspace: string,
  outcome: { entry: MigrationEntry } | { error: unknown },
  signal: AbortSignal | undefined,
): Promise<MigrationEntry> {
  let releaseError: unknown;
  for (const { backend, lockId, side } of [...held].reverse()) {
    try {
      await backend.unlock(workspace, lockId);
    } catch (error) {
      const during = "error" in outcome
        ? ` on the ${side} (after: ${(outcome.error as Error)?.message ?? outcome.error})`
        : ` on the ${side}`;
      releaseError ??= releaseFailedError(
        workspace,
        lockId,
        error,
        during,
        "error" in outcome ? outcome.error : error,
      );
    }
  }
  if (releaseError !== undefined) throw releaseError;
  if ("error" in outcome) {
    // A wait for a lock that the abort ended is no refusal: the migration stops.
    const refused = signal?.aborted ? null : refusal(outcome.error, workspace);
    if (refused) return refused;
    throw outcome.error;
  }
  return outcome.entry;
}

function refusal(error: unknown, workspace: string): MigrationEntry | null {
  if (!isRefusal(error)) return null;
  return {
    workspace,
    action: "refused",
    serial: null,
    lineage: null,
    reason: error.message,
  };
}

/** The copy itself, under both locks. */
async function copyLocked(
  to: StateBackend,
  workspace: string,
  state: GaibState,
  lockId: string,
  options: MigrateOptions,
): Promise<MigrationEntry> {
  const target = await to.getState(workspace);
  const entry = entryOf(workspace, state, target);
  const text = serializeState(state);
  const verdict = judge(state, text, target);
  if (verdict.kind === "unchanged") return { ...entry, action: "unchanged" };
  if (verdict.kind === "conflict") {
    if (!options.force) return { ...entry, action: "refused", reason: verdict.reason };
    await options.onReplace?.(workspace, target!);
  }
  await to.setState(workspace, state, { lockId, force: verdict.kind === "conflict" });
  const written = await to.getState(workspace);
  if (written === null || serializeState(written) !== text) {
    throw new MigrationError(
      `The state of workspace "${workspace}" read back from the target differs from the ` +
        "source's: the target did not keep it as written. The source is unchanged; check the " +
        "target before using it.",
      [],
    );
  }
  return verdict.kind === "conflict"
    ? { ...entry, action: "copied", reason: `forced: ${verdict.reason}` }
    : { ...entry, action: "copied" };
}
