/**
 * `gaib-state doctor` and `gaib-state bootstrap` as a user runs them: a subprocess with the
 * compiled binary's permissions, the README's two commands from nothing on the test servers,
 * the fixes it prints pasted into bash, and no credential in any output.
 *
 * @module
 */

import assert from "node:assert/strict";
import { S3Client } from "@aws-sdk/client-s3";
import { DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { cliProject, parseJson, runCli } from "./_cli.ts";
import { canMount, mountTmpfs } from "./reliability/_util.ts";
import { pasteCommand, quotedCommands } from "./_paste.ts";
import {
  dynamoClientConfig,
  s3ClientConfig,
  serverTest,
  TEST_CREDENTIALS,
  uniqueName,
} from "./_server_env.ts";
import { emptyAndDeleteBucket, freePort } from "./_servers.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const OPTIONS = { sanitizeOps: false, sanitizeResources: false } as const;

interface Check {
  name: string;
  status: string;
  summary: string;
  fix?: string;
}

Deno.test("gaib-state doctor on a fresh project prints its checks and exits 0; --json is one document", async () => {
  await using project = await cliProject();
  await Deno.mkdir(`${project.path}/.gaib`, { mode: 0o700 });
  const plain = await project.run(["doctor"]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^CHECK +RESULT +DETAIL$/m);
  assert.match(
    plain.stdout,
    /^local\.filesystem +ok +fsync, directory fsync, atomic rename and flock work$/m,
  );
  assert.match(plain.stdout, /\d+ ok, 0 warn, 0 fail, 0 skipped/);
  const json = await project.run(["doctor", "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const doc = parseJson(json) as { ok: boolean; checks: Check[] };
  assert.equal(doc.ok, true);
  assert.deepEqual(
    doc.checks.map((c) => c.name),
    [
      "config.valid",
      "config.sources",
      "local.root",
      "local.filesystem",
      "local.mount",
      "local.modes",
      "local.leftovers",
    ],
  );
});

Deno.test("gaib-state bootstrap --dry-run creates nothing; bootstrap creates the root 0700, and again changes nothing", async () => {
  await using project = await cliProject();
  const dry = await project.run(["bootstrap", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run \(nothing was changed\)/);
  assert.match(dry.stdout, /would-create/);
  await assert.rejects(Deno.stat(`${project.path}/.gaib`));
  const real = await project.run(["bootstrap", "--json"]);
  assert.equal(real.code, 0, real.stderr);
  const doc = parseJson(real) as { steps: { action: string }[]; checks: Check[] };
  assert.equal(doc.steps[0].action, "created");
  assert.equal((await Deno.stat(`${project.path}/.gaib`)).mode! & 0o777, 0o700);
  const again = parseJson(await project.run(["bootstrap", "--json"])) as typeof doc;
  assert.equal(again.steps[0].action, "unchanged");
});

Deno.test("gaib-state doctor exits 1 when a check fails, naming the fix", async () => {
  await using project = await cliProject({ GAIB_STATE_PATH: "not-a-dir" });
  await Deno.writeTextFile(`${project.path}/not-a-dir`, "");
  const result = await project.run(["doctor"]);
  assert.equal(result.code, 1, result.stdout);
  assert.match(result.stdout, /^local\.root +fail +.*not-a-dir is not a directory$/m);
  assert.match(result.stdout, /fix: set backend\.path \(or GAIB_STATE_PATH\) to a directory/);
});

serverTest(
  "from nothing: gaib-state bootstrap, then the first push, then doctor passes (the README's " +
    "two commands); the fix doctor printed works when pasted",
  { s3: true, dynamodb: true, ...OPTIONS },
  async (_t, { s3, dynamodb }) => {
    const name = uniqueName("gaib-cli-boot");
    await using project = await cliProject({
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    });
    await Deno.mkdir(`${project.path}/ci`);
    await Deno.writeTextFile(
      `${project.path}/ci/gaib.yaml`,
      [
        'version: "1"',
        "backend:",
        "  type: s3",
        `  bucket: ${name}`,
        "  key: discord/terraform.tfstate",
        `  region: ${TEST_CREDENTIALS.region}`,
        `  dynamodb_table: ${name}`,
        ...(s3.kms && s3.kmsKeyId ? [`  kms_key_id: ${s3.kmsKeyId}`] : []),
        "  endpoints:",
        `    s3: ${s3.endpoint}`,
        `    dynamodb: ${dynamodb.endpoint}`,
        "  force_path_style: true",
        "  max_retries: 1",
        "",
      ].join("\n"),
    );
    const config = ["--config", "ci/gaib.yaml"];
    try {
      const before = await project.run(["doctor", ...config]);
      assert.equal(before.code, 1, before.stdout);
      assert.match(before.stdout, /^s3\.bucket +fail +bucket ".*" does not exist/m);
      const fixes = quotedCommands(before.stdout);
      assert.ok(
        fixes.includes("gaib-state bootstrap --config ci/gaib.yaml"),
        `the fix names the config file: ${fixes.join(", ")}`,
      );
      const pasted = await pasteCommand("gaib-state bootstrap --config ci/gaib.yaml", {
        cwd: project.path,
        env: {
          AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        },
      });
      assert.equal(pasted.code, 0, pasted.stdout + pasted.stderr);
      assert.match(pasted.stdout, new RegExp(`^bucket ${name} +created`, "m"));
      assert.match(pasted.stdout, new RegExp(`^DynamoDB table ${name} +created`, "m"));
      assert.match(pasted.stdout, /^Doctor:$/m);
      const push = await project.run(["state", "push", ...config, STATE]);
      assert.equal(push.code, 0, push.stderr);
      // A second push replaces the state: on a versioned Ceph RGW bucket (kept with DynamoDB
      // locks) that write goes under the lock alone, and the history lists both.
      const stored = JSON.parse(await Deno.readTextFile(STATE));
      const next = `${project.path}/next.tfstate`;
      await Deno.writeTextFile(next, JSON.stringify({ ...stored, serial: stored.serial + 1 }));
      const again = await project.run(["state", "push", ...config, next]);
      assert.equal(again.code, 0, again.stderr);
      const history = parseJson(await project.run(["state", "history", "--json", ...config])) as {
        versions: { serial: number }[];
      };
      assert.deepEqual(history.versions.map((v) => v.serial), [
        stored.serial + 1,
        stored.serial,
      ]);
      const after = parseJson(await project.run(["doctor", "--json", ...config])) as {
        ok: boolean;
        checks: Check[];
      };
      assert.equal(after.ok, true, JSON.stringify(after.checks, null, 2));
      const versioning = after.checks.find((c) => c.name === "s3.versioning");
      assert.equal(versioning?.status, "ok", JSON.stringify(after.checks, null, 2));
      if (s3.kind === "ceph") {
        const conditional = after.checks.find((c) => c.name === "s3.conditional-writes");
        assert.equal(conditional?.status, "warn", JSON.stringify(after.checks, null, 2));
      }
      const list = await project.run(["state", "list", ...config]);
      assert.equal(list.code, 0, list.stderr);
    } finally {
      const s3Client = new S3Client(s3ClientConfig(s3));
      await emptyAndDeleteBucket(s3Client, name).catch(() => {});
      s3Client.destroy();
      const ddb = new DynamoDBClient(dynamoClientConfig(dynamodb));
      await ddb.send(new DeleteTableCommand({ TableName: name })).catch(() => {});
      ddb.destroy();
    }
  },
);

Deno.test("gaib-state doctor and bootstrap never print a credential, failing or not", async () => {
  const secret = "doctor-cli-canary-secret-98765";
  const keyId = "AKIADOCTORCLICANARY1";
  const userInfo = "urlcanary-4242";
  const port = freePort();
  await using project = await cliProject({
    GAIB_S3_BUCKET: "gaib-canary",
    GAIB_S3_KEY: "terraform.tfstate",
    GAIB_S3_REGION: "us-east-1",
    GAIB_S3_ENDPOINT: `http://user:${userInfo}@127.0.0.1:${port}`,
    GAIB_S3_FORCE_PATH_STYLE: "true",
    GAIB_S3_MAX_RETRIES: "0",
    GAIB_S3_USE_LOCKFILE: "true",
    AWS_ACCESS_KEY_ID: keyId,
    AWS_SECRET_ACCESS_KEY: secret,
  });
  for (const args of [["doctor"], ["bootstrap"], ["bootstrap", "--dry-run"]]) {
    for (const extra of [[], ["--json"], ["--verbose"]]) {
      const result = await project.run([...args, ...extra]);
      const all = result.stdout + result.stderr;
      assert.equal(result.code, 1, `${args.join(" ")} ${extra.join(" ")}: ${all}`);
      assert.match(all, /cannot reach S3/);
      for (const canary of [secret, keyId, userInfo]) {
        assert.ok(!all.includes(canary), `${args.join(" ")} ${extra.join(" ")} printed ${canary}`);
      }
    }
  }
});

Deno.test({
  name: "gaib-state doctor names a tmpfs state root from statfs (the binary may not read /proc)",
  ignore: !canMount(),
  async fn() {
    await using mount = await mountTmpfs(1024);
    await Deno.mkdir(`${mount.path}/.gaib`, { mode: 0o700 });
    const result = await runCli(["doctor"], { cwd: mount.path });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      /^local\.mount +warn +.*\.gaib is on tmpfs, which lives in memory/m,
    );
    assert.match(result.stdout, /^local\.filesystem +ok/m);
  },
});
