/**
 * PgBackend: the `StateBackend` contract (tests/_backend_contract.ts), then what only the
 * PostgreSQL backend does: Terraform's and OpenTofu's tables and advisory locks, lock records
 * beside them, history, force-unlock of a live session, a server that stops or restarts, and
 * hostile names, against a real server.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BackendConfigError, BackendError, StateLockError } from "../src/errors.ts";
import { createEmptyState, serializeState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { PgBackend } from "../src/backends/pg.ts";
import { BackendFactory } from "../src/factory.ts";
import { opentofuCreationKey } from "../src/backends/_pg_sql.ts";
import { backendContract, type ContractStore } from "./_backend_contract.ts";
import { serverTest } from "./_server_env.ts";
import {
  holdTerraformLock,
  pgFingerprint,
  pgFixture,
  pgTest,
  plantTerraformRow,
  psql,
  TERRAFORM_DDL,
  TERRAFORM_LOCK,
  TERRAFORM_PUT,
} from "./_pg_fixture.ts";
import { startPgServer } from "./_pg_server.ts";
import { serversDisabled } from "./_server_env.ts";

backendContract("PgBackend", {
  test(name, _needs, fn) {
    serverTest(name, { pg: true }, (t) => fn(t));
  },
  async create(): Promise<ContractStore> {
    const fx = await pgFixture(
      JSON.parse(Deno.env.get("GAIB_TEST_PG")!),
    );
    return {
      open: () => fx.backend(),
      async plant(workspace, bytes) {
        await plantTerraformRow(fx, workspace, bytes);
      },
      fingerprint: () => pgFingerprint(fx),
      [Symbol.asyncDispose]: () => fx[Symbol.asyncDispose](),
    };
  },
});

function state(serial: number, lineage = "7c9d5e2a-1b3f-4a6e-8d0c-2f4b6a8c0e1d"): GaibState {
  return { ...createEmptyState(), lineage, serial };
}

// --- Terraform's and OpenTofu's layout -----------------------------------------------------------

pgTest("PgBackend creates Terraform's schema, sequence, table and unique index", async (fx) => {
  const backend = fx.backend();
  await backend.setState("default", state(1));
  const columns = await fx.admin.unsafe(
    `SELECT column_name, data_type, is_nullable, column_default
     FROM information_schema.columns
     WHERE table_schema = 'terraform_remote_state' AND table_name = 'states'
     ORDER BY ordinal_position`,
  );
  assert.deepEqual(
    columns.map((c) => [c.column_name, c.data_type, c.is_nullable]),
    [["id", "bigint", "NO"], ["name", "text", "YES"], ["data", "text", "YES"]],
  );
  assert.match(columns[0].column_default, /nextval\('global_states_id_seq'::regclass\)/);
  const index = await fx.admin.unsafe(
    `SELECT indexdef FROM pg_indexes WHERE schemaname = 'terraform_remote_state'
     AND indexname = 'states_by_name'`,
  );
  assert.match(index[0].indexdef, /CREATE UNIQUE INDEX states_by_name .* \(name\)/);
  const rows = await fx.admin.unsafe("SELECT name, data FROM terraform_remote_state.states");
  assert.deepEqual(rows.map((r) => r.name), ["default"]);
  assert.equal(rows[0].data, serializeState(state(1)));
});

pgTest("a row Terraform wrote (its exact statements, through psql) reads back", async (fx) => {
  for (const statement of TERRAFORM_DDL) await psql(fx.connStr, statement);
  const text = serializeState({ ...state(3), outputs: { n: { value: "x", type: "string" } } });
  await psql(
    fx.connStr,
    `INSERT INTO "terraform_remote_state".states (name, data) VALUES ('staging', ` +
      `'${text.replaceAll("'", "''")}') ON CONFLICT (name) DO UPDATE SET data = ` +
      `'${text.replaceAll("'", "''")}' WHERE states.name = 'staging'`,
  );
  const backend = fx.backend();
  assert.deepEqual(await backend.listWorkspaces(), ["default", "staging"]);
  const read = await backend.getState("staging");
  assert.equal(read?.serial, 3);
  assert.equal(read?.outputs?.n?.value, "x");
  // And what gaib-state writes is the row Terraform reads (client.go:27-46).
  await backend.setState("staging", { ...read!, serial: 4 });
  const data = await psql(
    fx.adminUrl,
    `SELECT data FROM "terraform_remote_state".states WHERE name = 'staging'`,
  );
  assert.equal(JSON.parse(data).serial, 4);
});

pgTest("a lock Terraform holds (pg_try_advisory_lock in psql) blocks gaib-state", async (fx) => {
  const backend = fx.backend();
  await backend.setState("default", state(1));
  const holder = await holdTerraformLock(fx, "default");
  await assert.rejects(fx.backend().lock("default"), (e: unknown) => {
    assert.ok(e instanceof StateLockError, String(e));
    assert.match(e.message, /without a gaib-state lock record: Terraform or OpenTofu/);
    assert.match(e.lockInfo!.ID, /^pg-session-\d+$/);
    return true;
  });
  const info = await backend.getLockInfo("default");
  assert.match(info?.ID ?? "", /^pg-session-\d+$/);
  // An unlocked write is refused while Terraform holds the lock.
  await assert.rejects(backend.setState("default", state(2)), StateLockError);
  // force-unlock with the session's ID ends that session (same role here: allowed).
  await backend.forceUnlock("default", info!.ID);
  await holder.ended();
  const { lockId } = await backend.lock("default");
  await backend.unlock("default", lockId);
});

pgTest("a lock gaib-state holds makes Terraform's and OpenTofu's lock queries fail", async (fx) => {
  const backend = fx.backend();
  await backend.setState("default", state(1));
  const { lockId } = await backend.lock("default");
  const tofuKey = opentofuCreationKey("terraform_remote_state", "states");
  const terraform = await psql(fx.adminUrl, TERRAFORM_LOCK.replace("$1", "'default'"));
  // Terraform's query: the row lock fails (client.go:117-120).
  assert.match(terraform, /^\d+\|f\|t$/);
  const tofu = await psql(
    fx.adminUrl,
    `SELECT pg_try_advisory_lock(states.id), pg_try_advisory_lock(${tofuKey}) FROM ` +
      `"terraform_remote_state"."states" WHERE states.name = 'default'`,
  );
  assert.match(tofu, /^f\|t$/);
  await backend.unlock("default", lockId);
  // A workspace without a row: gaib-state holds both creation keys, as each tool takes one.
  const fresh = await backend.lock("new-one");
  assert.equal(
    await psql(fx.adminUrl, `SELECT pg_try_advisory_lock(-1), pg_try_advisory_lock(${tofuKey})`),
    "f|f",
  );
  await backend.unlock("new-one", fresh.lockId);
  assert.equal(
    await psql(fx.adminUrl, `SELECT pg_try_advisory_lock(-1), pg_try_advisory_lock(${tofuKey})`),
    "t|t",
  );
});

pgTest("OpenTofu's creation key is FNV-1 of schema NUL table, negated", () => {
  // Go: fnv.New32 over "terraform_remote_state\x00states" (OpenTofu client.go:155-159).
  let h = 2166136261;
  for (const b of new TextEncoder().encode("terraform_remote_state\0states")) {
    h = Number((BigInt(h) * 16777619n) % 4294967296n) ^ b;
    h >>>= 0;
  }
  assert.equal(opentofuCreationKey("terraform_remote_state", "states"), -BigInt(h));
  return Promise.resolve();
});

// --- Locks ---------------------------------------------------------------------------------

pgTest("a holder killed with SIGKILL frees its lock at once", async (fx) => {
  const backend = fx.backend();
  await backend.setState("default", state(1));
  const script = `
    import { PgBackend } from "${new URL("../src/backends/pg.ts", import.meta.url).href}";
    const b = new PgBackend({ type: "pg", conn_str: Deno.args[0] });
    const { lockId } = await b.lock("default", { who: "doomed" });
    console.log(lockId);
    await new Promise(() => {});
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script, fx.connStr],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  const lockId = value!.trim();
  assert.equal((await backend.getLockInfo("default"))?.ID, lockId);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel().catch(() => {});
  // The server notices the closed connection; the next lock takes over the stale record.
  let taken: string | undefined;
  for (let i = 0; i < 100 && taken === undefined; i++) {
    const info = await backend.getLockInfo("default");
    if (info === null) taken = (await backend.lock("default")).lockId;
    else await new Promise((r) => setTimeout(r, 20)); // the server reaps the backend
  }
  assert.ok(taken, "the lock was taken after its holder died");
  assert.notEqual(taken, lockId);
});

pgTest(
  "lock conflicts name the holder, and forceUnlock ends a live holder's session",
  async (fx) => {
    const holder = fx.backend();
    const other = fx.backend();
    await holder.setState("default", state(1));
    const { lockId } = await holder.lock("default", { who: "alice@ci", operation: "apply" });
    await assert.rejects(other.lock("default"), (e: unknown) => {
      assert.ok(e instanceof StateLockError);
      assert.match(e.message, /held by alice@ci \(apply, since/);
      assert.match(e.message, /database session \(pid \d+\)/);
      return true;
    });
    const pid = Number(
      await psql(
        fx.adminUrl,
        "SELECT pid FROM terraform_remote_state.gaib_state_locks WHERE workspace = 'default'",
      ),
    );
    await other.forceUnlock("default", lockId);
    assert.equal(
      await psql(fx.adminUrl, `SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`),
      "0",
      "the holder's session was ended",
    );
    await assert.rejects(holder.setState("default", state(2), { lockId }), StateLockError);
    const again = await other.lock("default");
    await other.unlock("default", again.lockId);
  },
);

pgTest("forceUnlock without the right to end the holder's session says why", async (fx) => {
  const holder = fx.backend();
  await holder.setState("default", state(1));
  const { lockId } = await holder.lock("default", { who: "alice@ci" });
  // Another role that may use the tables but is not the holder's role, nor in
  // pg_signal_backend: it cannot end the holder's session.
  const other = `${fx.name}_b`;
  await psql(
    fx.adminUrl,
    `CREATE ROLE ${other} LOGIN PASSWORD 'other-pw'; ` +
      `GRANT USAGE ON SCHEMA terraform_remote_state TO ${other}; ` +
      `GRANT ALL ON ALL TABLES IN SCHEMA terraform_remote_state TO ${other}; ` +
      `GRANT ALL ON ALL SEQUENCES IN SCHEMA terraform_remote_state, public TO ${other}`,
  );
  try {
    const intruder = fx.backend({
      conn_str: `postgres://${other}:other-pw@127.0.0.1:${fx.server.port}/${fx.name}` +
        "?sslmode=disable",
    });
    const before = await pgFingerprint(fx);
    await assert.rejects(intruder.forceUnlock("default", lockId), (e: unknown) => {
      assert.ok(e instanceof StateLockError, String(e));
      assert.match(e.message, /could not be ended/);
      assert.match(e.message, /SELECT pg_terminate_backend\(\d+\)/);
      assert.match(e.message, /pg_signal_backend/);
      assert.equal(e.lockInfo?.Who, "alice@ci");
      return true;
    });
    assert.deepEqual(await pgFingerprint(fx), before, "nothing changed");
    assert.equal((await holder.getLockInfo("default"))?.ID, lockId);
    await intruder.close();
  } finally {
    await psql(fx.adminUrl, `DROP OWNED BY ${other}`).catch(() => {});
    await psql(fx.server.endpoint, `DROP ROLE ${other}`).catch(() => {});
  }
});

pgTest("20 concurrent lockers of an existing workspace: exactly one wins", async (fx) => {
  await fx.backend().setState("default", state(1));
  const lockers = Array.from({ length: 20 }, () => fx.backend());
  const results = await Promise.allSettled(lockers.map((b) => b.lock("default")));
  const winners = results.filter((r) => r.status === "fulfilled");
  assert.equal(winners.length, 1);
});

pgTest(
  "detached locks: without ttlMs they hold; with ttlMs the server's clock ends them",
  async (fx) => {
    const first = fx.backend();
    const held = await first.lock("ci", { detached: true });
    await first.close();
    // The detached lock keeps no session: the advisory keys are free, the record blocks.
    assert.equal(
      await psql(fx.adminUrl, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
      "0",
    );
    await assert.rejects(fx.backend().lock("ci"), /detached lock without TTL/);
    await fx.backend().unlock("ci", held.lockId);
    const short = await fx.backend().lock("ci", { detached: true, ttlMs: 1 });
    const next = await fx.backend().lock("ci", { timeoutMs: 5000 });
    assert.notEqual(next.lockId, short.lockId);
  },
);

pgTest("a workspace with a SQL-looking name is stored literally or refused", async (fx) => {
  const backend = fx.backend();
  const hostile = [
    "x'; DROP TABLE states; --",
    'a"b',
    "a;b",
    "x');DELETE--",
    "drop.table_states--x",
    "$1",
    "default'--",
  ];
  const stored: string[] = [];
  for (const name of hostile) {
    const outcome = await backend.setState(name, state(1)).then(() => "stored", (e) => e);
    if (outcome === "stored") stored.push(name);
    else assert.ok(outcome instanceof BackendConfigError, String(outcome));
  }
  assert.ok(stored.length >= 2, `some names are valid workspace names: ${stored}`);
  const rows = await fx.admin.unsafe(
    "SELECT name FROM terraform_remote_state.states ORDER BY name",
  );
  assert.deepEqual(rows.map((r) => r.name), [...stored].sort(), "each stored literally");
  assert.deepEqual(await backend.listWorkspaces(), ["default", ...stored].sort());
  for (const name of stored) assert.equal((await backend.getState(name))?.serial, 1);
});

// --- History ---------------------------------------------------------------------------------

pgTest("listVersions keeps the last N versions; getStateVersion reads one back", async (fx) => {
  const backend = fx.backend({}, { historyLimit: 3 });
  for (let serial = 1; serial <= 5; serial++) await backend.setState("default", state(serial));
  const versions = await backend.listVersions("default");
  assert.deepEqual(versions.map((v) => [v.serial, v.current]), [[5, true], [4, false], [3, false]]);
  assert.equal((await backend.getStateVersion("default", versions[1].versionId)).serial, 4);
  assert.deepEqual((await backend.listVersions("default", { limit: 1 })).length, 1);
  await assert.rejects(backend.getStateVersion("default", "999999"), (e: unknown) => {
    assert.ok(e instanceof BackendError);
    assert.match(e.message, /has no state version "999999"/);
    return true;
  });
  // A write by Terraform shows as the current version.
  await fx.admin.unsafe(TERRAFORM_PUT, ["default", serializeState(state(9))]);
  const after = await backend.listVersions("default");
  assert.deepEqual([after[0].versionId, after[0].serial, after[0].current], ["current", 9, true]);
  assert.equal((await backend.getStateVersion("default", "current")).serial, 9);
});

// --- Configuration and secrets -------------------------------------------------------------

pgTest("a wrong password fails with a clear error that never shows it", async (fx) => {
  const wrong = "Wr0ng-Secret-Canary";
  const backend = new PgBackend({
    type: "pg",
    conn_str: `postgres://${fx.name}:${wrong}@127.0.0.1:${fx.server.port}/${fx.name}` +
      "?sslmode=disable",
  });
  const error = await backend.getState("default").then(() => null, (e) => e);
  await backend.close();
  assert.ok(error instanceof BackendError, String(error));
  assert.match(error.message, /password authentication failed/);
  assert.match(error.message, /28P01/);
  const everything = `${error.message}\n${error.stack}\n${String(error.cause)}\n${
    (error.cause as Error)?.stack
  }`;
  assert.ok(!everything.includes(wrong), "the password leaked");
  assert.ok(!everything.includes(fx.password), "the right password leaked");
});

pgTest(
  "conn_str_file gives the URL; skip_table_creation without tables says what to create",
  async (fx) => {
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, fx.connStr + "\n");
      const fromFile = fx.backend({ conn_str: undefined, conn_str_file: file });
      assert.deepEqual(await fromFile.listWorkspaces(), ["default"]);
      const skip = fx.backend({ schema_name: "other", skip_table_creation: true });
      await assert.rejects(skip.listWorkspaces(), (e: unknown) => {
        assert.ok(e instanceof BackendConfigError, String(e));
        assert.match(e.message, /table "other"."states" \(skip_table_creation is set\)/);
        return true;
      });
    } finally {
      await Deno.remove(file);
    }
  },
);

Deno.test("PgBackend refuses a config without conn_str, or with an unsupported sslmode", () => {
  assert.throws(
    () => new PgBackend({ type: "pg" }),
    (e: unknown) => e instanceof BackendConfigError && /conn_str is required/.test(e.message),
  );
  const secret = "S3cret-In-Url";
  assert.throws(
    () => new PgBackend({ type: "pg", conn_str: `postgres://u:${secret}@h/db?sslmode=prefer` }),
    (e: unknown) =>
      e instanceof BackendConfigError && /sslmode/.test(e.message) &&
      !e.message.includes(secret),
  );
  assert.throws(
    () => new PgBackend({ type: "pg", conn_str: `mysql://u:${secret}@h/db` }),
    (e: unknown) => e instanceof BackendConfigError && !e.message.includes(secret),
  );
});

// --- A server that stops or restarts -------------------------------------------------------

serverTest(
  "PgBackend: a server stopped and restarted mid-operation gives a clear error, state whole",
  { pg: true },
  async () => {
    if (serversDisabled() && Deno.env.get("CI") !== "true") {
      // A private server is started even so: the shared one must not be disturbed.
    }
    await using server = await startPgServer();
    await using fx = await pgFixture(server.info);
    const backend = fx.backend();
    const big: GaibState = {
      ...state(1),
      outputs: { blob: { value: "x".repeat(2_000_000), type: "string" } },
    };
    await backend.setState("default", big);
    const { lockId } = await backend.lock("default");
    await server.restart();
    // The session (and its lock) died with the server: a clear error or a refused write,
    // never a half-written state.
    const error = await backend.setState("default", { ...big, serial: 2 }, { lockId }).then(
      () => null,
      (e) => e,
    );
    assert.ok(error instanceof BackendError, `refused: ${error}`);
    assert.ok(!String(error.message).includes(fx.password));
    const after = await fx.backend().getState("default");
    assert.equal(after?.serial, 1);
    assert.equal(serializeState(after!), serializeState(big));
    await server.stop();
    const down = await fx.backend().getState("default").then(() => null, (e) => e);
    assert.ok(down instanceof BackendError);
    assert.match(down.message, /connection was refused|closed the connection/);
    assert.match(down.message, /PostgreSQL 127\.0\.0\.1:\d+\//);
  },
);

serverTest(
  "PgBackend speaks TLS: sslmode=require, and verify-full against the CA file (a wrong CA is refused)",
  { pg: true },
  async () => {
    await using server = await startPgServer({ tls: true });
    await using fx = await pgFixture(server.info);
    const url = (query: string) => fx.connStr.replace("sslmode=disable", query);
    const required = fx.backend({ conn_str: url("sslmode=require") });
    await required.setState("default", state(1));
    const ssl = await fx.admin.unsafe(
      "SELECT count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) " +
        "WHERE s.ssl AND a.application_name = 'gaib-state'",
    );
    assert.equal(ssl[0].n, 1, "the backend's connection uses TLS");
    const verified = fx.backend({
      conn_str: url(`sslmode=verify-full&sslrootcert=${server.info.caFile}`),
    });
    assert.equal((await verified.getState("default"))?.serial, 1);
    // Another CA: the server's certificate is refused, nothing is sent.
    const otherCa = await Deno.makeTempFile({ suffix: ".crt" });
    try {
      const gen = await new Deno.Command("openssl", {
        args: [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=x",
          "-keyout",
          `${otherCa}.key`,
          "-out",
          otherCa,
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      assert.ok(gen.success);
      const wrong = fx.backend({ conn_str: url(`sslmode=verify-full&sslrootcert=${otherCa}`) });
      const error = await wrong.getState("default").then(() => null, (e) => e);
      assert.ok(error instanceof BackendError, String(error));
      assert.ok(!error.message.includes(fx.password));
    } finally {
      await Deno.remove(otherCa).catch(() => {});
      await Deno.remove(`${otherCa}.key`).catch(() => {});
    }
  },
);

Deno.test("BackendFactory reads Terraform's PG_* variables below GAIB_PG_*, and builds a PgBackend", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const env = (vars: Record<string, string>) => ({ get: (name: string) => vars[name] });
    const url = "postgres://u:secret-pw@127.0.0.1:9/db?sslmode=disable";
    const resolved = await BackendFactory.resolve({
      cwd,
      env: env({
        GAIB_BACKEND: "pg",
        PG_CONN_STR: url,
        PG_SCHEMA_NAME: "from_terraform_var",
        GAIB_PG_TABLE_NAME: "mine",
        PG_TABLE_NAME: "ignored",
        PG_SKIP_INDEX_CREATION: "true",
      }),
    });
    assert.deepEqual(resolved.config, {
      type: "pg",
      conn_str: url,
      schema_name: "from_terraform_var",
      table_name: "mine",
      skip_index_creation: true,
    });
    const backend = await BackendFactory.create(resolved.config);
    assert.ok(backend instanceof PgBackend);
    await backend.close();
    // conn_str_file wins over PG_CONN_STR (a fallback stands back), relative to the cwd.
    const fromFile = await BackendFactory.resolve({
      cwd,
      env: env({ GAIB_BACKEND: "pg", GAIB_PG_CONN_STR_FILE: "url.txt", PG_CONN_STR: url }),
    });
    assert.deepEqual(fromFile.config, { type: "pg", conn_str_file: `${cwd}/url.txt` });
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
