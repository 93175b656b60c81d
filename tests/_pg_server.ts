/**
 * A real PostgreSQL server for the tests (Debian's `postgresql`, see
 * ../shared/test-servers/README.md): `initdb` into a temporary directory and `pg_ctl start` on a
 * free 127.0.0.1 port, as the unprivileged user `postgres` when the tests run as root (the
 * server refuses to run as root). `tests/run.ts` starts one per run and describes it in
 * `GAIB_TEST_PG`; fault tests start a private one (`startPgServer`) that they may stop,
 * restart or freeze.
 *
 * Authentication is real: `postgres` (the admin) is trusted from 127.0.0.1, every other role
 * needs its password (scram-sha-256), so a wrong password fails as it would in production.
 *
 * @module
 */

import { freePort, type TestServer } from "./_servers.ts";

/** The variable `tests/run.ts` describes the shared PostgreSQL server in (JSON). */
export const PG_ENV = "GAIB_TEST_PG";
/** Why the shared PostgreSQL server is missing, when it failed to start. */
export const PG_UNAVAILABLE_ENV = "GAIB_TEST_PG_UNAVAILABLE";

/** Where a test PostgreSQL server is. */
export interface PgServerInfo {
  /** Always `"postgresql"`. */
  kind: "postgresql";
  /** `postgres://postgres@127.0.0.1:PORT/postgres`: the trusted admin, for setting up. */
  endpoint: string;
  /** The port on 127.0.0.1. */
  port: number;
  /** The server's major version. */
  version: string;
  /** The data directory's parent (to find the CA of a TLS server). */
  dir: string;
  /** With TLS: the CA file that signed the server's certificate (for 127.0.0.1). */
  caFile?: string;
}

/** Options of {@linkcode startPgServer}. */
export interface StartPgOptions {
  /**
   * Serve TLS too, with a certificate for 127.0.0.1 signed by a fresh CA (`info.caFile`).
   * @default {false}
   */
  tls?: boolean;
  /** Aborts the start. @default {undefined} */
  signal?: AbortSignal;
}

/** The directory of the newest installed server binaries, or `undefined`. */
export function pgBinDir(): string | undefined {
  const found: string[] = [];
  try {
    for (const entry of Deno.readDirSync("/usr/lib/postgresql")) {
      if (/^\d+$/.test(entry.name)) found.push(entry.name);
    }
  } catch {
    return undefined;
  }
  found.sort((a, b) => Number(b) - Number(a));
  for (const version of found) {
    const bin = `/usr/lib/postgresql/${version}/bin`;
    try {
      Deno.statSync(`${bin}/initdb`);
      return bin;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const IS_ROOT = (() => {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
})();

/** Runs a server binary as the unprivileged user (`postgres` when we are root). */
async function runAsServer(
  command: string,
  args: string[],
  what: string,
): Promise<string> {
  const [cmd, argv] = IS_ROOT
    ? ["runuser", ["-u", "postgres", "--", command, ...args]]
    : [command, args];
  const out = await new Deno.Command(cmd, { args: argv, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${what} failed (exit ${out.code}): ${text.trim()}`);
  return text;
}

/**
 * Runs SQL through `psql` (the real client Terraform users have) against `url`.
 *
 * @returns what psql printed (unaligned, tuples only)
 */
export async function psql(url: string, sql: string): Promise<string> {
  const bin = pgBinDir();
  const command = bin ? `${bin}/psql` : "psql";
  const out = await new Deno.Command(command, {
    args: [url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
    stdout: "piped",
    stderr: "piped",
    env: { PGCONNECT_TIMEOUT: "10" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`psql failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text.trim();
}

async function makeTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ssl = (args: string[]) =>
    new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output().then((o) => {
      if (!o.success) throw new Error(new TextDecoder().decode(o.stderr));
    });
  const ca = `${dir}/ca.crt`;
  const caKey = `${dir}/ca.key`;
  const key = `${dir}/server.key`;
  const csr = `${dir}/server.csr`;
  const cert = `${dir}/server.crt`;
  await ssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=gaib-test-ca",
    "-keyout",
    caKey,
    "-out",
    ca,
  ]);
  await ssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    key,
    "-out",
    csr,
  ]);
  await Deno.writeTextFile(`${dir}/san.ext`, "subjectAltName=IP:127.0.0.1\n");
  await ssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${dir}/san.ext`,
    "-out",
    cert,
  ]);
  return { ca, cert, key };
}

/**
 * Starts a private PostgreSQL server on a free 127.0.0.1 port.
 *
 * @throws {Error} when the binaries are missing or the server does not start
 */
export async function startPgServer(
  options: StartPgOptions = {},
): Promise<TestServer<PgServerInfo>> {
  const bin = pgBinDir();
  if (!bin) {
    throw new Error(
      "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install -y " +
        "postgresql (or run .ci/run)",
    );
  }
  const version = bin.split("/").at(-2)!;
  // Not under the run's root directory: the server's user must be able to reach it.
  const dir = await Deno.makeTempDir({ prefix: "gaib-pg-" });
  await Deno.chmod(dir, 0o755);
  const data = `${dir}/data`;
  const run = `${dir}/run`;
  await Deno.mkdir(data);
  await Deno.mkdir(run);
  if (IS_ROOT) {
    await new Deno.Command("chown", { args: ["-R", "postgres:", data, run] }).output();
  }
  const started = performance.now();
  await runAsServer(`${bin}/initdb`, [
    "-D",
    data,
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--no-sync",
  ], "initdb");
  await Deno.writeTextFile(
    `${data}/pg_hba.conf`,
    "local all all trust\nhost all postgres 127.0.0.1/32 trust\n" +
      "host all all 127.0.0.1/32 scram-sha-256\n",
  );
  let tls: { ca: string; cert: string; key: string } | undefined;
  const settings = [
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${run}`,
    "-c fsync=off",
    "-c max_connections=200",
  ];
  if (options.tls) {
    tls = await makeTls(dir);
    for (const file of [tls.cert, tls.key]) {
      if (IS_ROOT) await new Deno.Command("chown", { args: ["postgres:", file] }).output();
      await Deno.chmod(file, 0o600);
    }
    settings.push("-c ssl=on", `-c ssl_cert_file=${tls.cert}`, `-c ssl_key_file=${tls.key}`);
  }
  let port = freePort();
  const log = `${run}/pg.log`;
  const start = async () => {
    await runAsServer(`${bin}/pg_ctl`, [
      "-D",
      data,
      "-l",
      log,
      "-w",
      "-t",
      "60",
      "-o",
      `-p ${port} ${settings.join(" ")}`,
      "start",
    ], "pg_ctl start");
  };
  const stopServer = async (mode: "fast" | "immediate") => {
    await runAsServer(`${bin}/pg_ctl`, ["-D", data, "-m", mode, "-w", "stop"], "pg_ctl stop")
      .catch(() => {});
  };
  try {
    await start();
  } catch {
    port = freePort([port]); // taken meanwhile: once more on another port
    await start();
  }
  if (options.signal?.aborted) {
    await stopServer("immediate");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    options.signal.throwIfAborted();
  }
  const startMs = performance.now() - started;
  const info: PgServerInfo = {
    kind: "postgresql",
    endpoint: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    version,
    dir,
    ...(tls ? { caFile: tls.ca } : {}),
  };
  const pid = () => Number(Deno.readTextFileSync(`${data}/postmaster.pid`).split("\n")[0]);
  let stopped = false;
  const server: TestServer<PgServerInfo> = {
    info,
    startMs,
    probeMs: 0,
    dir,
    notes: [],
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer("immediate");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    async restart() {
      await stopServer("fast");
      await start();
    },
    pause() {
      Deno.kill(pid(), "SIGSTOP");
    },
    resume() {
      Deno.kill(pid(), "SIGCONT");
    },
    async logTail(lines = 20) {
      try {
        return (await Deno.readTextFile(log)).split("\n").slice(-lines).join("\n");
      } catch {
        return "";
      }
    },
    [Symbol.asyncDispose]() {
      return this.stop();
    },
  };
  return server;
}

