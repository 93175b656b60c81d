/**
 * The PostgreSQL backend's connection: the connection URL (from the config or a file), the
 * client options it gives the driver (`postgres`, porsager's pure-JavaScript client), TLS, and
 * the errors the backend throws when the server fails, which never hold the password.
 *
 * The driver reads a few `PG*` variables while it builds its options (`PGAPPNAME`,
 * `PGTARGETSESSIONATTRS`, and `PGPASSWORD` when the URL has no password, as libpq does); every
 * other option is passed here, so it reads no other variable. The CLI's `--allow-env` names
 * exactly those.
 *
 * @module
 */

import postgres from "postgres";
import { BackendConfigError, BackendError } from "../errors.ts";
import { currentUserName, printable } from "../lock.ts";
import { redactUrlsInText } from "../_url.ts";
import type { PgBackendConfig } from "../config.ts";
import { pgUrlProblem } from "./_pg_descriptor.ts";

/** Where the backend connects, for messages: never the user info. */
export interface PgEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  sslmode: "disable" | "require" | "verify-full";
}

/** The driver's options (the part of `postgres.Options` we set). */
export interface PgClientOptions {
  host: string;
  port: number;
  user: string;
  pass: string | undefined;
  database: string;
  ssl: false | "require" | {
    rejectUnauthorized: true;
    ca?: string;
    servername?: string;
    host: string;
  };
  connect_timeout: number;
}

/** The connection of a config: where, and how. */
export interface PgConnection {
  endpoint: PgEndpoint;
  options: PgClientOptions;
  /** The password, to scrub from any message (empty when none). */
  secret: string;
}

/** Reads the connection URL: `conn_str`, or the file `conn_str_file` names. */
export async function readConnStr(config: PgBackendConfig): Promise<string> {
  if (config.conn_str !== undefined) return config.conn_str;
  const file = config.conn_str_file!;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new BackendConfigError(
      `Cannot read the PostgreSQL connection URL from conn_str_file ${printable(file)}: ${
        error instanceof Error ? printable(error.message) : "unknown error"
      }. Check the path and that this user may read it.`,
      { path: "backend.conn_str_file", cause: error },
    );
  }
  const value = text.trim();
  const problem = pgUrlProblem(value);
  if (problem) {
    throw new BackendConfigError(
      `The connection URL in conn_str_file ${printable(file)} ${problem}.`,
      { path: "backend.conn_str_file" },
    );
  }
  return value;
}

/**
 * The driver options of a connection URL. `sslmode` defaults to `require`, as in Terraform
 * (whose driver, lib/pq, requires TLS unless told otherwise).
 */
