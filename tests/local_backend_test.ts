/**
 * LocalBackend: the `StateBackend` contract (tests/_backend_contract.ts), then what only the
 * local backend does: its file layout and modes, flock-based liveness of lock holders (a
 * killed process, another machine's lease, racing processes), temp-file cleanup.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BackendConfigError,
  createEmptyState,
  type GaibState,
  LocalBackend,
  parseState,
  serializeState,
  StateLockError,
  WorkspaceNotEmptyError,
} from "../mod.ts";
import {
  decodeLockRecord,
  judgeLock,
  type LockHolder,
  thisMachine,
} from "../src/backends/_local_lock.ts";
import { backendContract } from "./_backend_contract.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { tempDir } from "./_temp.ts";
import { snapshotTree } from "./reliability/_util.ts";

const WORKER = new URL("./testdata/local_worker.ts", import.meta.url).pathname;

backendContract("LocalBackend", {
  async create() {
    const dir = await tempDir();
    const root = `${dir.path}/.gaib`;
    const clients: LocalBackend[] = [];
    return {
      open() {
        const backend = new LocalBackend({ path: root });
        clients.push(backend);
        return backend;
      },
      async plant(workspace, bytes) {
        const ws = `${root}/workspaces/${workspace}`;
        await Deno.mkdir(ws, { recursive: true, mode: 0o700 });
        await Deno.writeFile(`${ws}/terraform.tfstate`, bytes, { mode: 0o600 });
      },
      async fingerprint() {
        // `.guard` (empty) is the flock every check-then-change takes, not data.
        const tree = await snapshotTree(dir.path);
        return Object.fromEntries(Object.entries(tree).filter(([n]) => !n.endsWith("/.guard")));
      },
      async [Symbol.asyncDispose]() {
        for (const client of clients) await client.close();
        await dir[Symbol.asyncDispose]();
      },
    };
  },
});

function state(serial: number, lineage = "lineage-1"): GaibState {
  return { ...createEmptyState(), serial, lineage };
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/**
 * Starts a worker process (stdin piped: a racer that won holds the lock until it ends);
 * `firstLine` resolves with its first line of output.
 */
function spawnWorker(...args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", WORKER, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const firstLine = (async () => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
    }
    return buffered.split("\n")[0];
  })();
  const finish = async () => {
    await child.stdin.close().catch(() => {});
    await child.status;
    await reader.cancel().catch(() => {});
  };
  return { child, firstLine, finish };
}

Deno.test("LocalBackend stores states at <root>/workspaces/<ws>/terraform.tfstate with 0600 files and 0700 dirs", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: `${dir.path}/.gaib` });
  await backend.setState("default", state(1));
  await backend.setState("default", state(2));
  const ws = `${dir.path}/.gaib/workspaces/default`;
  assert.equal(backend.statePath("default"), `${ws}/terraform.tfstate`);
  assert.equal(parseState(await Deno.readTextFile(`${ws}/terraform.tfstate`))?.serial, 2);
  assert.equal(parseState(await Deno.readTextFile(`${ws}/terraform.tfstate.backup`))?.serial, 1);
  assert.equal(await mode(`${ws}/terraform.tfstate`), 0o600);
  assert.equal(await mode(`${ws}/terraform.tfstate.backup`), 0o600);
  assert.equal(await mode(ws), 0o700);
  assert.equal(await mode(`${dir.path}/.gaib/workspaces`), 0o700);
  assert.equal(await mode(`${dir.path}/.gaib`), 0o700);
  const names = [];
  for await (const entry of Deno.readDir(ws)) names.push(entry.name);
  assert.deepStrictEqual(names.filter((n) => n.startsWith(".tmp-")), [], "no temp files left");
});

