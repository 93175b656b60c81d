/**
 * Lock helpers shared by every backend: lock IDs and info, the busy-lock message, waiting
 * with backoff, and `withLock` / `withBackend`.
 *
 * @module
 */

import { BackendError, StateLockError } from "./errors.ts";
import { printable } from "./_printable.ts";
import type { LockInfo, LockOptions, LockResult, StateBackend } from "./types.ts";
import { VERSION } from "./version.ts";
import { gaibCommand } from "./_command_line.ts";

/**
 * Generates a lock ID: a random UUID, as Terraform uses.
 *
 * @returns a new lock ID
 *
 * @example
 * ```ts
 * import { generateLockId } from "@gaib/state";
 * console.log(/^[0-9a-f-]{36}$/.test(generateLockId())); // true
 * ```
 */
export function generateLockId(): string {
  return crypto.randomUUID();
}

function tryEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env for it
  }
}

/**
 * The name of the user running this process: `USER`, `USERNAME` or `LOGNAME`, else the name
 * `/etc/passwd` gives its uid (containers seldom set `USER`), else `uid-<n>`, else `unknown`.
 * The uid needs `--allow-sys=uid`, the file `--allow-read`; what is not allowed is skipped.
 */
export function currentUserName(): string {
  const fromEnv = tryEnv("USER") ?? tryEnv("USERNAME") ?? tryEnv("LOGNAME");
  if (fromEnv) return fromEnv;
  let uid: number | null = null;
  try {
    uid = Deno.uid();
  } catch {
    // no --allow-sys=uid
  }
  if (uid === null) return "unknown"; // Windows, or not allowed
  return passwdName(uid) ?? `uid-${uid}`;
}

/** The user name `/etc/passwd` gives `uid`, or `null`. */
function passwdName(uid: number): string | null {
  let text: string;
  try {
    text = Deno.readTextFileSync("/etc/passwd");
  } catch {
    return null; // no such file, or not allowed to read it
  }
  for (const line of text.split("\n")) {
    const [name, , id] = line.split(":");
    if (name && id !== undefined && Number(id) === uid && /^\d+$/.test(id)) return name;
  }
  return null;
}

/** `user@host` of this process, as Terraform fills `Who`; parts it may not read are left out. */
export function defaultWho(): string {
  let host = "unknown";
  try {
    host = Deno.hostname();
  } catch {
    // no --allow-sys=hostname
  }
  return `${currentUserName()}@${host}`;
}

/** Builds the lock info for a new lock on `path`. */
export function newLockInfo(path: string, options: LockOptions = {}): LockInfo {
  return {
    ID: options.id ?? generateLockId(),
    Operation: options.operation ?? "lock",
    Info: options.info ?? "",
    Who: options.who ?? defaultWho(),
    Version: VERSION,
    Created: new Date().toISOString(),
    Path: path,
  };
}

/**
 * Serializes a lock record: Terraform's seven fields in Terraform's order, then `extra`
 * fields (which Terraform ignores).
 */
export function encodeLockJson(info: LockInfo, extra: Record<string, unknown> = {}): string {
  const { ID, Operation, Info, Who, Version, Created, Path } = info;
  return JSON.stringify({ ID, Operation, Info, Who, Version, Created, Path, ...extra });
}

/**
 * Parses a stored lock record. A damaged one (not a JSON object) becomes a lock with an empty
 * ID whose `Info` says it is damaged: it is never taken over automatically.
 *
 * @returns Terraform's seven fields, and the whole document for any extra fields
 */
export function decodeLockJson(
  text: string,
  what: string,
): { info: LockInfo; doc: Record<string, unknown> } {
  try {
    const doc = JSON.parse(text);
    if (typeof doc === "object" && doc !== null && !Array.isArray(doc)) {
      return { info: pickLockInfo(doc), doc };
    }
  } catch {
    // damaged: fall through
  }
  return { info: { ...pickLockInfo({}), Info: `damaged ${what}` }, doc: {} };
}

/** Picks exactly Terraform's seven fields from a stored lock record. */
export function pickLockInfo(record: Record<string, unknown>): LockInfo {
  const text = (key: string): string => {
    const value = record[key];
    return typeof value === "string" ? value : value === undefined ? "" : String(value);
  };
  return {
    ID: text("ID"),
    Operation: text("Operation"),
    Info: text("Info"),
    Who: text("Who"),
    Version: text("Version"),
    Created: text("Created"),
    Path: text("Path"),
  };
}

