import assert from "node:assert/strict";
import { cliProject, parseJson } from "./_cli.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;

Deno.test("gaib-state workspace list shows default, selected, on a fresh project", async () => {
  await using project = await cliProject();
  const result = await project.run(["workspace", "list"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "* default\n");
  assert.equal(result.stderr, "");
  const json = parseJson(await project.run(["workspace", "list", "--json"]));
  assert.deepEqual(json, { workspaces: ["default"], selected: "default" });
});

Deno.test("gaib-state workspace new creates an empty state under the lock and selects it", async () => {
  await using project = await cliProject();
  const created = await project.run(["workspace", "new", "staging"]);
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.stdout, "");
  assert.match(created.stderr, /Created and selected workspace "staging"/);
  assert.equal(
    (await Deno.readTextFile(`${project.path}/.gaib/.current-workspace`)).trim(),
    "staging",
  );
  const list = await project.run(["workspace", "list"]);
  assert.equal(list.stdout, "  default\n* staging\n");
  const show = await project.run(["workspace", "show"]);
  assert.equal(show.stdout, "staging\n");
  const pulled = JSON.parse((await project.run(["state", "pull"])).stdout);
  assert.equal(pulled.version, 4);
  assert.equal(pulled.serial, 0);
  assert.deepEqual(pulled.resources, []);
  const lock = parseJson(await project.run(["lock", "status", "--json"]));
  assert.equal(lock.locked, false, "workspace new released its lock");

  const again = await project.run(["workspace", "new", "staging"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^Error: Workspace "staging" already exists/);
});

Deno.test("gaib-state workspace select needs an existing workspace unless --or-create", async () => {
  await using project = await cliProject();
  const missing = await project.run(["workspace", "select", "prod"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Workspace "prod" does not exist.*--or-create/);
  const created = await project.run(["workspace", "select", "prod", "--or-create", "--json"]);
  assert.equal(created.code, 0, created.stderr);
  assert.deepEqual(parseJson(created), { workspace: "prod", created: true, selected: true });
  const back = await project.run(["workspace", "select", "default"]);
  assert.equal(back.code, 0);
  assert.match(back.stderr, /Selected workspace "default"/);
  assert.equal((await project.run(["workspace", "show"])).stdout, "default\n");
});

Deno.test("gaib-state picks the workspace from -w, then GAIB_WORKSPACE, then the selection", async (t) => {
  await using project = await cliProject();
  await project.run(["workspace", "new", "stored"]);
  const cases: Array<[string, string[], Record<string, string>, string, string]> = [
    ["the stored selection", [], {}, "stored", ".current-workspace"],
    ["GAIB_WORKSPACE over the selection", [], { GAIB_WORKSPACE: "env" }, "env", "GAIB_WORKSPACE"],
    ["-w over GAIB_WORKSPACE", ["-w", "flag"], { GAIB_WORKSPACE: "env" }, "flag", "flag"],
    ["--workspace before the command", ["--workspace=flag"], {}, "flag", "flag"],
  ];
  for (const [name, flags, env, expected, source] of cases) {
    await t.step(name, async () => {
      const args = flags[0]?.startsWith("--workspace")
        ? [...flags, "workspace", "show", "--json"]
        : ["workspace", "show", "--json", ...flags];
      const result = await project.run(args, { env });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(parseJson(result), { workspace: expected, source });
    });
  }
});

Deno.test("gaib-state workspace delete refuses default, the selected one and one with resources", async () => {
  await using project = await cliProject();
  await project.run(["workspace", "new", "busy"]);
  const push = await project.run(["state", "push", STATE]);
  assert.equal(push.code, 0, push.stderr);
  await project.run(["workspace", "new", "empty"]);
  await project.run(["workspace", "select", "default"]);

  const defaultWs = await project.run(["workspace", "delete", "default"]);
  assert.equal(defaultWs.code, 1);
  assert.match(defaultWs.stderr, /"default" workspace cannot be deleted/);

  const selected = await project.run(["workspace", "delete", "empty"], {
    env: { GAIB_WORKSPACE: "empty" },
  });
  assert.equal(selected.code, 1);
  assert.match(selected.stderr, /"empty" is the selected workspace/);

  const busy = await project.run(["workspace", "delete", "busy", "--json"]);
  assert.equal(busy.code, 1);
  const error = parseJson(busy).error as Record<string, unknown>;
  assert.equal(error.type, "WorkspaceNotEmpty");
  assert.equal(error.instances, 4, "managed instances, as Terraform counts: not data sources");
  assert.match(String(error.message), /"gaib-state workspace delete --force busy"/);

  const empty = await project.run(["workspace", "delete", "empty"]);
  assert.equal(empty.code, 0, empty.stderr);
  const forced = await project.run(["workspace", "delete", "busy", "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /forgetting 4 managed resource instance/);
  assert.equal((await project.run(["workspace", "list"])).stdout, "* default\n");
});

Deno.test("gaib-state workspace delete refuses a locked workspace and names the holder", async () => {
  await using project = await cliProject();
  await project.run(["workspace", "new", "ci"]);
  await project.run(["workspace", "select", "default"]);
  const lock = await project.run(["lock", "-w", "ci", "--info", "deploy 7"]);
  assert.equal(lock.code, 0, lock.stderr);
  const lockId = lock.stdout.trim();
  const refused = await project.run(["workspace", "delete", "ci"]);
  assert.equal(refused.code, 1);
  assert.ok(refused.stderr.includes(`gaib-state force-unlock ${lockId} -w ci`), refused.stderr);
  assert.equal((await project.run(["unlock", lockId, "-w", "ci"])).code, 0);
  assert.equal((await project.run(["workspace", "delete", "ci"])).code, 0);
});

Deno.test("gaib-state workspace delete works under a lock taken earlier with --lock-id, and refuses another", async () => {
  await using project = await cliProject();
  await project.run(["workspace", "new", "pr-42"]);
  await project.run(["workspace", "select", "default"]);
  const lockId = (await project.run(["lock", "-w", "pr-42"])).stdout.trim();
  const without = await project.run(["workspace", "delete", "pr-42"]);
  assert.equal(without.code, 1);
  assert.ok(without.stderr.includes(`gaib-state force-unlock ${lockId} -w pr-42`), without.stderr);
  const wrong = await project.run(["workspace", "delete", "pr-42", "--lock-id", "not-it"]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /not locked with lock ID not-it/);
  const deleted = await project.run([
    "workspace",
    "delete",
    "pr-42",
    "--lock-id",
    lockId,
    "--json",
  ]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.deepEqual(parseJson(deleted), { workspace: "pr-42", deleted: true, instances: 0 });
  assert.equal((await project.run(["workspace", "list"])).stdout, "* default\n");
  // The lock stays with its holder, who releases it; nothing is left behind.
  assert.equal((await project.run(["unlock", lockId, "-w", "pr-42"])).code, 0);
  await assert.rejects(Deno.stat(`${project.path}/.gaib/workspaces/pr-42`), Deno.errors.NotFound);
});

Deno.test("gaib-state workspace delete --force deletes a workspace whose state cannot be read", async () => {
  await using project = await cliProject();
  await project.run(["workspace", "new", "broken"]);
  await project.run(["workspace", "select", "default"]);
  await Deno.writeTextFile(
    `${project.path}/.gaib/workspaces/broken/terraform.tfstate`,
    '{"version": 4, "resources": [',
  );
  const refused = await project.run(["workspace", "delete", "broken"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /not valid JSON/);
  const forced = await project.run(["workspace", "delete", "broken", "--force", "--json"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual(parseJson(forced), { workspace: "broken", deleted: true, instances: null });
  assert.equal((await project.run(["workspace", "list"])).stdout, "* default\n");
});