Deno.test("LocalBackend writes the lock record 0600: Terraform's fields, then its Holder", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const { lockInfo } = await backend.lock("default", { info: "ticket-1" });
  const path = `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`;
  const record = JSON.parse(await Deno.readTextFile(path));
  assert.deepStrictEqual(Object.keys(record), [
    "ID",
    "Operation",
    "Info",
    "Who",
    "Version",
    "Created",
    "Path",
    "Holder",
  ]);
  assert.deepStrictEqual({ ...record, Holder: undefined }, { ...lockInfo, Holder: undefined });
  assert.equal(record.Holder.pid, Deno.pid);
  assert.equal(await mode(path), 0o600);
});

Deno.test("a lock whose holder was killed with SIGKILL does not block the next process", async () => {
  await using dir = await tempDir();
  await using holder = await spawnLockHolder({
    backend: { type: "local", path: dir.path },
    workspace: "default",
  });
  await using backend = new LocalBackend({ path: dir.path });
  // While the holder lives, the lock holds, however old it is.
  await assert.rejects(backend.lock("default"), /is running/);
  await assert.rejects(backend.unlock("default", holder.lockId), /still running/);
  await holder.kill();
  const next = await backend.lock("default");
  assert.notEqual(next.lockId, holder.lockId);
  assert.equal((await backend.getLockInfo("default"))?.ID, next.lockId);
  await backend.unlock("default", next.lockId);
});

Deno.test("a lock from another machine is taken over only after its lease expired", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const path = `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`;
  await Deno.mkdir(`${dir.path}/workspaces/default`, { recursive: true });
  const leaseMs = 60_000;
  const record = (expires: number) =>
    JSON.stringify({
      ID: "remote-lock",
      Operation: "apply",
      Info: "",
      Who: "ci@other",
      Version: "0.1.0",
      Created: new Date().toISOString(),
      Path: "x",
      Holder: {
        host: "another-machine",
        boot: "another-boot",
        pid: 1,
        detached: false,
        expires: new Date(expires).toISOString(),
        leaseMs,
      },
    });
  const onlyTheLease =
    /Only its lease tells whether its holder \(process 1 on another-machine, another machine\) is alive/;
  await Deno.writeTextFile(path, record(Date.now() + leaseMs));
  await assert.rejects(backend.lock("default"), onlyTheLease);
  // Expired, but within one lease of skew allowance: still held.
  await Deno.writeTextFile(path, record(Date.now() - leaseMs / 2));
  await assert.rejects(backend.lock("default"), onlyTheLease);
  await Deno.writeTextFile(path, record(Date.now() - 2 * leaseMs));
  const next = await backend.lock("default");
  assert.equal((await backend.getLockInfo("default"))?.ID, next.lockId);
});

Deno.test("a dead holder on this machine is recognised whatever permissions either process had", async (t) => {
  const self = thisMachine();
  assert.ok(self.machine, "this test needs a readable /etc/machine-id");
  assert.ok(self.boot, "the tests run with --allow-all, which may read the boot ID");
  const cases: Array<[string, Partial<LockHolder>, RegExp]> = [
    // Written by the CLI (its permissions cannot read /proc, so no boot ID).
    ["the CLI's record (no boot ID)", { boot: "" }, /is gone/],
    ["a deno run -A record", {}, /is gone/],
    ["a record without machine ID, from this boot", { machine: undefined }, /is gone/],
    [
      "another machine of the same name",
      { machine: "0".repeat(32) },
      /Only its lease tells .*, another machine\)/,
    ],
    [
      "an earlier boot or a clone of this installation",
      { boot: "00000000-0000-0000-0000-000000000000" },
      /Only its lease tells .*cannot tell from another machine or an earlier boot\)/,
    ],
    [
      "an older record without machine ID, from the CLI",
      { boot: "", machine: undefined },
      /Only its lease tells/,
    ],
  ];
  for (const [name, holder, verdict] of cases) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      await using backend = new LocalBackend({ path: dir.path });
      await Deno.mkdir(`${dir.path}/workspaces/default`, { recursive: true });
      // Nobody holds the record's flock: its holder is gone, if this machine can tell.
      const record = {
        ID: "dead-holder",
        Operation: "apply",
        Info: "",
        Who: "ci@here",
        Version: "0.1.0",
        Created: new Date().toISOString(),
        Path: "x",
        Holder: {
          host: self.host,
          boot: self.boot,
          machine: self.machine,
          pid: 4242,
          detached: false,
          expires: new Date(Date.now() + 60_000).toISOString(),
          leaseMs: 60_000,
          ...holder,
        },
      };
      await Deno.writeTextFile(
        `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`,
        JSON.stringify(record),
      );
      const judged = await judgeLock(
        decodeLockRecord(new TextEncoder().encode(JSON.stringify(record))),
        `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`,
      );
      assert.match(judged.reason, verdict);
      if (judged.expired) {
        const { lockId } = await backend.lock("default"); // at once: no timeout
        assert.notEqual(lockId, "dead-holder");
      } else {
        await assert.rejects(backend.lock("default"), verdict);
      }
    });
  }
});

