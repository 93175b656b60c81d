import assert from "node:assert/strict";
import {
  BackendConfigError,
  BackendError,
  createEmptyState,
  type GaibState,
  LocalBackend,
  parseState,
  serializeState,
  StateLineageError,
  StateLockError,
  StateSerialError,
  withBackend,
  withLock,
  WorkspaceNotEmptyError,
} from "../mod.ts";
import {
  decodeLockRecord,
  judgeLock,
  type LockHolder,
  thisMachine,
} from "../src/backends/_local_lock.ts";
import { tempDir } from "./_temp.ts";

const WORKER = new URL("./testdata/local_worker.ts", import.meta.url).pathname;

function state(serial: number, lineage = "lineage-1"): GaibState {
  return { ...createEmptyState(), serial, lineage };
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** Starts a worker process; `firstLine` resolves with its first line of output. */
function spawnWorker(...args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", WORKER, ...args],
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
  const rest = async () => {
    await firstLine;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return buffered;
      buffered += value;
    }
  };
  return { child, firstLine, rest };
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

Deno.test("LocalBackend.getState returns null before the first write and for an empty file", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  assert.equal(await backend.getState("default"), null);
  await Deno.mkdir(`${dir.path}/workspaces/default`, { recursive: true });
  await Deno.writeTextFile(`${dir.path}/workspaces/default/terraform.tfstate`, "");
  assert.equal(await backend.getState("default"), null);
});

Deno.test("LocalBackend.setState refuses another lineage unless forced", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1, "a"));
  await assert.rejects(backend.setState("default", state(5, "b")), (e: unknown) => {
    assert.ok(e instanceof StateLineageError);
    assert.equal(e.storedLineage, "a");
    assert.equal(e.newLineage, "b");
    assert.match(e.message, /lineage "b" differs from the stored state's lineage "a"/);
    return true;
  });
  assert.equal((await backend.getState("default"))?.lineage, "a");
  await backend.setState("default", state(5, "b"), { force: true });
  assert.equal((await backend.getState("default"))?.lineage, "b");
});

Deno.test("LocalBackend.setState refuses an older serial and an equal serial with other content", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(3));
  await assert.rejects(backend.setState("default", state(2)), StateSerialError);
  const changed = { ...state(3), outputs: { x: { value: 1, type: "number" } } };
  await assert.rejects(backend.setState("default", changed), /equals the stored state's/);
  // The same serial with identical content is no change, and is accepted.
  await backend.setState("default", state(3));
  assert.equal((await backend.getState("default"))?.serial, 3);
  await backend.setState("default", state(1), { force: true });
  assert.equal((await backend.getState("default"))?.serial, 1);
});

Deno.test("LocalBackend.setState accepts an equal serial written in another layout by Terraform", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const s = state(4);
  await backend.setState("default", s);
  // Terraform's own encoder writes the same content differently (compact here).
  await Deno.writeTextFile(backend.statePath("default"), JSON.stringify(s));
  await backend.setState("default", s);
});

Deno.test("LocalBackend.setState refuses an invalid state and leaves the stored one", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  const bad = { ...state(2), version: 3 } as unknown as GaibState;
  await assert.rejects(backend.setState("default", bad), /legacy format version 3/);
  assert.equal((await backend.getState("default"))?.serial, 1);
});

Deno.test("LocalBackend.setState with force replaces a damaged stored state", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", state(1));
  await Deno.writeTextFile(backend.statePath("default"), '{"version": 4, "serial": 2, "lin');
  await assert.rejects(backend.getState("default"), /not valid JSON/);
  await assert.rejects(backend.setState("default", state(3)), /not valid JSON/);
  await backend.setState("default", state(3), { force: true });
  assert.equal((await backend.getState("default"))?.serial, 3);
});

