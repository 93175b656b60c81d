/**
 * File modes under a permissive umask: every file the local backend and the CLI create is
 * 0600 and every directory 0700, whatever the umask (both run under `umask 000` here).
 *
 * @module
 */

import assert from "node:assert/strict";
import { cliRunArgs } from "./_cli.ts";
import { modeOf, SCRIPT_FLAGS, tempDir } from "./reliability/_util.ts";

const WRITER = new URL("./reliability/_modes_writer.ts", import.meta.url).pathname;
const OPTIONS = { sanitizeOps: false, sanitizeResources: false };

/** Every path under `root` (itself included) with its mode. */
async function modes(root: string): Promise<Map<string, { dir: boolean; mode: number }>> {
  const found = new Map<string, { dir: boolean; mode: number }>();
  async function walk(path: string, rel: string): Promise<void> {
    const info = await Deno.lstat(path);
    found.set(rel || ".", { dir: info.isDirectory, mode: await modeOf(path) });
    if (!info.isDirectory) return;
    for await (const entry of Deno.readDir(path)) {
      await walk(`${path}/${entry.name}`, rel ? `${rel}/${entry.name}` : entry.name);
    }
  }
  await walk(root, "");
  return found;
}

function assertPrivate(found: Map<string, { dir: boolean; mode: number }>): void {
  for (const [path, { dir, mode }] of found) {
    const expected = dir ? 0o700 : 0o600;
    assert.equal(
      mode.toString(8),
      expected.toString(8),
      `${path} is ${mode.toString(8)}, expected ${expected.toString(8)}`,
    );
  }
}

function umask000(args: string[], cwd?: string): Deno.Command {
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  return new Deno.Command("sh", {
    args: ["-c", `umask 000 && exec ${quoted}`],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test({
  name: "LocalBackend creates states, backups, locks and the selected-workspace file 0600 and " +
    "their directories 0700 under umask 000",
  ...OPTIONS,
  async fn() {
    await using dir = await tempDir();
    const root = `${dir.path}/nested/state-root`;
    const child = umask000([Deno.execPath(), "run", ...SCRIPT_FLAGS, WRITER, root]).spawn();
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /ready/);
    const found = await modes(`${dir.path}/nested`);
    child.kill("SIGKILL");
    reader.releaseLock();
    await child.stdout.cancel();
    await child.stderr.cancel();
    await child.status;
    for (
      const expected of [
        "state-root",
        "state-root/.current-workspace",
        "state-root/workspaces",
        "state-root/workspaces/default/terraform.tfstate",
        "state-root/workspaces/default/terraform.tfstate.backup",
        "state-root/workspaces/default/.terraform.tfstate.lock.info",
        "state-root/workspaces/default/.guard",
        "state-root/workspaces/staging/.terraform.tfstate.lock.info",
      ]
    ) {
      assert.ok(found.has(expected), `${expected} was not created`);
    }
    assertPrivate(found);
  },
});

Deno.test({
  name: "the CLI creates its state root, states, backups and locks 0600/0700 under umask 000",
  ...OPTIONS,
  async fn() {
    await using dir = await tempDir();
    const state = JSON.stringify({ version: 4, serial: 1, lineage: "l-1", resources: [] });
    await Deno.writeTextFile(`${dir.path}/in.tfstate`, state);
    for (
      const args of [
        ["workspace", "new", "staging"],
        ["state", "push", "in.tfstate"],
        ["workspace", "select", "default"],
        ["state", "push", "in.tfstate"],
        ["lock", "acquire", "--ttl", "1h"],
      ]
    ) {
      const output = await umask000([Deno.execPath(), ...cliRunArgs(), ...args], dir.path)
        .output();
      assert.equal(output.code, 0, `${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
    }
    await Deno.remove(`${dir.path}/in.tfstate`);
    const found = await modes(`${dir.path}/.gaib`);
    assert.ok(found.has("workspaces/default/.terraform.tfstate.lock.info"), "no lock file");
    assert.ok(found.has("workspaces/staging/terraform.tfstate"), "no state file");
    assertPrivate(found);
  },
});
