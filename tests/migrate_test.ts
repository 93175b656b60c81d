/**
 * `migrateStates` on local backends (two state roots): each rule of the copy, what survives
 * it, locks held by another process, dry runs, aborts, and errors on every path leaving no
 * lock behind. The same migrations against the S3 servers, through the CLI, are in
 * `cli_migrate_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BackendError,
  createEmptyState,
  type GaibState,
  LocalBackend,
  migrateStates,
  type MigrationEntry,
  MigrationError,
  type MigrationProgress,
  parseState,
  serializeState,
  type StateBackend,
} from "../mod.ts";
import { BACKENDS, descriptorOf } from "../src/backends/_registry.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { tempDir } from "./_temp.ts";
import { snapshotTree } from "./reliability/_util.ts";

/** A state with fields this library does not model and numbers a double would change. */
const RICH = `{
  "version": 4,
  "terraform_version": "1.9.8",
  "serial": 12,
  "lineage": "8d0e3c1a-5f2b-4c7d-9e10-2a3b4c5d6e7f",
  "outputs": {
    "guild": { "value": 123456789012345678901234567890, "type": "number" },
    "ratio": { "value": 1.0, "type": "number", "future_output_field": [1e400, -0] }
  },
  "resources": [
    {
      "mode": "managed",
      "type": "discord_role",
      "name": "admin",
      "provider": "provider[\\"registry.terraform.io/x/discord\\"]",
      "instances": [
        {
          "schema_version": 0,
          "attributes": { "id": "9007199254740993", "permissions": 9007199254740993 },
          "identity": { "id": 18446744073709551615 },
          "sensitive_attributes": []
        }
      ],
      "future_resource_field": { "__proto__": { "x": 1 } }
    }
  ],
  "check_results": null,
  "future_top_level": { "nested": [1.50, 2E+3] }
}
`;

function richState(): GaibState {
  return parseState(RICH)!;
}

function stateOf(lineage: string, serial: number, note = ""): GaibState {
  return {
    ...createEmptyState(),
    lineage,
    serial,
    outputs: note ? { note: noteOutput(note) } : {},
  };
}

function noteOutput(value: string) {
  return { value, type: "string" };
}

/** Two state roots in one temp dir, with a backend on each. */
async function roots() {
  const dir = await tempDir("gaib-migrate-");
  const backends: StateBackend[] = [];
  const open = (name: string) => {
    const backend = new LocalBackend({ path: `${dir.path}/${name}` });
    backends.push(backend);
    return backend;
  };
  return {
    dir: dir.path,
    from: open("from"),
    to: open("to"),
    open,
    async [Symbol.asyncDispose]() {
      for (const backend of backends) await backend.close().catch(() => {});
      await dir[Symbol.asyncDispose]();
    },
  };
}

async function noLocks(backend: StateBackend, workspaces: string[]): Promise<void> {
  for (const ws of workspaces) {
    assert.equal(await backend.getLockInfo(ws), null, `a lock was left on "${ws}"`);
  }
}

function byWorkspace(results: MigrationEntry[]): Record<string, MigrationEntry> {
  return Object.fromEntries(results.map((entry) => [entry.workspace, entry]));
}

