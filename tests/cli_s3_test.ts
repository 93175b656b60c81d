/**
 * The CLI against the S3 backend on the test servers (`deno task test` starts them), with the
 * backend chosen by `GAIB_*` variables as a CI runner would set them, once with DynamoDB locks
 * and once with S3 lockfiles.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { type DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { createHash } from "node:crypto";
import { type CliProject, cliProject, parseJson } from "./_cli.ts";
import { pasteCommand, quotedCommands } from "./_paste.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { stallingProxy } from "./_stall.ts";
import {
  type DynamoServerInfo,
  type S3ServerInfo,
  serverTest,
  tempBucket,
  tempLockTable,
  TEST_CREDENTIALS,
} from "./_server_env.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const OPTIONS = { sanitizeOps: false, sanitizeResources: false } as const;

type Mode = "dynamodb" | "lockfile";

interface S3Project extends AsyncDisposable {
  readonly project: CliProject;
  readonly bucket: string;
  /** The environment every CLI run of the project gets. */
  readonly env: Record<string, string>;
  /** A raw client of the bucket's server, to change objects behind the CLI's back. */
  readonly s3Client: S3Client;
  /** The lock table and a raw client of it (DynamoDB mode). */
  readonly table?: { name: string; client: DynamoDBClient };
  /** The same backend, as a library config (for a lock holder of the test's own). */
  readonly config: S3BackendConfig;
  /** The AWS credentials the CLI runs get. */
  readonly credentials: Record<string, string>;
}

/** A temp working directory whose CLI runs use a fresh bucket (and lock table) via GAIB_*. */
async function s3Project(
  mode: Mode,
  s3: S3ServerInfo,
  dynamodb?: DynamoServerInfo,
): Promise<S3Project> {
  const bucket = await tempBucket(s3, { prefix: "gaib-cli" });
  const table = mode === "dynamodb" ? await tempLockTable(dynamodb!) : undefined;
  const env: Record<string, string> = {
    GAIB_BACKEND: "s3",
    GAIB_S3_BUCKET: bucket.name,
    GAIB_S3_KEY: "servers/terraform.tfstate",
    GAIB_S3_REGION: TEST_CREDENTIALS.region,
    GAIB_S3_ENDPOINT: s3.endpoint,
    GAIB_S3_FORCE_PATH_STYLE: "true",
    GAIB_S3_MAX_RETRIES: "1",
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  };
  if (table) {
    env.GAIB_DYNAMODB_TABLE = table.name;
    env.GAIB_DYNAMODB_ENDPOINT = dynamodb!.endpoint;
  } else {
    env.GAIB_S3_USE_LOCKFILE = "true";
  }
  const project = await cliProject(env);
  const config: S3BackendConfig = {
    type: "s3",
    bucket: bucket.name,
    key: "servers/terraform.tfstate",
    region: TEST_CREDENTIALS.region,
    endpoints: { s3: s3.endpoint, dynamodb: dynamodb?.endpoint },
    force_path_style: true,
    max_retries: 1,
    ...(table ? { dynamodb_table: table.name } : { use_lockfile: true }),
  };
  return {
    project,
    bucket: bucket.name,
    env,
    s3Client: bucket.client,
    table: table && { name: table.name, client: table.client },
    config,
    credentials: {
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_REGION: TEST_CREDENTIALS.region,
    },
    async [Symbol.asyncDispose]() {
      await project[Symbol.asyncDispose]();
      await table?.[Symbol.asyncDispose]();
      await bucket[Symbol.asyncDispose]();
    },
  };
}

const MODES: Array<
  { mode: Mode; needs: { s3: readonly ["conditionalWrites"] | true; dynamodb?: true } }
> = [
  { mode: "dynamodb", needs: { s3: true, dynamodb: true } },
  { mode: "lockfile", needs: { s3: ["conditionalWrites"] } },
];

