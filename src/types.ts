/**
 * The shapes shared by every backend: Terraform state format v4, lock info, and the
 * {@linkcode StateBackend} interface.
 *
 * @module
 */

/**
 * One object of a resource instance: the current object (no `deposed` key) or a deposed one.
 *
 * Fields this library does not model (newer Terraform and OpenTofu add some, such as
 * `identity`) are kept on round trips through the index signature.
 */
export interface StateResourceInstance {
  /** `count` index (number) or `for_each` key (string); absent for a single instance. */
  index_key?: number | string;
  /** `"tainted"` when the object must be replaced on the next apply. */
  status?: string;
  /** Eight hex characters naming a deposed object (create_before_destroy). */
  deposed?: string;
  /** Version of the provider schema that wrote `attributes`. */
  schema_version?: number;
  /** The object's attributes as JSON (structural form, Terraform 0.12+). */
  attributes?: Record<string, unknown>;
  /** The object's attributes in the legacy flatmap form (Terraform 0.11 providers). */
  attributes_flat?: Record<string, string>;
  /** Paths of attributes marked sensitive. */
  sensitive_attributes?: unknown[];
  /** Provider-private data, base64-encoded. */
  private?: string;
  /** Addresses of the resources this object depends on. */
  dependencies?: string[];
  /** Whether the object is replaced create-before-destroy. */
  create_before_destroy?: boolean;
  /** Per-instance provider address (OpenTofu 1.9+ provider `for_each`). */
  provider?: string;
  /** Any field this library does not model, kept as read. */
  [field: string]: unknown;
}

/** One resource block of a v4 state: all instances of one resource in one module instance. */
export interface StateResource {
  /** Module instance address such as `module.app["web"]`; absent for the root module. */
  module?: string;
  /** `"managed"` for resources, `"data"` for data sources. */
  mode: "managed" | "data";
  /** Resource type, such as `discord_channel`. */
  type: string;
  /** Resource name in its module. */
  name: string;
  /** Legacy `each` hint (`"list"` or `"map"`); current writers omit it. */
  each?: string;
  /** Provider configuration address, such as `provider["registry.terraform.io/x/discord"]`. */
  provider?: string;
  /** The resource's instances. */
  instances: StateResourceInstance[];
  /** Any field this library does not model, kept as read. */
  [field: string]: unknown;
}

/** A root module output value. */
export interface StateOutput {
  /** The value, as JSON. */
  value: unknown;
  /** The value's type in Terraform's type syntax, as JSON. */
  type: unknown;
  /** Whether the output is marked sensitive. */
  sensitive?: boolean;
  /** Any field this library does not model, kept as read. */
  [field: string]: unknown;
}

/**
 * Terraform/OpenTofu state, format version 4.
 *
 * Objects returned by this library keep every field of the file they were read from, so
 * writing an unchanged state back loses nothing, whatever the keys are named (`__proto__`
 * included). Numbers whose text a JavaScript number would not write back the same (integers
 * beyond 2^53, long decimals, `1e400`, `1.0`) are kept as `JSON.rawJSON` values.
 */
export interface GaibState {
  /** Format version: always 4. */
  version: 4;
  /** Version of the Terraform (or OpenTofu, or gaib-state) that wrote the state. */
  terraform_version?: string;
  /** Increases with every change of the state; guards against lost updates. */
  serial: number;
  /** UUID naming the history this state belongs to; never changes once set. */
  lineage: string;
  /** Root module outputs by name. */
  outputs?: Record<string, StateOutput>;
  /** Resources of every module. */
  resources?: StateResource[];
  /** Results of `check` blocks and conditions (Terraform 1.5+); `null` when none. */
  check_results?: unknown[] | null;
  /** Any field this library does not model, kept as read. */
  [field: string]: unknown;
}

/**
 * Information about a lock, with exactly Terraform's fields, so its JSON is interchangeable
 * with the lock info Terraform writes and reads.
 */
export interface LockInfo {
  /** Unique lock ID (a UUID); needed to unlock. */
  ID: string;
  /** The operation that took the lock, such as `"apply"` or `"state push"`. */
  Operation: string;
  /** Free-form extra information. */
  Info: string;
  /** Who holds the lock (`user@host`), for people to read: never used to judge liveness. */
  Who: string;
  /** Version of the tool that took the lock. */
  Version: string;
  /** When the lock was taken, RFC 3339 in UTC. */
  Created: string;
  /** The locked state's path or key. */
  Path: string;
}