Deno.test("migrateStates copies a state as it is: lineage, serial, unknown fields, numbers beyond 2^53", async () => {
  await using r = await roots();
  await r.from.setState("default", richState());
  await r.from.setState("prod", richState());
  const results = await migrateStates(r.from, r.to);
  assert.deepEqual(results.map((e) => [e.workspace, e.action, e.serial, e.lineage]), [
    ["default", "copied", 12, "8d0e3c1a-5f2b-4c7d-9e10-2a3b4c5d6e7f"],
    ["prod", "copied", 12, "8d0e3c1a-5f2b-4c7d-9e10-2a3b4c5d6e7f"],
  ]);
  for (const ws of ["default", "prod"]) {
    const path = (root: string) =>
      ws === "default"
        ? `${r.dir}/${root}/workspaces/default/terraform.tfstate`
        : `${r.dir}/${root}/workspaces/${ws}/terraform.tfstate`;
    const copied = await Deno.readTextFile(path("to"));
    assert.equal(copied, await Deno.readTextFile(path("from")));
    assert.equal(copied, serializeState(richState()));
    for (
      const text of [
        "123456789012345678901234567890",
        "18446744073709551615",
        '"permissions": 9007199254740993',
        "1e400",
        '"__proto__"',
        "future_top_level",
        "1.50",
        "2E+3",
      ]
    ) {
      assert.ok(copied.includes(text), `${text} did not survive`);
    }
  }
  assert.deepEqual(await r.to.listWorkspaces(), ["default", "prod"]);
  await noLocks(r.from, ["default", "prod"]);
  await noLocks(r.to, ["default", "prod"]);
});

