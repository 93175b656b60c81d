/**
 * The PostgreSQL backend's doctor checks and bootstrap: the server answers (with TLS as
 * `sslmode` says), the credentials are accepted (never shown), the server's version, the
 * schema, table and index Terraform and OpenTofu share and gaib-state's own two tables (or
 * whether this user may create them), advisory locks that exclude another session, and the
 * clock against the server's `now()`. The checks create nothing; `bootstrap` creates what is
 * missing, as the backend would on first use.
 *
 * @module
 */

import type postgres from "postgres";
import type { PgBackendConfig } from "../config.ts";
import {
  type BackendDoctor,
  type BootstrapContext,
  type CheckOutcome,
  type DoctorCheckDefinition,
  type DoctorContext,
  messageOf,
  result,
} from "../_doctor_types.ts";
import { type DateSample, judgeClockSkew } from "../_doctor_clock.ts";
import { plainHttp } from "../_url.ts";
import {
  connectionOf,
  describeEndpoint,
  pgClient,
  type PgConnection,
  pgFailure,
  readConnStr,
} from "./_pg_connection.ts";
import {
  HISTORY_TABLE,
  LOCKS_TABLE,
  pgNames,
  PgStatements,
  quoteIdent,
  SEQUENCE,
} from "./_pg_sql.ts";
import { PgBackend } from "./pg.ts";

type Ctx = DoctorContext<PgBackendConfig>;
type Check = DoctorCheckDefinition<PgBackendConfig>;

/**
 * The advisory key of the lock probe: "gaibdoc" in ASCII, negated (-0x676169626_46f63). It
 * can never be a workspace's: row ids come from a sequence (positive), Terraform's creation
 * key is -1 and OpenTofu's is a negated 32-bit hash (at least -(2^32 - 1)), and this is below
 * -2^54.
 */
export const DOCTOR_LOCK_KEY = -0x676169626_46f63n;

/** What the server said when the doctor connected. */
interface Hello {
  version: string;
  num: number;
  user: string;
  ssl: boolean | null;
  tls: string | null;
}

/** The run's connection: made once, closed when the run ends. */
interface PgTools {
  connection?: PgConnection;
  client?: postgres.Sql;
  hello?: Hello;
  /** Why connecting failed. */
  error?: unknown;
}

const HELLO = `SELECT current_setting('server_version') AS version,
  current_setting('server_version_num')::int AS num, current_user AS user,
  (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl,
  (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS tls`;

/** Connects once per run (and says hello): every check reads what came of it. */
function connect(ctx: Ctx): Promise<PgTools> {
  const tools = ctx.shared<{ done: Promise<PgTools>; tools: PgTools }>("pg", () => {
    const tools: PgTools = {};
    const done = (async () => {
      try {
        tools.connection = await connectionOf(await readConnStr(ctx.config));
        // The doctor's own session, never the backend's: it creates nothing.
        tools.client = pgClient(
          { ...tools.connection, options: { ...tools.connection.options, connect_timeout: 10 } },
          { applicationName: "gaib-state doctor" },
        );
        [tools.hello] = await tools.client.unsafe(HELLO) as unknown as Hello[];
      } catch (error) {
        tools.error = error;
      }
      return tools;
    })();
    return { done, tools };
  }, async ({ done }) => {
    const tools = await done;
    await tools.client?.end({ timeout: 1 }).catch(() => {});
  });
  return tools.done;
}

/** A failure's message as the backend would say it: where, why, never the password. */
function failure(tools: PgTools, error: unknown, action: string): string {
  const where = tools.connection ? describeEndpoint(tools.connection.endpoint) : "PostgreSQL";
  return pgFailure(error, where, { action }, tools.connection?.secret ?? "").message;
}

/** Whether the server itself answered (with an error of its own: SQLSTATE and severity). */
function serverAnswered(error: unknown): boolean {
  const e = error as { severity?: unknown; code?: unknown } | null;
  return typeof e?.severity === "string" && typeof e?.code === "string";
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/**
 * Whether the server offers TLS: its one-byte answer to an SSLRequest (the protocol's first
 * message, "Message Formats" in the PostgreSQL manual: length 8, code 80877103), `S` or `N`;
 * `undefined` when it does not answer so.
 */
async function tlsOffered(endpoint: { host: string; port: number }): Promise<boolean | undefined> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: endpoint.host, port: endpoint.port });
    const request = new Uint8Array(8);
    new DataView(request.buffer).setUint32(0, 8);
    new DataView(request.buffer).setUint32(4, 80877103);
    await conn.write(request);
    const answer = new Uint8Array(1);
    const read = await conn.read(answer);
    if (read !== 1) return undefined;
    return answer[0] === 0x53 ? true : answer[0] === 0x4e ? false : undefined;
  } catch {
    return undefined;
  } finally {
    conn?.close();
  }
}