/** What {@linkcode StateBackend.lock} returns. */
export interface LockResult {
  /** The lock ID: pass it to `setState`, `unlock` and `forceUnlock`. */
  lockId: string;
  /** The lock info as stored. */
  lockInfo: LockInfo;
}

/** Options for {@linkcode StateBackend.lock}. */
export interface LockOptions {
  /**
   * Who takes the lock, shown to anyone the lock blocks.
   * @default {"<user>@<hostname>"}
   */
  who?: string;
  /**
   * The operation the lock is for.
   * @default {"lock"}
   */
  operation?: string;
  /**
   * Free-form information stored with the lock.
   * @default {""}
   */
  info?: string;
  /**
   * How long to wait for a busy lock, retrying with backoff, before failing with
   * `StateLockError`. `0` fails at once, like Terraform's default `-lock-timeout=0s`.
   * @default {0}
   */
  timeoutMs?: number;
  /** Aborts the wait for a busy lock. */
  signal?: AbortSignal;
  /**
   * Called once, with the holder's lock info, when the lock is busy and the call is going to
   * wait for it (`timeoutMs` > 0): to tell people what the wait is for, as Terraform's
   * "Acquiring state lock" does. An error it throws ends the wait with that error.
   * @default {undefined}
   */
  onWait?: (holder: LockInfo) => void;
  /**
   * Take a lock that is not tied to the calling process: it outlives the process and is never
   * taken over automatically, only released by `unlock`/`forceUnlock`, or after `ttlMs`.
   * For pipelines that lock in one step and unlock in a later one.
   * @default {false}
   */
  detached?: boolean;
  /**
   * For a detached lock: after this many milliseconds the lock counts as expired and may be
   * taken over. Without it a detached lock never expires.
   * @default {undefined}
   */
  ttlMs?: number;
  /**
   * The lock ID to record instead of a new random one: for a server that takes a lock on a
   * client's behalf (Terraform's HTTP clients choose their lock IDs). 1 to 128 characters of
   * letters, digits and `-._:`.
   * @default {a new UUID}
   */
  id?: string;
}

/** Options for {@linkcode StateBackend.setState}. */
export interface SetStateOptions {
  /**
   * ID of the lock the caller holds. Required while the workspace is locked.
   * @default {undefined}
   */
  lockId?: string;
  /**
   * Skip the lineage and serial checks, as `terraform state push -force` does. The lock is
   * still checked.
   * @default {false}
   */
  force?: boolean;
}

/** Options for {@linkcode StateBackend.getState}. */
export interface GetStateOptions {
  /**
   * Check the state against the digest the backend keeps beside it (the S3 backend with
   * `dynamodb_table`: Terraform's `-md5` item), failing when they differ. `false` reads the
   * state as it is stored: to look at, back up or replace a state that another tool uploaded
   * without updating the digest. The local backend keeps no digest and ignores it.
   * @default {true}
   */
  verifyDigest?: boolean;
}

/** Options for {@linkcode StateBackend.deleteState}. */
export interface DeleteStateOptions {
  /**
   * ID of the lock the caller holds. Required while the workspace is locked (the rules of
   * `setState`); the lock itself stays until it is released.
   * @default {undefined}
   */
  lockId?: string;
  /**
   * Delete even when the state still tracks managed resource instances (which are then no
   * longer tracked anywhere), and even when it cannot be read. The lock is still checked.
   * @default {false}
   */
  force?: boolean;
}

/** One stored version of a workspace's state, as {@linkcode StateHistory.listVersions} lists it. */
export interface StateVersion {
  /** Opaque ID naming the version in its backend; pass it to `getStateVersion`. */
  versionId: string;
  /** The version's serial. */
  serial: number;
  /** The version's lineage. */
  lineage: string;
  /** When the version was saved, RFC 3339 in UTC. */
  savedAt: string;
  /** Size of the stored state in bytes. */
  size: number;
  /** Whether this is the workspace's current state. */
  current: boolean;
  /**
   * Set only when the backend keeps no earlier versions of this workspace, on the one version
   * it lists (the current one): why, and how to turn history on (for S3, bucket versioning is
   * off; for the local backend, `history: 0`).
   * @default {undefined}
   */
  noHistory?: string;
}

