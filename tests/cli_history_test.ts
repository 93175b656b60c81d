/**
 * `gaib-state state history`, `state pull --version` and `state rollback`, on the local
 * backend and on S3 (a versioned bucket with DynamoDB locks; a bucket without versioning).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliProject, cliProject, parseJson } from "./_cli.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";
import { TEST_CREDENTIALS } from "./_server_env.ts";

function stateText(serial: number, lineage = "aaaa-lineage", note = String(serial)): string {
  return JSON.stringify({
    version: 4,
    serial,
    lineage,
    outputs: { note: { value: note, type: "string" } },
    resources: [],
  });
}

async function push(project: CliProject, text: string, ...flags: string[]): Promise<void> {
  const file = `${project.path}/push-${crypto.randomUUID()}.tfstate`;
  await Deno.writeTextFile(file, text);
  const result = await project.run(["state", "push", "--create", ...flags, file]);
  assert.equal(result.code, 0, result.stderr);
}

interface Listed {
  versionId: string;
  serial: number;
  lineage: string;
  current: boolean;
  noHistory?: string;
}

async function versions(project: CliProject, ...args: string[]): Promise<Listed[]> {
  const result = await project.run(["state", "history", "--json", ...args]);
  assert.equal(result.code, 0, result.stderr);
  return (parseJson(result).versions as Listed[]);
}

async function backups(project: CliProject): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(`${project.path}/.gaib/backups/default`)) {
      names.push(e.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names;
}

Deno.test("gaib-state state history lists the versions as a table, newest first, with -n", async () => {
  await using project = await cliProject();
  const empty = await project.run(["state", "history"]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(empty.stdout, "");
  assert.match(empty.stderr, /has no state yet/);
  for (const serial of [1, 2, 3]) await push(project, stateText(serial));
  const result = await project.run(["state", "history"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^VERSION\s+SERIAL\s+SAVED\s+SIZE\s+CURRENT$/);
  assert.equal(lines.length, 4);
  assert.match(lines[1], /^\d{8}T\d{9}Z-[0-9a-f]{8}\s+3\s+\d{4}-\d\d-\d\dT\S+Z\s+\d+ B\s+\*$/);
  assert.match(lines[3], /\s1\s/);
  assert.doesNotMatch(lines[2], /\*/);
  assert.match(result.stderr, /gaib-state state rollback VERSION/);
  const two = await versions(project, "-n", "2");
  assert.deepEqual(two.map((v) => [v.serial, v.current]), [[3, true], [2, false]]);
  for (const bad of ["0", "-1", "x", "1.5"]) {
    const refused = await project.run(["state", "history", "-n", bad]);
    assert.equal(refused.code, 2, `-n ${bad}: ${refused.stderr}`);
  }
});