Deno.test("migrateStates applies the copy rules to what the target holds", async () => {
  await using r = await roots();
  const cases: Array<[string, GaibState, GaibState | null, MigrationEntry["action"]]> = [
    ["absent", stateOf("L1", 3), null, "copied"],
    ["older", stateOf("L2", 5, "new"), stateOf("L2", 4, "old"), "copied"],
    ["same", stateOf("L3", 5, "x"), stateOf("L3", 5, "x"), "unchanged"],
    ["same-serial-other-content", stateOf("L4", 5, "a"), stateOf("L4", 5, "b"), "refused"],
    ["newer", stateOf("L5", 5), stateOf("L5", 6), "refused"],
    ["other-lineage", stateOf("L6", 9), stateOf("other", 1), "refused"],
  ];
  for (const [ws, source, target] of cases) {
    await r.from.setState(ws, source);
    if (target) await r.to.setState(ws, target);
  }
  const targetFile = (ws: string) => `${r.dir}/to/workspaces/${ws}/terraform.tfstate`;
  const before = await snapshotTree(`${r.dir}/to`);
  const results = byWorkspace(await migrateStates(r.from, r.to));
  for (const [ws, source, target, action] of cases) {
    const entry = results[ws];
    assert.equal(entry.action, action, `${ws}: ${JSON.stringify(entry)}`);
    assert.equal(entry.serial, source.serial);
    assert.equal(entry.lineage, source.lineage);
    assert.deepEqual(
      entry.target,
      target ? { serial: target.serial, lineage: target.lineage } : undefined,
    );
    const stored = await Deno.readTextFile(targetFile(ws));
    if (action === "refused") {
      assert.equal(stored, serializeState(target!), `${ws}: a refused target changed`);
      assert.match(entry.reason ?? "", /force/);
    } else {
      assert.equal(stored, serializeState(source));
    }
  }
  assert.match(results["other-lineage"].reason!, /lineage other .*another lineage/);
  assert.match(results["newer"].reason!, /serial 6, newer than the source's serial 5/);
  assert.match(results["same-serial-other-content"].reason!, /other content/);
  assert.equal(results["same"].reason, undefined);
  // "unchanged" wrote nothing: its file is the one from before.
  const after = await snapshotTree(`${r.dir}/to`);
  assert.equal(
    after["workspaces/same/terraform.tfstate"],
    before["workspaces/same/terraform.tfstate"],
  );

  // With force, the refused ones are copied over, and say so.
  const replaced: Record<string, string> = {};
  const forced = byWorkspace(
    await migrateStates(r.from, r.to, {
      force: true,
      onReplace(ws, state) {
        replaced[ws] = serializeState(state);
      },
    }),
  );
  // Each state that force replaced was handed over first, as it was.
  assert.deepEqual(
    replaced,
    Object.fromEntries(
      cases.filter(([, , , action]) => action === "refused")
        .map(([ws, , target]) => [ws, serializeState(target!)]),
    ),
  );
  for (const ws of ["same-serial-other-content", "newer", "other-lineage"]) {
    assert.equal(forced[ws].action, "copied");
    assert.match(forced[ws].reason!, /^forced: /);
    assert.equal(
      await Deno.readTextFile(targetFile(ws)),
      await Deno.readTextFile(`${r.dir}/from/workspaces/${ws}/terraform.tfstate`),
    );
  }
  assert.equal(forced["absent"].action, "unchanged");
  await noLocks(r.from, cases.map(([ws]) => ws));
  await noLocks(r.to, cases.map(([ws]) => ws));
});

Deno.test("migrateStates reports a workspace without a state as empty and writes nothing for it", async () => {
  await using r = await roots();
  await r.from.setState("prod", stateOf("L", 1));
  const results = await migrateStates(r.from, r.to);
  assert.deepEqual(results.map((e) => [e.workspace, e.action, e.serial, e.lineage]), [
    ["default", "empty", null, null],
    ["prod", "copied", 1, "L"],
  ]);
  assert.equal(await r.to.getState("default"), null);
  // Nothing to copy, so the target was not even locked: no directory appeared for it there.
  await assert.rejects(() => Deno.stat(`${r.dir}/to/workspaces/default`), Deno.errors.NotFound);
});

Deno.test("migrateStates copies only the workspaces asked for, and refuses a missing one before anything", async () => {
  await using r = await roots();
  for (const ws of ["a", "b", "c"]) await r.from.setState(ws, stateOf(`L-${ws}`, 1));
  const results = await migrateStates(r.from, r.to, { workspaces: ["c", "a", "c"] });
  assert.deepEqual(results.map((e) => [e.workspace, e.action]), [["c", "copied"], ["a", "copied"]]);
  assert.equal(await r.to.getState("b"), null);

  const before = await snapshotTree(r.dir);
  await assert.rejects(
    () => migrateStates(r.from, r.to, { workspaces: ["b", "nope"] }),
    (error: Error) => {
      assert.ok(error instanceof BackendError);
      assert.match(
        error.message,
        /The source has no workspace "nope" \(it has "a", "b", "c", "default"\)\. Nothing was migrated/,
      );
      return true;
    },
  );
  await assert.rejects(() => migrateStates(r.from, r.to, { workspaces: ["../x"] }), BackendError);
  assert.deepEqual(await snapshotTree(r.dir), before);
});

Deno.test("migrateStates with dryRun reports what it would do and changes no byte on either side", async () => {
  await using r = await roots();
  await r.from.setState("a", stateOf("L", 2));
  await r.from.setState("b", stateOf("L", 2));
  await r.to.setState("b", stateOf("other", 7));
  await using holder = await spawnLockHolder({
    backend: { type: "local", path: `${r.dir}/from` },
    workspace: "a",
  });
  const before = await snapshotTree(r.dir);
  const results = byWorkspace(await migrateStates(r.from, r.to, { dryRun: true }));
  assert.equal(results.a.action, "copied");
  assert.equal(results.a.dryRun, true);
  assert.match(results.a.reason!, /locked on the source, held by holder-\d+ .*a real run waits/);
  assert.equal(results.a.holder?.ID, holder.lockId);
  assert.equal(results.b.action, "refused");
  assert.equal(results.default.action, "empty");
  assert.deepEqual(await snapshotTree(r.dir), before);
});

Deno.test("migrateStates refuses a workspace another process holds locked, naming the holder, and copies the rest", async () => {
  await using r = await roots();
  for (const ws of ["a", "b", "c"]) await r.from.setState(ws, stateOf(`L-${ws}`, 1));
  await using holder = await spawnLockHolder({
    backend: { type: "local", path: `${r.dir}/to` },
    workspace: "b",
    who: "alice@ci",
  });
  const results = byWorkspace(await migrateStates(r.from, r.to));
  assert.equal(results.a.action, "copied");
  assert.equal(results.c.action, "copied");
  assert.equal(results.b.action, "refused");
  assert.match(
    results.b.reason!,
    /^locked on the target, held by alice@ci \(apply, since .*lock ID /,
  );
  assert.equal(results.b.holder?.ID, holder.lockId);
  assert.equal(await r.to.getState("b"), null);
  // The holder keeps its lock; the source's lock on "b" was released.
  assert.equal((await r.to.getLockInfo("b"))?.ID, holder.lockId);
  await noLocks(r.from, ["a", "b", "c"]);
  assert.equal(await holder.release(), "UNLOCKED");
});

Deno.test("migrateStates waits for a busy lock up to lockTimeoutMs, then copies", async () => {
  await using r = await roots();
  await r.from.setState("a", stateOf("L", 4));
  const holder = await spawnLockHolder({
    backend: { type: "local", path: `${r.dir}/from` },
    workspace: "a",
  });
  const steps: MigrationProgress[] = [];
  let released: Promise<string> | undefined;
  const results = await migrateStates(r.from, r.to, {
    workspaces: ["a"],
    lockTimeoutMs: 120_000,
    onProgress(step) {
      steps.push(step);
      // The migration waits: let the holder go (the event, not a timer, says when).
      if (step.phase === "waiting") released = holder.release();
    },
  });
  assert.equal(await released, "UNLOCKED");
  assert.deepEqual(steps.map((s) => [s.phase, s.side]), [
    ["start", undefined],
    ["waiting", "source"],
    ["locked", undefined],
    ["done", undefined],
  ]);
  assert.equal(steps[1].holder?.ID, holder.lockId);
  assert.equal(results[0].action, "copied");
  assert.equal((await r.to.getState("a"))?.serial, 4);
});

Deno.test("migrateStates refuses to copy a store onto itself", async () => {
  await using r = await roots();
  await r.from.setState("a", stateOf("L", 1));
  await assert.rejects(() => migrateStates(r.from, r.from), /same backend/);
  const before = await snapshotTree(r.dir);
  const again = r.open("from"); // another backend on the same root
  await assert.rejects(
    () => migrateStates(r.from, again),
    (error: Error) => {
      assert.ok(error instanceof MigrationError);
      assert.match(error.message, /The source and the target are the same store/);
      assert.deepEqual(error.results, []);
      return true;
    },
  );
  await noLocks(r.from, ["a", "default"]);
  const after = await snapshotTree(r.dir);
  // Only lock traffic happened: the state files are untouched.
  for (const [name, value] of Object.entries(before)) {
    if (name.endsWith("terraform.tfstate")) assert.equal(after[name], value);
  }
});

Deno.test("migrateStates stops at an abort, releases every lock and lists what it finished", async () => {
  await using r = await roots();
  for (const ws of ["a", "b", "c", "d"]) await r.from.setState(ws, stateOf(`L-${ws}`, 1));
  const controller = new AbortController();
  const error = await migrateStates(r.from, r.to, {
    signal: controller.signal,
    onProgress(step) {
      if (step.phase === "done" && step.workspace === "b") controller.abort();
    },
  }).then(() => null, (e) => e);
  assert.ok(error instanceof MigrationError, String(error));
  assert.match(error.message, /stopped at workspace "c"\. 2 workspace\(s\) were finished/);
  assert.deepEqual(error.results.map((e) => e.workspace), ["a", "b"]);
  assert.equal(await r.to.getState("c"), null);
  await noLocks(r.from, ["a", "b", "c", "d"]);
  await noLocks(r.to, ["a", "b", "c", "d"]);
  // Running it again finishes the job and copies nothing twice.
  const rest = byWorkspace(await migrateStates(r.from, r.to));
  assert.deepEqual(
    ["a", "b", "c", "d"].map((ws) => rest[ws].action),
    ["unchanged", "unchanged", "copied", "copied"],
  );
});

/**
 * A backend that forwards every method to another (whatever the interface grows), with some
 * replaced: a broken store or wrapper, in front of a real backend.
 */
function wrapped(inner: StateBackend, override: Partial<StateBackend>): StateBackend {
  return new Proxy(inner, {
    get(target, name) {
      if (Object.hasOwn(override, name)) return override[name as keyof StateBackend];
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("migrateStates reads the copy back, and stops when the target did not keep it", async () => {
  await using r = await roots();
  await r.from.setState("a", richState());
  await r.from.setState("b", richState());
  // A target that loses a field on the way (as a broken store or wrapper would).
  const lossy = wrapped(r.to, {
    setState: (ws, state, options) => {
      const { future_top_level: _, ...rest } = state;
      return r.to.setState(ws, rest as GaibState, options);
    },
  });
  const error = await migrateStates(r.from, lossy).then(() => null, (e) => e);
  assert.ok(error instanceof MigrationError, String(error));
  assert.match(error.message, /workspace "a" read back from the target differs/);
  assert.deepEqual(error.results, []);
  await noLocks(r.from, ["a", "b"]);
  await noLocks(r.to, ["a", "b"]);
  assert.equal(await r.to.getState("b"), null);
});

Deno.test("migrateStates releases both locks when a write fails, and stops with the cause", async () => {
  await using r = await roots();
  await r.from.setState("a", stateOf("L", 1));
  const failing = wrapped(r.to, {
    setState: () => Promise.reject(new Error("disk on fire")),
  });
  const error = await migrateStates(r.from, failing).then(() => null, (e) => e);
  assert.ok(error instanceof MigrationError, String(error));
  assert.match(error.message, /stopped at workspace "a": disk on fire/);
  assert.equal((error.cause as Error).message, "disk on fire");
  await noLocks(r.from, ["a"]);
  await noLocks(r.to, ["a"]);
});

Deno.test("migrateStates refuses a workspace whose source state cannot be read, and goes on", async () => {
  await using r = await roots();
  await r.from.setState("a", stateOf("L", 1));
  await r.from.setState("b", stateOf("L", 1));
  await Deno.writeTextFile(`${r.dir}/from/workspaces/a/terraform.tfstate`, "{ not json");
  const results = byWorkspace(await migrateStates(r.from, r.to));
  assert.equal(results.a.action, "refused");
  assert.match(results.a.reason!, /line 1, column 3/);
  assert.equal(results.b.action, "copied");
  await noLocks(r.from, ["a", "b"]);
  await noLocks(r.to, ["a", "b"]);
});

Deno.test("every backend names where its states are: the same store whatever its locks, never a secret", () => {
  for (const descriptor of BACKENDS) {
    assert.equal(typeof descriptor.location, "function", `${descriptor.type} has no location`);
  }
  const s3 = descriptorOf("s3")!.location as (config: S3BackendConfig) => string;
  const base: S3BackendConfig = {
    type: "s3",
    bucket: "states",
    key: "discord/terraform.tfstate",
    endpoint: "https://user:hunter2@s3.example.test:9000/",
  };
  const withDynamo = s3({ ...base, dynamodb_table: "locks" });
  assert.equal(
    withDynamo,
    s3({ ...base, use_lockfile: true, endpoint: "https://s3.example.test:9000" }),
  );
  assert.equal(
    withDynamo,
    "s3 https://s3.example.test:9000 bucket states key discord/terraform.tfstate (workspace_key_prefix env:)",
  );
  assert.ok(!withDynamo.includes("hunter2") && !withDynamo.includes("user"));
  for (
    const other of [
      { ...base, key: "other/terraform.tfstate" },
      { ...base, bucket: "states2" },
      { ...base, workspace_key_prefix: "ws" },
      { ...base, endpoint: "https://s3.other.test:9000" },
      { ...base, key: "discord/${workspace}/terraform.tfstate" },
    ]
  ) {
    assert.notEqual(s3(other), withDynamo, JSON.stringify(other));
  }
  const local = descriptorOf("local")!.location as (
    config: { type: "local"; path: string },
  ) => string;
  assert.notEqual(local({ type: "local", path: "/a" }), local({ type: "local", path: "/b" }));
});