export async function connectionOf(connStr: string): Promise<PgConnection> {
  const problem = pgUrlProblem(connStr);
  if (problem) {
    throw new BackendConfigError(`conn_str ${problem}.`, { path: "backend.conn_str" });
  }
  const url = new URL(connStr.trim());
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? 5432 : Number(url.port);
  const user = decodeURIComponent(url.username) || currentUserName();
  const pass = decodeURIComponent(url.password);
  const database = decodeURIComponent(url.pathname.replace(/^\//, "")) || user;
  const sslmode = (url.searchParams.get("sslmode") ?? "require") as PgEndpoint["sslmode"];
  let ssl: PgClientOptions["ssl"] = false;
  if (sslmode === "require") ssl = "require";
  if (sslmode === "verify-full") {
    const file = url.searchParams.get("sslrootcert");
    let ca: string | undefined;
    if (file !== null) {
      try {
        ca = await Deno.readTextFile(file);
      } catch (error) {
        throw new BackendConfigError(
          `Cannot read the CA file sslrootcert=${printable(file)} of conn_str: ${
            error instanceof Error ? printable(error.message) : "unknown error"
          }.`,
          { path: "backend.conn_str", cause: error },
        );
      }
    }
    const isIp = /^[0-9.]+$/.test(host) || host.includes(":");
    // `host` is what the certificate is checked against (an IP address included); SNI
    // (`servername`) only carries names.
    ssl = {
      rejectUnauthorized: true,
      host,
      ...(ca ? { ca } : {}),
      ...(isIp ? {} : { servername: host }),
    };
  }
  const timeout = Number(url.searchParams.get("connect_timeout") ?? "10");
  return {
    endpoint: { host, port, database, user, sslmode },
    options: { host, port, user, pass: pass || undefined, database, ssl, connect_timeout: timeout },
    secret: pass,
  };
}

/** What a client's session is for. */
export interface PgClientUse {
  /** The session's `application_name`, shown in `pg_stat_activity`. */
  applicationName: string;
  /** Called when the session ends (its advisory locks are gone with it). */
  onclose?: () => void;
}

/**
 * A driver client of one session that is never recycled (that would drop its advisory locks),
 * with every option the driver would otherwise read from a `PG*` variable set here.
 */
export function pgClient(connection: PgConnection, use: PgClientUse): postgres.Sql {
  return postgres({
    ...connection.options,
    max: 1,
    sslnegotiation: null,
    idle_timeout: null,
    max_lifetime: null,
    max_pipeline: 100,
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    keep_alive: 60,
    prepare: true,
    debug: false,
    fetch_types: false,
    publications: "alltables",
    // Read from PGTARGETSESSIONATTRS only (libpq's name), never from other PG* variables.
    target_session_attrs: undefined,
    onnotice: () => {},
    onclose: use.onclose ?? (() => {}),
    connection: { application_name: use.applicationName },
  } as unknown as postgres.Options<Record<string, never>>);
}

/** `postgres://user@host:port/db` for messages: user, never the password. */
export function describeEndpoint(endpoint: PgEndpoint): string {
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
  return `PostgreSQL ${printable(host)}:${endpoint.port}/${printable(endpoint.database)} ` +
    `(user ${printable(endpoint.user)})`;
}

/** What a failed statement was doing: the context of the error it becomes. */
export interface PgCall {
  /** Such as `reading the state of workspace "prod"`. */
  action: string;
  /** What the failure left behind, such as `The state was not changed.` */
  outcome?: string;
}

/** A driver error's fields we read. */
interface DriverError {
  message?: string;
  code?: string;
  severity?: string;
  detail?: string;
}

/** Connection-level error codes of the driver and the socket. */
const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: "the connection was refused: is the server running and listening there?",
  ECONNRESET: "the server closed the connection (restarted or stopped?)",
  CONNECTION_CLOSED: "the server closed the connection (restarted or stopped?)",
  CONNECTION_ENDED: "the connection was closed",
  CONNECTION_DESTROYED: "the connection was closed",
  CONNECT_TIMEOUT: "the connection timed out",
  ENOTFOUND: "the host name does not resolve",
  EHOSTUNREACH: "the host is unreachable",
  EPIPE: "the server closed the connection (restarted or stopped?)",
};

/** Why a PostgreSQL error happened, for people: SQLSTATE classes we can explain. */
function explain(code: string | undefined): string {
  if (code === undefined) return "";
  if (code === "28P01" || code === "28000") {
    return " Check the user and password of conn_str (or PGPASSWORD), and pg_hba.conf.";
  }
  if (code === "3D000") return " Create the database, or fix its name in conn_str.";
  if (code === "42501") {
    return ' The database user lacks a privilege: see "Privileges" in the README\'s ' +
      "PostgreSQL section.";
  }
  if (code === "57P01" || code === "57P02" || code === "57P03") {
    return " The server is shutting down or starting: retry when it is up.";
  }
  return "";
}

/**
 * The error a failed statement becomes: what failed, where (never the password), why, and
 * what it left behind. `BackendError`s pass through.
 */
export function pgFailure(
  error: unknown,
  where: string,
  call: PgCall,
  secret: string,
): Error {
  if (error instanceof BackendError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as DriverError;
  let reason: string;
  if (e.code && CONNECTION_CODES[e.code]) reason = CONNECTION_CODES[e.code];
  else if (e.severity && e.code) {
    reason = `${e.message ?? "error"} (SQLSTATE ${e.code})${explain(e.code)}`;
  } else reason = error instanceof Error ? error.message : String(error);
  let text = redactUrlsInText(reason).replace(/\.$/, "");
  if (secret.length > 0) text = text.split(secret).join("[redacted]");
  const outcome = call.outcome ? ` ${call.outcome}` : "";
  return new BackendError(
    `${where} failed while ${call.action}: ${printable(text)}.${outcome}`,
    { cause: scrubbed(error, secret) },
  );
}

/** The cause to keep: the driver's error without anything that could hold the password. */
function scrubbed(error: unknown, secret: string): Error {
  const e = (typeof error === "object" && error !== null ? error : {}) as DriverError;
  let message = redactUrlsInText(e.message ?? String(error));
  if (secret.length > 0) message = message.split(secret).join("[redacted]");
  const copy = new Error(message);
  copy.name = error instanceof Error ? error.name : "Error";
  if (e.code) Object.assign(copy, { code: e.code });
  return copy;
}

/** Whether a driver error means the connection is gone (the session and its locks too). */
export function isConnectionLoss(error: unknown): boolean {
  const code = (error as DriverError | null)?.code;
  return code !== undefined &&
    (CONNECTION_CODES[code] !== undefined || code === "57P01" || code === "57P02");
}