Deno.test("a lock written by another tool (no holder record) is never taken over", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await Deno.mkdir(`${dir.path}/workspaces/default`, { recursive: true });
  await Deno.writeTextFile(
    `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`,
    JSON.stringify({ ID: "tf", Operation: "OperationTypeApply", Who: "tf@host", Created: "x" }),
  );
  await assert.rejects(backend.lock("default"), /not taken by gaib-state/);
  await backend.forceUnlock("default", "tf");
});

Deno.test("the lease of a live holder is renewed in the background", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path, leaseMs: 300 });
  await backend.lock("default");
  const ws = `${dir.path}/workspaces/default`;
  const expires = async () =>
    JSON.parse(await Deno.readTextFile(`${ws}/.terraform.tfstate.lock.info`)).Holder.expires;
  // Watch before the first read, so no change between a read and the wait is missed.
  using watcher = Deno.watchFs(ws);
  const changes = watcher[Symbol.asyncIterator]();
  const before = await expires();
  const renewed = (async () => {
    for (;;) {
      const now = await expires();
      if (now !== before) return now;
      await changes.next();
    }
  })();
  const after = await deadline(renewed, 30_000, "the lease was not renewed within 30 s");
  assert.ok(Date.parse(after) > Date.parse(before), `${after} > ${before}`);
});

/** `promise`, or a failure naming `what` when it has not settled after `ms` (a hang guard). */
async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("several processes racing to take over one stale lock: exactly one wins", async () => {
  await using dir = await tempDir();
  const dead = await spawnLockHolder({
    backend: { type: "local", path: dir.path },
    workspace: "default",
  });
  await dead.kill();
  const racers = Array.from({ length: 8 }, () => spawnWorker("race", dir.path, "default"));
  // The winner holds its lock until every racer has told its outcome (then stdin ends).
  const outcomes = await Promise.all(racers.map((r) => r.firstLine));
  await Promise.all(racers.map((r) => r.finish()));
  assert.equal(outcomes.filter((o) => o === "won").length, 1, outcomes.join(","));
  assert.equal(outcomes.filter((o) => o === "busy").length, 7, outcomes.join(","));
});

Deno.test("8 processes x 25 locked read-increment-write cycles end at serial 200", async () => {
  await using dir = await tempDir();
  const workers = Array.from(
    { length: 8 },
    () => spawnWorker("increment", dir.path, "default", "25"),
  );
  const statuses = await Promise.all(workers.map(async (w) => {
    await w.finish();
    return await w.child.status;
  }));
  assert.ok(statuses.every((s) => s.success), "every worker finished");
  await using backend = new LocalBackend({ path: dir.path });
  assert.equal((await backend.getState("default"))?.serial, 200);
  assert.equal(await backend.getLockInfo("default"), null);
});

