/**
 * What the PostgreSQL backend tests share: a test wrapper that needs the run's PostgreSQL
 * server (skipped with the reason when it is missing, failed under `CI=true`), a fresh
 * database and role per test, a driver connection as the admin for looking behind the
 * backend's back, and Terraform's own statements (internal/backend/remote-state/pg), to write
 * rows and take locks exactly as Terraform does.
 *
 * Run a file alone against a server started by hand with `GAIB_TEST_PG` set (see
 * `deno run -A tests/run.ts --serve`).
 *
 * @module
 */

import postgres from "postgres";
import { PgBackend, type PgBackendOptions } from "../src/backends/pg.ts";
import type { PgBackendConfig } from "../src/config.ts";
import { serverTest } from "./_server_env.ts";
import { type PgServerInfo, psql, tempDatabase } from "./_pg_server.ts";

export { psql };

/** A fresh database for one test, with clients. */
export interface PgFixture extends AsyncDisposable {
  /** The server. */
  readonly server: PgServerInfo;
  /** The database and role name. */
  readonly name: string;
  /** The role's password (to check that it is never printed). */
  readonly password: string;
  /** The backend's `conn_str` (the role, with its password, TLS off). */
  readonly connStr: string;
  /** The admin URL of the database, for psql. */
  readonly adminUrl: string;
  /**
   * A driver connection as the database's role (what Terraform would connect as), closed on
   * disposal.
   */
  readonly admin: postgres.Sql;
  /** A new backend on this database, closed on disposal. */
  backend(config?: Partial<PgBackendConfig>, options?: PgBackendOptions): PgBackend;
}

/** Terraform's statements (backend.go:105-145, client.go), with the default names. */
export const TERRAFORM_DDL: readonly string[] = [
  "CREATE SCHEMA IF NOT EXISTS terraform_remote_state",
  "CREATE SEQUENCE IF NOT EXISTS public.global_states_id_seq AS bigint",
  `CREATE TABLE IF NOT EXISTS "terraform_remote_state".states (
    id bigint NOT NULL DEFAULT nextval('public.global_states_id_seq') PRIMARY KEY,
    name text UNIQUE,
    data text
  )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS states_by_name ON "terraform_remote_state".states (name)`,
];

/** Terraform's Put (client.go:48-59). */
export const TERRAFORM_PUT = `INSERT INTO "terraform_remote_state".states (name, data)
  VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET data = $2 WHERE states.name = $1`;

/** Terraform's Lock of an existing row (client.go:97-99): row id, row lock, creation lock. */
export const TERRAFORM_LOCK = `SELECT states.id, pg_try_advisory_lock(states.id),
  pg_try_advisory_lock(-1) FROM "terraform_remote_state".states WHERE states.name = $1`;

/** Creates the tables as Terraform does, so rows can be planted before any backend ran. */
export async function terraformTables(fx: PgFixture): Promise<void> {
  for (const statement of TERRAFORM_DDL) await fx.admin.unsafe(statement);
}

/** Every row of the states table, and of our lock and history tables: name -> digest. */
export async function pgFingerprint(fx: PgFixture): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const tables = await fx.admin.unsafe(
    `SELECT to_regclass('terraform_remote_state.states') IS NOT NULL AS states,
      to_regclass('terraform_remote_state.gaib_state_locks') IS NOT NULL AS locks,
      to_regclass('terraform_remote_state.gaib_state_history') IS NOT NULL AS history`,
  );
  if (tables[0].states) {
    for (
      const r of await fx.admin.unsafe(
        "SELECT name, md5(coalesce(data, '')) AS d FROM terraform_remote_state.states",
      )
    ) out[`state:${r.name}`] = r.d;
  }
  if (tables[0].locks) {
    for (
      const r of await fx.admin.unsafe(
        "SELECT workspace, md5(info) AS d FROM terraform_remote_state.gaib_state_locks",
      )
    ) out[`lock:${r.workspace}`] = r.d;
  }
  if (tables[0].history) {
    for (
      const r of await fx.admin.unsafe(
        "SELECT id::text AS id, md5 FROM terraform_remote_state.gaib_state_history",
      )
    ) out[`history:${r.id}`] = r.md5;
  }
  return out;
}

/**
 * Writes `bytes` as the row of `workspace` with Terraform's own statements. PostgreSQL's text
 * holds no NUL and no invalid UTF-8: Terraform could not store such bytes either (its Put
 * fails), so they are planted as the server would keep them.
 */
export async function plantTerraformRow(
  fx: PgFixture,
  workspace: string,
  bytes: Uint8Array,
): Promise<void> {
  await terraformTables(fx);
  const text = new TextDecoder().decode(bytes).replaceAll("\0", "\uFFFD");
  await fx.admin.unsafe(TERRAFORM_PUT, [workspace, text]);
}

/** A psql session holding Terraform's lock on a row. */
export interface TerraformLockHolder extends AsyncDisposable {
  /** Waits for the session to end (after a force-unlock), and frees its pipes. */
  ended(): Promise<void>;
}

/**
 * Takes Terraform's lock on `workspace`'s row (which must exist) in a psql session, exactly
 * as Terraform does (its row and creation keys, then it lets the creation key go), and holds
 * it until the session ends or the holder is disposed of.
 */
export async function holdTerraformLock(
  fx: PgFixture,
  workspace: string,
): Promise<TerraformLockHolder> {
  const holder = new Deno.Command("psql", {
    args: [fx.connStr, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = holder.stdin.getWriter();
  const literal = `'${workspace.replaceAll("'", "''")}'`;
  await writer.write(
    new TextEncoder().encode(
      TERRAFORM_LOCK.replace("$1", literal).replace(/\s+/g, " ") + ";\n" +
        "SELECT pg_advisory_unlock(-1);\n\\echo locked\n",
    ),
  );
  const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("locked")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  if (!/\|t\|t/.test(seen)) throw new Error(`psql did not take Terraform's lock: ${seen}`);
  const ended = async () => {
    await writer.close().catch(() => {});
    await holder.status;
    await reader.cancel().catch(() => {});
    await holder.stderr.cancel().catch(() => {});
  };
  return { ended, [Symbol.asyncDispose]: ended };
}

/** Creates a fresh fixture on `server`. */
export async function pgFixture(server: PgServerInfo): Promise<PgFixture> {
  const db = await tempDatabase(server);
  const admin = postgres(db.connStr, { max: 1, onnotice: () => {}, fetch_types: false });
  const backends: PgBackend[] = [];
  return {
    server,
    name: db.name,
    password: db.password,
    connStr: db.connStr,
    adminUrl: db.adminUrl,
    admin,
    backend(config = {}, options = {}) {
      const backend = new PgBackend({ type: "pg", conn_str: db.connStr, ...config }, options);
      backends.push(backend);
      return backend;
    },
    async [Symbol.asyncDispose]() {
      await Promise.allSettled(backends.map((b) => b.close()));
      await admin.end({ timeout: 1 }).catch(() => {});
      await db[Symbol.asyncDispose]();
    },
  };
}

/** A test that needs the run's PostgreSQL server and gets a fresh database. */
export function pgTest(
  name: string,
  fn: (fx: PgFixture, t: Deno.TestContext) => Promise<void>,
): void {
  serverTest(name, { pg: true }, async (t, { pg }) => {
    await using fx = await pgFixture(pg);
    await fn(fx, t);
  });
}
