/**
 * `doctor` and `bootstrap` on the PostgreSQL backend, against the run's real server: a fresh
 * database (every check passes, nothing is created, no lock is left), bootstrap and its
 * re-run, a wrong password, a closed port, TLS asked of a server without it, skip_* settings,
 * a user without the privileges to create or use the tables, a held workspace lock left
 * alone, and a skewed clock. The password never appears in any result.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bootstrap, doctor } from "../src/doctor.ts";
import type { PgBackendConfig } from "../src/config.ts";
import { createEmptyState } from "../src/state.ts";
import { DOCTOR_LOCK_KEY } from "../src/backends/_pg_doctor.ts";
import { PgBackend } from "../src/backends/pg.ts";
import { type PgFixture, pgTest, psql } from "./_pg_fixture.ts";
import { check, table } from "./_doctor_checks.ts";
import { freePort } from "./_servers.ts";
import { cliProject, parseJson } from "./_cli.ts";

const PG_CHECKS = [
  "pg.reachable",
  "pg.credentials",
  "pg.version",
  "pg.tables",
  "pg.gaib-tables",
  "pg.locks",
  "clock",
];

function config(fx: PgFixture, extra: Partial<PgBackendConfig> = {}): PgBackendConfig {
  return { type: "pg", conn_str: fx.connStr, ...extra };
}

/** Which of the backend's objects exist, and every advisory lock held in the database. */
async function serverSide(fx: PgFixture) {
  const [exists] = await fx.admin.unsafe(
    `SELECT to_regnamespace('terraform_remote_state') IS NOT NULL AS schema,
      to_regclass('terraform_remote_state.states') IS NOT NULL AS states,
      to_regclass('terraform_remote_state.gaib_state_locks') IS NOT NULL AS locks,
      to_regclass('terraform_remote_state.gaib_state_history') IS NOT NULL AS history`,
  );
  const locks = await fx.admin.unsafe(
    `SELECT ((classid::bigint << 32) | objid::bigint)::text AS key FROM pg_locks
     WHERE locktype = 'advisory' AND database =
       (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  return { exists: { ...exists }, locks: locks.map((l) => l.key) };
}

function assertNoPassword(fx: PgFixture, value: unknown): void {
  assert.ok(!JSON.stringify(value).includes(fx.password), "the password was shown");
}

pgTest(
  "doctor on a fresh database: every pg check ok, nothing created, no lock left",
  async (fx) => {
    const before = await serverSide(fx);
    const checks = await doctor(config(fx), { workspace: "default" });
    for (const name of PG_CHECKS) assert.equal(check(checks, name).status, "ok", table(checks));
    assert.match(check(checks, "pg.reachable").summary, /answers, sslmode=disable, TLS off/);
    assert.match(check(checks, "pg.version").summary, /^PostgreSQL \d+\.\d+/);
    assert.match(
      check(checks, "pg.tables").summary,
      /absent: the backend creates them on first use/,
    );
    assert.match(
      check(checks, "pg.locks").summary,
      new RegExp(`key ${DOCTOR_LOCK_KEY} granted, refused to a second session, released`),
    );
    assert.match(check(checks, "clock").summary, /PostgreSQL server's/);
    assert.deepEqual(await serverSide(fx), before);
    assert.deepEqual(before.exists, { schema: false, states: false, locks: false, history: false });
    assertNoPassword(fx, checks);
  },
);

pgTest(
  "bootstrap creates the schema and tables; a re-run changes nothing; the backend works",
  async (fx) => {
    const dry = await bootstrap(config(fx), { dryRun: true });
    assert.deepEqual(dry.steps.map((s) => s.action), Array(6).fill("would-create"));
    assert.equal((await serverSide(fx)).exists.schema, false, "the dry run created nothing");
    const first = await bootstrap(config(fx));
    assert.deepEqual(first.steps.map((s) => [s.resource, s.action]), [
      ['schema "terraform_remote_state"', "created"],
      ["sequence public.global_states_id_seq", "created"],
      ['table "terraform_remote_state"."states"', "created"],
      ['index "terraform_remote_state"."states_by_name"', "created"],
      ['table "terraform_remote_state"."gaib_state_locks"', "created"],
      ['table "terraform_remote_state"."gaib_state_history"', "created"],
    ]);
    assert.match(check(first.checks, "pg.tables").summary, / present$/);
    assert.equal(check(first.checks, "pg.gaib-tables").status, "ok");
    const again = await bootstrap(config(fx));
    assert.deepEqual(again.steps.map((s) => s.action), Array(6).fill("unchanged"));
    assert.deepEqual((await serverSide(fx)).locks, []);
    await fx.backend().setState("default", { ...createEmptyState(), serial: 1 });
    assertNoPassword(fx, [dry, first, again]);
  },
);

pgTest("a wrong password fails pg.credentials without showing either password", async (fx) => {
  const wrong = `wrong-${crypto.randomUUID()}`;
  const checks = await doctor(config(fx, { conn_str: fx.connStr.replace(fx.password, wrong) }));
  assert.equal(check(checks, "pg.reachable").status, "ok", table(checks));
  const credentials = check(checks, "pg.credentials");
  assert.equal(credentials.status, "fail");
  assert.match(credentials.summary, /password authentication failed .*SQLSTATE 28P01/);
  assert.match(credentials.fix!, /user and password of conn_str \(or PGPASSWORD\)/);
  for (const name of ["pg.version", "pg.tables", "pg.locks", "clock"]) {
    assert.equal(check(checks, name).status, "skipped");
  }
  assert.ok(!JSON.stringify(checks).includes(wrong));
  assertNoPassword(fx, checks);
  const steps = await bootstrap(config(fx, { conn_str: fx.connStr.replace(fx.password, wrong) }));
  assert.deepEqual(steps.steps.map((s) => s.action), ["failed"]);
  assert.equal((await serverSide(fx)).exists.schema, false);
});

pgTest("a closed port fails pg.reachable; TLS asked of a server without it says so", async (fx) => {
  const port = freePort();
  const closed = await doctor(config(fx, {
    conn_str: fx.connStr.replace(`:${fx.server.port}/`, `:${port}/`),
  }));
  const reachable = check(closed, "pg.reachable");
  assert.equal(reachable.status, "fail", table(closed));
  assert.match(reachable.summary, new RegExp(`127\\.0\\.0\\.1:${port}/.*connection was refused`));
  assert.match(reachable.fix!, /listens there/);
  assert.equal(check(closed, "pg.credentials").status, "skipped");
  const tls = await doctor(config(fx, {
    conn_str: fx.connStr.replace("sslmode=disable", "sslmode=require"),
  }));
  assert.equal(check(tls, "pg.reachable").status, "fail", table(tls));
  assert.match(check(tls, "pg.reachable").summary, /does not offer TLS/);
  assert.match(check(tls, "pg.reachable").fix!, /sslmode=require in conn_str/);
  assertNoPassword(fx, [closed, tls]);
});

pgTest(
  "skip_table_creation with no table fails pg.tables; bootstrap creates only what it may",
  async (fx) => {
    const skip = config(fx, { skip_table_creation: true });
    const checks = await doctor(skip);
    assert.equal(check(checks, "pg.tables").status, "fail", table(checks));
    assert.match(
      check(checks, "pg.tables").summary,
      /"terraform_remote_state"\."states" is absent and skip_table_creation is set/,
    );
    const report = await bootstrap(skip);
    const actions = Object.fromEntries(report.steps.map((s) => [s.resource, s.action]));
    assert.equal(actions['schema "terraform_remote_state"'], "created", JSON.stringify(report));
    assert.equal(actions['table "terraform_remote_state"."states"'], "failed");
    assert.match(
      report.steps.find((s) => s.action === "failed")!.message,
      /skip_table_creation is set/,
    );
  },
);

pgTest(
  "a user without privileges: doctor names what it lacks, and the GRANT for the tables",
  async (fx) => {
    const role = `${fx.name}_ro`;
    const password = `pw-${crypto.randomUUID()}`;
    await psql(fx.adminUrl, `CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    try {
      const limited = config(fx, {
        conn_str: fx.connStr.replace(`${fx.name}:${fx.password}@`, `${role}:${password}@`),
      });
      const bare = await doctor(limited);
      const tables = check(bare, "pg.tables");
      assert.equal(tables.status, "fail", table(bare));
      assert.match(
        tables.summary,
        /may not create them: it lacks CREATE on the database \(for the schema\)/,
      );
      // The owner creates the tables: the role cannot even look into the schema.
      await bootstrap(config(fx));
      const hidden = await doctor(limited);
      assert.equal(check(hidden, "pg.tables").status, "fail", table(hidden));
      assert.match(
        check(hidden, "pg.tables").fix!,
        new RegExp(
          `^as the owner, run: GRANT USAGE ON SCHEMA "terraform_remote_state" TO "${role}";$`,
        ),
      );
      await psql(fx.connStr, check(hidden, "pg.tables").fix!.replace(/^.*run: /, ""));
      // Then it sees the tables, and is told every GRANT the backend needs.
      const used = await doctor(limited);
      const gaib = check(used, "pg.gaib-tables");
      assert.equal(gaib.status, "fail", table(used));
      assert.match(
        gaib.summary,
        /DELETE, INSERT, SELECT, UPDATE on TABLE "terraform_remote_state"\."gaib_state_history"(;|$)/,
      );
      assert.match(
        gaib.summary,
        /USAGE on SEQUENCE terraform_remote_state\.gaib_state_history_id_seq/,
      );
      assert.match(
        check(used, "pg.tables").summary,
        /USAGE on SEQUENCE public\.global_states_id_seq/,
      );
      // The GRANTs printed, run as the owner, make both checks pass, and the backend work.
      await psql(fx.connStr, check(used, "pg.tables").fix!.replace(/^.*run: /, ""));
      await psql(fx.connStr, gaib.fix!.replace(/^.*run: /, ""));
      const granted = await doctor(limited);
      assert.equal(check(granted, "pg.tables").status, "ok", table(granted));
      assert.equal(check(granted, "pg.gaib-tables").status, "ok", table(granted));
      const backend = new PgBackend(limited);
      try {
        const first = { ...createEmptyState(), serial: 1 };
        await backend.setState("staging", first);
        await backend.setState("staging", { ...first, serial: 2 });
        assert.equal((await backend.listVersions("staging")).length, 2);
      } finally {
        await backend.close();
      }
      assert.ok(!JSON.stringify([bare, hidden, used, granted]).includes(password));
    } finally {
      await psql(fx.adminUrl, `DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => {});
    }
  },
);

pgTest("doctor leaves a held workspace lock alone; a held probe key skips pg.locks", async (fx) => {
  const backend = fx.backend();
  await backend.setState("default", { ...createEmptyState(), serial: 1 });
  const { lockId } = await backend.lock("default");
  const held = (await serverSide(fx)).locks.sort();
  const checks = await doctor(config(fx));
  assert.equal(check(checks, "pg.locks").status, "ok", table(checks));
  assert.deepEqual((await serverSide(fx)).locks.sort(), held);
  assert.equal((await backend.getLockInfo("default"))?.ID, lockId);
  // Another doctor holding the probe key: skipped, its lock untouched.
  await fx.admin.unsafe("SELECT pg_advisory_lock($1::bigint)", [String(DOCTOR_LOCK_KEY)]);
  const busy = check(await doctor(config(fx)), "pg.locks");
  assert.equal(busy.status, "skipped");
  assert.match(busy.summary, /held by another session/);
  const [still] = await fx.admin.unsafe(
    "SELECT pg_advisory_unlock($1::bigint) AS released",
    [String(DOCTOR_LOCK_KEY)],
  );
  assert.equal(still.released, true);
  await backend.unlock("default", lockId);
});

pgTest(
  "a clock a minute off the server's now() warns, as the server judges lock TTLs",
  async (fx) => {
    const checks = await doctor(config(fx), { clock: () => Date.now() + 60_000, leaseMs: 30_000 });
    const clock = check(checks, "clock");
    assert.equal(clock.status, "warn", table(checks));
    assert.match(clock.summary, /this clock is 6\d\.\d s ahead of the PostgreSQL server's/);
    assert.match(clock.fix!, /NTP/);
  },
);

pgTest(
  "gaib-state bootstrap and doctor through the CLI: idempotent, the password never printed",
  async (fx) => {
    await using project = await cliProject();
    await Deno.writeTextFile(
      `${project.path}/gaib.yaml`,
      `version: "1"\nbackend:\n  type: pg\n  conn_str: ${JSON.stringify(fx.connStr)}\n`,
    );
    const first = await project.run(["bootstrap", "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const doc = parseJson(first) as { steps: { action: string }[] };
    assert.deepEqual(doc.steps.map((s) => s.action), Array(6).fill("created"));
    const again = parseJson(await project.run(["bootstrap", "--json"])) as typeof doc;
    assert.deepEqual(again.steps.map((s) => s.action), Array(6).fill("unchanged"));
    const plain = await project.run(["doctor"]);
    assert.equal(plain.code, 0, plain.stdout);
    assert.match(plain.stdout, /^pg\.locks +ok +advisory lock/m);
    assertNoPassword(fx, [first, plain]);
  },
);
