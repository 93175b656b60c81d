/**
 * The embedded local backend: states as files under a state root (`.gaib` by default), with
 * atomic, durable writes and process-safe locks.
 *
 * @module
 */

import { openUnlinked } from "../_regular_file.ts";
import { renewLease } from "../_lease.ts";
import { checkWrite } from "../_write_rules.ts";
import {
  ENVELOPE_DOCUMENTS,
  STATE_DOCUMENTS,
  type StoredDocumentCodec,
  storesEnvelopes,
} from "../_stored_document.ts";
import { BackendError } from "../errors.ts";
import { versionLimit } from "../_history_rules.ts";
import {
  checkLockOptions,
  closedError,
  deleteLockError,
  liveHolderError,
  lockBusyError,
  lockMismatchError,
  newLockInfo,
  notLockedError,
  retryLock,
  writeLockError,
} from "../lock.ts";
import type {
  DeleteStateOptions,
  GaibState,
  GetStateOptions,
  ListVersionsOptions,
  LockDetails,
  LockInfo,
  LockInspector,
  LockOptions,
  LockResult,
  SetStateOptions,
  StateBackend,
  StateHistory,
  StateVersion,
} from "../types.ts";
import {
  checkDeletable,
  checkEmptyForDelete,
  DEFAULT_WORKSPACE,
  validateWorkspaceName,
} from "../workspace.ts";
import {
  createTempFile,
  discardTempFile,
  fsyncDir,
  readIfExists,
  removeOrphanTemps,
  type TempFile,
  withGuard,
} from "./_fs.ts";
import {
  decodeLockRecord,
  describeLock,
  encodeLockRecord,
  judgeLock,
  LOCK_FILE,
  lockInfoOf,
  type LockRecord,
  newLockRecord,
} from "./_local_lock.ts";
import { HISTORY_DIR, LocalHistory } from "./_local_history.ts";
import { localBackend } from "./_local_descriptor.ts";
import { checkBackendOptions } from "./_registry.ts";

const STATE_FILE = "terraform.tfstate";
const BACKUP_FILE = "terraform.tfstate.backup";

/**
 * Options for {@linkcode LocalBackend}: a local backend config (`type` may be left out) and
 * the lease.
 */
export interface LocalBackendOptions {
  /**
   * Selects the local backend, so that a `LocalBackendConfig` is also a valid argument.
   * @default {"local"}
   */
  type?: "local";
  /**
   * The state root; workspaces live in `<path>/workspaces/<name>/terraform.tfstate`.
   * @default {".gaib"}
   */
  path?: string;
  /**
   * How many versions before the current one each workspace's history keeps (see
   * {@linkcode LocalBackend.listVersions}); 0 keeps none.
   * @default {10}
   */
  history?: number;
  /**
   * Lease of a process-bound lock, renewed every third of it while the holder lives. Only
   * processes on other machines (sharing the directory) rely on it; on the same machine a
   * dead holder is detected at once.
   * @default {30000}
   */
  leaseMs?: number;
}

/** A lock this backend instance holds. */
interface HeldLock {
  id: string;
  workspace: string;
  record: LockRecord;
  /** Keeps the flock on the record file that shows this process alive; none when detached. */
  file: Deno.FsFile | null;
  timer: ReturnType<typeof setInterval> | undefined;
}

