/**
 * The PostgreSQL backend's tables, lock keys and statements.
 *
 * Terraform's and OpenTofu's layout (internal/backend/remote-state/pg/, read at Terraform
 * 883c7221 and OpenTofu f831fa1a):
 * - table `<schema_name>.<table_name>` (Terraform: always `states`), created as
 *   `id bigint NOT NULL DEFAULT nextval('public.global_states_id_seq') PRIMARY KEY, name text
 *   UNIQUE, data text` (Terraform backend.go:126-137, OpenTofu backend.go:151-167), with the
 *   sequence in `public` so that ids are unique across schemas;
 * - unique index `<index_name>` (Terraform: always `states_by_name`) on `(name)` (Terraform
 *   backend.go:140-145, OpenTofu backend.go:170-175);
 * - one row per workspace: `name` is the workspace name (`default` included), `data` the state
 *   JSON; workspaces are listed as `default` plus every other row (backend_state.go:19-41);
 * - locks are session-level advisory locks: `pg_try_advisory_lock(id)` on the row's `id`, and
 *   a "creation" key while a workspace that has no row is locked. The creation key is where the
 *   two tools differ: Terraform takes `-1` (client.go:97-114), OpenTofu
 *   `-int64(fnv32(schema + "\x00" + table))` (client.go:98-120 and 155-159). Locking an
 *   existing row also tries the creation key and gives up while someone holds it.
 *
 * gaib-state takes BOTH creation keys (Terraform's, then OpenTofu's, then the row's: one order,
 * so that of many contenders one wins), which excludes both tools.
 *
 * Beside them, in the same schema, two tables of our own that Terraform and OpenTofu never
 * read: `gaib_state_locks` (the holder's LockInfo, detached locks and their TTL, the holder's
 * session) and `gaib_state_history` (the last versions of each state). Both are keyed by the
 * states table's name too, so that two configs with different `table_name` never meet.
 *
 * Every value is a statement parameter. Identifiers (schema, table, index names from the
 * config) cannot be parameters: they are checked by the config rule and quoted here.
 *
 * @module
 */

/** The sequence Terraform and OpenTofu take row ids from (always in `public`). */
export const SEQUENCE = "public.global_states_id_seq";

/** Terraform's creation lock key (client.go:97-105). */
export const TERRAFORM_CREATION_KEY = -1n;

/** Our lock table's name. */
export const LOCKS_TABLE = "gaib_state_locks";
/** Our history table's name. */
export const HISTORY_TABLE = "gaib_state_history";

/** Quotes an identifier, as `pq.QuoteIdentifier` does. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * OpenTofu's creation lock key: the FNV-1 (not 1a) 32-bit hash of `schema + "\0" + table`,
 * negated as a 64-bit integer (OpenTofu client.go:155-159, Go's `hash/fnv.New32`).
 *
 * @example
 * ```ts
 * import { opentofuCreationKey } from "./_pg_sql.ts";
 * console.log(opentofuCreationKey("terraform_remote_state", "states") < 0n); // true
 * ```
 */