/** `pg.reachable`: the server answers at the address, with TLS as `sslmode` asks. */
const reachableCheck: Check = {
  name: "pg.reachable",
  async run(ctx) {
    const tools = await connect(ctx);
    if (!tools.connection) {
      return result("fail", messageOf(tools.error), "fix conn_str (or conn_str_file)");
    }
    const { endpoint } = tools.connection;
    const where = describeEndpoint(endpoint);
    if (tools.error !== undefined && !serverAnswered(tools.error)) {
      let said = failure(tools, tools.error, "connecting");
      let tls = /ssl|tls|certificate/i.test(messageOf(tools.error));
      if (endpoint.sslmode !== "disable" && await tlsOffered(endpoint) === false) {
        said += " The server does not offer TLS (it answered N to the SSLRequest).";
        tls = true;
      }
      return result(
        "fail",
        said,
        tls
          ? `sslmode=${endpoint.sslmode} in conn_str: the server must offer TLS (ssl = on), ` +
            "and its certificate must be signed by the CA that sslrootcert names " +
            "(verify-full); sslmode=disable only on loopback"
          : "check the host and port of conn_str, that the server runs and listens there " +
            "(listen_addresses), and that a firewall lets this machine in",
      );
    }
    const hello = tools.hello;
    const tls = hello?.ssl ? `TLS on (${hello.tls ?? "version unknown"})` : "TLS off";
    const summary = `${where} answers, sslmode=${endpoint.sslmode}` +
      (hello ? `, ${tls}` : " (the session did not start: see pg.credentials)");
    const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
    const remote = plainHttp(`http://${host}/`) === "remote";
    // Only verify-full keeps someone in between from reading the password and the states.
    const exposed = {
      "disable": "the password and every state cross the network in clear",
      "require": "the server's certificate is not checked, so anyone in between can read the " +
        "password and the states",
      "verify-full": undefined,
    }[endpoint.sslmode];
    if (remote && exposed) {
      return result(
        "warn",
        `${summary}: ${exposed}`,
        "set sslmode=verify-full in conn_str (with sslrootcert=<the server's CA file>)",
      );
    }
    return result("ok", summary);
  },
};

/** `pg.credentials`: the server accepts the user and password (never shown). */
const credentialsCheck: Check = {
  name: "pg.credentials",
  requires: ["pg.reachable"],
  async run(ctx) {
    const tools = await connect(ctx);
    const user = tools.connection!.endpoint.user;
    if (tools.hello) {
      return result("ok", `user "${tools.hello.user}" accepted (the password is never shown)`);
    }
    const code = codeOf(tools.error);
    const said = failure(tools, tools.error, `logging in as "${user}"`);
    if (code === "28P01" || code === "28000") {
      return result(
        "fail",
        said,
        "check the user and password of conn_str (or PGPASSWORD), and the server's " +
          "pg_hba.conf entry for this machine",
      );
    }
    if (code === "3D000") {
      return result(
        "fail",
        said,
        `create the database (CREATE DATABASE ${
          quoteIdent(tools.connection!.endpoint.database)
        }), or fix its name in conn_str`,
      );
    }
    return result("fail", said);
  },
};

/** `pg.version`: 9.5 or later (Terraform's writes use `INSERT ... ON CONFLICT`). */
const versionCheck: Check = {
  name: "pg.version",
  requires: ["pg.credentials"],
  async run(ctx) {
    const { hello } = await connect(ctx);
    const said = `PostgreSQL ${hello!.version}`;
    if (hello!.num < 90500) {
      return result(
        "fail",
        `${said}: older than 9.5, which has no INSERT ... ON CONFLICT (Terraform's and ` +
          "gaib-state's writes use it)",
        "upgrade the server to a supported PostgreSQL version",
      );
    }
    return result("ok", said);
  },
};

/** A privilege this user lacks on an existing object, and the check it belongs to. */
interface Lack {
  check: "pg.tables" | "pg.gaib-tables";
  /** `TABLE name`, `SEQUENCE name` or `SCHEMA name`, as GRANT takes it. */
  on: string;
  privilege: string;
}