for (const { mode, needs } of MODES) {
  serverTest(
    `gaib-state on S3 (${mode} locks): workspaces, push, pull, list, rm and mv round trips with local backups`,
    { ...needs, ...OPTIONS },
    async (t, servers) => {
      const s = servers as { s3: S3ServerInfo; dynamodb?: DynamoServerInfo };
      await using fixture = await s3Project(mode, s.s3, s.dynamodb);
      const { project } = fixture;

      await t.step("config show names the S3 backend and hides the credentials", async () => {
        const result = await project.run(["config", "show", "--json"]);
        assert.equal(result.code, 0, result.stderr);
        const json = parseJson(result);
        const backend = json.backend as {
          type: string;
          source: string;
          settings: Record<string, { value: unknown; origin: string }>;
        };
        assert.equal(backend.type, "s3");
        assert.equal(backend.source, "environment");
        assert.deepEqual(backend.settings.bucket, {
          value: fixture.bucket,
          origin: "GAIB_S3_BUCKET",
        });
        assert.deepEqual(json.credentials, {
          AWS_ACCESS_KEY_ID: "set (value hidden)",
          AWS_SECRET_ACCESS_KEY: "set (value hidden)",
        });
      });

      await t.step("workspaces", async () => {
        assert.equal((await project.run(["workspace", "list"])).stdout, "* default\n");
        const created = await project.run(["workspace", "new", "staging"]);
        assert.equal(created.code, 0, created.stderr);
        assert.equal((await project.run(["workspace", "list"])).stdout, "  default\n* staging\n");
        assert.equal((await project.run(["workspace", "select", "default"])).code, 0);
        const deleted = await project.run(["workspace", "delete", "staging"]);
        assert.equal(deleted.code, 0, deleted.stderr);
        assert.equal((await project.run(["workspace", "list"])).stdout, "* default\n");
      });

      await t.step("push, then pull gives the same state", async () => {
        const push = await project.run(["state", "push", STATE]);
        assert.equal(push.code, 0, push.stderr);
        const pulled = await project.run(["state", "pull"]);
        assert.deepEqual(JSON.parse(pulled.stdout), JSON.parse(await Deno.readTextFile(STATE)));
      });

      await t.step("an older serial is refused, and accepted with --force", async () => {
        const original = JSON.parse(await Deno.readTextFile(STATE));
        const older = JSON.stringify({ ...original, serial: 1 });
        const refused = await project.run(["state", "push", "-", "--json"], { stdin: older });
        assert.equal(refused.code, 1);
        assert.equal((parseJson(refused).error as { type: string }).type, "StateSerialError");
        const forced = await project.run(["state", "push", "-", "--force"], { stdin: older });
        assert.equal(forced.code, 0, forced.stderr);
        assert.equal(JSON.parse((await project.run(["state", "pull"])).stdout).serial, 1);
      });

      await t.step("rm and mv round trip, each with a local backup", async () => {
        const rm = await project.run(["state", "rm", "discord_role.admin"]);
        assert.equal(rm.code, 0, rm.stderr);
        const backup = /backed up to (\S+)/.exec(rm.stderr)?.[1];
        assert.ok(backup?.startsWith(`${project.path}/.gaib/backups/default/`), rm.stderr);
        const mv = await project.run(["state", "mv", 'module.app["web"]', "module.site"]);
        assert.equal(mv.code, 0, mv.stderr);
        assert.equal(
          (await project.run(["state", "list"])).stdout,
          "discord_channel.general[0]\ndiscord_channel.general[1]\n" +
            "module.site.discord_channel.general[0]\nmodule.site.data.discord_guild.main\n",
        );
        const restore = { ...JSON.parse(await Deno.readTextFile(backup!)), serial: 10 };
        const push = await project.run(["state", "push", "-"], { stdin: JSON.stringify(restore) });
        assert.equal(push.code, 0, push.stderr);
        assert.match((await project.run(["state", "list"])).stdout, /^discord_role\.admin\n/);
        const show = await project.run(["state", "show", "discord_role.admin"]);
        assert.match(show.stdout, /webhook_secret = \(sensitive value\)/);
        assert.ok(!show.stdout.includes("hunter2"));
      });
    },
  );

  serverTest(
    `gaib-state on S3 (${mode} locks): lock and unlock across processes, races, signals and force-unlock`,
    { ...needs, ...OPTIONS },
    async (t, servers) => {
      const s = servers as { s3: S3ServerInfo; dynamodb?: DynamoServerInfo };
      await using fixture = await s3Project(mode, s.s3, s.dynamodb);
      const { project } = fixture;
      assert.equal((await project.run(["state", "push", STATE])).code, 0);

      await t.step("lock in one process, unlock in another", async () => {
        const lock = await project.run(["lock", "--ttl", "1h"]);
        assert.equal(lock.code, 0, lock.stderr);
        const lockId = lock.stdout.trim();
        const status = parseJson(await project.run(["lock-info", "--json"]));
        assert.equal((status.lockInfo as { ID: string }).ID, lockId);
        const busy = await project.run(["state", "rm", "discord_role.admin"]);
        assert.equal(busy.code, 1);
        assert.ok(busy.stderr.includes(`gaib-state force-unlock ${lockId}`), busy.stderr);
        const unlock = await project.run(["unlock", lockId]);
        assert.equal(unlock.code, 0, unlock.stderr);
        assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, false);
      });

      await t.step("racing lock processes: exactly one wins", async () => {
        const racers = Array.from({ length: 3 }, () => project.spawn(["lock", "--json"]));
        const results = await Promise.all(racers.map((r) => r.result()));
        const winners = results.filter((r) => r.code === 0);
        assert.equal(winners.length, 1, results.map((r) => r.stdout + r.stderr).join("\n"));
        for (const loser of results.filter((r) => r.code !== 0)) {
          assert.equal((parseJson(loser).error as { type: string }).type, "StateLockError");
        }
        const lockId = String(parseJson(winners[0]).lockId);
        assert.equal((await project.run(["unlock", lockId])).code, 0);
      });

      await t.step("SIGTERM while holding the lock releases it", async () => {
        // S3 through a proxy that holds back the state's GET: the command has taken the lock
        // and is reading the state when the GET arrives.
        await using proxy = stallingProxy(
          s.s3.endpoint,
          new RegExp(`^GET /${fixture.bucket}/servers/terraform\\.tfstate[? ]`),
        );
        await using holder = project.spawn(["state", "rm", "discord_role.admin"], {
          env: { GAIB_S3_ENDPOINT: proxy.endpoint },
        });
        await proxy.stalled;
        assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, true);
        holder.child.kill("SIGTERM");
        const result = await holder.result();
        assert.equal(result.code, 143, result.stderr);
        assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, false);
        assert.match((await project.run(["state", "list"])).stdout, /^discord_role\.admin\n/);
      });

      await t.step(
        "a holder killed with SIGKILL leaves a stuck lock that force-unlock clears",
        async () => {
          // A process-bound lock (30 s lease) whose holder dies: stuck until the lease ends.
          const holder = await spawnLockHolder(
            { backend: fixture.config, workspace: "default" },
            fixture.credentials,
          );
          const lockId = holder.lockId;
          await holder.kill();
          const stuck = await project.run(["state", "rm", "discord_role.admin"]);
          assert.equal(stuck.code, 1);
          assert.ok(stuck.stderr.includes(`gaib-state force-unlock ${lockId}`), stuck.stderr);
          const noForce = await project.run(["force-unlock", lockId]);
          assert.equal(noForce.code, 2);
          const forced = await project.run(["force-unlock", "--force", lockId]);
          assert.equal(forced.code, 0, forced.stderr);
          const rm = await project.run(["state", "rm", "discord_role.admin"]);
          assert.equal(rm.code, 0, rm.stderr);
        },
      );
    },
  );
}

