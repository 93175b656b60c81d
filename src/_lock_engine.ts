/**
 * The lease-based lock engine: the lock orchestration of every backend whose storage can make
 * conditional writes, driving one or more lock stores (`_lock_store.ts`) and knowing nothing of
 * the storage behind them.
 *
 * - A lock is one record per store, all with one ID, taken in the stores' order (Terraform's
 *   order for S3: lockfile, then DynamoDB); when one store is busy, what was taken is released.
 * - A record is created only where none exists. A record in the way is judged by its lease
 *   (`_lease.ts`): a live or lease-less one makes the lock busy, naming its holder; an expired
 *   one is taken over by a conditional replace of exactly the version observed, so of many
 *   contenders only one wins.
 * - A process-bound lock's lease is renewed every third of it, each store's record replaced
 *   only if it still is the version this engine wrote; a renewal that finds the record changed
 *   (released, force-unlocked, taken over) stops renewing. Detached locks are not renewed.
 * - `unlock` releases your own lock, a detached one, a lease-less one or an expired one, never
 *   one another live client renews; `forceUnlock` releases any lock given its ID.
 *
 * The local backend does not use it: see the comment in `backends/local.ts`.
 *
 * @module
 */

import { judgeLease, type Lease, newLease, renewLease, takeoverTime } from "./_lease.ts";
import type { LockRecord, LockStore, StoredLock } from "./_lock_store.ts";
import { gaibCommand } from "./_command_line.ts";
import { BackendConfigError, BackendError, StateLockError } from "./errors.ts";
import {
  checkLockOptions,
  forceUnlockCommand,
  liveHolderError,
  lockBusyError,
  lockMismatchError,
  newLockInfo,
  notLockedError,
  printable,
  retryLock,
  writeLockError,
} from "./lock.ts";
import type { LockDetails, LockInfo, LockOptions, LockResult } from "./types.ts";

/** What a store call was doing: the context of the error its failure becomes. */
export interface StoreCall {
  /** Such as `locking workspace "prod" (lockfile)`. */
  action: string;
  /** What a failure left behind, such as `The state was not changed.` */
  outcome?: string;
  /**
   * What a failure may have left behind when the request may have been carried out although
   * its answer was lost: replaces `outcome` then.
   */
  uncertainOutcome?: string;
}

/** The time leases are made and judged by, and the timer that renews them. */
export interface LockClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Calls `fn` every `ms` milliseconds until the returned function is called. The timer must
   * not keep the process alive. `fn` returns a promise of the work it started, which a clock
   * may wait for before the next tick; the system clock does not.
   */
  every(ms: number, fn: () => Promise<void>): () => void;
}

/** The system clock and `setInterval`. */
export const systemClock: LockClock = {
  now: () => Date.now(),
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    Deno.unrefTimer(timer);
    return () => clearInterval(timer);
  },
};

/** How to enable locking on a backend configured without a lock store. */
export interface EnableLocking {
  /** The fix, such as `set backend.use_lockfile: true`. */
  fix: string;
  /** The config path to name, such as `backend.use_lockfile`. */
  path: string;
}

/** Options for {@linkcode LockEngine}. */
export interface LockEngineOptions {
  /** The stores, in the order a lock takes them; none: the backend has no locking. */
  stores: readonly LockStore[];
  /**
   * The store key and the `LockInfo.Path` of a workspace's lock. Throws for an invalid
   * workspace or a closed backend.
   */
  locate(workspace: string): { key: string; path: string };
  /**
   * Lease of a process-bound lock: renewed every third of it while the holder lives.
   * @default {30000}
   */
  leaseMs?: number;
  /**
   * Time for leases and renewals. Waiting for a busy lock (`timeoutMs`) takes real time.
   * @default {systemClock}
   */
  clock?: LockClock;
  /**
   * Turns a store's failure into the error to throw, such as a message naming the endpoint.
   * @default a BackendError naming the store and the action
   */
  failure?: (error: unknown, store: LockStore, call: StoreCall) => Error;
  /**
   * What to tell someone who locks a backend without stores.
   * @default {{ fix: "configure locking for this backend", path: "backend" }}
   */
  enableLocking?: EnableLocking;
}

