/**
 * The PostgreSQL backend: states in the table Terraform's and OpenTofu's `pg` backend use,
 * locked with the same session-level advisory locks, so the three tools can share one
 * database. Import it as `@gaib/state/pg`, so that projects that do not use it never load the
 * PostgreSQL client.
 *
 * Needs `--allow-net` (to the server), `--allow-env=PG_*,PGPASSWORD,PGAPPNAME,PGTARGETSESSIONATTRS`
 * (the client reads those), `--allow-read` (for `conn_str_file` and `sslrootcert`) and
 * `--allow-sys=hostname`.
 *
 * @example Lock, read, change and write a state in PostgreSQL
 * ```ts ignore
 * import { createEmptyState, withBackend, withLock } from "@gaib/state";
 * import { PgBackend } from "@gaib/state/pg";
 *
 * const backend = new PgBackend({
 *   type: "pg",
 *   conn_str: "postgres://gaib@db.example/states?sslmode=verify-full",
 * });
 * await withBackend(backend, (b) =>
 *   withLock(b, "default", "", "apply", async ({ lockId }) => {
 *     const state = (await b.getState("default")) ?? createEmptyState();
 *     await b.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
 *   }));
 * ```
 *
 * @module
 */

import type postgres from "postgres";
import { checkWrite, type StoredIdentity } from "../_write_rules.ts";
import {
  ENVELOPE_DOCUMENTS,
  STATE_DOCUMENTS,
  type StoredDocumentCodec,
  storesEnvelopes,
} from "../_stored_document.ts";
import { versionLimit, versionNotFound } from "../_history_rules.ts";
import { newLease } from "../_lease.ts";
import type { PgBackendConfig } from "../config.ts";
import { BackendConfigError, BackendError, StateLockError, StateSerialError } from "../errors.ts";
import {
  checkLockOptions,
  closedError,
  decodeLockJson,
  deleteLockError,
  encodeLockJson,
  liveHolderError,
  lockBusyError,
  lockMismatchError,
  newLockInfo,
  notLockedError,
  printable,
  retryLock,
  writeLockError,
} from "../lock.ts";
import type {
  DeleteStateOptions,
  GaibState,
  GetStateOptions,
  ListVersionsOptions,
  LockInfo,
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
  connectionOf,
  describeEndpoint,
  isConnectionLoss,
  type PgCall,
  pgClient,
  type PgConnection,
  pgFailure,
  readConnStr,
} from "./_pg_connection.ts";
import { pgBackend } from "./_pg_descriptor.ts";
import { pgNames, PgStatements, quoteIdent } from "./_pg_sql.ts";
import { checkBackendOptions } from "./_registry.ts";

export type { PgBackendConfig } from "../config.ts";
export type {
  DeleteStateOptions,
  GaibState,
  GetStateOptions,
  ListVersionsOptions,
  LockInfo,
  LockOptions,
  LockResult,
  SetStateOptions,
  StateBackend,
  StateHistory,
  StateOutput,
  StateResource,
  StateResourceInstance,
  StateVersion,
} from "../types.ts";

/** Bytes of a state read to find its lineage and serial (the statements' `substr`). */
const HEAD_CHARS = 65536;

/** Options for {@linkcode PgBackend}, beside the config. */
export interface PgBackendOptions {
  /**
   * How many versions of each workspace's state the history table keeps (the current one
   * included), as the local backend keeps 10.
   * @default {10}
   */
  historyLimit?: number;
  /**
   * The `application_name` of the connection, shown in `pg_stat_activity` and to anyone a
   * lock of this backend blocks.
   * @default {"gaib-state"}
   */
  applicationName?: string;
}

/** A session holding advisory keys, as the statements describe it. */
interface Session {
  pid: number;
  key: string;
  user: string | null;
  app: string | null;
  addr: string | null;
  since: string | null;
  lock: { workspace: string; info: string; keys: string[] | null } | null;
}

/** A workspace's lock record as read. */
interface LockRow {
  lock_id: string | null;
  info: string | null;
  detached: boolean | null;
  expires: Date | null;
  pid: number | null;
  holder: string | null;
  alive: boolean | null;
  expired: boolean | null;
  sessions: Session[];
}

/** A workspace's states row and lock, as the snapshot statement reads them. */
interface Snapshot extends LockRow {
  id: string | null;
  version: string | null;
  head: string | null;
}

/** The lock in force on a workspace: who, and why it holds. */
interface CurrentLock {
  info: LockInfo;
  reason: string;
  /** A gaib-state session between taking the keys and writing its record: look again. */
  transient: boolean;
  /** The session holding it without a record of ours (Terraform, OpenTofu). */
  sessionPid?: number;
}

/** A lock this backend instance holds, bound to its session. */
interface HeldLock {
  id: string;
  workspace: string;
  /** The advisory keys this session took for it, to release. */
  keys: string[];
  info: LockInfo;
}

/** What this instance last read or wrote of a workspace's row. */
interface Known {
  version: string | null;
  identity: StoredIdentity | null;
}