Deno.test("gaib-state state pull --version prints that version; an unknown or hostile ID fails with exit 1", async () => {
  await using project = await cliProject();
  for (const serial of [1, 2]) await push(project, stateText(serial));
  const [, first] = await versions(project);
  const pulled = await project.run(["state", "pull", "--version", first.versionId]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(JSON.parse(pulled.stdout).serial, 1);
  for (const id of ["nope", "../terraform.tfstate", "../../../../etc/passwd"]) {
    const refused = await project.run(["state", "pull", "--version", id, "--json"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stdout, /StateVersionNotFoundError/);
    assert.doesNotMatch(refused.stdout, /root:/);
  }
});

Deno.test("gaib-state state rollback writes the version as the next serial, prints it, keeps a backup", async () => {
  await using project = await cliProject();
  await push(project, stateText(1, "aaaa-lineage", "good"));
  await push(project, stateText(2, "aaaa-lineage", "bad"));
  const [, good] = await versions(project);
  const result = await project.run(["state", "rollback", good.versionId]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "3\n", "prints the new serial");
  assert.match(result.stderr, /written as serial 3, replacing serial 2/);
  assert.match(result.stderr, /backed up to/);
  const now = JSON.parse((await project.run(["state", "pull"])).stdout);
  assert.deepEqual([now.serial, now.lineage, now.outputs.note.value], [3, "aaaa-lineage", "good"]);
  assert.equal((await backups(project)).length, 2, "the second push and the rollback");
  const json = parseJson(await project.run(["state", "rollback", good.versionId, "--json"]));
  assert.equal(json.serial, 4);
  assert.equal(json.previousSerial, 3);
  assert.equal(json.versionSerial, 1);
  assert.equal(typeof json.backup, "string");
  // Under a lock taken earlier, with --lock-id; without it the held lock refuses.
  const lockId = (await project.run(["lock", "acquire"])).stdout.trim();
  const blocked = await project.run(["state", "rollback", good.versionId]);
  assert.equal(blocked.code, 1);
  assert.match(blocked.stderr, /lock/i);
  const held = await project.run(["state", "rollback", "--lock-id", lockId, good.versionId]);
  assert.equal(held.code, 0, held.stderr);
  assert.equal(held.stdout, "5\n");
  assert.equal((await project.run(["unlock", lockId])).code, 0);
});

Deno.test("gaib-state state rollback refuses a version of another lineage unless --force, changing nothing", async () => {
  await using project = await cliProject();
  await push(project, stateText(1, "lineage-a"));
  await push(project, stateText(1, "lineage-b"), "--force");
  const older = (await versions(project)).find((v) => v.lineage === "lineage-a")!;
  const before = (await project.run(["state", "pull"])).stdout;
  const backupsBefore = await backups(project);
  const refused = await project.run(["state", "rollback", older.versionId]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /lineage "lineage-a" differs/);
  assert.ok(refused.stderr.includes(`gaib-state state rollback --force ${older.versionId}`));
  assert.equal((await project.run(["state", "pull"])).stdout, before);
  assert.deepEqual(await backups(project), backupsBefore, "no backup left by a refusal");
  const forced = await project.run(["state", "rollback", "--force", older.versionId]);
  assert.equal(forced.code, 0, forced.stderr);
  const now = JSON.parse((await project.run(["state", "pull"])).stdout);
  assert.deepEqual([now.serial, now.lineage], [2, "lineage-a"]);
});

async function s3Env(versioned: boolean) {
  const fx = await s3Fixture({ versioned });
  const env = {
    GAIB_BACKEND: "s3",
    GAIB_S3_BUCKET: fx.bucket,
    GAIB_S3_KEY: "servers/terraform.tfstate",
    GAIB_S3_REGION: TEST_CREDENTIALS.region,
    GAIB_S3_ENDPOINT: fx.s3.endpoint,
    GAIB_S3_FORCE_PATH_STYLE: "true",
    GAIB_S3_MAX_RETRIES: "1",
    GAIB_DYNAMODB_TABLE: fx.table,
    GAIB_DYNAMODB_ENDPOINT: fx.dynamo!.endpoint,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  };
  return { fx, env };
}

s3Test(
  "gaib-state state history and rollback on S3 with a versioned bucket and DynamoDB locks",
  ["versioning", "dynamodb"],
  async () => {
    const { fx, env } = await s3Env(true);
    await using _fx = fx;
    await using project = await cliProject(env);
    for (const serial of [1, 2, 3]) await push(project, stateText(serial));
    const listed = await versions(project);
    assert.deepEqual(listed.map((v) => [v.serial, v.current]), [[3, true], [2, false], [
      1,
      false,
    ]]);
    const result = await project.run(["state", "rollback", listed[2].versionId]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "4\n");
    const now = JSON.parse((await project.run(["state", "pull"])).stdout);
    assert.deepEqual([now.serial, now.outputs.note.value], [4, "1"]);
    assert.equal((await versions(project)).length, 4);
  },
);

s3Test(
  "gaib-state state history on S3 without bucket versioning lists the current version and says how to turn versioning on",
  ["dynamodb"],
  async () => {
    const { fx, env } = await s3Env(false);
    await using _fx = fx;
    await using project = await cliProject(env);
    for (const serial of [1, 2]) await push(project, stateText(serial));
    const result = await project.run(["state", "history"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^null\s+2\s/m);
    assert.ok(
      result.stderr.includes(
        `"aws s3api put-bucket-versioning --bucket ${fx.bucket} --versioning-configuration ` +
          'Status=Enabled"',
      ),
      result.stderr,
    );
  },
);
