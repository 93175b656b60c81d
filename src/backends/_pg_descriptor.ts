/**
 * The PostgreSQL backend in the registry (`_registry.ts`): its config rule, with OpenTofu's
 * setting names, its `GAIB_PG_*` variables and Terraform's `PG_*` ones below them, how its
 * fields are shown, and the client variables never printed. Light: the backend and its driver
 * (`pg.ts`) are imported only when one is created.
 *
 * @module
 */

import type { PgBackendConfig } from "../config.ts";
import {
  boolean,
  type ConfigIssue,
  fail,
  literal,
  nonEmpty,
  object,
  type ObjectRule,
  type Rule,
  string,
} from "../_config_rules.ts";
import type { BackendDescriptor } from "./_registry.ts";

/** The TLS modes gaib-state supports (libpq's names). */
export const PG_SSL_MODES = ["disable", "require", "verify-full"] as const;

/** Query parameters of `conn_str` that gaib-state understands; any other is refused. */
export const PG_URL_PARAMETERS = ["sslmode", "sslrootcert", "connect_timeout", "application_name"];

/**
 * A `postgres://` URL. The value is never quoted in messages (its user info holds the
 * password); `sslmode` must be one gaib-state supports, so that a typo never means "no TLS".
 */
export const pgUrl: Rule<string> = (value, path) => {
  const expected = "a postgres:// URL";
  if (typeof value !== "string") {
    return fail(path, "invalid_type", `expected ${expected}, found a ${typeof value}`);
  }
  const problem = pgUrlProblem(value);
  if (problem) return fail(path, "invalid_format", `${path[path.length - 1]} ${problem}`);
  return { ok: true, value };
};

/** What is wrong with a connection URL (its value never included), or `undefined`. */
export function pgUrlProblem(value: string): string | undefined {
  const hidden = "(the value is not shown: it may hold a password)";
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return `must be a postgres:// URL such as postgres://user@db.example:5432/states ${hidden}`;
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    return `must start with postgres:// or postgresql:// ${hidden}`;
  }
  if (url.hostname === "") return `must name a host, as in postgres://user@HOST/db ${hidden}`;
  if (url.hostname.includes(",")) return `must name one host (no list of hosts) ${hidden}`;
  for (const key of url.searchParams.keys()) {
    if (!PG_URL_PARAMETERS.includes(key)) {
      return `has the query parameter "${key.slice(0, 40).replace(/[^\w.-]/g, "?")}", which ` +
        `gaib-state does not support (supported: ${PG_URL_PARAMETERS.join(", ")})`;
    }
  }
  const mode = url.searchParams.get("sslmode");
  if (mode !== null && !(PG_SSL_MODES as readonly string[]).includes(mode)) {
    return `has an sslmode gaib-state does not support; use sslmode=${PG_SSL_MODES.join(", ")}`;
  }
  if (url.searchParams.has("sslrootcert") && mode !== "verify-full") {
    return "has sslrootcert, which only applies with sslmode=verify-full";
  }
  const timeout = url.searchParams.get("connect_timeout");
  if (timeout !== null && !/^[1-9][0-9]{0,3}$/.test(timeout)) {
    return "has a connect_timeout that is not a number of seconds from 1 to 9999";
  }
  return undefined;
}

/**
 * A PostgreSQL identifier for the schema, table and index names. Terraform and OpenTofu quote
 * any name; gaib-state quotes them too, and also keeps them to letters, digits, `_`, `$` and
 * `-` (63 bytes, the server's limit), so that no name can surprise a reader of the SQL.
 */
function identifier(what: string): Rule<string> {
  return string({
    pattern: /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/,
    patternMessage: `${what} must be a PostgreSQL name (a letter or "_", then up to 62 ` +
      'letters, digits, "_", "$" or "-")',
    refine: [nonEmpty(what)],
  });
}