// Lock records are written by whoever can write the store: their fields are printed escaped.
export { printable };

/**
 * Describes a lock's holder for people, as every busy-lock message does.
 *
 * @param info the lock info
 * @returns text such as `held by alice@ci (apply, since 2026-11-26T10:02:11Z, lock ID 7f3c…)`
 *
 * @example
 * ```ts
 * import { describeHolder } from "@gaib/state";
 * const text = describeHolder({
 *   ID: "7f3c", Operation: "apply", Info: "", Who: "alice@ci", Version: "0.1.0",
 *   Created: "2026-11-26T10:02:11Z", Path: "default",
 * });
 * console.log(text); // held by alice@ci (apply, since 2026-11-26T10:02:11Z, lock ID 7f3c)
 * ```
 */
export function describeHolder(info: LockInfo): string {
  const operation = info.Operation ? `${printable(info.Operation)}, ` : "";
  return `held by ${printable(info.Who) || "an unknown holder"} (${operation}since ${
    printable(info.Created) || "an unknown time"
  }, lock ID ${info.ID === "" ? '"" (none recorded)' : printable(info.ID)})`;
}

/** The exact command that clears a lock: `gaib-state force-unlock ID -w NAME`. */
export function forceUnlockCommand(workspace: string, lockId: string): string {
  return gaibCommand(workspace, "force-unlock", lockId);
}

/** The exact command that releases a lock: `gaib-state unlock ID -w NAME`. */
export function unlockCommand(workspace: string, lockId: string): string {
  return gaibCommand(workspace, "unlock", lockId);
}

/**
 * What a command waiting for a busy lock says once, like Terraform's "Acquiring state lock".
 *
 * @param workspace the workspace
 * @param holder the lock in the way
 * @param timeout how long the wait may last, as people read it (such as `30s`)
 */
export function lockWaitMessage(workspace: string, holder: LockInfo, timeout: string): string {
  return `Waiting for the lock on workspace "${printable(workspace)}", ${
    describeHolder(holder)
  }, for up to ${timeout}...`;
}

/** The error for a workspace that another holder has locked. */
export function lockBusyError(
  workspace: string,
  info: LockInfo,
  extra = "",
  options?: ErrorOptions,
): StateLockError {
  return new StateLockError(
    `Cannot lock workspace "${workspace}": ${describeHolder(info)}.${extra ? " " + extra : ""} ` +
      `If that holder is gone, run "${forceUnlockCommand(workspace, info.ID)}".`,
    info,
    options,
  );
}

/**
 * Refuses lock options that cannot mean what they say: `ttlMs` without `detached` (a
 * process-bound lock lives as long as its holder), a TTL outside 1 ms..100 years, a negative or
 * NaN `timeoutMs`.
 */
export function checkLockOptions(options: LockOptions): void {
  const { ttlMs, timeoutMs, id } = options;
  if (id !== undefined && !(typeof id === "string" && LOCK_ID_PATTERN.test(id))) {
    throw new BackendError(
      `A chosen lock ID must be 1 to 128 letters, digits or "-._:"; got ` +
        `${JSON.stringify(String(id).slice(0, 40))}.`,
    );
  }
  if (ttlMs !== undefined) {
    if (!options.detached) {
      throw new BackendError("ttlMs applies to detached locks only; set detached: true.");
    }
    // A TTL of 0 would take an already expired lock; one past MAX_TTL_MS an invalid date.
    if (!(typeof ttlMs === "number" && ttlMs >= 1 && ttlMs <= MAX_TTL_MS)) {
      throw new BackendError(
        `ttlMs must be a number of milliseconds from 1 to ${MAX_TTL_MS} (100 years); got ` +
          `${String(ttlMs).slice(0, 40)}.`,
      );
    }
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs >= 0)) {
    throw new BackendError(
      `timeoutMs must be 0 or more milliseconds (Infinity waits for ever); got ` +
        `${String(timeoutMs).slice(0, 40)}.`,
    );
  }
}