/** A bigint[] parameter: the keys are digits from the server, so the literal is plain. */
function pgArray(keys: readonly string[]): string {
  return `{${keys.filter((k) => /^-?[0-9]+$/.test(k)).join(",")}}`;
}

/** The ID shown for a lock held by a session without a gaib-state record. */
const SESSION_LOCK_PREFIX = "pg-session-";

/**
 * Stores states in PostgreSQL with Terraform's and OpenTofu's table and locks.
 *
 * - A state is one row of `<schema_name>.<table_name>` (`id`, `name`, `data`), exactly as
 *   Terraform and OpenTofu write it; a write is one statement, conditional on the row version
 *   (`xmin`) its lineage/serial check read, so two writers racing without a lock never lose an
 *   update silently.
 * - A lock is a session-level advisory lock on the row's `id` (or, for a workspace without a
 *   row, the creation keys of both tools), which the server drops the moment the holder's
 *   connection ends, however the holder died: a crashed holder never blocks anyone, and a live
 *   one is never taken over. Beside it, a record in the schema's `gaib_state_locks` table
 *   carries the holder's `LockInfo` (shown to anyone it blocks), detached locks (not tied to a
 *   session, optionally with a TTL judged by the server's clock), and the holder's session,
 *   which `forceUnlock` ends with `pg_terminate_backend`.
 * - The last versions of each state are kept in `gaib_state_history` (`listVersions`).
 *
 * Why not the lease-based lock engine (`../_lock_engine.ts`) the S3 backend uses: the server
 * knows for certain whether a lock's holder lives (its session), as the kernel does for the
 * local backend's flock, so there is no lease to renew or wait out; and Terraform's and
 * OpenTofu's locks are advisory locks, which the engine's conditional records cannot see. The
 * rules that do not depend on that are shared: the lock errors (`../lock.ts`) and the write
 * rules (`../_write_rules.ts`).
 *
 * One connection per instance, opened at the first operation; `close()` ends it.
 *
 * @example Configuring the backend
 * ```ts ignore
 * import { PgBackend } from "@gaib/state/pg";
 *
 * await using backend = new PgBackend({
 *   type: "pg",
 *   conn_str: "postgres://gaib@127.0.0.1:5432/states?sslmode=disable",
 * });
 * console.log(await backend.listWorkspaces()); // ["default", ...]
 * ```
 */
export class PgBackend implements StateBackend, StateHistory {
  readonly #config: PgBackendConfig;
  readonly #sql: PgStatements;
  readonly #historyLimit: number;
  readonly #applicationName: string;
  readonly #held = new Map<string, HeldLock>();
  readonly #known = new Map<string, Known>();
  #connection: PgConnection | null = null;
  #client: postgres.Sql | null = null;
  #ready: Promise<postgres.Sql> | null = null;
  #closed = false;
  /** What the rows hold: states, or also envelopes once wrapped by `withEncryption`. */
  #codec: StoredDocumentCodec = STATE_DOCUMENTS;