/** The rule of {@linkcode PgBackendConfig}. */
export const pgBackendRule: ObjectRule<PgBackendConfig> = object({
  type: { rule: literal(["pg"], 'type must be "pg"'), required: true, show: "plain" },
  conn_str: { rule: pgUrl, show: "url" },
  conn_str_file: {
    rule: string({
      expected: "a string (a file holding the connection URL)",
      refine: [nonEmpty("conn_str_file"), {
        test: (p) => !p.includes("\0"),
        message: "conn_str_file must not contain a NUL character",
      }],
    }),
    show: "plain",
  },
  schema_name: { rule: identifier("schema_name"), show: "plain" },
  table_name: { rule: identifier("table_name"), show: "plain" },
  index_name: { rule: identifier("index_name"), show: "plain" },
  skip_schema_creation: { rule: boolean, show: "plain" },
  skip_table_creation: { rule: boolean, show: "plain" },
  skip_index_creation: { rule: boolean, show: "plain" },
}, {
  expected: "type: pg and its settings",
  refine(config, path): ConfigIssue | undefined {
    if (config.conn_str !== undefined && config.conn_str_file !== undefined) {
      return {
        path: [...path, "conn_str_file"],
        code: "custom",
        message: "set conn_str or conn_str_file, not both",
      };
    }
    if (config.conn_str === undefined && config.conn_str_file === undefined) {
      return {
        path: [...path, "conn_str"],
        code: "invalid_type",
        message: "conn_str is required (a postgres:// URL; or set PG_CONN_STR, or " +
          "conn_str_file: a file holding it)",
        missing: true,
      };
    }
    return undefined;
  },
});

/** The PostgreSQL backend: states in Terraform's `pg` tables, locked with advisory locks. */
export const pgBackend: BackendDescriptor<PgBackendConfig> = {
  type: "pg",
  summary: "states in a PostgreSQL database, shared with Terraform's and OpenTofu's pg backend",
  rule: pgBackendRule,
  variables: {
    GAIB_PG_CONN_STR: { field: "conn_str" },
    GAIB_PG_CONN_STR_FILE: { field: "conn_str_file" },
    GAIB_PG_SCHEMA_NAME: { field: "schema_name" },
    GAIB_PG_TABLE_NAME: { field: "table_name" },
    GAIB_PG_INDEX_NAME: { field: "index_name" },
    GAIB_PG_SKIP_SCHEMA_CREATION: { field: "skip_schema_creation", coerce: "boolean" },
    GAIB_PG_SKIP_TABLE_CREATION: { field: "skip_table_creation", coerce: "boolean" },
    GAIB_PG_SKIP_INDEX_CREATION: { field: "skip_index_creation", coerce: "boolean" },
    // Terraform's and OpenTofu's own variables (internal/backend/remote-state/pg/backend.go),
    // below the file and the GAIB_PG_* ones.
    PG_CONN_STR: { field: "conn_str", fallback: true, unlessSet: ["conn_str_file"] },
    PG_SCHEMA_NAME: { field: "schema_name", fallback: true },
    PG_TABLE_NAME: { field: "table_name", fallback: true },
    PG_INDEX_NAME: { field: "index_name", fallback: true },
    PG_SKIP_SCHEMA_CREATION: { field: "skip_schema_creation", coerce: "boolean", fallback: true },
    PG_SKIP_TABLE_CREATION: { field: "skip_table_creation", coerce: "boolean", fallback: true },
    PG_SKIP_INDEX_CREATION: { field: "skip_index_creation", coerce: "boolean", fallback: true },
  },
  paths: { conn_str_file: {} },
  sdkVariables: {
    heading: "PostgreSQL client variables (the password is never shown):",
    none: "none in the environment",
    hidden: ["PGPASSWORD"],
    shown: ["PGAPPNAME", "PGTARGETSESSIONATTRS"],
  },
  secretVariables: ["PGPASSWORD", "PG_CONN_STR", "GAIB_PG_CONN_STR"],
  location(config) {
    // The server, database, schema and table: never the user info of the URL. A connection
    // named by a file is known only by the file's path here (the lock check still catches a
    // migration onto the same database).
    const schema = config.schema_name ?? "terraform_remote_state";
    const table = config.table_name ?? "states";
    let server = `connection from file ${config.conn_str_file ?? "(none)"}`;
    if (config.conn_str !== undefined) {
      const url = new URL(config.conn_str);
      server = `${url.protocol}//${url.host}${url.pathname}`;
    }
    return `pg ${server} table ${schema}.${table}`;
  },
  load: async () => (await import("./pg.ts")).PgBackend,
  doctor: async () => (await import("./_pg_doctor.ts")).pgDoctor,
};