Deno.test("an orphaned temp file from a crashed writer is removed by a later write", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  const ws = `${dir.path}/workspaces/default`;
  const orphan = `${ws}/.tmp-state-crashed`;
  await Deno.writeTextFile(orphan, serializeState(state(9)).slice(0, 20));
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(orphan, old, old);
  const fresh = `${ws}/.tmp-state-in-flight`;
  await Deno.writeTextFile(fresh, "{");
  await backend.setState("default", state(2));
  await assert.rejects(Deno.stat(orphan), Deno.errors.NotFound);
  await Deno.stat(fresh); // too new to judge: left for later
});

Deno.test("LocalBackend.isConfigured tells whether the state root exists", async () => {
  await using dir = await tempDir();
  await using missing = new LocalBackend({ path: `${dir.path}/nothing` });
  assert.equal(await missing.isConfigured(), false);
  await using present = new LocalBackend({ path: dir.path });
  assert.equal(await present.isConfigured(), true);
});

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f]/;

Deno.test("control characters from a hand-written lock file are printed escaped", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await Deno.mkdir(`${dir.path}/workspaces/default`, { recursive: true });
  await Deno.writeTextFile(
    `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`,
    JSON.stringify({ ID: "id\n\x1b[2J", Who: "evil\rname", Operation: "apply", Created: "x" }),
  );
  await assert.rejects(backend.lock("default"), (e: unknown) => {
    assert.ok(e instanceof StateLockError);
    assert.ok(!CONTROL.test(e.message), JSON.stringify(e.message));
    assert.ok(e.message.includes("id\\u000a\\u001b[2J"), e.message);
    return true;
  });
  await assert.rejects(backend.unlock("default", "x\ny"), (e: unknown) => {
    assert.ok(!CONTROL.test((e as Error).message));
    return true;
  });
});

Deno.test("a lock without a who names the user from the uid when USER is unset", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const saved = Object.fromEntries(
    ["USER", "USERNAME", "LOGNAME"].map((name) => [name, Deno.env.get(name)]),
  );
  const id = new Deno.Command("id", { args: ["-un"], stdout: "piped" }).outputSync();
  const user = new TextDecoder().decode(id.stdout).trim();
  try {
    for (const name of Object.keys(saved)) Deno.env.delete(name);
    const { lockInfo } = await backend.lock("default");
    assert.equal(lockInfo.Who, `${user}@${Deno.hostname()}`);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value !== undefined) Deno.env.set(name, value);
    }
  }
});

function withResources(serial: number, managed: number): GaibState {
  return {
    ...state(serial),
    resources: [
      {
        mode: "managed",
        type: "discord_role",
        name: "r",
        provider: 'provider["registry.terraform.io/x/discord"]',
        instances: Array.from({ length: managed }, (_, i) => ({ index_key: i, attributes: {} })),
      },
      {
        mode: "data",
        type: "discord_guild",
        name: "g",
        provider: 'provider["registry.terraform.io/x/discord"]',
        instances: [{ attributes: {} }],
      },
    ],
  };
}