Deno.test("LocalBackend.lock() refuses a second holder and names the first", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const first = await backend.lock("prod", { who: "alice@ci", operation: "apply" });
  await assert.rejects(backend.lock("prod", { who: "bob" }), (e: unknown) => {
    assert.ok(e instanceof StateLockError);
    assert.equal(e.lockInfo?.Who, "alice@ci");
    assert.equal(e.lockInfo?.ID, first.lockId);
    assert.match(e.message, /held by alice@ci \(apply, since /);
    assert.ok(e.message.includes(`gaib-state force-unlock ${first.lockId} -w prod`));
    return true;
  });
  await backend.unlock("prod", first.lockId);
  const second = await backend.lock("prod");
  await backend.unlock("prod", second.lockId);
});

Deno.test("LocalBackend.getLockInfo returns exactly Terraform's LockInfo fields", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  assert.equal(await backend.getLockInfo("default"), null);
  const { lockId, lockInfo } = await backend.lock("default", { info: "ticket-1" });
  const info = await backend.getLockInfo("default");
  assert.deepStrictEqual(Object.keys(info!), [
    "ID",
    "Operation",
    "Info",
    "Who",
    "Version",
    "Created",
    "Path",
  ]);
  assert.deepStrictEqual(info, lockInfo);
  assert.equal(info!.ID, lockId);
  assert.equal(info!.Info, "ticket-1");
  assert.match(info!.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.match(info!.Who, /.+@.+/);
  assert.equal(await mode(`${dir.path}/workspaces/default/.terraform.tfstate.lock.info`), 0o600);
});

Deno.test("LocalBackend.setState needs the lock's ID while the workspace is locked", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const { lockId } = await backend.lock("default");
  await assert.rejects(backend.setState("default", state(1)), (e: unknown) => {
    assert.ok(e instanceof StateLockError);
    assert.equal(e.lockInfo?.ID, lockId);
    return true;
  });
  await assert.rejects(backend.setState("default", state(1), { lockId: "wrong" }), StateLockError);
  await assert.rejects(
    backend.setState("default", state(1), { lockId: "wrong", force: true }),
    StateLockError,
  );
  await backend.setState("default", state(1), { lockId });
  await backend.unlock("default", lockId);
  // A lock ID that is no longer held is refused too: someone may have broken the lock.
  await assert.rejects(backend.setState("default", state(2), { lockId }), /no longer held/);
});

Deno.test("LocalBackend.unlock with a wrong ID fails and keeps the lock; forceUnlock with the right ID works", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const { lockId } = await backend.lock("default");
  await assert.rejects(backend.unlock("default", "not-the-id"), /does not match/);
  await assert.rejects(backend.forceUnlock("default", "not-the-id"), /does not match/);
  assert.equal((await backend.getLockInfo("default"))?.ID, lockId);
  await backend.forceUnlock("default", lockId);
  assert.equal(await backend.getLockInfo("default"), null);
  await assert.rejects(backend.unlock("default", lockId), /it is not locked/);
});

Deno.test("LocalBackend.lock() with timeoutMs calls onWait once with the holder, then waits for the release", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const first = await backend.lock("default", { who: "alice@ci" });
  const seen: string[] = [];
  let released: Promise<void> | undefined;
  const second = await backend.lock("default", {
    timeoutMs: 60_000,
    onWait: (holder) => {
      seen.push(`${holder.Who} ${holder.ID}`);
      released = backend.unlock("default", first.lockId);
    },
  });
  await released;
  assert.deepEqual(seen, [`alice@ci ${first.lockId}`], "called once, with the holder");
  assert.notEqual(second.lockId, first.lockId);
  // Without a timeout the call does not wait, so onWait is not called.
  await assert.rejects(
    backend.lock("default", { onWait: () => seen.push("waited") }),
    StateLockError,
  );
  assert.equal(seen.length, 1);
  await backend.unlock("default", second.lockId);
});