serverTest(
  "gaib-state on S3 with DynamoDB: after another tool uploads the state without its digest, the commands the error names repair it",
  { s3: true, dynamodb: true, ...OPTIONS },
  async (t, servers) => {
    const s = servers as { s3: S3ServerInfo; dynamodb: DynamoServerInfo };
    await using fixture = await s3Project("dynamodb", s.s3, s.dynamodb);
    const { project } = fixture;
    assert.equal((await project.run(["state", "push", STATE])).code, 0);
    const key = "servers/terraform.tfstate";
    const original = JSON.parse(await Deno.readTextFile(STATE));
    // Another tool uploads a changed state, of the same serial (so not a newer write whose
    // digest update was lost), and leaves the digest alone.
    const upload = async (outputValue: string) => {
      const body = JSON.stringify({
        ...original,
        outputs: { ...original.outputs, by_tool: { value: outputValue, type: "string" } },
      });
      await fixture.s3Client.send(
        new PutObjectCommand({ Bucket: fixture.bucket, Key: key, Body: body }),
      );
    };
    const storedMd5 = async () => {
      const out = await fixture.s3Client.send(
        new GetObjectCommand({ Bucket: fixture.bucket, Key: key }),
      );
      return createHash("md5").update(await out.Body!.transformToByteArray()).digest("hex");
    };
    const digest = async () => {
      const out = await fixture.table!.client.send(
        new GetItemCommand({
          TableName: fixture.table!.name,
          Key: { LockID: { S: `${fixture.bucket}/${key}-md5` } },
        }),
      );
      return out.Item?.Digest?.S;
    };
    await upload("first");
    assert.notEqual(await digest(), await storedMd5());
    let keep = "";

    await t.step("a read fails and names the commands that repair the digest", async () => {
      const pull = await project.run(["state", "pull"]);
      assert.equal(pull.code, 1);
      assert.match(pull.stderr, /does not match its digest/);
      const commands = quotedCommands(pull.stderr);
      keep = commands.find((c) => c.includes("--ignore-digest")) ?? "";
      assert.equal(
        keep,
        "gaib-state state pull --ignore-digest -w default | " +
          "gaib-state state push --force - -w default",
      );
      assert.ok(commands.includes("gaib-state state push --force FILE -w default"));
    });

    await t.step("pasting the command that keeps the object makes reads work again", async () => {
      const pasted = await pasteCommand(keep, { cwd: project.path, env: fixture.env });
      assert.equal(pasted.code, 0, pasted.stderr);
      const pull = await project.run(["state", "pull"]);
      assert.equal(pull.code, 0, pull.stderr);
      assert.equal(JSON.parse(pull.stdout).outputs.by_tool.value, "first");
      assert.equal(await digest(), await storedMd5(), "the digest describes the object again");
    });

    await t.step("a forced push replaces an object that does not match its digest", async () => {
      await upload("second");
      const push = await project.run(["state", "push", "--force", STATE]);
      assert.equal(push.code, 0, push.stderr);
      const backup = /backed up to (\S+)/.exec(push.stderr)?.[1];
      assert.ok(backup, "the object it replaced is backed up");
      assert.equal(JSON.parse(await Deno.readTextFile(backup!)).outputs.by_tool.value, "second");
      const pull = await project.run(["state", "pull"]);
      assert.equal(pull.code, 0, pull.stderr);
      assert.deepEqual(JSON.parse(pull.stdout), original);
      assert.equal(await digest(), await storedMd5());
    });
  },
);