/** A process-bound lock this engine holds and renews. */
interface HeldLock {
  id: string;
  workspace: string;
  key: string;
  info: LockInfo;
  lease: Lease;
  /** The version of each store's record that this engine wrote last. */
  versions: Map<LockStore, string>;
  stop: (() => void) | undefined;
  renewing: Promise<void> | null;
}

/** Locks workspaces through lock stores, with leases; one engine per backend instance. */
export class LockEngine {
  readonly #stores: readonly LockStore[];
  readonly #locate: (workspace: string) => { key: string; path: string };
  readonly #leaseMs: number;
  readonly #clock: LockClock;
  readonly #failure: (error: unknown, store: LockStore, call: StoreCall) => Error;
  readonly #enable: EnableLocking;
  readonly #held = new Map<string, HeldLock>();

  /** @param options the stores, where a workspace's lock lives, lease and clock */
  constructor(options: LockEngineOptions) {
    this.#stores = [...options.stores];
    this.#locate = options.locate;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#clock = options.clock ?? systemClock;
    this.#failure = options.failure ?? storeFailure;
    this.#enable = options.enableLocking ??
      { fix: "configure locking for this backend", path: "backend" };
  }

  /**
   * Locks a workspace in every store, waiting for a busy lock up to `options.timeoutMs`.
   *
   * @throws {StateLockError} when another holder has it, naming the holder
   * @throws {BackendConfigError} when there is no store
   * @throws {BackendError} when a store fails
   */
  async lock(workspace: string, options: LockOptions = {}): Promise<LockResult> {
    const { key, path } = this.#locate(workspace);
    checkLockOptions(options);
    if (this.#stores.length === 0) {
      throw new BackendConfigError(`This backend has no locking: ${this.#enable.fix}.`, {
        path: this.#enable.path,
      });
    }
    return await retryLock(() => this.#tryLock(workspace, key, path, options), options);
  }

  async #tryLock(
    workspace: string,
    key: string,
    path: string,
    options: LockOptions,
  ): Promise<LockResult> {
    const detached = options.detached === true;
    const record: LockRecord = {
      info: newLockInfo(path, options),
      lease: newLease(
        { detached, ttlMs: options.ttlMs, leaseMs: this.#leaseMs },
        this.#clock.now(),
      ),
    };
    const versions = new Map<LockStore, string>();
    try {
      for (const store of this.#stores) {
        versions.set(store, await this.#acquire(workspace, key, store, record));
      }
    } catch (error) {
      // Release what was taken (the first store's record, when the second one was busy).
      for (const [store, version] of versions) await store.delete(key, version).catch(() => {});
      throw error;
    }
    if (!detached) {
      this.#hold({
        id: record.info.ID,
        workspace,
        key,
        ...record,
        versions,
        stop: undefined,
        renewing: null,
      });
    }
    return { lockId: record.info.ID, lockInfo: record.info };
  }