/**
 * Stores states as files: `<root>/workspaces/<workspace>/terraform.tfstate`.
 *
 * - Writes go to a temp file in the same directory, are fsynced, renamed over the state and
 *   the directory is fsynced: a crash at any instant leaves the old or the new state, never a
 *   torn one. The previous state is kept as `terraform.tfstate.backup`. Files are created
 *   0600 and directories 0700.
 * - The last versions are kept in `<workspace>/history/` (`history`, default 10 before the
 *   current one): see {@linkcode LocalBackend.listVersions}.
 * - A lock is never broken while its holder lives, however long it runs, and a holder that
 *   died (even by `kill -9`) does not block the next lock: see `_local_lock.ts`.
 *
 * Why not the lease-based lock engine (`../_lock_engine.ts`) the S3 backend uses: on one
 * machine an exclusive flock on the lock file tells for certain whether its holder lives (the
 * kernel ties it to the holder's open file and drops it when the process dies, however it
 * dies), so a lock is taken over at once after a crash and never while the holder runs,
 * with no lease to wait out. The lease in the record only serves other machines sharing the
 * directory. The rules that do not depend on that are shared: lease judgement
 * (`../_lease.ts`), the lock errors (`../lock.ts`) and the write rules (`../_write_rules.ts`).
 *
 * Needs `--allow-read` and `--allow-write` of the root, `--allow-sys=hostname` and read
 * access to `/etc/machine-id` (to tell this machine's lock holders apart).
 *
 * @example Reading, changing and writing a state under the lock
 * ```ts
 * import { createEmptyState, LocalBackend, withLock } from "@gaib/state";
 *
 * const root = await Deno.makeTempDir();
 * const backend = new LocalBackend({ path: root });
 * await withLock(backend, "default", "docs@example", "apply", async ({ lockId }) => {
 *   const state = (await backend.getState("default")) ?? createEmptyState();
 *   await backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
 * });
 * console.log((await backend.getState("default"))?.serial); // 1
 * await backend.close();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class LocalBackend implements StateBackend, StateHistory, LockInspector {
  #root: string;
  #leaseMs: number;
  #keep: number;
  #held = new Map<string, HeldLock>();
  #closed = false;
  /** What the files hold: states, or also envelopes once wrapped by `withEncryption`. */
  #codec: StoredDocumentCodec = STATE_DOCUMENTS;

  /**
   * Creates a backend rooted at `options.path` (nothing is touched until it is used).
   *
   * @param options the state root and lease
   * @throws {BackendConfigError} when the config part of `options` breaks the rule
   * `BackendFactory.create` checks (an empty `path`, an unknown key...), naming the field
   */
  constructor(options: LocalBackendOptions = {}) {
    const { leaseMs, ...config } = options;
    const checked = checkBackendOptions(localBackend, config, "LocalBackend options");
    this.#root = (checked.path ?? ".gaib").replace(/\/+$/, "") || "/";
    this.#leaseMs = leaseMs ?? 30_000;
    this.#keep = checked.history ?? 10;
  }

  /** The state root this backend reads and writes. */
  get root(): string {
    return this.#root;
  }

  /**
   * Path of a workspace's state file.
   *
   * @param workspace the workspace
   * @returns `<root>/workspaces/<workspace>/terraform.tfstate`
   * @throws {BackendConfigError} when the workspace name is invalid
   */
  statePath(workspace: string): string {
    return `${this.#dir(workspace)}/${STATE_FILE}`;
  }

  #dir(workspace: string): string {
    if (this.#closed) throw closedError();
    validateWorkspaceName(workspace);
    return `${this.#root}/workspaces/${workspace}`;
  }

  /**
   * Reads a workspace's state.
   *
   * @param workspace the workspace
   * @param _options ignored: this backend keeps no digest beside the state
   * @returns the state, or `null` when there is none yet
   * @throws {StateFormatError} when the stored file is not a valid state
   */
  async getState(workspace: string, _options?: GetStateOptions): Promise<GaibState | null> {
    const path = this.statePath(workspace);
    const bytes = await readIfExists(path, "state file");
    return bytes === null ? null : this.#codec.parse(bytes, `state file ${path}`);
  }

  /**
   * Lets `withEncryption` store OpenTofu encrypted envelopes here (`../_stored_document.ts`):
   * from then on this backend also reads and writes envelopes, checking their clear lineage and
   * serial. Use the wrapper, which encrypts and decrypts, rather than this backend itself.
   */
  [storesEnvelopes](): void {
    this.#codec = ENVELOPE_DOCUMENTS;
  }

  /**
   * Writes a workspace's state atomically and durably, keeping the previous one as backup.
   *
   * @param workspace the workspace
   * @param state the new state
   * @param options `lockId` (required while the workspace is locked) and `force`
   * @throws {StateLockError} when the workspace is locked and `lockId` is not that lock's
   * @throws {StateLineageError} when the lineage differs from the stored one
   * @throws {StateSerialError} when the serial is not newer than the stored one
   * @throws {StateFormatError} when `state` is not a valid state
   * @throws {BackendError} when the file system refuses the change (full disk, read-only,
   *   no permission), naming the workspace and the fix
   */
  async setState(
    workspace: string,
    state: GaibState,
    options: SetStateOptions = {},
  ): Promise<void> {
    const dir = this.#dir(workspace);
    const text = this.#codec.serialize(state, "state to write");
    await fileSystemStep(
      `Cannot write the state of workspace "${workspace}" in ${dir}`,
      () => this.#write(workspace, dir, state, text, options),
    );
  }

  async #write(
    workspace: string,
    dir: string,
    state: GaibState,
    text: string,
    options: SetStateOptions,
  ): Promise<void> {
    const created = await this.#ensureDir(dir);
    try {
      await this.#writeInto(workspace, dir, state, text, options);
    } catch (error) {
      // A first write that failed (full disk, say) must not leave a workspace behind.
      if (created) await this.#removeIfEmpty(dir);
      throw error;
    }
  }

  async #writeInto(
    workspace: string,
    dir: string,
    state: GaibState,
    text: string,
    options: SetStateOptions,
  ): Promise<void> {
    // The slow part, writing and syncing the bytes, happens outside the guard.
    const temp = await this.#createTemp(dir, "state", new TextEncoder().encode(text));
    try {
      await withGuard(dir, async () => {
        await this.#checkLockForWrite(workspace, dir, options.lockId);
        const statePath = `${dir}/${STATE_FILE}`;
        if (!options.force) {
          // Only the first bytes are read (a second full parse would double the cost of a
          // large write): a state that is unreadable there fails here, and `force` replaces
          // it; damage further in is not looked for, and the backup keeps that version.
          const stored = await this.#storedIdentity(statePath);
          if (stored) {
            const read = () => Deno.readFile(statePath);
            if (await checkWrite(workspace, stored, state, text, read, this.#codec)) return;
          }
        }
        if (await exists(statePath)) {
          await this.#history(dir).keepCurrent();
          await this.#backup(dir, statePath);
        }
        await Deno.rename(temp.path, statePath);
        await fsyncDir(dir);
        await removeOrphanTemps(dir);
        await this.#record(dir, state.serial);
      });
    } finally {
      await discardTempFile(temp);
    }
  }

  #history(dir: string): LocalHistory {
    return new LocalHistory(dir, `${dir}/${STATE_FILE}`, this.#keep, this.#codec);
  }

  /** Adds the state just written to the history; a failure says the state itself landed. */
  async #record(dir: string, serial: number): Promise<void> {
    try {
      await this.#history(dir).record();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new BackendError(
        `The state (serial ${serial}) WAS written to ${dir}/${STATE_FILE}, but its history ` +
          `entry in ${dir}/${HISTORY_DIR} was not: ${reason}`,
        { cause: error },
      );
    }
  }

  /** Lineage and serial of the stored state, read from its first bytes when possible. */
  async #storedIdentity(path: string): Promise<{ lineage: string; serial: number } | null> {
    const file = await openUnlinked(path, "state file");
    if (file === null) return null;
    try {
      const head = new Uint8Array(64 * 1024);
      const n = (await file.read(head)) ?? 0;
      if (n === 0) return null; // an empty file is "no state"
      const header = this.#codec.identity(head.subarray(0, n));
      if (header) return { lineage: header.lineage, serial: header.serial };
    } finally {
      file.close();
    }
    const stored = this.#codec.parse(await Deno.readFile(path), `state file ${path}`);
    return stored && { lineage: stored.lineage, serial: stored.serial };
  }

  /** Makes the current state the backup: hard link, then rename over the old backup. */
  async #backup(dir: string, statePath: string): Promise<void> {
    const temp = `${dir}/.tmp-backup-${crypto.randomUUID()}`;
    try {
      await Deno.link(statePath, temp);
    } catch {
      // No hard links on this file system: copy instead.
      await Deno.copyFile(statePath, temp);
      const file = await Deno.open(temp, { write: true });
      try {
        await file.syncData();
      } finally {
        file.close();
      }
    }
    await Deno.rename(temp, `${dir}/${BACKUP_FILE}`);
    // When the backup already is the state's inode (a writer died between making the backup
    // and renaming its new state into place), rename() of one hard link over another of the
    // same file does nothing and leaves the temp name behind: remove it.
    await Deno.remove(temp).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  async #checkLockForWrite(workspace: string, dir: string, lockId?: string): Promise<void> {
    const record = await this.#readRecord(dir);
    const refused = writeLockError(workspace, lockId, record && lockInfoOf(record));
    if (refused) throw refused;
  }

  /** Creates the workspace directory when missing; returns whether it did. */
  async #ensureDir(dir: string): Promise<boolean> {
    try {
      await Deno.stat(dir);
      return false;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      // Make the new directory entries durable up to the root.
      await fsyncDir(`${this.#root}/workspaces`);
      await fsyncDir(this.#root);
      return true;
    }
  }
  /**
   * Creates a temp file in a workspace directory, creating the directory when missing. An
   * unlock of a workspace without state removes its directory, so it may vanish between the
   * two steps: then both are tried again.
   */
  async #createTemp(dir: string, purpose: string, data: Uint8Array): Promise<TempFile> {
    for (let attempt = 0;; attempt++) {
      await this.#ensureDir(dir);
      try {
        return await createTempFile(dir, purpose, data);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound) || attempt >= 4) throw error;
      }
    }
  }

  /** Removes a workspace directory that holds nothing but its guard (under the guard). */
  async #removeIfEmpty(dir: string): Promise<void> {
    try {
      await withGuard(dir, async () => {
        for await (const entry of Deno.readDir(dir)) {
          if (entry.name !== ".guard") return;
        }
        await Deno.remove(`${dir}/.guard`);
        await Deno.remove(dir);
      });
    } catch {
      // best effort: an empty workspace directory is harmless
    }
  }

  /**
   * Deletes a workspace: its state, backup and directory. Under the workspace's guard, in one
   * step: the lock is checked (as `setState` checks it) and, unless `force`, the state must
   * track no managed resource instance, so that no write can land between the check and the
   * delete. Deleted under a lock (`lockId`), the lock record stays until it is released.
   *
   * @param workspace the workspace; not `default`
   * @param options `lockId` (required while the workspace is locked) and `force`
   * @throws {BackendError} for `default` or a workspace that has no state
   * @throws {StateLockError} when the workspace is locked and `lockId` is not that lock's
   * @throws {WorkspaceNotEmptyError} when the state tracks resources and `force` is not set
   * @throws {StateFormatError} when the state cannot be read and `force` is not set
   */
  async deleteState(workspace: string, options: DeleteStateOptions = {}): Promise<void> {
    const dir = this.#dir(workspace);
    const statePath = `${dir}/${STATE_FILE}`;
    checkDeletable(workspace, statePath, workspace !== DEFAULT_WORKSPACE && await exists(dir));
    await fileSystemStep(
      `Cannot delete workspace "${workspace}" in ${dir}`,
      () =>
        withGuard(dir, async () => {
          const bytes = await readIfExists(statePath, "state file");
          checkDeletable(workspace, statePath, bytes !== null);
          const record = await this.#readRecord(dir);
          const refused = deleteLockError(workspace, options.lockId, record && lockInfoOf(record));
          if (refused) throw refused;
          if (!options.force) {
            checkEmptyForDelete(
              workspace,
              this.#codec.parse(bytes!, `state file ${statePath}`),
              false,
            );
          }
          if (record === null) {
            await Deno.remove(dir, { recursive: true });
            await fsyncDir(`${this.#root}/workspaces`);
            return;
          }
          // Deleted under its lock: the record stays for its holder to release, and the
          // release removes the directory, which no longer holds a state.
          await Deno.remove(statePath);
          await Deno.remove(`${dir}/${BACKUP_FILE}`).catch((error) => {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          });
          await Deno.remove(`${dir}/${HISTORY_DIR}`, { recursive: true }).catch((error) => {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          });
          await fsyncDir(dir);
        }),
    );
  }

  /**
   * Lists a workspace's versions, newest first: the current state, then the history entries
   * kept beside it (`history` before the current one, pruned on write). Each entry is the
   * state file as it was stored (a hard link, or a synced copy where the file system has no
   * links), so it is byte for byte what was written. IDs look like
   * `20261130T073501123Z-9f3c2a1b`; a current state written before history was kept (or by
   * another tool, or with `history: 0`) is listed as `current`.
   *
   * @param workspace the workspace
   * @param options `limit`: at most this many
   * @returns the versions, newest first; empty when the workspace has none
   * @throws {BackendError} for a link in the history, or a `limit` below 1
   *
   * @example Two writes, two versions
   * ```ts
   * import assert from "node:assert/strict";
   * import { createEmptyState, LocalBackend } from "@gaib/state";
   *
   * const root = await Deno.makeTempDir();
   * await using backend = new LocalBackend({ path: root });
   * const state = createEmptyState();
   * await backend.setState("default", { ...state, serial: 1 });
   * await backend.setState("default", { ...state, serial: 2 });
   * const versions = await backend.listVersions("default");
   * assert.deepEqual(versions.map((v) => [v.serial, v.current]), [[2, true], [1, false]]);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async listVersions(
    workspace: string,
    options: ListVersionsOptions = {},
  ): Promise<StateVersion[]> {
    const limit = versionLimit(options);
    return await this.#history(this.#dir(workspace)).list(limit);
  }

  /**
   * Reads one version of a workspace's state, exactly as it was stored.
   *
   * @param workspace the workspace
   * @param versionId an ID from {@linkcode LocalBackend.listVersions}
   * @returns the state of that version
   * @throws {StateVersionNotFoundError} for an unknown or pruned ID, or one that is not an ID
   *   this backend makes (checked before it touches any path)
   * @throws {StateFormatError} when the stored version is not a valid state
   *
   * @example Reading the version before the current one
   * ```ts
   * import assert from "node:assert/strict";
   * import { createEmptyState, LocalBackend } from "@gaib/state";
   *
   * const root = await Deno.makeTempDir();
   * await using backend = new LocalBackend({ path: root });
   * const state = createEmptyState();
   * await backend.setState("default", { ...state, serial: 1 });
   * await backend.setState("default", { ...state, serial: 2 });
   * const [, previous] = await backend.listVersions("default");
   * assert.equal((await backend.getStateVersion("default", previous.versionId)).serial, 1);
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async getStateVersion(workspace: string, versionId: string): Promise<GaibState> {
    return await this.#history(this.#dir(workspace)).read(workspace, versionId);
  }

  /**
   * Lists the workspaces: `default` and every workspace directory that holds a state. A
   * workspace that is only locked (its directory holds a lock record but no state yet) is not
   * listed.
   *
   * @returns sorted names
   */
  async listWorkspaces(): Promise<string[]> {
    if (this.#closed) throw closedError();
    const names = new Set([DEFAULT_WORKSPACE]);
    const parent = `${this.#root}/workspaces`;
    try {
      for await (const entry of Deno.readDir(parent)) {
        if (!entry.isDirectory) continue;
        try {
          validateWorkspaceName(entry.name);
        } catch {
          continue; // not a workspace this library could have created
        }
        if (await exists(`${parent}/${entry.name}/${STATE_FILE}`)) names.add(entry.name);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return [...names].sort();
  }

  /**
   * Locks a workspace.
   *
   * @param workspace the workspace (created if needed)
   * @param options who, why, how long to wait, detached locks
   * @returns the lock ID and info
   * @throws {StateLockError} when another live holder has it (after `timeoutMs`)
   * @throws {BackendError} when the file system refuses the change (full disk, read-only,
   *   no permission), naming the workspace and the fix
   */
  async lock(workspace: string, options: LockOptions = {}): Promise<LockResult> {
    const dir = this.#dir(workspace);
    checkLockOptions(options);
    return await fileSystemStep(
      `Cannot lock workspace "${workspace}" in ${dir}`,
      () => retryLock(() => this.#tryLock(workspace, dir, options), options),
    );
  }

  async #tryLock(workspace: string, dir: string, options: LockOptions): Promise<LockResult> {
    const detached = options.detached === true;
    const info = newLockInfo(`${dir}/${STATE_FILE}`, options);
    const record = newLockRecord(info, {
      detached,
      ttlMs: options.ttlMs,
      leaseMs: this.#leaseMs,
    });
    const recordPath = `${dir}/${LOCK_FILE}`;
    const temp = await this.#createTemp(dir, "lock", encodeLockRecord(record));
    let kept = false;
    try {
      await withGuard(dir, async () => {
        try {
          // Exclusive creation: the link fails if any lock record exists.
          await Deno.link(temp.path, recordPath);
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
          const current = await this.#readRecord(dir);
          if (current !== null) {
            const verdict = await judgeLock(current, recordPath);
            if (!verdict.expired) {
              throw lockBusyError(workspace, lockInfoOf(current), verdict.reason);
            }
          }
          // The holder is gone: replace its record in one atomic step (the guard keeps
          // every other contender out until this is done).
          await Deno.rename(temp.path, recordPath);
        }
        await fsyncDir(dir);
      });
      if (!detached) {
        this.#hold(workspace, dir, info.ID, record, temp);
        kept = true;
      }
      return { lockId: info.ID, lockInfo: info };
    } finally {
      if (!kept) temp.file.close();
      // After a link the temp name is a second name of the record: drop it.
      await Deno.remove(temp.path).catch(() => {});
    }
  }

  /** Keeps a process-bound lock's flock open and renews its lease. */
  #hold(workspace: string, dir: string, id: string, record: LockRecord, temp: TempFile): void {
    const held: HeldLock = { id, workspace, record, file: temp.file, timer: undefined };
    this.#held.set(dir, held);
    const renew = async () => {
      try {
        await this.#renew(dir, held);
      } catch {
        // Renewal is retried at the next tick; the lease covers two missed renewals.
      }
    };
    const timer = setInterval(renew, Math.max(100, Math.floor(this.#leaseMs / 3)));
    Deno.unrefTimer(timer);
    held.timer = timer;
  }

  async #renew(dir: string, held: HeldLock): Promise<void> {
    await withGuard(dir, async () => {
      const current = await this.#readRecord(dir);
      if (current === null || current.ID !== held.id) {
        // Released or force-unlocked by someone else: stop renewing.
        this.#release(dir, held);
        return;
      }
      const holder = renewLease(current.Holder!);
      const record = { ...held.record, Holder: holder };
      const temp = await createTempFile(dir, "lock", encodeLockRecord(record));
      try {
        await Deno.rename(temp.path, `${dir}/${LOCK_FILE}`);
      } catch (error) {
        await discardTempFile(temp);
        throw error;
      }
      held.file?.close();
      held.file = temp.file;
      held.record = record;
    });
  }

  #release(dir: string, held: HeldLock): void {
    clearInterval(held.timer);
    try {
      held.file?.close();
    } catch {
      // already closed
    }
    held.file = null;
    if (this.#held.get(dir) === held) this.#held.delete(dir);
  }

  async #readRecord(dir: string): Promise<LockRecord | null> {
    const bytes = await readIfExists(`${dir}/${LOCK_FILE}`, "lock file");
    return bytes === null ? null : decodeLockRecord(bytes);
  }

  /**
   * Releases a lock.
   *
   * A process-bound lock held by another live process is not released: that is what
   * `forceUnlock` is for.
   *
   * @param workspace the workspace
   * @param lockId the lock's ID
   * @throws {StateLockError} when the workspace is not locked, the ID does not match, or the
   *   lock belongs to another live process
   */
  async unlock(workspace: string, lockId: string): Promise<void> {
    await this.#unlock(workspace, lockId, false);
  }

  /**
   * Releases a lock whoever holds it, given its ID: the way to clear a stuck lock.
   *
   * @param workspace the workspace
   * @param lockId the lock's ID, as shown by `getLockInfo` or the busy-lock error
   * @throws {StateLockError} when the workspace is not locked or the ID does not match
   */
  async forceUnlock(workspace: string, lockId: string): Promise<void> {
    await this.#unlock(workspace, lockId, true);
  }

  async #unlock(workspace: string, lockId: string, force: boolean): Promise<void> {
    const dir = this.#dir(workspace);
    if (!(await exists(dir))) throw notLockedError(workspace, lockId);
    await fileSystemStep(
      `Cannot unlock workspace "${workspace}" in ${dir}`,
      () => this.#removeLock(workspace, dir, lockId, force),
    );
  }

  async #removeLock(
    workspace: string,
    dir: string,
    lockId: string,
    force: boolean,
  ): Promise<void> {
    await withGuard(dir, async () => {
      const record = await this.#readRecord(dir);
      if (record === null) throw notLockedError(workspace, lockId);
      const info = lockInfoOf(record);
      if (record.ID !== lockId) throw lockMismatchError(workspace, lockId, info);
      const held = this.#held.get(dir);
      const mine = held?.id === lockId;
      if (!force && !mine && record.Holder && !record.Holder.detached) {
        const verdict = await judgeLock(record, `${dir}/${LOCK_FILE}`);
        if (!verdict.expired) throw liveHolderError(workspace, info, "process", verdict.reason);
      }
      await Deno.remove(`${dir}/${LOCK_FILE}`);
      await fsyncDir(dir);
      if (held && mine) this.#release(dir, held);
      await this.#removeIfOnlyGuard(dir);
    });
  }

  /**
   * Removes the directory of a workspace that holds nothing but its guard (a workspace that
   * was locked but never got a state), so that a lock leaves no workspace behind. Runs under
   * the guard: waiters on it notice the removal and start again (see `withGuard`).
   */
  async #removeIfOnlyGuard(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name !== ".guard") return;
    }
    try {
      await Deno.remove(`${dir}/.guard`);
      await Deno.remove(dir);
      await fsyncDir(`${this.#root}/workspaces`);
    } catch (error) {
      // Another process created a file meanwhile (outside the guard): the directory stays.
      if (!(error instanceof Deno.errors.NotFound) && !isNotEmpty(error)) throw error;
    }
  }

  /**
   * Reads the current lock of a workspace.
   *
   * @param workspace the workspace
   * @returns the lock info (exactly Terraform's fields), or `null` when not locked
   */
  async getLockInfo(workspace: string): Promise<LockInfo | null> {
    const record = await this.#readRecord(this.#dir(workspace));
    return record && lockInfoOf(record);
  }

  /**
   * Describes the current lock with its lease and, for a process-bound lock taken on this
   * machine, whether its holder is alive (its flock, which the kernel drops when it dies).
   *
   * @param workspace the workspace
   * @returns the details, or `null` when not locked
   */
  async inspectLock(workspace: string): Promise<LockDetails | null> {
    const dir = this.#dir(workspace);
    const record = await this.#readRecord(dir);
    return record && await describeLock(record, `${dir}/${LOCK_FILE}`);
  }

  /**
   * Whether the state root exists as a directory.
   *
   * @returns `true` when the root exists
   */
  async isConfigured(): Promise<boolean> {
    try {
      return (await Deno.stat(this.#root)).isDirectory;
    } catch {
      return false;
    }
  }

  /** Releases every lock this backend still holds and stops their renewals. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const [dir, held] of [...this.#held]) {
      // Not ours any more (force-unlocked, taken over) is fine: nothing to release then.
      await this.#removeLock(held.workspace, dir, held.id, false).catch(() => {});
      this.#release(dir, held);
    }
    this.#closed = true;
  }

  /** Same as {@linkcode LocalBackend.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Runs a step that changes files, turning a file-system failure (full disk, read-only file
 * system, no permission) into a BackendError that names the step and the fix. The library's
 * own errors pass through unchanged.
 */
async function fileSystemStep<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof BackendError || !(error instanceof Error)) throw error;
    const code = (error as { code?: unknown }).code;
    const fix = code === "ENOSPC" || code === "EDQUOT"
      ? "Free space on that file system (or raise the quota), then retry."
      : code === "EROFS" || code === "EACCES" || code === "EPERM"
      ? "Make the state directory writable for this user (or use another state path), then " +
        "retry."
      : "Check the state directory and its file system, then retry.";
    throw new BackendError(`${action}: ${error.message}. ${fix}`, { cause: error });
  }
}

function isNotEmpty(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === "ENOTEMPTY" || code === "EEXIST";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