/** What exists of the backend's schema objects, and what this user may do. */
interface Layout {
  schema: boolean;
  sequence: boolean;
  states: boolean;
  index: boolean;
  locks: boolean;
  history: boolean;
  dbCreate: boolean;
  schemaCreate: boolean | null;
  /** USAGE on the schema (null when it does not exist): without it nothing in it is seen. */
  schemaUsage: boolean | null;
  publicCreate: boolean;
  lacking: Lack[];
  /** The session's user. */
  user: string;
}

async function layout(ctx: Ctx): Promise<Layout> {
  const tools = await connect(ctx);
  const client = tools.client!;
  const sql = new PgStatements(pgNames(ctx.config));
  const user = tools.hello!.user;
  const [rights] = await client.unsafe(
    `SELECT has_database_privilege(current_database(), 'CREATE') AS "dbCreate",
      CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
        THEN has_schema_privilege($1, 'CREATE') END AS "schemaCreate",
      CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
        THEN has_schema_privilege($1, 'USAGE') END AS "schemaUsage",
      has_schema_privilege('public', 'CREATE') AS "publicCreate"`,
    [sql.names.schema],
  ) as unknown as Pick<Layout, "dbCreate" | "schemaCreate" | "schemaUsage" | "publicCreate">[];
  if (rights.schemaUsage === false) {
    // Nothing in the schema can even be looked up: say that first.
    const on = `SCHEMA ${quoteIdent(sql.names.schema)}`;
    return {
      schema: true,
      sequence: true,
      states: true,
      index: true,
      locks: true,
      history: true,
      ...rights,
      lacking: [
        { check: "pg.tables", on, privilege: "USAGE" },
        { check: "pg.gaib-tables", on, privilege: "USAGE" },
      ],
      user,
    };
  }
  const index = `${quoteIdent(sql.names.schema)}.${quoteIdent(sql.names.index)}`;
  const [found] = await client.unsafe(sql.exists, [
    sql.names.schema,
    sql.states,
    index,
    sql.locks,
    sql.history,
  ]) as unknown as Pick<Layout, "schema" | "sequence" | "states" | "index" | "locks" | "history">[];
  // Every privilege the backend uses (README, "Privileges the database user needs").
  const lacking = await client.unsafe(
    `SELECT CASE WHEN t.name = $1 THEN 'pg.tables' ELSE 'pg.gaib-tables' END AS "check",
        'TABLE ' || t.name AS "on", p.priv AS privilege
      FROM unnest(ARRAY[$1, $2, $3]::text[]) AS t(name),
        unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(priv)
      WHERE to_regclass(t.name) IS NOT NULL AND NOT has_table_privilege(t.name, p.priv)
    UNION ALL
    SELECT s."check", 'SEQUENCE ' || s.name, 'USAGE'
      FROM (VALUES ('pg.tables', $4::text), ('pg.gaib-tables',
        CASE WHEN to_regclass($3) IS NOT NULL THEN pg_get_serial_sequence($3, 'id') END))
        AS s("check", name)
      WHERE s.name IS NOT NULL AND to_regclass(s.name) IS NOT NULL
        AND NOT has_sequence_privilege(s.name, 'USAGE')
    ORDER BY 1, 2, 3`,
    [sql.states, sql.locks, sql.history, SEQUENCE],
  ) as unknown as Lack[];
  return { ...found, ...rights, lacking: [...lacking], user };
}

/** The objects of one check: each name, whether it exists, and the setting that skips it. */
type Objects = [name: string, present: boolean, skip: keyof PgBackendConfig][];

