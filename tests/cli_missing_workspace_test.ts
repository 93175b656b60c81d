/**
 * Like Terraform, gaib-state refuses a workspace that does not exist instead of creating it:
 * a mistyped `-w prdo` or `GAIB_WORKSPACE=prdo` fails, naming the workspace, where the name
 * came from and the fix, and leaves no trace. Only `workspace new`/`select --or-create` and
 * `state push --create` create one; `default` always exists.
 */

import assert from "node:assert/strict";
import { type CliProject, cliProject, parseJson } from "./_cli.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";
import { TEST_CREDENTIALS } from "./_server_env.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;

/** Every file and directory under `dir`, relative, sorted. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
      const path = `${prefix}${entry.name}`;
      out.push(path);
      if (entry.isDirectory) out.push(...await tree(dir, `${path}/`));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

async function projectWithProd(): Promise<CliProject> {
  const project = await cliProject();
  for (const args of [["workspace", "new", "prod"], ["workspace", "select", "default"]]) {
    const result = await project.run(args);
    assert.equal(result.code, 0, result.stderr);
  }
  return project;
}

Deno.test("gaib-state refuses a workspace that does not exist, for every command that uses it", async (t) => {
  await using project = await projectWithProd();
  const before = await tree(project.path);
  const commands: string[][] = [
    ["state", "push", STATE],
    ["state", "pull"],
    ["state", "list"],
    ["state", "show", "discord_role.admin"],
    ["state", "rm", "discord_role.admin"],
    ["state", "mv", "discord_role.admin", "discord_role.b"],
    ["lock"],
    ["lock", "--ttl", "1h"],
    ["unlock", "8a4f3e9c-1d2b-4c5a-9e8f-7b6a5c4d3e2f"],
    ["force-unlock", "--force", "8a4f3e9c-1d2b-4c5a-9e8f-7b6a5c4d3e2f"],
    ["lock", "status"],
    ["lock-info"],
  ];
  for (const args of commands) {
    await t.step(`${args.join(" ")} -w prdo`, async () => {
      const result = await project.run([...args, "-w", "prdo"]);
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^Error: Workspace "prdo" does not exist/);
      assert.match(result.stderr, /selected with -w\/--workspace prdo/);
      assert.match(result.stderr, /The workspaces are: default, prod\./);
      if (!["unlock", "force-unlock", "lock-info"].includes(args[0]) && args[1] !== "status") {
        assert.match(result.stderr, /Create it with "gaib-state workspace new prdo"/);
      }
    });
  }
  await t.step("nothing was created", async () => {
    assert.deepEqual(await tree(project.path), before);
    const list = await project.run(["workspace", "list"]);
    assert.equal(list.stdout, "* default\n  prod\n");
  });
});

Deno.test("gaib-state names where a missing workspace came from and how to fix it", async (t) => {
  await using project = await projectWithProd();
  await t.step("GAIB_WORKSPACE, with --create offered by state push", async () => {
    const result = await project.run(["state", "push", STATE], {
      env: { GAIB_WORKSPACE: "prdo" },
    });
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'Error: Workspace "prdo" does not exist (selected by GAIB_WORKSPACE=prdo). The ' +
        'workspaces are: default, prod. Create it with "gaib-state workspace new prdo", or run ' +
        "this command again with --create, or set GAIB_WORKSPACE to another (or unset it).\n",
    );
  });
  await t.step("the stored selection", async () => {
    await Deno.writeTextFile(`${project.path}/.gaib/.current-workspace`, "gone\n");
    const result = await project.run(["state", "list", "--json"]);
    assert.equal(result.code, 1);
    const error = parseJson(result).error as Record<string, unknown>;
    assert.equal(error.type, "NoWorkspace");
    assert.equal(error.workspace, "gone");
    assert.equal(error.source, ".current-workspace");
    assert.deepEqual(error.workspaces, ["default", "prod"]);
    assert.match(String(error.message), /stored in .*\/\.gaib\/\.current-workspace/);
    assert.match(String(error.message), /"gaib-state workspace select default"/);
    // The way out works.
    assert.equal((await project.run(["workspace", "select", "default"])).code, 0);
    assert.equal((await project.run(["state", "list"])).code, 0);
  });
  await t.step("--config is kept in the printed commands", async () => {
    await Deno.writeTextFile(
      `${project.path}/other.yaml`,
      'version: "1"\nbackend:\n  type: local\n  path: .gaib\n',
    );
    const result = await project.run(["state", "list", "--config", "other.yaml", "-w", "x$y"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /"gaib-state workspace new 'x\$y' --config other\.yaml"/);
  });
  await t.step("a long list of workspaces is not printed", async () => {
    for (let i = 0; i < 11; i++) {
      // A workspace is listed once it has a state.
      await Deno.mkdir(`${project.path}/.gaib/workspaces/ws-${i}`, { recursive: true });
      await Deno.copyFile(STATE, `${project.path}/.gaib/workspaces/ws-${i}/terraform.tfstate`);
    }
    const result = await project.run(["state", "list", "-w", "prdo"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /There are 13 workspaces; "gaib-state workspace list" lists them/);
  });
});

Deno.test("gaib-state creates a workspace only when asked (workspace new, state push --create)", async () => {
  await using project = await cliProject();
  const push = await project.run(["state", "push", "--create", "-w", "pr-42", STATE]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stderr, /Pushed .* to workspace "pr-42"/);
  const list42 = await project.run(["state", "list", "-w", "pr-42"]);
  assert.equal(list42.stdout.split("\n")[0], "discord_role.admin");
  // The workspace commands themselves take any name: they are the way out.
  const show = await project.run(["workspace", "show"], { env: { GAIB_WORKSPACE: "typo" } });
  assert.equal(show.stdout, "typo\n");
  const list = await project.run(["workspace", "list"], { env: { GAIB_WORKSPACE: "typo" } });
  assert.equal(list.stdout, "  default\n  pr-42\n");
  const created = await project.run(["workspace", "new", "typo"], {
    env: { GAIB_WORKSPACE: "typo" },
  });
  assert.equal(created.code, 0, created.stderr);
  const now = await project.run(["state", "list"], { env: { GAIB_WORKSPACE: "typo" } });
  assert.equal(now.code, 0, now.stderr);
});

Deno.test("gaib-state default always exists, and so does a local workspace holding only a lock", async () => {
  await using project = await cliProject();
  const list = await project.run(["state", "list"]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stderr, /Workspace "default" has no state yet/);
  const lockId = (await project.run(["lock", "-w", "default"])).stdout.trim();
  assert.equal((await project.run(["unlock", lockId])).code, 0);

  // A lock record in a workspace directory left without a state (another tool's, or a crash).
  const dir = `${project.path}/.gaib/workspaces/orphan`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/.terraform.tfstate.lock.info`,
    JSON.stringify({
      ID: "8a4f3e9c-1d2b-4c5a-9e8f-7b6a5c4d3e2f",
      Operation: "apply",
      Info: "",
      Who: "terraform@ci",
      Version: "1.9.0",
      Created: "2026-11-26T10:02:11Z",
      Path: "orphan",
    }),
  );
  const status = await project.run(["lock", "status", "-w", "orphan"]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /Workspace "orphan" is locked/);
  const unlock = await project.run([
    "force-unlock",
    "--force",
    "8a4f3e9c-1d2b-4c5a-9e8f-7b6a5c4d3e2f",
    "-w",
    "orphan",
  ]);
  assert.equal(unlock.code, 0, unlock.stderr);
});

s3Test(
  "gaib-state reaches a DynamoDB lock on an S3 workspace that has no state (lock status, force-unlock)",
  ["dynamodb"],
  async () => {
    await using fixture = await s3Fixture();
    // A lock taken before any state was written, as Terraform's first apply does.
    const backend = fixture.backend({ dynamodb_table: fixture.table });
    const { lockId } = await backend.lock("orphan", { detached: true, operation: "apply" });
    await backend.close();
    await using project = await cliProject({
      GAIB_BACKEND: "s3",
      GAIB_S3_BUCKET: fixture.bucket,
      GAIB_S3_KEY: "terraform.tfstate",
      GAIB_S3_REGION: TEST_CREDENTIALS.region,
      GAIB_S3_ENDPOINT: fixture.s3.endpoint,
      GAIB_S3_FORCE_PATH_STYLE: "true",
      GAIB_S3_MAX_RETRIES: "1",
      GAIB_DYNAMODB_TABLE: fixture.table,
      GAIB_DYNAMODB_ENDPOINT: fixture.dynamo!.endpoint,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    });
    const list = await project.run(["workspace", "list"]);
    assert.equal(list.stdout, "* default\n", "no state: not a workspace");
    const read = await project.run(["state", "list", "-w", "orphan"]);
    assert.equal(read.code, 1);
    assert.match(read.stderr, /Workspace "orphan" does not exist/);
    const status = await project.run(["lock", "status", "-w", "orphan", "--json"]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(parseJson(status).locked, true);
    const ghost = await project.run(["lock", "status", "-w", "ghost"]);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /Workspace "ghost" does not exist and is not locked/);
    const unlock = await project.run(["force-unlock", "--force", lockId, "-w", "orphan"]);
    assert.equal(unlock.code, 0, unlock.stderr);
  },
);