Deno.test("LocalBackend.lock() gives up when its signal aborts", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await backend.lock("default");
  const controller = new AbortController();
  await assert.rejects(
    backend.lock("default", {
      timeoutMs: 60_000,
      signal: controller.signal,
      onWait: () => controller.abort(),
    }),
    /Stopped waiting for the lock/,
  );
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

Deno.test("withLock releases the lock when the work throws", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await assert.rejects(
    withLock(backend, "default", "me", "apply", () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(await backend.getLockInfo("default"), null);
});

Deno.test("withLock reports a failed unlock with the lock ID", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const error = await withLock(backend, "default", "me", "apply", async ({ lockId }) => {
    await backend.forceUnlock("default", lockId); // someone breaks the lock meanwhile
    return lockId;
  }).then(() => null, (e: unknown) => e);
  assert.ok(error instanceof StateLockError);
  assert.match(error.message, /Failed to release lock [0-9a-f-]{36}/);
});

Deno.test("withBackend always closes the backend, which releases its locks", async () => {
  await using dir = await tempDir();
  await assert.rejects(
    withBackend(new LocalBackend({ path: dir.path }), async (b) => {
      await b.lock("default");
      throw new Error("fail");
    }),
    /fail/,
  );
  await using other = new LocalBackend({ path: dir.path });
  assert.equal(await other.getLockInfo("default"), null);
});

Deno.test("a lock whose holder was killed with SIGKILL does not block the next process", async () => {
  await using dir = await tempDir();
  const worker = spawnWorker("hold", dir.path, "default");
  const { lockId } = JSON.parse(await worker.firstLine);
  await using backend = new LocalBackend({ path: dir.path });
  // While the holder lives, the lock holds, however old it is.
  await assert.rejects(backend.lock("default"), /is running/);
  await assert.rejects(backend.unlock("default", lockId), /still running/);
  worker.child.kill("SIGKILL");
  await worker.child.status;
  const next = await backend.lock("default");
  assert.notEqual(next.lockId, lockId);
  assert.equal((await backend.getLockInfo("default"))?.ID, next.lockId);
  await backend.unlock("default", next.lockId);
});

Deno.test("a detached lock outlives its process and is released only by unlock", async () => {
  await using dir = await tempDir();
  const worker = spawnWorker("hold", dir.path, "default", "detached");
  const { lockId } = JSON.parse(await worker.firstLine);
  worker.child.kill("SIGKILL");
  await worker.child.status;
  await using backend = new LocalBackend({ path: dir.path });
  await assert.rejects(backend.lock("default"), /detached lock without TTL/);
  await backend.unlock("default", lockId); // another process may release it with its ID
  assert.equal(await backend.getLockInfo("default"), null);
});

Deno.test("a detached lock with ttlMs can be taken over once the TTL ends", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await assert.rejects(backend.lock("default", { ttlMs: 10 }), /detached locks only/);
  const { lockId } = await backend.lock("default", { detached: true, ttlMs: 300 });
  await assert.rejects(backend.lock("default"), /detached lock until/);
  await new Promise((resolve) => setTimeout(resolve, 400));
  const next = await backend.lock("default");
  assert.notEqual(next.lockId, lockId);
});

Deno.test("a lock from another machine is taken over only after its lease expired", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const path = `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`;
  await Deno.mkdir(`${dir.path}/workspaces/default`, { recursive: true });
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
        leaseMs: 1000,
      },
    });
  await Deno.writeTextFile(path, record(Date.now() + 5_000));
  const onlyTheLease =
    /Only its lease tells whether its holder \(process 1 on another-machine, another machine\) is alive/;
  await assert.rejects(backend.lock("default"), onlyTheLease);
  // Expired, but within one lease of skew allowance: still held.
  await Deno.writeTextFile(path, record(Date.now() - 500));
  await assert.rejects(backend.lock("default"), onlyTheLease);
  await Deno.writeTextFile(path, record(Date.now() - 5_000));
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
  const path = `${dir.path}/workspaces/default/.terraform.tfstate.lock.info`;
  const before = JSON.parse(await Deno.readTextFile(path)).Holder.expires;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = JSON.parse(await Deno.readTextFile(path)).Holder.expires;
  assert.ok(Date.parse(after) > Date.parse(before), `${after} > ${before}`);
});