/** Options for {@linkcode StateHistory.listVersions}. */
export interface ListVersionsOptions {
  /**
   * List at most this many versions, newest first.
   * @default {undefined}
   */
  limit?: number;
}

/**
 * The earlier versions of each workspace's state a backend keeps. Every `StateBackend` has
 * it; wrappers of a backend (encryption) implement it over the wrapped one.
 */
export interface StateHistory {
  /**
   * Lists a workspace's stored versions, newest first (the current one first, flagged
   * `current`). A stored version that is not a state (an empty object, a damaged file) is
   * left out. A workspace without a state lists its earlier versions, none current, or none.
   */
  listVersions(workspace: string, options?: ListVersionsOptions): Promise<StateVersion[]>;
  /**
   * Reads one stored version of a workspace's state, exactly as stored.
   * @throws {StateVersionNotFoundError} when the workspace has no such version (unknown,
   *   pruned, or not an ID this backend makes)
   */
  getStateVersion(workspace: string, versionId: string): Promise<GaibState>;
}

/**
 * A place that stores states by workspace and guards them with locks.
 *
 * Every implementation enforces the same rules: a write must keep the stored lineage and
 * raise the serial (unless `force`), and while a workspace is locked only the lock's holder
 * may write.
 */
export interface StateBackend extends StateHistory {
  /**
   * Reads a workspace's state.
   * @returns the state, or `null` when the workspace has no state yet.
   */
  getState(workspace: string, options?: GetStateOptions): Promise<GaibState | null>;
  /** Writes a workspace's state after checking lineage, serial and lock. */
  setState(workspace: string, state: GaibState, options?: SetStateOptions): Promise<void>;
  /**
   * Deletes a workspace and its state, in one step that checks the lock (as `setState` does)
   * and, unless `force`, that the state tracks no managed resource instance. `default` cannot
   * be deleted.
   */
  deleteState(workspace: string, options?: DeleteStateOptions): Promise<void>;
  /**
   * Lists the workspaces that have a state, always including `default`, sorted. A workspace
   * that is only locked (no state yet) is not listed.
   */
  listWorkspaces(): Promise<string[]>;
  /** Locks a workspace. */
  lock(workspace: string, options?: LockOptions): Promise<LockResult>;
  /** Releases a lock; fails when `lockId` is not the current lock's ID. */
  unlock(workspace: string, lockId: string): Promise<void>;
  /** Releases a lock whatever its holder, given its ID (to clear a stuck lock). */
  forceUnlock(workspace: string, lockId: string): Promise<void>;
  /** Reads the current lock of a workspace, or `null` when it is not locked. */
  getLockInfo(workspace: string): Promise<LockInfo | null>;
  /** Whether the backend's storage is reachable and set up. */
  isConfigured(): Promise<boolean>;
  /** Releases the backend's resources (clients, timers, held locks' renewals). */
  close(): Promise<void>;
}

/** A lock as {@linkcode LockInspector.inspectLock} describes it: its info and its lease. */
export interface LockDetails {
  /** Terraform's seven fields. */
  info: LockInfo;
  /** The lease stored with the lock; `null` for a lock without one (Terraform's). */
  lease: {
    /** When the lease (or a detached lock's TTL) ends, RFC 3339; `null`: never. */
    expires: string | null;
    /** Lease length. */
    leaseMs: number;
    /** Not tied to a process (never renewed). */
    detached: boolean;
    /** Who renews it, for people (`host pid 4242`). */
    holder: string;
  } | null;
  /**
   * Whether the holding process is known to be alive (`true`) or gone (`false`) on this
   * machine; `null` when this machine cannot tell (another machine, a detached lock, no
   * lease).
   */
  holderAlive: boolean | null;
  /** When the lock may be taken over if nothing renews it, RFC 3339; `null`: never. */
  takeoverFrom: string | null;
  /** Why, in words (escaped for the terminal). */
  reason: string;
}

/** A backend that can tell more about a lock than its info: its lease and its holder. */
export interface LockInspector {
  /** Describes a workspace's current lock, or `null` when it is not locked. */
  inspectLock(workspace: string): Promise<LockDetails | null>;
}