  /**
   * Creates the backend; nothing is sent until an operation needs it.
   *
   * @param given the backend config (keys as in `gaib.yaml`; `type` may be left out)
   * @param options history size and connection name
   * @throws {BackendConfigError} when the config breaks the rule `BackendFactory.create` checks
   *   (no `conn_str`, a URL that is not `postgres://`, an unsupported `sslmode`...), naming the
   *   field and never showing the URL
   */
  constructor(given: PgBackendConfig, options: PgBackendOptions = {}) {
    this.#config = checkBackendOptions(pgBackend, given, "PgBackend config");
    this.#sql = new PgStatements(pgNames(this.#config));
    const limit = options.historyLimit ?? 10;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new BackendConfigError(
        `historyLimit must be a whole number from 1 to 1000; got ${String(limit).slice(0, 20)}.`,
        { path: "historyLimit" },
      );
    }
    this.#historyLimit = limit;
    this.#applicationName = options.applicationName ?? "gaib-state";
  }

  /** Where states are, for messages: `"terraform_remote_state"."states" on PostgreSQL ...`. */
  /**
   * Lets `withEncryption` store OpenTofu encrypted envelopes here (`../_stored_document.ts`):
   * from then on this backend also reads and writes envelopes, checking their clear lineage and
   * serial. Use the wrapper, which encrypts and decrypts, rather than this backend itself.
   */
  [storesEnvelopes](): void {
    this.#codec = ENVELOPE_DOCUMENTS;
  }

  #where(): string {
    return this.#connection
      ? `${describeEndpoint(this.#connection.endpoint)}, table ${this.#sql.states},`
      : `PostgreSQL (table ${this.#sql.states})`;
  }

  #check(workspace: string): void {
    if (this.#closed) throw closedError();
    validateWorkspaceName(workspace);
  }

  /** The connection, opened (and the tables checked) on first use. */
  #open(call: PgCall): Promise<postgres.Sql> {
    if (this.#closed) throw closedError();
    this.#ready ??= this.#connect(call).catch((error) => {
      this.#ready = null; // the next operation tries again
      throw error;
    });
    return this.#ready;
  }

  async #connect(call: PgCall): Promise<postgres.Sql> {
    const connection = await connectionOf(await readConnStr(this.#config));
    this.#connection = connection;
    const client = pgClient(connection, {
      applicationName: this.#applicationName,
      onclose: () => this.#sessionEnded(),
    });
    this.#client = client;
    try {
      await this.#ensureTables(client, call);
    } catch (error) {
      this.#client = null;
      await client.end({ timeout: 1 }).catch(() => {});
      throw error;
    }
    return client;
  }

  /**
   * The connection ended (server restart, network, `forceUnlock` from elsewhere): the
   * session's advisory locks are gone with it, and what this instance knew of rows may be
   * stale. The driver opens a new session for the next statement; the locks are not taken
   * again (a write with their IDs finds them no longer held).
   */
  #sessionEnded(): void {
    this.#held.clear();
    this.#known.clear();
  }

  /** Runs one statement, turning a failure into a gaib-state error. */
  async #q<T>(call: PgCall, text: string, params: unknown[]): Promise<T[]> {
    const client = await this.#open(call);
    try {
      // Named prepared statements: the driver describes a statement once per connection, then
      // each use is one round trip (`unsafe` alone re-parses every time).
      return await client.unsafe(text, params as never[], { prepare: true }) as unknown as T[];
    } catch (error) {
      if (isConnectionLoss(error)) this.#sessionEnded();
      throw pgFailure(error, this.#where(), call, this.#connection?.secret ?? "");
    }
  }

  /**
   * Creates what is missing, as Terraform and OpenTofu do (backend.go: the schema unless it
   * exists, the sequence, the table, the unique index), then our two tables; checks in one
   * statement first, so an existing database costs one round trip.
   */
  async #ensureTables(client: postgres.Sql, call: PgCall): Promise<void> {
    const where = this.#where();
    const secret = this.#connection?.secret ?? "";
    const run = async <T>(text: string, params: unknown[], what: PgCall) => {
      try {
        return await client.unsafe(text, params as never[]) as unknown as T[];
      } catch (error) {
        throw pgFailure(error, where, what, secret);
      }
    };
    const schema = quoteIdent(this.#sql.names.schema);
    const qualified = (name: string) => `${schema}.${quoteIdent(name)}`;
    type Exists = Record<"schema" | "sequence" | "states" | "index" | "locks" | "history", boolean>;
    const check = () =>
      run<Exists>(this.#sql.exists, [
        this.#sql.names.schema,
        this.#sql.states,
        qualified(this.#sql.names.index),
        this.#sql.locks,
        this.#sql.history,
      ], call);
    const [found] = await check();
    if (Object.values(found).every(Boolean)) return;
    const ddl = this.#sql.ddl();
    const steps: [boolean, string][] = [
      [!found.schema && !this.#config.skip_schema_creation, ddl.schema],
      [!found.sequence && !this.#config.skip_table_creation, ddl.sequence],
      [!found.states && !this.#config.skip_table_creation, ddl.states],
      [
        !found.index && !this.#config.skip_index_creation &&
        (found.states || !this.#config.skip_table_creation),
        ddl.index,
      ],
      ...ddl.ours.map((s): [boolean, string] => [
        (!found.locks || !found.history) && !this.#config.skip_table_creation,
        s,
      ]),
    ];
    for (const [needed, statement] of steps) {
      if (!needed) continue;
      try {
        await client.unsafe(statement);
      } catch (error) {
        // Another client created it at the same moment ("IF NOT EXISTS" is not atomic).
        const code = (error as { code?: string }).code;
        if (code === "23505" || code === "42P07" || code === "42710" || code === "42P06") {
          continue;
        }
        throw pgFailure(error, where, {
          action: `creating the tables (${statement.split("(")[0].trim()})`,
          outcome: "Create them by hand (see the README's PostgreSQL section), or grant the " +
            "privilege.",
        }, secret);
      }
    }
    const [after] = await check();
    const missing = [
      !after.schema && `schema ${schema} (skip_schema_creation is set)`,
      !after.states && `table ${this.#sql.states} (skip_table_creation is set)`,
      !after.index && `index ${qualified(this.#sql.names.index)} (skip_index_creation is set)`,
      !after.locks && `table ${this.#sql.locks} (skip_table_creation is set)`,
      !after.history && `table ${this.#sql.history} (skip_table_creation is set)`,
    ].filter((m): m is string => typeof m === "string");
    if (missing.length > 0) {
      throw new BackendConfigError(
        `The PostgreSQL backend cannot work without ${missing.join(", ")}. Create ` +
          `${missing.length > 1 ? "them" : "it"} (the statements are in the README's ` +
          `PostgreSQL section), or unset the skip_* setting.`,
        { path: "backend" },
      );
    }
  }

  /** The workspace's lock path for LockInfo: `<schema>.<table>/<workspace>`. */
  #lockPath(workspace: string): string {
    return `${this.#sql.names.schema}.${this.#sql.names.table}/${workspace}`;
  }

  /** Reads a workspace's row and lock in one statement. */
  #snapshot(workspace: string, call: PgCall, full = false): Promise<Snapshot> {
    return this.#q<Snapshot>(
      call,
      full ? this.#sql.snapshotFull : this.#sql.snapshot,
      [workspace, this.#sql.names.table, String(this.#sql.tofuKey)],
    ).then((rows) => rows[0]);
  }

  /**
   * The lock in force, from a lock record and the sessions holding the workspace's keys:
   * a live record (a detached one before its TTL, a session-bound one whose session still
   * holds its keys) first, else another session's advisory lock. `null`: not locked.
   */
  #current(workspace: string, row: LockRow): CurrentLock | null {
    if (row.lock_id !== null && row.info !== null) {
      const { info } = decodeLockJson(row.info, "gaib-state lock record");
      const holder = printable(row.holder ?? "") || "unknown";
      if (row.detached) {
        if (!row.expired) {
          return {
            info,
            transient: false,
            reason: row.expires === null
              ? "It is a detached lock without TTL: only unlock or force-unlock release it."
              : `It is a detached lock until ${row.expires.toISOString()}.`,
          };
        }
      } else if (row.alive) {
        return {
          info,
          transient: false,
          reason: `Its holder (${holder}) is connected: its database session (pid ${row.pid}) ` +
            "holds the PostgreSQL advisory lock, which the server releases the moment that " +
            "session ends.",
        };
      }
    }
    for (const session of row.sessions ?? []) {
      if (session.lock !== null) {
        const keys = session.lock.keys ?? [];
        const { info } = decodeLockJson(session.lock.info, "gaib-state lock record");
        if (keys.includes(session.key)) {
          return {
            info,
            transient: false,
            reason: session.lock.workspace === workspace ? "" : `It holds the creation lock ` +
              `of workspace "${printable(session.lock.workspace)}", which Terraform and ` +
              "OpenTofu take for every workspace of the table while a new one is created.",
          };
        }
      }
      const fromUs = session.app === this.#applicationName;
      const since = session.since ? new Date(session.since) : null;
      return {
        info: {
          ID: `${SESSION_LOCK_PREFIX}${session.pid}`,
          Operation: "",
          Info: `PostgreSQL session ${session.pid} holds advisory lock ${session.key}`,
          Who: `${session.user ?? "unknown"}@${session.addr ?? "local"}`,
          Version: "",
          Created: since && !Number.isNaN(since.getTime()) ? since.toISOString() : "",
          Path: session.key,
        },
        reason:
          `Database session ${session.pid} (application ${
            JSON.stringify(printable(session.app ?? "unknown"))
          }) holds PostgreSQL advisory lock ${session.key} without a gaib-state lock record: ` +
          "Terraform or OpenTofu, most likely. Force-unlock with this ID ends that session " +
          "(pg_terminate_backend).",
        transient: fromUs,
        sessionPid: session.pid,
      };
    }
    return null;
  }

  /**
   * Reads a workspace's state.
   *
   * @param workspace the workspace
   * @param _options ignored: the row is read in one statement, so there is no digest to check
   * @returns the state, or `null` when there is none yet
   * @throws {StateFormatError} when the stored data is not a valid state
   * @throws {BackendError} when the server fails, naming it (never the password)
   *
   * @example
   * ```ts ignore
   * const state = await backend.getState("default");
   * console.log(state?.serial);
   * ```
   */
  async getState(workspace: string, _options?: GetStateOptions): Promise<GaibState | null> {
    this.#check(workspace);
    const rows = await this.#q<{ data: string | null; version: string }>(
      { action: `reading the state of workspace "${workspace}"` },
      this.#sql.read,
      [workspace],
    );
    if (rows.length === 0) {
      this.#known.set(workspace, { version: null, identity: null });
      return null;
    }
    const state = this.#codec.parse(
      new TextEncoder().encode(rows[0].data ?? ""),
      `state of workspace "${workspace}" in ${this.#where()}`,
    );
    this.#known.set(workspace, {
      version: rows[0].version,
      identity: state && { lineage: state.lineage, serial: state.serial },
    });
    return state;
  }

  /** Lineage and serial from the first characters of a stored state (whole when needed). */
  async #identity(workspace: string, head: string | null): Promise<StoredIdentity | null> {
    if (head === null || head === "") return null;
    const bytes = new TextEncoder().encode(head);
    const header = this.#codec.identity(bytes);
    if (header) return { lineage: header.lineage, serial: header.serial };
    const text = head.length < HEAD_CHARS ? head : await this.#readText(workspace);
    const stored = this.#codec.parse(
      new TextEncoder().encode(text),
      `state of workspace "${workspace}" in ${this.#where()}`,
    );
    return stored && { lineage: stored.lineage, serial: stored.serial };
  }

  async #readText(workspace: string): Promise<string> {
    const rows = await this.#q<{ data: string | null }>(
      { action: `reading the state of workspace "${workspace}"` },
      this.#sql.read,
      [workspace],
    );
    return rows[0]?.data ?? "";
  }

  /**
   * Writes a workspace's state after checking the lock, the lineage and the serial, in one
   * statement conditional on the row version the check read; keeps a copy in the history.
   * Under a lock this instance holds, what it last read or wrote is trusted, so a locked
   * read-modify-write costs one statement for the write.
   *
   * @param workspace the workspace
   * @param state the new state
   * @param options `lockId` (required while the workspace is locked) and `force`
   * @throws {StateLockError} when the workspace is locked and `lockId` is not that lock's, or
   *   `lockId` is no longer held (released, force-unlocked, or its session ended)
   * @throws {StateLineageError} when the lineage differs from the stored one
   * @throws {StateSerialError} when the serial is not newer than the stored one, or the row
   *   kept changing while it was being written
   * @throws {StateFormatError} when `state` is not a valid state
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * const state = await backend.getState("default");
   * if (state) await backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
   * ```
   */
  async setState(
    workspace: string,
    state: GaibState,
    options: SetStateOptions = {},
  ): Promise<void> {
    this.#check(workspace);
    const text = this.#codec.serialize(state, "state to write");
    const size = new TextEncoder().encode(text).length;
    const call: PgCall = {
      action: `writing the state of workspace "${workspace}"`,
      outcome: `The state was not changed unless "gaib-state state pull" shows serial ` +
        `${state.serial}.`,
    };
    const lockId = options.lockId;
    const held = this.#held.get(workspace);
    for (let attempt = 0; attempt < 4; attempt++) {
      const cached = attempt === 0 && lockId !== undefined && held?.id === lockId &&
          this.#held.get(workspace) === held
        ? this.#known.get(workspace)
        : undefined;
      let expectedLock: string | null;
      let version: string | null;
      let identity: StoredIdentity | null;
      if (cached) {
        expectedLock = lockId!;
        version = cached.version;
        identity = cached.identity;
      } else {
        const row = await this.#snapshot(workspace, call);
        const refused = writeLockError(
          workspace,
          lockId,
          this.#current(workspace, row)?.info ?? null,
        );
        if (refused) throw refused;
        expectedLock = row.lock_id;
        version = row.version;
        // With force a damaged stored state is replaced, not read.
        identity = options.force ? null : await this.#identity(workspace, row.head);
      }
      if (!options.force && identity) {
        const same = await checkWrite(
          workspace,
          identity,
          state,
          text,
          async () => new TextEncoder().encode(await this.#readText(workspace)),
          this.#codec,
        );
        if (same) return;
      }
      const [result] = await this.#q<{ version: string | null; lock_ok: boolean }>(
        call,
        this.#sql.write,
        [
          workspace,
          text,
          this.#sql.names.table,
          expectedLock,
          lockId !== undefined,
          String(this.#sql.tofuKey),
          version,
          String(state.serial),
          state.lineage,
          String(size),
          this.#historyLimit,
        ],
      );
      if (result.version !== null) {
        this.#known.set(workspace, {
          version: result.version,
          identity: { lineage: state.lineage, serial: state.serial },
        });
        return;
      }
      // The row or the lock changed since they were read: judge again against what is there.
      this.#known.delete(workspace);
    }
    throw new StateSerialError(
      `Cannot write the state of workspace "${workspace}": it kept changing while it was ` +
        "being written (another writer is active). Read the state again, apply the change to " +
        "it and retry, or take the lock first.",
      0,
      state.serial,
    );
  }

  /**
   * Deletes a workspace: its row and its history, in one statement conditional on the row
   * that was checked. The lock is checked (as `setState` checks it) and, unless `force`, the
   * state must track no managed resource instance. Deleted under a lock, the lock stays until
   * it is released.
   *
   * @param workspace the workspace; not `default`
   * @param options `lockId` (required while the workspace is locked) and `force`
   * @throws {BackendError} for `default` or a workspace that has no state, or when the row
   *   changed while it was being deleted (nothing is deleted then)
   * @throws {StateLockError} when the workspace is locked and `lockId` is not that lock's
   * @throws {WorkspaceNotEmptyError} when the state tracks resources and `force` is not set
   * @throws {StateFormatError} when the state cannot be read and `force` is not set
   *
   * @example
   * ```ts ignore
   * await backend.deleteState("feature-x");
   * ```
   */
  async deleteState(workspace: string, options: DeleteStateOptions = {}): Promise<void> {
    this.#check(workspace);
    const where = `row "${workspace}" of ${this.#sql.states}`;
    if (workspace === DEFAULT_WORKSPACE) checkDeletable(workspace, where, true);
    const call: PgCall = {
      action: `deleting workspace "${workspace}"`,
      outcome: "Nothing was deleted.",
    };
    const row = await this.#snapshot(workspace, call, true);
    checkDeletable(workspace, where, row.id !== null);
    const refused = deleteLockError(
      workspace,
      options.lockId,
      this.#current(workspace, row)?.info ?? null,
    );
    if (refused) throw refused;
    if (!options.force) {
      checkEmptyForDelete(
        workspace,
        this.#codec.parse(new TextEncoder().encode(row.head ?? ""), `state in ${where}`),
        false,
      );
    }
    this.#known.delete(workspace);
    const [result] = await this.#q<{ deleted: number }>(call, this.#sql.delete, [
      workspace,
      "",
      this.#sql.names.table,
      row.lock_id,
      options.lockId !== undefined,
      String(this.#sql.tofuKey),
      row.version,
    ]);
    if (result.deleted === 0) {
      throw new BackendError(
        `Cannot delete workspace "${workspace}": its row or its lock changed while it was ` +
          "being deleted (another client is active), so it was kept. Look at it again before " +
          "deleting.",
      );
    }
  }

  /**
   * Lists the workspaces: `default` and every row of the table, as Terraform and OpenTofu
   * list them (one statement). Rows whose name gaib-state does not accept as a workspace name
   * are left out. A workspace that is only locked (no row yet) is not listed.
   *
   * @returns sorted names
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * console.log(await backend.listWorkspaces()); // ["default", "staging"]
   * ```
   */
  async listWorkspaces(): Promise<string[]> {
    if (this.#closed) throw closedError();
    const rows = await this.#q<{ name: string | null }>(
      { action: "listing the workspaces" },
      this.#sql.list,
      [],
    );
    const names = new Set([DEFAULT_WORKSPACE]);
    for (const { name } of rows) {
      if (name === null) continue;
      try {
        validateWorkspaceName(name);
        names.add(name);
      } catch {
        // a name gaib-state cannot address: not listed
      }
    }
    return [...names].sort();
  }

  /**
   * Locks a workspace: the advisory keys Terraform and OpenTofu take (the row's `id`, or
   * both creation keys for a workspace without a row), held by this instance's session, and
   * a record with the lock info beside them. A detached lock keeps only the record (it
   * outlives the session, and so blocks gaib-state only: Terraform and OpenTofu do not read
   * it).
   *
   * @param workspace the workspace
   * @param options who, why, how long to wait, detached locks
   * @returns the lock ID and info
   * @throws {StateLockError} when another holder has it (after `timeoutMs`), naming it
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * const { lockId } = await backend.lock("default", { operation: "apply", timeoutMs: 60_000 });
   * ```
   */
  async lock(workspace: string, options: LockOptions = {}): Promise<LockResult> {
    this.#check(workspace);
    checkLockOptions(options);
    return await retryLock(() => this.#tryLock(workspace, options), options);
  }

  async #tryLock(workspace: string, options: LockOptions): Promise<LockResult> {
    const detached = options.detached === true;
    const info = newLockInfo(this.#lockPath(workspace), options);
    const holder = newLease({ detached, leaseMs: 0 }).holder;
    const call: PgCall = {
      action: `locking workspace "${workspace}"`,
      outcome: `If "gaib-state lock status" shows lock ID ${info.ID}, release it with ` +
        `"gaib-state force-unlock ${info.ID}".`,
    };
    type LockRowResult = {
      ok: boolean;
      claimed: number;
      row_id: string | null;
      keys: string;
      cur_lock_id: string | null;
      cur_info: string | null;
      cur_detached: boolean | null;
      cur_expires: Date | null;
      cur_expired: boolean | null;
      cur_pid: number | null;
      cur_holder: string | null;
      cur_alive: boolean | null;
      sessions: Session[];
    };
    let last: CurrentLock | null = null;
    for (let attempt = 0; attempt < 40; attempt++) {
      const [r] = await this.#q<LockRowResult>(call, this.#sql.lock, [
        workspace,
        this.#sql.names.table,
        String(this.#sql.tofuKey),
        info.ID,
        encodeLockJson(info),
        detached,
        options.ttlMs ?? null,
        holder,
      ]);
      const keys = r.keys.split(",").filter((k) => k !== "");
      if (r.ok && r.claimed === 1) {
        if (!detached) this.#held.set(workspace, { id: info.ID, workspace, keys, info });
        return { lockId: info.ID, lockInfo: info };
      }
      if (r.ok) {
        // A record appeared between the read and the write (its writer had just released
        // the keys): give back what was kept, and look again.
        if (!detached) await this.#q(call, this.#sql.unlockKeys, [pgArray(keys)]);
      }
      last = this.#current(workspace, {
        lock_id: r.cur_lock_id,
        info: r.cur_info,
        detached: r.cur_detached,
        expires: r.cur_expires,
        expired: r.cur_expired,
        pid: r.cur_pid,
        holder: r.cur_holder,
        alive: r.cur_alive,
        sessions: r.sessions,
      });
      if (last !== null && !last.transient) {
        throw lockBusyError(workspace, last.info, last.reason);
      }
      // The keys were free again, or another gaib-state client is between taking them and
      // writing its record: look again in a moment.
      await new Promise((resolve) => setTimeout(resolve, 5 + attempt * 5));
    }
    if (last) throw lockBusyError(workspace, last.info, last.reason);
    throw new StateLockError(
      `Cannot lock workspace "${workspace}": its lock kept changing hands. Retry.`,
      null,
    );
  }

  /**
   * Releases a lock: this instance's own, a detached one, or one whose session ended; not
   * one another connected client holds (that is what `forceUnlock` is for).
   *
   * @param workspace the workspace
   * @param lockId the lock's ID
   * @throws {StateLockError} when the workspace is not locked, the ID does not match (naming
   *   the holder), or another connected client holds the lock
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * await backend.unlock("default", lockId);
   * ```
   */
  async unlock(workspace: string, lockId: string): Promise<void> {
    this.#check(workspace);
    await this.#unlock(workspace, lockId, false);
  }

  /**
   * Releases a lock whoever holds it, given its ID: the way to clear a stuck lock. When the
   * holder's session still holds the advisory lock (the holder runs, or hangs), that session
   * is ended with `pg_terminate_backend`, which needs the same role as the holder, membership
   * in `pg_signal_backend`, or superuser; without it the error says so and what to run. A
   * lock Terraform or OpenTofu holds has no record: its ID as `getLockInfo` shows it
   * (`pg-session-<pid>`) ends that session.
   *
   * @param workspace the workspace
   * @param lockId the lock's ID, as shown by `getLockInfo` or the busy-lock error
   * @throws {StateLockError} when the workspace is not locked or the ID does not match
   * @throws {StateLockError} when the holder's session cannot be ended (nothing is changed
   *   then; the message names the statement an administrator can run)
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * await backend.forceUnlock("default", "7f3c1a2e-...");
   * ```
   */
  async forceUnlock(workspace: string, lockId: string): Promise<void> {
    this.#check(workspace);
    await this.#unlock(workspace, lockId, true);
  }

  async #unlock(workspace: string, lockId: string, force: boolean): Promise<void> {
    const call: PgCall = { action: `unlocking workspace "${workspace}"` };
    const held = this.#held.get(workspace);
    if (held && held.id === lockId) {
      this.#held.delete(workspace);
      this.#known.delete(workspace);
      const [r] = await this.#q<{ deleted: number }>(call, this.#sql.release, [
        workspace,
        this.#sql.names.table,
        lockId,
        pgArray(held.keys),
      ]);
      if (r.deleted === 0) throw notLockedError(workspace, lockId);
      return;
    }
    const row = await this.#snapshot(workspace, call);
    const current = this.#current(workspace, row);
    if (row.lock_id === null || current === null || current.sessionPid !== undefined) {
      if (current?.sessionPid !== undefined && current.info.ID === lockId) {
        if (!force) {
          throw liveHolderError(workspace, current.info, "session", current.reason);
        }
        await this.#terminate(workspace, current.sessionPid, current.info, call);
        if (row.lock_id !== null) {
          await this.#q(call, this.#sql.deleteLock, [
            workspace,
            this.#sql.names.table,
            row.lock_id,
          ]);
        }
        return;
      }
      if (row.lock_id === null && current === null) throw notLockedError(workspace, lockId);
      if (row.lock_id !== lockId) {
        if (current === null) throw notLockedError(workspace, lockId);
        throw lockMismatchError(workspace, lockId, current.info);
      }
    }
    const info = current?.info ?? decodeLockJson(row.info ?? "", "lock record").info;
    if (row.lock_id !== lockId) throw lockMismatchError(workspace, lockId, info);
    if (current !== null && !row.detached && row.alive) {
      if (!force) throw liveHolderError(workspace, info, "client", current.reason);
      if (row.pid !== null) await this.#terminate(workspace, row.pid, info, call);
    }
    const [r] = await this.#q<{ deleted: number }>(call, this.#sql.deleteLock, [
      workspace,
      this.#sql.names.table,
      lockId,
    ]);
    if (r.deleted === 0) throw notLockedError(workspace, lockId);
  }

  /** Ends a lock holder's session, or says why it cannot. */
  async #terminate(workspace: string, pid: number, info: LockInfo, call: PgCall): Promise<void> {
    let ended = false;
    let why = "";
    try {
      const [r] = await this.#q<{ ended: boolean }>(call, this.#sql.terminate, [pid]);
      ended = r.ended;
      if (!ended) why = "the session did not end within 5 s";
    } catch (error) {
      why = error instanceof Error ? error.message : String(error);
    }
    if (ended) return;
    throw new StateLockError(
      `Cannot force-unlock workspace "${workspace}": the lock's database session (pid ${pid}) ` +
        `still holds the PostgreSQL advisory lock and could not be ended: ${why}. Ending ` +
        "another session needs its role, membership in pg_signal_backend, or superuser. Ask " +
        `a database administrator to run "SELECT pg_terminate_backend(${pid})", or stop that ` +
        "process.",
      info,
    );
  }

  /**
   * Reads the current lock of a workspace: gaib-state's record of a live lock, or, for a lock
   * Terraform or OpenTofu holds (an advisory lock without a record), what the server tells of
   * that session (ID `pg-session-<pid>`).
   *
   * @param workspace the workspace
   * @returns the lock info (Terraform's seven fields), or `null` when not locked
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * const info = await backend.getLockInfo("default");
   * if (info) console.log(`locked by ${info.Who} since ${info.Created}`);
   * ```
   */
  async getLockInfo(workspace: string): Promise<LockInfo | null> {
    this.#check(workspace);
    const row = await this.#snapshot(workspace, {
      action: `reading the lock of workspace "${workspace}"`,
    });
    return this.#current(workspace, row)?.info ?? null;
  }

  /**
   * Lists the stored versions of a workspace's state, newest first: those in the history
   * table, and the current row when another tool wrote it (ID `current`).
   *
   * @param workspace the workspace
   * @param options `limit`: at most this many
   * @returns the versions; empty when the workspace has none
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * const [latest] = await backend.listVersions("default", { limit: 1 });
   * ```
   */
  async listVersions(
    workspace: string,
    options: ListVersionsOptions = {},
  ): Promise<StateVersion[]> {
    this.#check(workspace);
    versionLimit(options);
    const call = { action: `listing the versions of workspace "${workspace}"` };
    type Row = {
      id: string;
      serial: string;
      lineage: string;
      saved_at: Date;
      size: string;
      md5: string;
      current_md5: string | null;
    };
    const limit = options.limit;
    const rows = await this.#q<Row>(call, this.#sql.versions, [
      workspace,
      this.#sql.names.table,
      limit === undefined ? null : Math.max(0, Math.floor(limit)),
    ]);
    const versions: StateVersion[] = [];
    let currentSeen = false;
    const currentMd5 = rows[0]?.current_md5;
    for (const row of rows) {
      const current = !currentSeen && row.md5 === row.current_md5;
      if (current) currentSeen = true;
      versions.push({
        versionId: row.id,
        serial: Number(row.serial),
        lineage: row.lineage,
        savedAt: row.saved_at.toISOString(),
        size: Number(row.size),
        current,
      });
    }
    if (!currentSeen && (rows.length === 0 || currentMd5 !== null)) {
      // The current row was written by another tool (or before the history existed).
      const [now] = await this.#q<{ version: string; head: string; size: string }>(
        call,
        this.#sql.currentVersion,
        [workspace],
      );
      if (now) {
        const identity = await this.#identity(workspace, now.head).catch(() => null);
        versions.unshift({
          versionId: "current",
          serial: identity?.serial ?? 0,
          lineage: identity?.lineage ?? "",
          savedAt: "",
          size: Number(now.size),
          current: true,
        });
      }
    }
    return limit === undefined ? versions : versions.slice(0, Math.max(0, limit));
  }

  /**
   * Reads one stored version of a workspace's state.
   *
   * @param workspace the workspace
   * @param versionId an ID from `listVersions` (`current`: the row as it is now)
   * @returns the state of that version
   * @throws {StateVersionNotFoundError} when there is no such version of this workspace
   * @throws {StateFormatError} when the stored version is not a valid state
   *
   * @example
   * ```ts ignore
   * const [, previous] = await backend.listVersions("default");
   * const old = await backend.getStateVersion("default", previous.versionId);
   * ```
   */
  async getStateVersion(workspace: string, versionId: string): Promise<GaibState> {
    this.#check(workspace);
    const unknown = () => versionNotFound(workspace, versionId);
    let text: string | null = null;
    if (versionId === "current") {
      const rows = await this.#q<{ data: string | null }>(
        { action: `reading the state of workspace "${workspace}"` },
        this.#sql.read,
        [workspace],
      );
      text = rows[0]?.data ?? null;
    } else if (/^[1-9][0-9]{0,18}$/.test(versionId)) {
      const rows = await this.#q<{ data: string }>(
        { action: `reading version ${versionId} of workspace "${workspace}"` },
        this.#sql.version,
        [workspace, this.#sql.names.table, versionId],
      );
      text = rows[0]?.data ?? null;
    }
    if (text === null) throw unknown();
    const state = this.#codec.parse(
      new TextEncoder().encode(text),
      `version ${versionId} of workspace "${workspace}"`,
    );
    if (state === null) throw unknown();
    return state;
  }

  /**
   * Whether the server is reachable and the tables are there (created unless a skip_*
   * setting says not to).
   *
   * @returns `true` when the backend can work
   *
   * @example
   * ```ts ignore
   * if (!(await backend.isConfigured())) console.error("check conn_str and the tables");
   * ```
   */
  async isConfigured(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      await this.#open({ action: "checking the tables" });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Releases the locks this instance holds and ends its connection. Safe to call twice.
   *
   * @example
   * ```ts ignore
   * await backend.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const held of [...this.#held.values()]) {
      await this.#unlock(held.workspace, held.id, false).catch(() => {});
    }
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    this.#ready = null;
    // The session's advisory locks end with it in any case.
    await client?.end({ timeout: 5 }).catch(() => {});
  }

  /**
   * Same as {@linkcode PgBackend.close}, for `await using`.
   *
   * @returns when the backend is closed
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
