/**
 * Reliability of the PostgreSQL backend with real processes against the run's server:
 *
 * - crash: a lock holder killed with SIGKILL at random instants while it reads and writes
 *   leaves a row that is exactly one complete version, and its lock is free at once (the
 *   server ends the session, and with it the advisory lock): the next client takes it
 *   without waiting for any lease;
 * - contention: K x M locked read-increment-write cycles lose no update; unlocked writers
 *   racing each other land or are refused with `StateSerialError`, never silently lost;
 * - hostile input: lock records and rows someone else planted (escape sequences, damaged
 *   JSON, huge fields, SQL in names) are shown escaped and never obeyed;
 * - secret canaries: a password in `conn_str` never appears in an error, a log line or the
 *   CLI's output, whatever fails.
 *
 * Sizes: `GAIB_RELIABILITY=full` kills 25 holders and runs K=8 x M=25; the quick run 4 and
 * K=4 x M=10.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type PgBackendConfig, StateLockError } from "../mod.ts";
import { PgBackend } from "../src/backends/pg.ts";
import { lockedContention, unlockedRace } from "./reliability/_contention.ts";
import { template, versionText } from "./reliability/_states.ts";
import { Script, sizes } from "./reliability/_util.ts";
import { type PgFixture, pgTest } from "./_pg_fixture.ts";
import { cliProject } from "./_cli.ts";

const WRITER = new URL("./reliability/_pg_writer.ts", import.meta.url).pathname;
const SIZES = sizes();
const { processes: K, cycles: M } = SIZES.contention;
const { processes: RK, attempts: RM } = SIZES.race;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function configOf(fx: PgFixture): PgBackendConfig {
  return { type: "pg", conn_str: fx.connStr };
}

pgTest(
  `PgBackend survives ${SIZES.s3Kills} SIGKILLs of a lock holder: the row is a complete ` +
    "version and the lock is free at once",
  async (fx) => {
    const config = configOf(fx);
    const workspace = "default";
    const base = await template("small");
    const args = (iterations?: number) => [JSON.stringify({ config, workspace, iterations })];
    const observer = new PgBackend(config);
    try {
      const calibration = new Script(WRITER, args(2));
      await calibration.until((line) => line === "ready");
      const started = performance.now();
      const calibrated = await calibration.finished;
      assert.equal(calibrated.status.code, 0, calibrated.stderr);
      const cycleMs = (performance.now() - started) / 2;
      let survived = 2;
      let locksLeft = 0;
      for (let k = 0; k < SIZES.s3Kills; k++) {
        const writer = new Script(WRITER, args());
        await writer.until((line) => line === "ready");
        if (k % 2 === 0) await sleep(Math.random() * cycleMs * 2.5);
        else {
          await writer.until((line) => line.startsWith("write "));
          await sleep(Math.random() * cycleMs * 0.5);
        }
        const { status, stderr } = await writer.kill();
        assert.equal(
          status.signal,
          "SIGKILL",
          `kill ${k}: the writer stopped by itself:\n${stderr}`,
        );
        let lastWrite = survived;
        let lastDone = survived;
        let lockedBy: string | undefined;
        for (const line of writer.lines) {
          const [word, value] = line.split(" ");
          if (word === "locked") lockedBy = value;
          if (word === "unlocked") lockedBy = undefined;
          if (word === "write") lastWrite = Number(value);
          if (word === "done") lastDone = Number(value);
        }
        if (lockedBy) locksLeft++;
        // Free at once: the server drops a dead session's advisory locks when it sees the
        // connection close, which it does when the process dies; the lock is taken as soon
        // as the server has reaped the session (no lease to wait out).
        const { lockId } = await observer.lock(workspace, { timeoutMs: 10_000 });
        await observer.unlock(workspace, lockId);
        const rows = await fx.admin.unsafe(
          "SELECT data FROM terraform_remote_state.states WHERE name = 'default'",
        );
        const text = rows[0].data as string;
        const serial = Number(/"serial": (\d+)/.exec(text)?.[1]);
        assert.ok(
          serial >= lastDone && serial <= lastWrite,
          `kill ${k}: serial ${serial}, expected ${lastDone}..${lastWrite}`,
        );
        assert.equal(
          text,
          versionText(base, serial),
          `kill ${k}: the row is not version ${serial}`,
        );
        survived = serial;
      }
      const last = new Script(WRITER, args(2));
      const finished = await last.finished;
      assert.equal(finished.status.code, 0, finished.stderr);
      assert.equal((await observer.getState(workspace))?.serial, survived + 2);
      console.log(
        `crash pg: ${SIZES.s3Kills} kills survived; ${locksLeft} killed while holding the ` +
          "lock, each taken by the next client at once",
      );
    } finally {
      await observer.close();
    }
  },
);

pgTest(
  `PgBackend loses no update when ${K} processes run ${M} locked read-increment-write ` +
    "cycles each on one workspace",
  async (fx) => {
    const result = await lockedContention(configOf(fx), "default", K, M);
    console.log(
      `contention pg: ${K} x ${M} locked cycles, final serial ${result.finalSerial} ` +
        `(${K * M} increments), ${(K * M / (result.elapsedMs / 1000)).toFixed(1)} cycles/s`,
    );
  },
);

pgTest(
  `PgBackend lands or refuses with StateSerialError every write of ${RK} unlocked processes ` +
    `racing ${RM} times each, and never loses one silently`,
  async (fx) => {
    const result = await unlockedRace(configOf(fx), "racing", RK, RM);
    console.log(
      `race pg: ${RK} x ${RM} unlocked attempts: ${result.landed} landed, ` +
        `${result.refused} refused with StateSerialError, ${result.lost} lost`,
    );
    assert.equal(result.lost, 0, "a write that landed was overwritten");
  },
);

pgTest("PgBackend shows planted lock records escaped and never obeys them", async (fx) => {
  const backend = new PgBackend(configOf(fx));
  try {
    await backend.setState("default", {
      version: 4,
      serial: 1,
      lineage: "0b5e0c9a-9f57-4d0e-9d9a-1f1f1f1f1f1f",
    });
    const hostile = [
      // Escape sequences in every field: printed escaped.
      JSON.stringify({
        ID: "id\x1b]0;pwned\x07",
        Operation: "\x1b[2J",
        Info: "",
        Who: "mallory\u202e@x",
        Version: "",
        Created: "",
        Path: "",
      }),
      // Not JSON at all.
      "{damaged",
      // A huge field.
      JSON.stringify({ ID: "x".repeat(100_000), Who: "big" }),
    ];
    for (const info of hostile) {
      // A detached record without TTL, planted as if by another client.
      await fx.admin.unsafe(
        `INSERT INTO terraform_remote_state.gaib_state_locks
         (state_table, workspace, lock_id, info, detached, expires, pid, keys, holder)
         VALUES ('states', 'default', 'planted', $1, true, NULL, NULL, '{}', $2)
         ON CONFLICT (state_table, workspace) DO UPDATE SET info = EXCLUDED.info`,
        [info, "host\x1b[31m pid 1"],
      );
      const error = await backend.lock("default").then(() => null, (e) => e);
      assert.ok(error instanceof StateLockError, String(error));
      const raw = [...error.message].filter((c) => {
        const code = c.codePointAt(0)!;
        return (code < 0x20 && c !== "\n") || code === 0x7f || code === 0x202e;
      });
      assert.deepEqual(raw, [], `unescaped characters in: ${error.message}`);
      // A write without the lock is refused; the state is untouched.
      await assert.rejects(
        backend.setState("default", {
          version: 4,
          serial: 2,
          lineage: "0b5e0c9a-9f57-4d0e-9d9a-1f1f1f1f1f1f",
        }),
        StateLockError,
      );
      assert.equal((await backend.getState("default"))?.serial, 1);
    }
    // A hostile name in the states table (written by another tool) is not listed.
    await fx.admin.unsafe(
      "INSERT INTO terraform_remote_state.states (name, data) VALUES ($1, '')",
      ["../../etc\x1b[2J"],
    );
    assert.deepEqual(await backend.listWorkspaces(), ["default"]);
  } finally {
    await backend.close();
  }
});

pgTest("a password in conn_str never shows, whatever fails (secret canary)", async (fx) => {
  const canary = `Canary-${crypto.randomUUID()}`;
  await fx.admin.unsafe(`ALTER ROLE ${fx.name} PASSWORD '${canary}'`);
  const good = fx.connStr.replace(fx.password, canary);
  const cases: Record<string, string> = {
    "wrong database": good.replace(`/${fx.name}?`, "/no_such_db?"),
    "wrong password": fx.connStr,
    "closed port": good.replace(`:${fx.server.port}/`, ":9/"),
    "missing tables": good,
  };
  await using project = await cliProject({ GAIB_BACKEND: "pg" });
  const seen: string[] = [];
  for (const [what, connStr] of Object.entries(cases)) {
    const config = what === "missing tables"
      ? { type: "pg" as const, conn_str: connStr, schema_name: "absent", skip_table_creation: true }
      : { type: "pg" as const, conn_str: connStr };
    const backend = new PgBackend(config);
    const error = await backend.getState("default").then(() => null, (e) => e);
    await backend.close();
    seen.push(String(error), (error as Error)?.stack ?? "", String((error as Error)?.cause));
    for (const args of [["state", "pull", "--verbose"], ["lock", "status", "--json"]]) {
      const result = await project.run(args, {
        env: {
          GAIB_PG_CONN_STR: connStr,
          ...(config.schema_name ? { GAIB_PG_SCHEMA_NAME: config.schema_name } : {}),
          ...(config.skip_table_creation ? { GAIB_PG_SKIP_TABLE_CREATION: "true" } : {}),
        },
      });
      seen.push(result.stdout, result.stderr);
    }
  }
  const all = seen.join("\n");
  assert.ok(!all.includes(canary), "the password leaked");
  assert.ok(!all.includes(fx.password), "the wrong password leaked");
  assert.match(all, /password authentication failed/);
  assert.match(all, /connection was refused/);
  assert.match(all, /skip_table_creation is set/);
});
