/**
 * LocalBackend history beyond the contract: pruning, `history: 0`, modes, leftovers of a
 * crash, SIGKILLed writers, links planted in the history, and the `history` setting through
 * the config rules and `GAIB_STATE_HISTORY`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BackendConfigError,
  BackendError,
  BackendFactory,
  createEmptyState,
  type GaibState,
  LocalBackend,
  serializeState,
  StateVersionNotFoundError,
} from "../mod.ts";
import { tempDir } from "./_temp.ts";
import { modeOf, Script } from "./reliability/_util.ts";
import { template, versionOf } from "./reliability/_states.ts";

const LINEAGE = "11111111-2222-4333-8444-555555555555";
const WRITER = new URL("./reliability/_crash_writer.ts", import.meta.url).pathname;

function state(serial: number): GaibState {
  return {
    ...createEmptyState(),
    serial,
    lineage: LINEAGE,
    outputs: { n: { value: String(serial), type: "string" } },
  };
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) out.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

Deno.test("LocalBackend keeps the current version and `history` earlier ones, pruning on write; the backup stays", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path, history: 3 });
  for (let serial = 1; serial <= 10; serial++) await backend.setState("default", state(serial));
  const versions = await backend.listVersions("default");
  assert.deepEqual(versions.map((v) => v.serial), [10, 9, 8, 7]);
  const ws = `${dir.path}/workspaces/default`;
  assert.equal((await names(`${ws}/history`)).length, 4, "the pruned entries are gone");
  assert.deepEqual(await names(`${ws}/history`), versions.map((v) => v.versionId).sort());
  const backup = await Deno.readTextFile(`${ws}/terraform.tfstate.backup`);
  assert.equal(backup, serializeState(state(9)));
  // Entries are the stored bytes, byte for byte.
  for (const version of versions) {
    assert.equal(
      await Deno.readTextFile(`${ws}/history/${version.versionId}`),
      serializeState(state(version.serial)),
    );
    assert.match(version.versionId, /^\d{8}T\d{9}Z-[0-9a-f]{8}$/);
  }
  // A write of the same content is no change, and adds no version.
  await backend.setState("default", state(10));
  assert.equal((await backend.listVersions("default")).length, 4);
});

Deno.test("LocalBackend with history: 0 keeps no entries, lists the current state alone and says why", async () => {
  await using dir = await tempDir();
  const ws = `${dir.path}/workspaces/default`;
  {
    await using before = new LocalBackend({ path: dir.path });
    for (let serial = 1; serial <= 3; serial++) await before.setState("default", state(serial));
    assert.equal((await names(`${ws}/history`)).length, 3);
  }
  await using backend = new LocalBackend({ path: dir.path, history: 0 });
  await backend.setState("default", state(4));
  assert.deepEqual(await names(`${ws}/history`), [], "the next write prunes every entry");
  const versions = await backend.listVersions("default");
  assert.deepEqual(versions.map((v) => [v.versionId, v.serial, v.current]), [["current", 4, true]]);
  assert.match(versions[0].noHistory!, /history: 0/);
  assert.equal((await backend.getStateVersion("default", "current")).serial, 4);
  // A fresh root with history 0 never makes the directory.
  await using other = await tempDir();
  await using none = new LocalBackend({ path: other.path, history: 0 });
  await none.setState("default", state(1));
  assert.deepEqual(await names(`${other.path}/workspaces/default`), [
    ".guard",
    "terraform.tfstate",
  ]);
});

Deno.test("LocalBackend lists a state it did not write (Terraform, an older gaib-state) as `current`, and keeps it once replaced", async () => {
  await using dir = await tempDir();
  const ws = `${dir.path}/workspaces/default`;
  await Deno.mkdir(ws, { recursive: true });
  await Deno.writeTextFile(`${ws}/terraform.tfstate`, serializeState(state(5)));
  const written = new Date("2026-01-02T03:04:05.678Z");
  await Deno.utime(`${ws}/terraform.tfstate`, written, written);
  await using backend = new LocalBackend({ path: dir.path });
  const versions = await backend.listVersions("default");
  assert.deepEqual(versions.map((v) => [v.versionId, v.serial, v.current]), [["current", 5, true]]);
  assert.equal(versions[0].noHistory, undefined, "history is on: it just has no entry yet");
  await backend.setState("default", state(6));
  const after = await backend.listVersions("default");
  assert.deepEqual(after.map((v) => [v.serial, v.current]), [[6, true], [5, false]]);
  assert.equal(after[1].savedAt, written.toISOString(), "stamped when it was written");
  assert.equal((await backend.getStateVersion("default", after[1].versionId)).serial, 5);
});

Deno.test("LocalBackend adds a landed version a killed writer left out of the history at the next write", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  await backend.setState("default", state(2));
  // What a writer killed between renaming serial 2 into place and linking it leaves.
  const history = `${dir.path}/workspaces/default/history`;
  const newest = (await names(history)).at(-1)!;
  await Deno.remove(`${history}/${newest}`);
  assert.deepEqual((await backend.listVersions("default")).map((v) => v.versionId !== "current"), [
    false,
    true,
  ]);
  await backend.setState("default", state(3));
  assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), [3, 2, 1]);
  // And a version already there is not added twice.
  await backend.setState("default", state(4));
  assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), [4, 3, 2, 1]);
});

Deno.test("LocalBackend writes the history directory 0700 and its entries 0600", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  await backend.setState("default", state(2));
  const history = `${dir.path}/workspaces/default/history`;
  assert.equal(await modeOf(history), 0o700);
  for (const name of await names(history)) assert.equal(await modeOf(`${history}/${name}`), 0o600);
});

Deno.test("LocalBackend never lists a leftover temp file or a stray name in the history, and cleans temps up", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  const history = `${dir.path}/workspaces/default/history`;
  // What a writer killed while copying would leave (the copy path, without hard links), and a
  // truncated file under a name that is not an ID.
  const temp = `${history}/.tmp-history-${crypto.randomUUID()}`;
  await Deno.writeTextFile(temp, serializeState(state(2)).slice(0, 40));
  await Deno.writeTextFile(`${history}/20261130T073501123Z-0badc0de.tmp`, "{");
  await Deno.writeTextFile(`${history}/notes.txt`, "hello");
  assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), [1]);
  // An orphan older than the guard is removed by the next write.
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(temp, old, old);
  await backend.setState("default", state(2));
  assert.ok(!(await names(history)).includes(temp.slice(history.length + 1)), "temp removed");
  assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), [2, 1]);
  // An entry that is not a state (planted, damaged) is left out, not fatal.
  await Deno.writeTextFile(`${history}/20000101T000000000Z-00000000`, "not json");
  assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), [2, 1]);
  await assert.rejects(
    backend.getStateVersion("default", "20000101T000000000Z-00000000"),
    BackendError,
  );
});

Deno.test("LocalBackend history survives writers killed with SIGKILL: every listed version is complete and was current once", async () => {
  await using dir = await tempDir();
  {
    // A first version, so that every round has a state to find.
    await using first = new LocalBackend({ path: dir.path });
    await first.setState("default", versionOf(await template("small"), 1));
  }
  for (let round = 0; round < 8; round++) {
    const writer = new Script(WRITER, [
      JSON.stringify({ root: dir.path, workspace: "default", profile: "small" }),
    ]);
    // Kill inside setState: right after it says which serial it writes, a few rounds in.
    const from = writer.lines.length;
    let seen = 0;
    await writer.until((line) => line.startsWith("write ") && ++seen > round % 4, from);
    await writer.kill();
    await using backend = new LocalBackend({ path: dir.path });
    const versions = await backend.listVersions("default");
    const current = await backend.getState("default");
    assert.ok(current, "a state survived");
    assert.equal(versions[0].serial, current.serial, "the current state comes first");
    assert.ok(versions[0].current);
    const serials = versions.map((v) => v.serial);
    // Every version that landed is there (a gap left by a kill is filled by the next write),
    // each once: a run of consecutive serials down from the current one.
    assert.deepEqual(serials, serials.map((_, i) => current.serial - i), `${serials}`);
    for (const version of versions) {
      const read = await backend.getStateVersion("default", version.versionId);
      assert.equal(read.serial, version.serial, "each entry is a complete state");
    }
    assert.ok(versions.length <= 11);
  }
});

Deno.test("LocalBackend refuses a history directory or entry that is a symbolic link, writing nothing through it", async () => {
  await using dir = await tempDir();
  await using elsewhere = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  const history = `${dir.path}/workspaces/default/history`;
  await Deno.remove(history, { recursive: true });
  await Deno.symlink(elsewhere.path, history);
  const refusal = (e: unknown) => {
    assert.ok(e instanceof BackendError, `${e}`);
    assert.match(e.message, /symbolic link/);
    return true;
  };
  await assert.rejects(backend.listVersions("default"), refusal);
  await assert.rejects(backend.setState("default", state(2)), refusal);
  assert.equal((await backend.getState("default"))?.serial, 1, "refused before replacing");
  assert.deepEqual(await names(elsewhere.path), [], "nothing was written through the link");
  await assert.rejects(backend.getStateVersion("default", "20261130T073501123Z-0badc0de"), refusal);
  // A link as an entry.
  await Deno.remove(history);
  await Deno.mkdir(history, { mode: 0o700 });
  await Deno.writeTextFile(`${elsewhere.path}/secret`, serializeState(state(99)));
  await Deno.symlink(`${elsewhere.path}/secret`, `${history}/20261130T073501123Z-0badc0de`);
  await assert.rejects(backend.listVersions("default"), refusal);
  await assert.rejects(backend.getStateVersion("default", "20261130T073501123Z-0badc0de"), refusal);
});

Deno.test("LocalBackend version IDs never reach the file system unless they are its own", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  await backend.setState("default", state(2));
  // Files an ID could reach if it were joined to a path unchecked.
  await Deno.writeTextFile(`${dir.path}/workspaces/default/history/x`, serializeState(state(7)));
  for (
    const id of [
      "x",
      "../terraform.tfstate.backup",
      "./x",
      "20261130T073501123Z-0badc0de/../x",
      "20261130T073501123Z-0BADC0DE",
      " current",
    ]
  ) {
    await assert.rejects(backend.getStateVersion("default", id), StateVersionNotFoundError, id);
  }
});

Deno.test("LocalBackend removes a workspace's history with the workspace, locked or not", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  for (const ws of ["a", "b"]) {
    await backend.setState(ws, state(1));
    await backend.setState(ws, state(2));
  }
  await backend.deleteState("a");
  assert.deepEqual(await names(`${dir.path}/workspaces/a`), []);
  const { lockId } = await backend.lock("b");
  await backend.deleteState("b", { lockId });
  assert.ok(!(await names(`${dir.path}/workspaces/b`)).includes("history"));
  await backend.unlock("b", lockId);
  assert.deepEqual(await backend.listVersions("b"), []);
});

Deno.test("history is a local backend setting of gaib.yaml and GAIB_STATE_HISTORY, checked by the config rules", async () => {
  await using dir = await tempDir();
  const backend = await BackendFactory.create({ type: "local", path: dir.path, history: 2 });
  try {
    for (let serial = 1; serial <= 5; serial++) await backend.setState("default", state(serial));
    assert.equal((await backend.listVersions("default")).length, 3);
  } finally {
    await backend.close();
  }
  for (const history of [-1, 1.5, "10", 10_001]) {
    assert.throws(
      () => new LocalBackend({ path: dir.path, history: history as number }),
      (e: unknown) => e instanceof BackendConfigError && /history/.test(e.message),
      String(history),
    );
  }
  await Deno.writeTextFile(
    `${dir.path}/gaib.yaml`,
    'version: "1"\nbackend:\n  type: local\n  history: 4\n',
  );
  const configFile = `${dir.path}/gaib.yaml`;
  const env = (vars: Record<string, string>) => new Map(Object.entries(vars));
  const fromFile = await BackendFactory.resolve({ configFile, env: env({}) });
  assert.equal((fromFile.config as { history?: number }).history, 4);
  const fromEnv = await BackendFactory.resolve({
    configFile,
    env: env({ GAIB_STATE_HISTORY: "0" }),
  });
  assert.equal((fromEnv.config as { history?: number }).history, 0);
  await assert.rejects(
    BackendFactory.resolve({ configFile, env: env({ GAIB_STATE_HISTORY: "many" }) }),
    (e: unknown) => e instanceof BackendConfigError && /GAIB_STATE_HISTORY/.test(e.message),
  );
});
