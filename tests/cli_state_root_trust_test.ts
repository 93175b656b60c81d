/**
 * What a planted file in or around the state root can do: nothing. A link committed to a
 * repository in place of `.gaib/.current-workspace` or a state file is refused (never read
 * through: it could point at a secret or at /dev/zero), and a state root that another user owns
 * or everyone may write is not used.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cliProject, parseJson } from "./_cli.ts";
import { pasteCommand, quotedCommands } from "./_paste.ts";
import { tempDir } from "./_temp.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const SECRET = "MTEyMzQ1Njc4OTAxMjM0NTY3OA.GhIjKl.SECRETSECRET";

Deno.test("a planted .current-workspace link or oversized file is refused, and its content never printed", async (t) => {
  await using project = await cliProject();
  await using outside = await tempDir();
  await Deno.mkdir(`${project.path}/.gaib`);
  const selected = `${project.path}/.gaib/.current-workspace`;
  await Deno.writeTextFile(`${outside.path}/secret.env`, `DISCORD_TOKEN=${SECRET}\n`);
  const cases: Array<[string, () => Promise<void>, RegExp]> = [
    [
      "a link to a secret",
      () => Deno.symlink(`${outside.path}/secret.env`, selected),
      /symbolic link/,
    ],
    ["a link to /dev/zero", () => Deno.symlink("/dev/zero", selected), /symbolic link/],
    ["a large file", () => Deno.writeTextFile(selected, `${SECRET}\n`.repeat(100)), /larger than/],
    ["an invalid name", () => Deno.writeTextFile(selected, `a b ${SECRET}\n`), /valid workspace/],
  ];
  for (const [name, plant, message] of cases) {
    await t.step(name, async () => {
      await Deno.remove(selected).catch(() => {});
      await plant();
      for (const args of [["state", "list"], ["state", "list", "--json"], ["config", "show"]]) {
        const result = await project.run(args);
        assert.equal(result.code, 1, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
        assert.match(result.stdout + result.stderr, message);
        assert.ok(!(result.stdout + result.stderr).includes("SECRETSECRET"), result.stderr);
      }
    });
  }
  await Deno.remove(selected);
});

Deno.test("a state file that is a link is never read through, and the message says how to fix it", async () => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  const path = `${project.path}/.gaib/workspaces/default/terraform.tfstate`;
  await Deno.remove(path);
  await Deno.symlink("/dev/zero", path);
  for (const args of [["state", "list"], ["state", "push", "--force", STATE]]) {
    const result = await project.run(args);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /state file .* is a symbolic link/);
    assert.equal((await Deno.lstat(path)).isSymlink, true, "nothing was written through it");
  }
  // The fix it names works when pasted.
  const rm = /\(rm ([^)]+)\)/.exec((await project.run(["state", "list"])).stderr)![1];
  const removed = await new Deno.Command("sh", { args: ["-c", `rm ${rm}`] }).output();
  assert.equal(removed.code, 0);
  assert.equal((await project.run(["state", "list"])).code, 0);
});

Deno.test("a state root another user owns, or that everyone may write, is not used", async (t) => {
  await using project = await cliProject();
  await using elsewhere = await tempDir();
  const root = `${project.path}/.gaib`;
  await t.step("a .gaib link to another user's directory", async () => {
    await Deno.chown(elsewhere.path, 65534, 65534);
    await Deno.chmod(elsewhere.path, 0o777);
    await Deno.symlink(elsewhere.path, root);
    const result = await project.run(["state", "push", "--create", STATE]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /Not using the state root .*where its symbolic link points.*uid 65534/,
    );
    assert.deepEqual([...Deno.readDirSync(elsewhere.path)], [], "nothing was written there");
    await Deno.remove(root);
    await Deno.chown(elsewhere.path, Deno.uid(), Deno.gid());
  });
  await t.step("a .gaib directory every user may write", async () => {
    await Deno.mkdir(root);
    await Deno.chmod(root, 0o777);
    const result = await project.run(["state", "list"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /writable by every user \(mode 0777\)/);
    await Deno.chmod(root, 0o700);
    assert.equal((await project.run(["state", "list"])).code, 0);
  });
});

Deno.test("a lock whose ID starts with a dash can be released with the command gaib-state prints", async () => {
  await using project = await cliProject();
  assert.equal((await project.run(["lock", "acquire"])).code, 0);
  const file = `${project.path}/.gaib/workspaces/default/.terraform.tfstate.lock.info`;
  const record = JSON.parse(await Deno.readTextFile(file));
  await Deno.writeTextFile(file, JSON.stringify({ ...record, ID: "-evil" }));
  const busy = await project.run(["lock", "acquire"]);
  assert.equal(busy.code, 1);
  const [line] = quotedCommands(busy.stderr);
  assert.equal(line, "gaib-state force-unlock -w default -- '-evil'");
  // Pasted on a terminal, it asks first; "y" releases the lock.
  const pasted = await pasteCommand(line, { cwd: project.path, answer: "y" });
  assert.equal(pasted.code, 0, pasted.stdout);
  assert.equal(parseJson(await project.run(["lock", "status", "--json"])).locked, false);
});