Deno.test("LocalBackend.deleteState refuses a state that tracks resources unless forced, and checks the lock like setState", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("busy", withResources(1, 2));
  await assert.rejects(backend.deleteState("busy"), (e: unknown) => {
    assert.ok(e instanceof WorkspaceNotEmptyError);
    assert.equal(e.instances, 2, "data sources do not count");
    assert.match(e.message, /gaib-state workspace delete --force busy/);
    return true;
  });
  assert.equal((await backend.getState("busy"))?.serial, 1);
  // Only data sources: nothing is lost.
  await backend.setState("data-only", withResources(1, 0));
  await backend.deleteState("data-only");

  // While locked only the holder's lock ID may delete, as for setState.
  const { lockId } = await backend.lock("busy");
  await assert.rejects(backend.deleteState("busy", { force: true }), /it is locked, held by/);
  await assert.rejects(
    backend.deleteState("busy", { force: true, lockId: "not-it" }),
    /lock not-it is not the current lock/,
  );
  await backend.deleteState("busy", { force: true, lockId });
  assert.equal(await backend.getState("busy"), null);
  assert.deepStrictEqual(await backend.listWorkspaces(), ["default"], "gone from the list");
  // The lock stays until its holder releases it, which leaves nothing behind.
  assert.equal((await backend.getLockInfo("busy"))?.ID, lockId);
  await backend.unlock("busy", lockId);
  await assert.rejects(Deno.stat(`${dir.path}/workspaces/busy`), Deno.errors.NotFound);
  // A lock ID that is no longer held is refused.
  await backend.setState("again", state(1));
  await assert.rejects(backend.deleteState("again", { lockId }), /no longer held/);
  assert.equal((await backend.getState("again"))?.serial, 1);
  // A state that cannot be read cannot be checked: only force deletes it.
  await Deno.writeTextFile(backend.statePath("again"), '{"version": 4, "resources": [');
  await assert.rejects(backend.deleteState("again"), /not valid JSON/);
  await backend.deleteState("again", { force: true });
  assert.deepStrictEqual(await backend.listWorkspaces(), ["default"]);
});

Deno.test("LocalBackend.deleteState checks the state in the same guarded step as the delete", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("staging", state(1));
  // Hold the workspace's guard as a writer in the middle of its step would; the writer gives
  // the state resources before it lets go.
  const guard = await Deno.open(`${dir.path}/workspaces/staging/.guard`, { read: true });
  await guard.lock(true);
  const deleting = backend.deleteState("staging").then(() => null, (e: unknown) => e);
  await Deno.writeTextFile(backend.statePath("staging"), serializeState(withResources(2, 1)));
  guard.close();
  assert.ok((await deleting) instanceof WorkspaceNotEmptyError);
  assert.equal((await backend.getState("staging"))?.serial, 2, "the writer's state is kept");
});

Deno.test("LocalBackend: a lock on a workspace without state leaves no workspace behind", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const { lockId } = await backend.lock("ghost");
  assert.deepStrictEqual(await backend.listWorkspaces(), ["default"], "not listed while locked");
  await assert.rejects(backend.deleteState("ghost"), /Workspace "ghost" does not exist/);
  await backend.unlock("ghost", lockId);
  await assert.rejects(Deno.stat(`${dir.path}/workspaces/ghost`), Deno.errors.NotFound);
  // The same after a detached lock, a force-unlock and close().
  const detached = await backend.lock("ghost", { detached: true });
  await backend.forceUnlock("ghost", detached.lockId);
  await backend.lock("ghost");
  await backend.close();
  await assert.rejects(Deno.stat(`${dir.path}/workspaces/ghost`), Deno.errors.NotFound);
  // A workspace with a state keeps its directory.
  await using other = new LocalBackend({ path: dir.path });
  await other.setState("kept", state(1));
  const held = await other.lock("kept");
  await other.unlock("kept", held.lockId);
  assert.deepStrictEqual(await other.listWorkspaces(), ["default", "kept"]);
});

Deno.test("new LocalBackend checks its options with the factory's rule: an empty path is not the file system's root", () => {
  // Before, "" became "/" and the backend wrote its workspaces under the root directory.
  for (const [options, field] of [[{ path: "" }, "path"], [{ path: "a\0b" }, "path"]] as const) {
    assert.throws(
      () => new LocalBackend(options),
      (e: unknown) => e instanceof BackendConfigError && e.path === field,
      JSON.stringify(options),
    );
  }
  assert.throws(
    () => new LocalBackend({ path: "states", pth: "typo" } as never),
    (e: unknown) => e instanceof BackendConfigError && e.path === "pth",
  );
  // A LocalBackendConfig is a valid argument; type may be left out.
  assert.equal(new LocalBackend({ type: "local", path: "states/" }).root, "states");
  assert.equal(new LocalBackend({ leaseMs: 1000 }).root, ".gaib");
});