/** What a lock ID chosen by the caller ({@linkcode LockOptions.id}) may be. */
export const LOCK_ID_PATTERN: RegExp = /^[A-Za-z0-9._:-]{1,128}$/;

/** The longest TTL a detached lock may have: 100 years, far inside the range of a `Date`. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * The error for a write whose lock ID does not fit the workspace's current lock, or `null`
 * when the write may go ahead: no lock and no ID, or the ID of the current lock.
 *
 * @param current the current lock, `null` when the workspace is not locked
 */
export function writeLockError(
  workspace: string,
  lockId: string | undefined,
  current: LockInfo | null,
  action = "write the state of workspace",
): StateLockError | null {
  const where = `Cannot ${action} "${workspace}"`;
  if (current === null) {
    if (lockId === undefined) return null;
    return new StateLockError(
      `${where}: lock ${printable(lockId)} is no longer held (it was released, force-unlocked ` +
        "or taken over after its holder died). Take the lock again, read the state again and " +
        "retry.",
    );
  }
  if (lockId === undefined) {
    return new StateLockError(
      `${where}: it is locked, ${describeHolder(current)}. Write with that lock's ID, or wait ` +
        "until it is released.",
      current,
    );
  }
  if (current.ID !== lockId) {
    return new StateLockError(
      `${where}: lock ${printable(lockId)} is not the current lock, which is ` +
        `${describeHolder(current)}.`,
      current,
    );
  }
  return null;
}

/**
 * The error for a delete whose lock ID does not fit the workspace's current lock (the rules
 * of {@linkcode writeLockError}), or `null` when the delete may go ahead.
 *
 * @param current the current lock, `null` when the workspace is not locked
 */
export function deleteLockError(
  workspace: string,
  lockId: string | undefined,
  current: LockInfo | null,
): StateLockError | null {
  if (current !== null && lockId === undefined) {
    return new StateLockError(
      `Cannot delete workspace "${workspace}": it is locked, ${describeHolder(current)}. Wait ` +
        `for the holder to finish, delete with that lock's ID, or run ` +
        `"${forceUnlockCommand(workspace, current.ID)}" if it is gone.`,
      current,
    );
  }
  return writeLockError(workspace, lockId, current, "delete workspace");
}

/** The error for an unlock of a workspace that is not locked. */
export function notLockedError(workspace: string, lockId: string): StateLockError {
  return new StateLockError(
    `Cannot unlock workspace "${workspace}" with lock ID "${printable(lockId)}": it is not ` +
      "locked.",
  );
}

/** The error for an unlock whose ID is not the current lock's. */
export function lockMismatchError(
  workspace: string,
  lockId: string,
  current: LockInfo,
): StateLockError {
  return new StateLockError(
    `Cannot unlock workspace "${workspace}": lock ID "${printable(lockId)}" does not match ` +
      `the current lock, which is ${describeHolder(current)}.`,
    current,
  );
}

/**
 * The error for `unlock` of a lock another live holder still holds.
 *
 * @param holder what holds it: `"process"` (local) or `"client"` (S3)
 * @param reason why the holder counts as alive
 */
export function liveHolderError(
  workspace: string,
  info: LockInfo,
  holder: string,
  reason: string,
): StateLockError {
  return new StateLockError(
    `Cannot unlock workspace "${workspace}": the lock belongs to another ${holder} that is ` +
      `still running (${describeHolder(info)}). ${reason} If you are sure it must go, run ` +
      `"${forceUnlockCommand(workspace, info.ID)}".`,
    info,
  );
}

/**
 * The error for a lock that could not be released, naming the command that clears it.
 *
 * @param unlockError why releasing failed
 * @param during what had happened before, such as `" (after the work failed: ...)"`
 * @param cause the error to keep as `cause` (the work's, when it failed too)
 */
export function releaseFailedError(
  workspace: string,
  lockId: string,
  unlockError: unknown,
  during = "",
  cause: unknown = unlockError,
): StateLockError {
  return new StateLockError(
    `Failed to release lock ${printable(lockId)} on workspace "${workspace}"${during}: ` +
      `${unlockError instanceof Error ? unlockError.message : unlockError}. Run ` +
      `"${forceUnlockCommand(workspace, lockId)}" once nothing uses it.`,
    null,
    { cause },
  );
}