  /** Creates one store's record, or takes over an expired one; throws when it is busy. */
  async #acquire(
    workspace: string,
    key: string,
    store: LockStore,
    record: LockRecord,
  ): Promise<string> {
    const id = record.info.ID;
    const call: StoreCall = {
      action: `locking workspace "${workspace}" (${store.label})`,
      uncertainOutcome: `The lock may have been taken all the same: if ` +
        `"${gaibCommand(workspace, "lock status")}" shows lock ID ${id}, release it with ` +
        `"${forceUnlockCommand(workspace, id)}".`,
    };
    let last: StoredLock | null = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const result = await this.#call(store, call, () => store.create(key, record));
      if (result.created) return result.version;
      const current = result.current;
      if (current === null) continue; // released in between: try again
      // A create sent again after its answer was lost finds our own record: it is ours.
      if (current.info.ID === id) return current.version;
      last = current;
      const verdict = judgeLease(current.lease, current.lease?.holder ?? "", this.#clock.now());
      if (!verdict.expired) throw lockBusyError(workspace, current.info, verdict.reason);
      const version = await this.#call(
        store,
        call,
        () => store.replace(key, current.version, record),
      );
      if (version !== null) return version;
      // Another contender (or a renewal) changed the record first: look again.
    }
    if (last) throw lockBusyError(workspace, last.info, "It keeps changing hands.");
    throw new BackendError(
      `Cannot lock workspace "${workspace}": the ${store.label} lock kept appearing and ` +
        "disappearing. Retry.",
    );
  }

  /** Renews a process-bound lock's lease every third of it, in the background. */
  #hold(held: HeldLock): void {
    const previous = this.#held.get(held.key);
    if (previous && previous !== held) this.#drop(previous);
    this.#held.set(held.key, held);
    held.stop = this.#clock.every(Math.max(50, Math.floor(this.#leaseMs / 3)), () => {
      held.renewing ??= this.#renew(held).catch(() => {
        // Retried at the next tick; the lease outlasts two missed renewals.
      }).finally(() => held.renewing = null);
      return held.renewing;
    });
  }

  async #renew(held: HeldLock): Promise<void> {
    const lease = renewLease(held.lease, this.#clock.now());
    for (const [store, version] of held.versions) {
      const next = await store.replace(held.key, version, { info: held.info, lease });
      if (next === null) {
        // Released or force-unlocked elsewhere, or taken over: stop renewing.
        this.#drop(held);
        return;
      }
      held.versions.set(store, next);
    }
    held.lease = lease;
  }

  #drop(held: HeldLock): void {
    held.stop?.();
    held.stop = undefined;
    if (this.#held.get(held.key) === held) this.#held.delete(held.key);
  }

  /**
   * Releases a lock: this engine's own, a detached one, a lease-less one (Terraform's) or an
   * expired one; not one that another live client renews.
   *
   * @throws {StateLockError} when the workspace is not locked, the ID does not match (naming
   *   the holder), or another live client holds the lock
   * @throws {BackendError} when a store fails
   */
  async unlock(workspace: string, lockId: string): Promise<void> {
    await this.#unlock(workspace, lockId, false);
  }

  /**
   * Releases a lock whoever holds it, given its ID.
   *
   * @throws {StateLockError} when the workspace is not locked or the ID does not match
   * @throws {BackendError} when a store fails
   */
  async forceUnlock(workspace: string, lockId: string): Promise<void> {
    await this.#unlock(workspace, lockId, true);
  }

  async #unlock(workspace: string, lockId: string, force: boolean): Promise<void> {
    const { key } = this.#locate(workspace);
    if (this.#stores.length === 0) throw notLockedError(workspace, lockId);
    const held = this.#held.get(key);
    const mine = held?.id === lockId ? held : undefined;
    if (mine) {
      mine.stop?.();
      mine.stop = undefined;
      await mine.renewing;
    }
    let released = 0;
    let missing: StateLockError | undefined;
    try {
      for (const store of this.#stores) {
        try {
          await this.#release(workspace, key, store, lockId, force, mine);
          released++;
        } catch (error) {
          // A record already gone in one store is fine when another one was released.
          if (error instanceof StateLockError && error.lockInfo === null) missing = error;
          else throw error;
        }
      }
      if (released === 0 && missing) throw missing;
    } finally {
      if (mine && (released > 0 || missing)) this.#drop(mine);
      else if (mine) this.#hold(mine); // nothing released: keep renewing
    }
  }

  async #release(
    workspace: string,
    key: string,
    store: LockStore,
    lockId: string,
    force: boolean,
    mine: HeldLock | undefined,
  ): Promise<void> {
    const call: StoreCall = { action: `unlocking workspace "${workspace}" (${store.label})` };
    const own = mine?.versions.get(store);
    // Our own record is deleted in one conditional request where the store checks the
    // version; anything else is read first (its ID checked, a live holder's lease respected).
    let observed: StoredLock | null = own !== undefined && store.deleteChecksVersion
      ? { info: mine!.info, lease: mine!.lease, version: own }
      : await this.#call(store, call, () => store.read(key));
    for (let attempt = 0;; attempt++) {
      if (observed === null) throw notLockedError(workspace, lockId);
      if (observed.info.ID !== lockId) throw lockMismatchError(workspace, lockId, observed.info);
      const lease = observed.lease;
      if (!force && !mine && lease && !lease.detached) {
        const verdict = judgeLease(lease, lease.holder, this.#clock.now());
        if (!verdict.expired) {
          throw liveHolderError(workspace, observed.info, "client", verdict.reason);
        }
      }
      const version = observed.version;
      if (await this.#call(store, call, () => store.delete(key, version))) return;
      if (attempt > 0) {
        throw new StateLockError(
          `Cannot unlock workspace "${workspace}": the lock keeps changing. Retry.`,
          observed.info,
        );
      }
      observed = await this.#call(store, call, () => store.read(key));
    }
  }

  /**
   * Reads the current lock of a workspace: the first store's that has one.
   *
   * @param call what the read is for, named when it fails
   * @returns the lock info, or `null` when the workspace is not locked
   * @throws {BackendError} when a store fails
   */
  async getLockInfo(workspace: string, call?: StoreCall): Promise<LockInfo | null> {
    const { key } = this.#locate(workspace);
    const reading = call ?? { action: `reading the lock of workspace "${workspace}"` };
    const found = await Promise.all(
      this.#stores.map((store) => this.#call(store, reading, () => store.read(key))),
    );
    return found.find((o) => o !== null)?.info ?? null;
  }

  /**
   * Describes the current lock of a workspace with its lease (the first store's that has
   * one). Whether the holder lives cannot be seen from a lease, so `holderAlive` is `null`.
   *
   * @returns the details, or `null` when the workspace is not locked
   * @throws {BackendError} when a store fails
   */
  async inspectLock(workspace: string): Promise<LockDetails | null> {
    const { key } = this.#locate(workspace);
    const reading = { action: `reading the lock of workspace "${workspace}"` };
    const found = await Promise.all(
      this.#stores.map((store) => this.#call(store, reading, () => store.read(key))),
    );
    const current = found.find((o) => o !== null);
    if (!current) return null;
    const lease = current.lease;
    const verdict = judgeLease(lease, lease?.holder ?? "", this.#clock.now());
    return {
      info: current.info,
      lease: lease && { ...lease },
      holderAlive: null,
      takeoverFrom: verdict.expired
        ? new Date(this.#clock.now()).toISOString()
        : takeoverTime(lease),
      reason: verdict.reason,
    };
  }

  /**
   * Checks that a write with `lockId` (or without a lock) may go ahead under the workspace's
   * current lock, by `rule` (`deleteLockError` for a delete). With a lock ID the store taken last tells (it holds a lock only once every
   * store does); without one, a lock in any store blocks the write.
   *
   * @throws {StateLockError} when the write does not hold the current lock
   * @throws {BackendError} when a store fails
   */
  async checkWrite(
    workspace: string,
    lockId: string | undefined,
    rule: typeof writeLockError = writeLockError,
  ): Promise<void> {
    const { key } = this.#locate(workspace);
    if (this.#stores.length === 0) {
      if (lockId === undefined) return;
      throw new StateLockError(
        `Cannot write the state of workspace "${workspace}": lock ${printable(lockId)} is not ` +
          `held, because this backend has no locking: ${this.#enable.fix}.`,
      );
    }
    const stores = lockId === undefined ? this.#stores : this.#stores.slice(-1);
    const call: StoreCall = {
      action: `checking the lock of workspace "${workspace}"`,
      outcome: "The state was not changed.",
    };
    const observed = await Promise.all(
      stores.map((store) => this.#call(store, call, () => store.read(key))),
    );
    const current = observed.find((o) => o !== null) ?? null;
    const refused = rule(workspace, lockId, current && current.info);
    if (refused) throw refused;
  }

  /** Stops the renewals and releases the locks this engine still holds. Safe to call twice. */
  async close(): Promise<void> {
    for (const held of [...this.#held.values()]) {
      held.stop?.();
      held.stop = undefined;
      await held.renewing;
      for (const store of this.#stores) {
        await this.#release(held.workspace, held.key, store, held.id, false, held)
          .catch(() => {});
      }
      this.#drop(held);
    }
  }

  /** Runs one store call, turning its failure into the error to throw. */
  async #call<T>(store: LockStore, call: StoreCall, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw this.#failure(error, store, call);
    }
  }
}

/** The default failure: a BackendError naming the store and the action. */
function storeFailure(error: unknown, store: LockStore, call: StoreCall): Error {
  if (error instanceof BackendError) return error;
  // Whether the request was carried out is unknown: say what it may have left behind.
  const outcome = call.uncertainOutcome ?? call.outcome;
  const reason = printable(error instanceof Error ? error.message : String(error));
  return new BackendError(
    `The ${store.label} failed while ${call.action}: ${reason}.${outcome ? ` ${outcome}` : ""}`,
    { cause: error },
  );
}
