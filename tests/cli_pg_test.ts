/**
 * The CLI against the PostgreSQL backend on the run's test server (`deno task test` starts
 * it), with the backend chosen by `GAIB_*` variables as a CI runner would set them: every
 * command, and the password never printed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cliProject, parseJson } from "./_cli.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { serverTest } from "./_server_env.ts";
import { psql, tempDatabase } from "./_pg_server.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const OPTIONS = { sanitizeOps: false, sanitizeResources: false } as const;

serverTest(
  "gaib-state on PostgreSQL: every command works, and the password is never printed",
  { pg: true, ...OPTIONS },
  async (t, { pg }) => {
    await using db = await tempDatabase(pg);
    await using project = await cliProject({
      GAIB_BACKEND: "pg",
      GAIB_PG_CONN_STR: db.connStr,
    });
    const outputs: string[] = [];
    const run = async (args: string[], options?: { stdin?: string }) => {
      const result = await project.run(args, options);
      outputs.push(result.stdout, result.stderr);
      return result;
    };

    await t.step(
      "config show and validate name the backend and hide the URL's password",
      async () => {
        const shown = await run(["config", "show", "--json"]);
        assert.equal(shown.code, 0, shown.stderr);
        const backend = parseJson(shown).backend as {
          type: string;
          settings: Record<string, { value: unknown; origin: string }>;
        };
        assert.equal(backend.type, "pg");
        assert.equal(backend.settings.conn_str.origin, "GAIB_PG_CONN_STR");
        assert.match(
          String(backend.settings.conn_str.value),
          /^postgres:\/\/\[redacted\]@127\.0\.0\.1/,
        );
        const text = await run(["config", "show"]);
        assert.equal(text.code, 0, text.stderr);
        // A config file that takes the URL from a file, as CI mounts secrets.
        await Deno.writeTextFile(`${project.path}/pg.url`, db.connStr);
        await Deno.writeTextFile(
          `${project.path}/checked.yaml`,
          'version: "1"\nbackend:\n  type: pg\n  conn_str_file: pg.url\n',
        );
        const valid = await run(["config", "validate", "checked.yaml"]);
        assert.equal(valid.code, 0, valid.stderr);
        const bad = `${project.path}/bad.yaml`;
        await Deno.writeTextFile(
          bad,
          `version: "1"\nbackend:\n  type: pg\n  conn_str: "${
            db.connStr.replace("disable", "prefer")
          }"\n`,
        );
        const refused = await run(["config", "validate", "bad.yaml"]);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /sslmode/);
      },
    );

    await t.step("workspaces: new, list, select, show, delete", async () => {
      assert.equal((await run(["workspace", "list"])).stdout, "* default\n");
      const created = await run(["workspace", "new", "staging"]);
      assert.equal(created.code, 0, created.stderr);
      assert.equal((await run(["workspace", "list"])).stdout, "  default\n* staging\n");
      assert.equal((await run(["workspace", "show"])).stdout, "staging\n");
      assert.equal((await run(["workspace", "select", "default"])).code, 0);
      const deleted = await run(["workspace", "delete", "staging"]);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal((await run(["workspace", "list"])).stdout, "* default\n");
    });

    await t.step("state push, pull, list, show, rm and mv", async () => {
      const push = await run(["state", "push", STATE]);
      assert.equal(push.code, 0, push.stderr);
      const pulled = await run(["state", "pull"]);
      assert.deepEqual(JSON.parse(pulled.stdout), JSON.parse(await Deno.readTextFile(STATE)));
      const row = await psql(
        db.adminUrl,
        "SELECT data FROM terraform_remote_state.states WHERE name = 'default'",
      );
      assert.equal(JSON.parse(row).lineage, JSON.parse(pulled.stdout).lineage, "Terraform's row");
      assert.match((await run(["state", "list"])).stdout, /^discord_role\.admin\n/);
      const show = await run(["state", "show", "discord_role.admin"]);
      assert.equal(show.code, 0, show.stderr);
      const rm = await run(["state", "rm", "discord_role.admin"]);
      assert.equal(rm.code, 0, rm.stderr);
      const mv = await run(["state", "mv", 'module.app["web"]', "module.site"]);
      assert.equal(mv.code, 0, mv.stderr);
      assert.match((await run(["state", "list"])).stdout, /module\.site\./);
    });

    await t.step("lock acquire, lock status, lock-info and unlock across processes", async () => {
      const lock = await run(["lock", "acquire", "--ttl", "1h", "--json"]);
      assert.equal(lock.code, 0, lock.stderr);
      const lockId = String(parseJson(lock).lockId);
      const status = parseJson(await run(["lock-info", "--json"]));
      assert.equal((status.lockInfo as { ID: string }).ID, lockId);
      assert.equal((await run(["lock", "status", "--all"])).code, 0);
      const busy = await run(["state", "rm", "discord_channel.general[0]"]);
      assert.equal(busy.code, 1);
      assert.ok(busy.stderr.includes(`gaib-state force-unlock ${lockId}`), busy.stderr);
      const unlock = await run(["unlock", lockId]);
      assert.equal(unlock.code, 0, unlock.stderr);
      assert.equal(parseJson(await run(["lock-info", "--json"])).locked, false);
    });

    await t.step("force-unlock ends a live holder's session", async () => {
      await using holder = await spawnLockHolder({
        backend: { type: "pg", conn_str: db.connStr },
        workspace: "default",
      });
      const busy = await run(["state", "rm", "discord_channel.general[0]", "--verbose"]);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, /database session \(pid \d+\)/);
      const forced = await run(["force-unlock", "--force", holder.lockId]);
      assert.equal(forced.code, 0, forced.stderr);
      const rm = await run(["state", "rm", "discord_channel.general[0]"]);
      assert.equal(rm.code, 0, rm.stderr);
    });

    await t.step("a wrong password: a clear error, exit 1, nothing printed of it", async () => {
      const wrong = "Wrong-Pass-Canary-42";
      const result = await project.run(["state", "list", "--verbose"], {
        env: {
          GAIB_PG_CONN_STR: db.connStr.replace(db.password, wrong),
        },
      });
      outputs.push(result.stdout, result.stderr);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /password authentication failed/);
      assert.ok(!result.stderr.includes(wrong) && !result.stdout.includes(wrong));
    });

    await t.step("version and help", async () => {
      assert.equal((await run(["version"])).code, 0);
      assert.equal((await run(["help"])).code, 0);
    });

    const all = outputs.join("\n");
    assert.ok(!all.includes(db.password), "the password was printed");
  },
);