/** Judges a set of objects: present, created on first use, or what stops their creation. */
function judgeObjects(
  ctx: Ctx,
  l: Layout,
  name: Lack["check"],
  objects: Objects,
  what: string,
): CheckOutcome {
  const missing = objects.filter(([, present]) => !present);
  // One entry per object, its privileges together, as one GRANT gives them.
  const byObject = new Map<string, string[]>();
  for (const lack of l.lacking.filter((x) => x.check === name)) {
    byObject.set(lack.on, [...(byObject.get(lack.on) ?? []), lack.privilege]);
  }
  if (byObject.size > 0) {
    const lacking = [...byObject];
    return result(
      "fail",
      `${what}: this user lacks ${lacking.map(([on, p]) => `${p.join(", ")} on ${on}`).join("; ")}`,
      "as the owner, run: " +
        lacking.map(([on, p]) => `GRANT ${p.join(", ")} ON ${on} TO ${quoteIdent(l.user)};`)
          .join(" "),
    );
  }
  if (missing.length === 0) {
    return result("ok", `${objects.map(([name]) => name).join(", ")} present`);
  }
  const skipped = missing.filter(([, , skip]) => ctx.config[skip] === true);
  if (skipped.length > 0) {
    return result(
      "fail",
      `${skipped.map(([name, , skip]) => `${name} is absent and ${skip} is set`).join("; ")}: ` +
        "the backend cannot work without it",
      "create it as the statements in the README's PostgreSQL section do, or unset the " +
        "skip_* setting and run gaib-state bootstrap",
    );
  }
  // What creating the missing objects needs: the schema, CREATE on the database; objects in
  // it, CREATE on the schema; Terraform's sequence, CREATE on public.
  const needs: string[] = [];
  if (missing.some(([name]) => name.startsWith("schema")) && !l.dbCreate) {
    needs.push("CREATE on the database (for the schema)");
  }
  if (
    missing.some(([name]) => !name.startsWith("schema") && name !== SEQUENCE) &&
    l.schemaCreate === false
  ) {
    needs.push(`CREATE on schema ${quoteIdent(pgNames(ctx.config).schema)}`);
  }
  if (missing.some(([name]) => name === SEQUENCE) && !l.publicCreate) {
    needs.push("CREATE on schema public (for Terraform's sequence)");
  }
  const names = missing.map(([name]) => name).join(", ");
  if (needs.length > 0) {
    return result(
      "fail",
      `${names} absent, and this user may not create ${
        missing.length > 1 ? "them" : "it"
      }: it lacks ${needs.join(", ")}`,
      "grant what is lacking to the user of conn_str, or have the owner run gaib-state " +
        "bootstrap (or the statements in the README's PostgreSQL section)",
    );
  }
  return result(
    "ok",
    `${names} absent: the backend creates ${
      missing.length > 1 ? "them" : "it"
    } on first use (or run gaib-state bootstrap now)`,
  );
}

/** `pg.tables`: the schema, sequence, states table and index Terraform and OpenTofu share. */
const tablesCheck: Check = {
  name: "pg.tables",
  requires: ["pg.credentials"],
  async run(ctx) {
    const l = await layout(ctx);
    const sql = new PgStatements(pgNames(ctx.config));
    const index = `index ${quoteIdent(sql.names.schema)}.${quoteIdent(sql.names.index)}`;
    return judgeObjects(ctx, l, "pg.tables", [
      [`schema ${quoteIdent(sql.names.schema)}`, l.schema, "skip_schema_creation"],
      [SEQUENCE, l.sequence, "skip_table_creation"],
      [sql.states, l.states, "skip_table_creation"],
      [index, l.index, "skip_index_creation"],
    ], "Terraform's table");
  },
};

/** `pg.gaib-tables`: gaib-state's lock and history tables beside the states table. */
const gaibTablesCheck: Check = {
  name: "pg.gaib-tables",
  requires: ["pg.credentials"],
  async run(ctx) {
    const l = await layout(ctx);
    const sql = new PgStatements(pgNames(ctx.config));
    return judgeObjects(ctx, l, "pg.gaib-tables", [
      [sql.locks, l.locks, "skip_table_creation"],
      [sql.history, l.history, "skip_table_creation"],
    ], `gaib-state's tables (${LOCKS_TABLE}, ${HISTORY_TABLE})`);
  },
};

/**
 * `pg.locks`: a session-level advisory lock on the doctor's own key ({@linkcode
 * DOCTOR_LOCK_KEY}) is granted, refused to a second session, and released. A pooler in
 * transaction mode (PgBouncer) breaks this: the sessions behind it change between statements.
 */
const locksCheck: Check = {
  name: "pg.locks",
  requires: ["pg.credentials"],
  async run(ctx) {
    const tools = await connect(ctx);
    const key = String(DOCTOR_LOCK_KEY);
    const take = async (client: postgres.Sql) =>
      ((await client.unsafe("SELECT pg_try_advisory_lock($1::bigint) AS ok", [key]))[0]
        .ok) as boolean;
    if (!(await take(tools.client!))) {
      return result(
        "skipped",
        `the probe key ${key} is held by another session (another gaib-state doctor?)`,
        'run "gaib-state doctor" again when it is done',
      );
    }
    const other = pgClient(tools.connection!, { applicationName: "gaib-state doctor" });
    try {
      const second = await take(other);
      if (second) await other.unsafe("SELECT pg_advisory_unlock($1::bigint)", [key]);
      const [released] = await tools.client!.unsafe(
        "SELECT pg_advisory_unlock($1::bigint) AS ok",
        [key],
      );
      if (second || !released.ok) {
        return result(
          "fail",
          second
            ? `a second session took the advisory lock key ${key} that the first held`
            : `the advisory lock key ${key} was not held any more by the session that took it`,
          "connect to PostgreSQL directly or through a pooler in session mode: locks are " +
            "session-level advisory locks, which a pooler in transaction mode (PgBouncer " +
            "pool_mode = transaction) does not keep",
        );
      }
      return result(
        "ok",
        `advisory lock on the doctor's key ${key} granted, refused to a second session, ` +
          "released",
      );
    } finally {
      await other.end({ timeout: 1 }).catch(() => {});
    }
  },
};