/**
 * Calls `attempt` until it succeeds, retrying on `StateLockError` with backoff until
 * `timeoutMs` has passed or `signal` aborts; then throws the last `StateLockError`. Calls
 * `onWait` with the holder once, before the first wait.
 */
export async function retryLock(
  attempt: () => Promise<LockResult>,
  options: LockOptions = {},
): Promise<LockResult> {
  const deadline = Date.now() + Math.max(0, options.timeoutMs ?? 0);
  let delay = 50;
  let waited = false;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof StateLockError) || error.lockInfo === null) throw error;
      const left = deadline - Date.now();
      if (left <= 0) throw error;
      if (!waited) {
        waited = true;
        options.onWait?.(error.lockInfo);
      }
      await sleep(Math.min(left, delay * (0.5 + Math.random())), options.signal, error);
      delay = Math.min(delay * 2, 1000);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined, last: StateLockError): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(
        new StateLockError(`Stopped waiting for the lock: ${last.message}`, last.lockInfo, {
          cause: signal?.reason,
        }),
      );
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Options for {@linkcode withLock}. */
export interface WithLockOptions {
  /**
   * Free-form information stored with the lock.
   * @default {""}
   */
  info?: string;
  /**
   * How long to wait for a busy lock before failing.
   * @default {0}
   */
  timeoutMs?: number;
  /** Aborts the wait for a busy lock. */
  signal?: AbortSignal;
}

/**
 * Runs `fn` while holding a workspace's lock, and always releases the lock afterwards, even
 * when `fn` throws.
 *
 * When releasing fails, the error names the lock ID so it can be cleared with
 * `gaib-state force-unlock`; when `fn` failed too, that error is the `cause`.
 *
 * @param backend the backend
 * @param workspace the workspace to lock
 * @param who who takes the lock (`user@host` when empty)
 * @param operation what the lock is for, such as `"apply"`
 * @param fn the work to do; receives the lock ID to pass to `setState`
 * @param options `info`, `timeoutMs`, `signal`
 * @returns what `fn` returns
 * @throws {StateLockError} when the lock is busy or cannot be released
 *
 * @example Incrementing a value under the lock
 * ```ts ignore
 * import { LocalBackend, withLock } from "@gaib/state";
 *
 * const backend = new LocalBackend({ path: ".gaib" });
 * await withLock(backend, "default", "", "apply", async ({ lockId }) => {
 *   const state = await backend.getState("default");
 *   if (state) await backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
 * });
 * ```
 */
export async function withLock<T>(
  backend: StateBackend,
  workspace: string,
  who: string,
  operation: string,
  fn: (lock: { lockId: string }) => T | Promise<T>,
  options: WithLockOptions = {},
): Promise<T> {
  const { lockId } = await backend.lock(workspace, {
    who: who || undefined,
    operation,
    info: options.info,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  });
  let failed = false;
  let failure: unknown;
  try {
    return await fn({ lockId });
  } catch (error) {
    failed = true;
    failure = error;
    throw error;
  } finally {
    try {
      await backend.unlock(workspace, lockId);
    } catch (unlockError) {
      const during = failed
        ? ` (after the work failed: ${failure instanceof Error ? failure.message : failure})`
        : "";
      // Throwing from finally replaces the work's error, which stays reachable as `cause`.
      // deno-lint-ignore no-unsafe-finally
      throw releaseFailedError(
        workspace,
        lockId,
        unlockError,
        during,
        failed ? failure : unlockError,
      );
    }
  }
}

/**
 * Runs `fn` with a backend and always closes the backend afterwards.
 *
 * @param backend the backend
 * @param fn the work to do
 * @returns what `fn` returns
 *
 * @example
 * ```ts ignore
 * import { BackendFactory, withBackend } from "@gaib/state";
 *
 * const names = await withBackend(await BackendFactory.auto(), (b) => b.listWorkspaces());
 * ```
 */
export async function withBackend<B extends StateBackend, T>(
  backend: B,
  fn: (backend: B) => T | Promise<T>,
): Promise<T> {
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

/** Thrown for an operation on a closed backend. */
export function closedError(): BackendError {
  return new BackendError("The backend is closed; create a new one to keep working.");
}