Deno.test("several processes racing to take over one stale lock: exactly one wins", async () => {
  await using dir = await tempDir();
  const dead = spawnWorker("hold", dir.path, "default");
  await dead.firstLine;
  dead.child.kill("SIGKILL");
  await dead.child.status;
  const racers = Array.from({ length: 8 }, () => spawnWorker("race", dir.path, "default", "4000"));
  const outcomes = await Promise.all(racers.map((r) => r.firstLine));
  await Promise.all(racers.map((r) => r.child.status));
  assert.equal(outcomes.filter((o) => o === "won").length, 1, outcomes.join(","));
  assert.equal(outcomes.filter((o) => o === "busy").length, 7, outcomes.join(","));
});

Deno.test("20 concurrent lock() calls in one process: exactly one wins", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => backend.lock("default", { who: `w${i}` })),
  );
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  for (const r of results) {
    if (r.status === "rejected") assert.ok(r.reason instanceof StateLockError);
  }
});

Deno.test("8 processes x 25 locked read-increment-write cycles end at serial 200", async () => {
  await using dir = await tempDir();
  const workers = Array.from(
    { length: 8 },
    () => spawnWorker("increment", dir.path, "default", "25"),
  );
  const statuses = await Promise.all(workers.map((w) => w.child.status));
  assert.ok(statuses.every((s) => s.success), "every worker finished");
  await using backend = new LocalBackend({ path: dir.path });
  assert.equal((await backend.getState("default"))?.serial, 200);
  assert.equal(await backend.getLockInfo("default"), null);
});

Deno.test("LocalBackend refuses invalid workspace names without touching the disk", async (t) => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: `${dir.path}/root` });
  const names = [
    "",
    ".",
    "..",
    "../x",
    "a/b",
    "a\0b",
    "x".repeat(91),
    "ünï",
    "a b",
    "$(rm)",
    "`x`",
  ];
  for (const name of names) {
    await t.step(JSON.stringify(name.slice(0, 20)), async () => {
      await assert.rejects(backend.getState(name), BackendConfigError);
      await assert.rejects(backend.setState(name, state(1)), BackendConfigError);
      await assert.rejects(backend.lock(name), BackendConfigError);
    });
  }
  const entries = [];
  for await (const entry of Deno.readDir(dir.path)) entries.push(entry.name);
  assert.deepStrictEqual(entries, []);
});

Deno.test("LocalBackend.listWorkspaces always includes default and lists created ones", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  assert.deepStrictEqual(await backend.listWorkspaces(), ["default"]);
  await backend.setState("staging", state(1));
  await backend.setState("prod", state(1));
  assert.deepStrictEqual(await backend.listWorkspaces(), ["default", "prod", "staging"]);
});

Deno.test("LocalBackend.deleteState refuses default, missing and locked workspaces", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  await assert.rejects(backend.deleteState("default"), /"default" workspace cannot be deleted/);
  await assert.rejects(backend.deleteState("nope"), /Workspace "nope" does not exist/);
  await backend.setState("staging", state(1));
  const { lockId } = await backend.lock("staging");
  await assert.rejects(backend.deleteState("staging"), StateLockError);
  await backend.unlock("staging", lockId);
  await backend.deleteState("staging");
  assert.deepStrictEqual(await backend.listWorkspaces(), ["default"]);
  await assert.rejects(backend.deleteState("staging"), BackendError);
});

/** A state that tracks `managed` managed instances and one data source. */
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

Deno.test("LocalBackend.close releases held locks and refuses further use", async () => {
  await using dir = await tempDir();
  const backend = new LocalBackend({ path: dir.path });
  await backend.lock("default");
  await backend.close();
  await assert.rejects(backend.getState("default"), /closed/);
  await using other = new LocalBackend({ path: dir.path });
  assert.equal(await other.getLockInfo("default"), null);
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