/** The shared PostgreSQL server of this run, from `GAIB_TEST_PG`. */
export function pgServer(): PgServerInfo | undefined {
  const raw = Deno.env.get(PG_ENV);
  if (!raw) return undefined;
  const value = JSON.parse(raw) as PgServerInfo;
  if (typeof value.endpoint !== "string" || typeof value.port !== "number") {
    throw new Error(`${PG_ENV} lacks "endpoint" or "port": ${raw}`);
  }
  return value;
}

let counter = 0;

/** A fresh database and role of its own; `await using` drops both. */
export interface TempDatabase extends AsyncDisposable {
  /** The database (and role) name. */
  readonly name: string;
  /** The role's password. */
  readonly password: string;
  /** `postgres://ROLE:PASSWORD@127.0.0.1:PORT/DB?sslmode=disable` */
  readonly connStr: string;
  /** The admin URL of the same database (trusted `postgres`), for psql. */
  readonly adminUrl: string;
}

/**
 * Creates a database owned by a new role with a password, on `server`.
 *
 * @param server the shared server (`pgServer()`) or a private one's `info`
 */
export async function tempDatabase(server: PgServerInfo): Promise<TempDatabase> {
  const name = `gaib_${Date.now().toString(36)}_${Deno.pid}_${counter++}`;
  const password = `pw-${crypto.randomUUID()}`;
  await psql(
    server.endpoint,
    `CREATE ROLE ${name} LOGIN PASSWORD '${password}'; CREATE DATABASE ${name} OWNER ${name}`,
  ).catch(async () => {
    // CREATE DATABASE cannot run in the same transaction: one at a time.
    await psql(server.endpoint, `CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
    await psql(server.endpoint, `CREATE DATABASE ${name} OWNER ${name}`);
  });
  const base = `127.0.0.1:${server.port}/${name}`;
  return {
    name,
    password,
    connStr: `postgres://${name}:${password}@${base}?sslmode=disable`,
    adminUrl: `postgres://postgres@${base}`,
    async [Symbol.asyncDispose]() {
      await psql(server.endpoint, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await psql(server.endpoint, `DROP ROLE IF EXISTS ${name}`).catch(() => {});
    },
  };
}