export function opentofuCreationKey(schema: string, table: string): bigint {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${schema}\0${table}`)) {
    hash = Math.imul(hash, 0x01000193) >>> 0;
    hash = (hash ^ byte) >>> 0;
  }
  return -BigInt(hash);
}

/** The names a backend works with, each already quoted where it goes into SQL. */
export interface PgNames {
  /** The schema, unquoted (as configured). */
  schema: string;
  /** The states table, unquoted. */
  table: string;
  /** The index, unquoted. */
  index: string;
}

/** The names of a config, with Terraform's defaults. */
export function pgNames(
  config: { schema_name?: string; table_name?: string; index_name?: string },
): PgNames {
  return {
    schema: config.schema_name ?? "terraform_remote_state",
    table: config.table_name ?? "states",
    index: config.index_name ?? "states_by_name",
  };
}

/** The key of an advisory lock row of `pg_locks` (the one-bigint form). */
const LOCK_KEY = "((k.classid::bigint << 32) | k.objid::bigint)";

/** Advisory locks of the current database, held (granted). */
const ADVISORY = "k.locktype = 'advisory' AND k.granted AND k.objsubid = 1 AND " +
  "k.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/** The statements of one backend config. */
export class PgStatements {
  readonly names: PgNames;
  readonly states: string;
  readonly locks: string;
  readonly history: string;
  readonly tofuKey: bigint;

  constructor(names: PgNames) {
    this.names = names;
    const schema = quoteIdent(names.schema);
    this.states = `${schema}.${quoteIdent(names.table)}`;
    this.locks = `${schema}.${quoteIdent(LOCKS_TABLE)}`;
    this.history = `${schema}.${quoteIdent(HISTORY_TABLE)}`;
    this.tofuKey = opentofuCreationKey(names.schema, names.table);
  }

  /** What exists: $1 schema name, $2..$5 qualified names (quoted) for `to_regclass`. */
  get exists(): string {
    return `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
      to_regclass('${SEQUENCE}') IS NOT NULL AS sequence,
      to_regclass($2) IS NOT NULL AS states, to_regclass($3) IS NOT NULL AS index,
      to_regclass($4) IS NOT NULL AS locks, to_regclass($5) IS NOT NULL AS history`;
  }

  /** The DDL, in order, by what it creates (Terraform's statements, then ours). */
  ddl(): { schema: string; sequence: string; states: string; index: string; ours: string[] } {
    const schema = quoteIdent(this.names.schema);
    return {
      schema: `CREATE SCHEMA IF NOT EXISTS ${schema}`,
      sequence: `CREATE SEQUENCE IF NOT EXISTS ${SEQUENCE} AS bigint`,
      states: `CREATE TABLE IF NOT EXISTS ${this.states} (
        id bigint NOT NULL DEFAULT nextval('${SEQUENCE}') PRIMARY KEY,
        name text UNIQUE,
        data text
      )`,
      index:
        `CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdent(this.names.index)} ON ${this.states} ` +
        "(name)",
      ours: [
        `CREATE TABLE IF NOT EXISTS ${this.locks} (
          state_table text NOT NULL,
          workspace text NOT NULL,
          lock_id text NOT NULL,
          info text NOT NULL,
          detached boolean NOT NULL,
          expires timestamptz,
          pid integer,
          keys bigint[] NOT NULL,
          holder text NOT NULL,
          PRIMARY KEY (state_table, workspace)
        )`,
        `CREATE TABLE IF NOT EXISTS ${this.history} (
          id bigserial PRIMARY KEY,
          state_table text NOT NULL,
          workspace text NOT NULL,
          serial bigint NOT NULL,
          lineage text NOT NULL,
          saved_at timestamptz NOT NULL DEFAULT now(),
          size bigint NOT NULL,
          md5 text NOT NULL,
          data text NOT NULL
        )`,
        `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${HISTORY_TABLE}_by_workspace`)} ON ` +
        `${this.history} (state_table, workspace, id)`,
      ],
    };
  }

  /**
   * Sessions (other than this one) holding advisory locks on `keys` ($-numbered array), with
   * the gaib-state lock they hold in this table, if any: JSON rows.
   */
  holders(keys: string, table: string): string {
    return `(SELECT coalesce(json_agg(json_build_object(
        'pid', k.pid, 'key', ${LOCK_KEY}::text, 'user', a.usename,
        'app', a.application_name, 'addr', host(a.client_addr), 'since', a.backend_start,
        'state', a.state,
        'lock', (SELECT json_build_object('workspace', l2.workspace, 'info', l2.info,
                   'keys', to_json(l2.keys::text[]))
                 FROM ${this.locks} l2 WHERE l2.pid = k.pid AND l2.state_table = ${table}
                 AND NOT l2.detached LIMIT 1))), '[]')
      FROM pg_locks k LEFT JOIN pg_stat_activity a ON a.pid = k.pid
      WHERE ${ADVISORY} AND k.pid <> pg_backend_pid() AND ${LOCK_KEY} = ANY(${keys}))`;
  }

  /** Whether session `pid` holds one of `keys` (SQL expressions). */
  #alive(pid: string, keys: string): string {
    return `EXISTS (SELECT 1 FROM pg_locks k WHERE ${ADVISORY} AND k.pid = ${pid} AND ` +
      `${LOCK_KEY} = ANY(${keys}))`;
  }

  /** The columns that describe a workspace's lock (aliases: s = states row, l = lock row). */
  #lockColumns(table: string): string {
    return `l.lock_id, l.info, l.detached, l.expires, l.pid, l.holder,
      (l.pid IS NOT NULL AND ${this.#alive("l.pid", "l.keys")}) AS alive,
      (l.detached AND l.expires IS NOT NULL AND l.expires <= now()) AS expired,
      l.pid = pg_backend_pid() AS mine,
      ${this.holders(`ARRAY[coalesce(s.id, -1), -1, $3::bigint]`, table)} AS sessions`;
  }

  /**
   * A workspace's row and lock: $1 workspace, $2 states table name, $3 OpenTofu's key.
   * `head`: the first 64 KiB of the state (enough for lineage and serial).
   */
  get snapshot(): string {
    return `SELECT s.id::text AS id, s.xmin::text AS version, substr(s.data, 1, 65536) AS head,
        ${this.#lockColumns("$2")}
      FROM (SELECT $1::text AS name) n
      LEFT JOIN ${this.states} s ON s.name = n.name
      LEFT JOIN ${this.locks} l ON l.state_table = $2 AND l.workspace = n.name`;
  }

  /** The same with the whole state (for deletes). */
  get snapshotFull(): string {
    return this.snapshot.replace("substr(s.data, 1, 65536) AS head", "s.data AS head");
  }

  /** A workspace's state and its row version: $1 workspace. */
  get read(): string {
    return `SELECT data, xmin::text AS version FROM ${this.states} WHERE name = $1`;
  }

  /** Every row's name. */
  get list(): string {
    return `SELECT name FROM ${this.states} ORDER BY name`;
  }

  /**
   * Takes a lock in one statement: Terraform's creation key, then OpenTofu's, then the row's
   * (each tried only when the one before was taken), then, when all are held and no live lock
   * record is in the way, writes the lock record; releases the keys it must not keep (all of
   * them when it failed or the lock is detached; the creation keys when the row exists).
   *
   * $1 workspace, $2 states table name, $3 OpenTofu's key, $4 lock ID, $5 LockInfo JSON,
   * $6 detached, $7 TTL in ms (or null), $8 holder text.
   */
  get lock(): string {
    const L = this.locks;
    return `WITH
      s AS MATERIALIZED (SELECT id FROM ${this.states} WHERE name = $1),
      t1 AS MATERIALIZED (SELECT pg_try_advisory_lock(-1) AS got_tf),
      t2 AS MATERIALIZED (
        SELECT got_tf, CASE WHEN got_tf THEN pg_try_advisory_lock($3::bigint) END AS got_tofu
        FROM t1),
      t AS MATERIALIZED (
        SELECT got_tf, got_tofu, (SELECT id FROM s) AS row_id,
          CASE WHEN got_tofu AND EXISTS (SELECT 1 FROM s)
            THEN (SELECT pg_try_advisory_lock(id) FROM s) END AS got_row
        FROM t2),
      cur AS MATERIALIZED (
        SELECT lock_id, info, detached, expires, pid, holder,
          (pid IS NOT NULL AND ${this.#alive("pid", "keys")}) AS alive,
          (detached AND expires IS NOT NULL AND expires <= now()) AS expired,
          (detached AND (expires IS NULL OR expires > now()))
            OR (NOT detached AND pid = pg_backend_pid()) AS blocking
        FROM ${L} WHERE state_table = $2 AND workspace = $1),
      ok AS MATERIALIZED (
        SELECT coalesce(got_tofu, false) AND (row_id IS NULL OR coalesce(got_row, false))
          AND NOT coalesce((SELECT blocking FROM cur), false) AS ok,
          CASE WHEN row_id IS NULL THEN ARRAY[-1, $3::bigint] ELSE ARRAY[row_id] END AS keys
        FROM t),
      ins AS (
        INSERT INTO ${L} AS x (state_table, workspace, lock_id, info, detached, expires, pid,
          keys, holder)
        SELECT $2, $1, $4, $5, $6,
          CASE WHEN $7::bigint IS NULL THEN NULL ELSE now() + $7::bigint * interval '1 ms' END,
          CASE WHEN $6 THEN NULL ELSE pg_backend_pid() END, ok.keys, $8
        FROM ok WHERE ok.ok
        ON CONFLICT (state_table, workspace) DO UPDATE SET lock_id = EXCLUDED.lock_id,
          info = EXCLUDED.info, detached = EXCLUDED.detached, expires = EXCLUDED.expires,
          pid = EXCLUDED.pid, keys = EXCLUDED.keys, holder = EXCLUDED.holder
        WHERE x.lock_id = (SELECT lock_id FROM cur)
        RETURNING lock_id, expires)
      SELECT ok.ok, (SELECT count(*) FROM ins)::int AS claimed,
        (SELECT expires FROM ins) AS expires, t.row_id::text AS row_id, pg_backend_pid() AS me,
        array_to_string(ok.keys, ',') AS keys,
        CASE WHEN t.got_tf AND (NOT ok.ok OR $6 OR t.row_id IS NOT NULL)
          THEN pg_advisory_unlock(-1) END AS freed_tf,
        CASE WHEN t.got_tofu AND (NOT ok.ok OR $6 OR t.row_id IS NOT NULL)
          THEN pg_advisory_unlock($3::bigint) END AS freed_tofu,
        CASE WHEN t.got_row AND (NOT ok.ok OR $6)
          THEN pg_advisory_unlock(t.row_id) END AS freed_row,
        cur.lock_id AS cur_lock_id, cur.info AS cur_info, cur.detached AS cur_detached,
        cur.expires AS cur_expires, cur.pid AS cur_pid, cur.holder AS cur_holder,
        cur.alive AS cur_alive, cur.expired AS cur_expired,
        ${this.holders(`ARRAY[coalesce(t.row_id, -1), -1, $3::bigint]`, "$2")} AS sessions
      FROM t CROSS JOIN ok LEFT JOIN cur ON true`;
  }

  /** Releases advisory keys this session holds: $1 keys (bigint[]). */
  get unlockKeys(): string {
    return `SELECT count(*)::int AS freed FROM unnest($1::bigint[]) AS k(key)
      WHERE pg_advisory_unlock(k.key)`;
  }

  /**
   * Deletes a lock record if it still has `lock_id` and releases keys of this session:
   * $1 workspace, $2 states table name, $3 lock ID, $4 keys to release (bigint[]).
   */
  get release(): string {
    return `WITH d AS (DELETE FROM ${this.locks}
        WHERE state_table = $2 AND workspace = $1 AND lock_id = $3 RETURNING 1)
      SELECT (SELECT count(*) FROM d)::int AS deleted,
        (SELECT count(*) FROM unnest($4::bigint[]) AS k(key) WHERE pg_advisory_unlock(k.key))::int
          AS freed`;
  }

  /**
   * The condition a write needs: the lock record is still the one judged ($4: its lock ID,
   * or null for none), and without a lock ID ($5 false) no other session holds the keys.
   */
  #guard(): string {
    return `(SELECT lock_id FROM ${this.locks} WHERE state_table = $3 AND workspace = $1)
        IS NOT DISTINCT FROM $4::text
      AND ($5::boolean OR NOT EXISTS (SELECT 1 FROM pg_locks k WHERE ${ADVISORY}
        AND k.pid <> pg_backend_pid() AND ${LOCK_KEY} = ANY(ARRAY[
          coalesce((SELECT id FROM ${this.states} WHERE name = $1), -1), -1, $6::bigint])))`;
  }

  /**
   * Writes a state if the row is still version $7 (null: no row yet) and the lock is as
   * judged, keeping a copy in the history and the last $11 versions there.
   *
   * $1 workspace, $2 state text, $3 states table name, $4 expected lock ID, $5 has lock ID,
   * $6 OpenTofu's key, $7 row version, $8 serial, $9 lineage, $10 size, $11 versions kept.
   */
  get write(): string {
    const H = this.history;
    return `WITH
      guard AS MATERIALIZED (SELECT ${this.#guard()} AS ok),
      up AS (UPDATE ${this.states} SET data = $2
        WHERE name = $1 AND xmin::text = $7::text AND (SELECT ok FROM guard)
        RETURNING id, xmin::text AS version),
      ins AS (INSERT INTO ${this.states} (name, data)
        SELECT $1, $2 WHERE $7::text IS NULL AND (SELECT ok FROM guard)
        ON CONFLICT (name) DO NOTHING
        RETURNING id, xmin::text AS version),
      w AS (SELECT * FROM up UNION ALL SELECT * FROM ins),
      h AS (INSERT INTO ${H} (state_table, workspace, serial, lineage, size, md5, data)
        SELECT $3, $1, $8, $9, $10, md5($2), $2 FROM w RETURNING id),
      p AS (DELETE FROM ${H} WHERE id IN (
          SELECT id FROM ${H} WHERE state_table = $3 AND workspace = $1
          ORDER BY id DESC OFFSET $11::int - 1)
        AND EXISTS (SELECT 1 FROM w))
      SELECT (SELECT version FROM w) AS version, (SELECT ok FROM guard) AS lock_ok`;
  }

  /**
   * Deletes a workspace's row (if still version $7) and its history, under the same guard:
   * $1 workspace, $3 states table name, $4 expected lock ID, $5 has lock ID, $6 OpenTofu's
   * key, $7 row version ($2 unused, for the guard's numbering).
   */
  get delete(): string {
    return `WITH
      guard AS MATERIALIZED (SELECT ${this.#guard()} AS ok, $2::text AS unused),
      d AS (DELETE FROM ${this.states}
        WHERE name = $1 AND xmin::text = $7::text AND (SELECT ok FROM guard) RETURNING id),
      dh AS (DELETE FROM ${this.history} WHERE state_table = $3 AND workspace = $1
        AND EXISTS (SELECT 1 FROM d))
      SELECT (SELECT count(*) FROM d)::int AS deleted, (SELECT ok FROM guard) AS lock_ok`;
  }

  /**
   * The versions of a workspace, newest first, and the current row's digest:
   * $1 workspace, $2 states table name, $3 limit (null: all).
   */
  get versions(): string {
    return `SELECT h.id::text AS id, h.serial::text AS serial, h.lineage, h.saved_at, h.size::text
        AS size, h.md5,
        (SELECT md5(data) FROM ${this.states} WHERE name = $1) AS current_md5
      FROM ${this.history} h WHERE h.state_table = $2 AND h.workspace = $1
      ORDER BY h.id DESC LIMIT $3::bigint`;
  }

  /** The current row as a version: $1 workspace. */
  get currentVersion(): string {
    return `SELECT xmin::text AS version, substr(data, 1, 65536) AS head,
        octet_length(data)::text AS size, md5(data) AS md5
      FROM ${this.states} WHERE name = $1`;
  }

  /** One version's state: $1 workspace, $2 states table name, $3 version id. */
  get version(): string {
    return `SELECT data FROM ${this.history}
      WHERE state_table = $2 AND workspace = $1 AND id = $3::bigint`;
  }

  /** Ends another session (forceUnlock): $1 pid. Waits up to 5 s for it to end. */
  get terminate(): string {
    return "SELECT pg_terminate_backend($1::int, 5000) AS ended";
  }

  /** Deletes a lock record by ID: $1 workspace, $2 states table name, $3 lock ID. */
  get deleteLock(): string {
    return `WITH d AS (DELETE FROM ${this.locks}
        WHERE state_table = $2 AND workspace = $1 AND lock_id = $3 RETURNING 1)
      SELECT count(*)::int AS deleted FROM d`;
  }
}