/**
 * `clock`: this machine's clock against the server's `now()`. Detached locks' TTLs are judged
 * by the server's clock and advisory locks have none, so a skew only warns.
 */
const clockCheck: Check = {
  name: "clock",
  requires: ["pg.credentials"],
  async run(ctx) {
    const tools = await connect(ctx);
    const samples: DateSample[] = [];
    for (let i = 0; i < 3; i++) {
      const sent = ctx.now();
      const [row] = await tools.client!.unsafe(
        "SELECT (extract(epoch FROM now()) * 1000)::float8 AS ms",
      );
      const received = ctx.now();
      samples.push({
        service: "the PostgreSQL server",
        server: Number(row.ms),
        local: (sent + received) / 2,
        rtt: received - sent,
        resolution: 0,
      });
    }
    return judgeClockSkew(samples, ctx.leaseMs, {
      status: "warn",
      consequence: "the ages of locks that gaib-state shows are off by as much (the server " +
        "judges detached locks' TTLs by its own clock)",
    });
  },
};

/**
 * `bootstrap` for pg: the schema, Terraform's sequence, table and index, and gaib-state's two
 * tables, created as the backend creates them on first use (so with the same statements and
 * the same skip_* settings); what exists is left as it is.
 */
async function bootstrapPg(ctx: BootstrapContext<PgBackendConfig>): Promise<void> {
  const tools = await connect(ctx);
  if (!tools.hello) {
    ctx.step({
      resource: "PostgreSQL connection",
      action: "failed",
      status: "fail",
      message: failure(tools, tools.error, "connecting"),
      fix: 'run "gaib-state doctor" for what is wrong',
    });
    return;
  }
  const sql = new PgStatements(pgNames(ctx.config));
  const resources = (l: Layout): [string, boolean][] => [
    [`schema ${quoteIdent(sql.names.schema)}`, l.schema],
    [`sequence ${SEQUENCE}`, l.sequence],
    [`table ${sql.states}`, l.states],
    [`index ${quoteIdent(sql.names.schema)}.${quoteIdent(sql.names.index)}`, l.index],
    [`table ${sql.locks}`, l.locks],
    [`table ${sql.history}`, l.history],
  ];
  let before: [string, boolean][];
  try {
    before = resources(await layout(ctx));
  } catch (error) {
    ctx.step({
      resource: `schema ${quoteIdent(sql.names.schema)}`,
      action: "failed",
      status: "fail",
      message: failure(tools, error, "reading what exists"),
    });
    return;
  }
  if (before.every(([, present]) => present) || ctx.dryRun) {
    for (const [resource, present] of before) {
      ctx.step(
        present
          ? { resource, action: "unchanged", status: "ok", message: "exists" }
          : { resource, action: "would-create", status: "ok", message: "would be created" },
      );
    }
    return;
  }
  let error: unknown;
  const backend = new PgBackend(ctx.config);
  try {
    await backend.listWorkspaces(); // the first statement creates what is missing
  } catch (e) {
    error = e;
  } finally {
    await backend.close();
  }
  const after = resources(await layout(ctx));
  for (const [i, [resource, present]] of after.entries()) {
    if (before[i][1]) ctx.step({ resource, action: "unchanged", status: "ok", message: "exists" });
    else if (present) ctx.step({ resource, action: "created", status: "ok", message: "created" });
    else {
      ctx.step({
        resource,
        action: "failed",
        status: "fail",
        message: error === undefined ? "not created" : messageOf(error),
        fix: "grant the privilege named, or create it as the README's PostgreSQL section shows",
      });
    }
  }
}

/** The PostgreSQL backend's doctor: its checks in order, and its bootstrap. */
export const pgDoctor: BackendDoctor<PgBackendConfig> = {
  checks: [
    reachableCheck,
    credentialsCheck,
    versionCheck,
    tablesCheck,
    gaibTablesCheck,
    locksCheck,
    clockCheck,
  ],
  bootstrap: bootstrapPg,
};
