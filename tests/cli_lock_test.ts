import assert from "node:assert/strict";
import { LocalBackend } from "../mod.ts";
import { pasteCommand, quotedCommands } from "./_paste.ts";
import { type CliProject, cliProject, parseJson } from "./_cli.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { stallNextRead } from "./_stall.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The default workspace's state file of a project on the local backend. */
function statePath(project: CliProject): string {
  return `${project.path}/.gaib/workspaces/default/terraform.tfstate`;
}

Deno.test("gaib-state lock prints only the lock ID, and unlock in another process releases it", async () => {
  await using project = await cliProject();
  const lock = await project.run(["lock", "--ttl", "2h", "--info", "pipeline 42"]);
  assert.equal(lock.code, 0, lock.stderr);
  const lockId = lock.stdout.trim();
  assert.match(lockId, UUID);
  assert.equal(lock.stdout, lockId + "\n", "stdout holds the ID alone");
  assert.ok(lock.stderr.includes(`gaib-state unlock ${lockId}`), lock.stderr);

  // The lock outlived its process: the next process sees it.
  const status = parseJson(await project.run(["lock", "status", "--json"]));
  assert.equal(status.locked, true);
  const info = status.lockInfo as Record<string, string>;
  assert.equal(info.ID, lockId);
  assert.equal(info.Operation, "lock");
  assert.equal(info.Info, "pipeline 42");

  const text = await project.run(["lock-info"]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /Workspace "default" is locked\./);
  assert.ok(text.stdout.includes(`Lock ID:   ${lockId}`));

  const wrong = await project.run(["unlock", crypto.randomUUID()]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /does not match the current lock/);

  const unlock = await project.run(["unlock", lockId]);
  assert.equal(unlock.code, 0, unlock.stderr);
  assert.match(unlock.stderr, new RegExp(`Released lock ${lockId}`));
  assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, false);

  const again = await project.run(["unlock", lockId]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /not locked/);
});

Deno.test("gaib-state lock --json reports the lock and its expiry, and a lapsed TTL frees the workspace", async () => {
  await using project = await cliProject();
  const result = await project.run(["lock", "--ttl", "1s", "--json"]);
  assert.equal(result.code, 0, result.stderr);
  const json = parseJson(result);
  assert.match(String(json.lockId), UUID);
  assert.equal(json.workspace, "default");
  assert.equal(json.ttlMs, 1000);
  assert.equal(
    Date.parse(String(json.expires)) - Date.parse((json.lockInfo as { Created: string }).Created),
    1000,
  );
  // The next lock waits for the TTL to end (no sleep that could end too soon), then takes it.
  const next = await project.run(["lock", "--lock-timeout", "60s"]);
  assert.equal(next.code, 0, `an expired detached lock may be taken over: ${next.stderr}`);
  assert.notEqual(next.stdout.trim(), json.lockId);
});

Deno.test("gaib-state lock lets exactly one of several racing processes win", async () => {
  await using project = await cliProject();
  const racers = Array.from({ length: 4 }, () => project.spawn(["lock", "--json"]));
  try {
    const results = await Promise.all(racers.map((r) => r.result()));
    const winners = results.filter((r) => r.code === 0);
    const losers = results.filter((r) => r.code !== 0);
    assert.equal(winners.length, 1, results.map((r) => r.stdout + r.stderr).join("\n"));
    const lockId = String(parseJson(winners[0]).lockId);
    for (const loser of losers) {
      assert.equal(loser.code, 1);
      const error = parseJson(loser).error as {
        type: string;
        message: string;
        lockInfo: { ID: string };
      };
      assert.equal(error.type, "StateLockError");
      assert.equal(error.lockInfo.ID, lockId);
      assert.ok(error.message.includes(`gaib-state force-unlock ${lockId}`), error.message);
    }
  } finally {
    for (const racer of racers) await racer[Symbol.asyncDispose]();
  }
});

Deno.test("gaib-state commands that change state wait for a busy lock up to --lock-timeout", async (t) => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  const lockId = (await project.run(["lock"])).stdout.trim();

  await t.step("without a timeout the busy lock fails at once, naming holder and fix", async () => {
    const result = await project.run(["state", "rm", "discord_role.admin"]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    const line = result.stderr.trim();
    assert.ok(!line.includes("\n"), `one line: ${result.stderr}`);
    assert.match(line, /^Error: Cannot lock workspace "default": held by .*\(lock, since /);
    assert.ok(line.includes(`run "gaib-state force-unlock ${lockId} -w default"`), line);
    assert.doesNotMatch(line, /Waiting for the lock/, "no wait without a timeout");
  });

  const waiting = new RegExp(
    `Waiting for the lock on workspace "default", held by \\S+ \\(lock, since .*, lock ID ` +
      `${lockId}\\), for up to `,
    "g",
  );

  await t.step("a short timeout says once that it waits, then fails", async () => {
    const result = await project.run([
      "state",
      "rm",
      "discord_role.admin",
      "--lock-timeout",
      "700ms",
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.match(waiting)?.length, 1, result.stderr);
    assert.match(result.stderr, /for up to 700ms\.\.\./);
    assert.match(result.stderr, /Cannot lock workspace/);
  });

  await t.step("a long timeout succeeds once the holder unlocks", async () => {
    await using waiter = project.spawn([
      "state",
      "rm",
      "discord_role.admin",
      "--lock-timeout",
      "60s",
    ]);
    await waiter.waitForStderr(waiting);
    assert.equal((await project.run(["unlock", lockId])).code, 0);
    const result = await waiter.result();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Removed discord_role\.admin/);
    assert.equal(result.stderr.match(waiting)?.length, 1, "said once");
  });

  await t.step("gaib-state lock says it waits too, and --quiet keeps it quiet", async () => {
    const again = (await project.run(["lock"])).stdout.trim();
    const quiet = await project.run(["lock", "--lock-timeout", "300ms", "--quiet"]);
    assert.equal(quiet.code, 1);
    assert.doesNotMatch(quiet.stderr, /Waiting for the lock/);
    const loud = await project.run(["lock", "--lock-timeout", "300ms"]);
    assert.equal(loud.code, 1);
    assert.ok(loud.stderr.includes(`lock ID ${again}), for up to 300ms...`), loud.stderr);
    assert.equal((await project.run(["unlock", again])).code, 0);
  });
});

Deno.test("gaib-state two processes racing to change one workspace: one waits, none loses an update", async () => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  // The first holds the lock, stalled reading the state; the second then asks for the lock.
  await using stall = await stallNextRead(statePath(project));
  await using a = project.spawn(["state", "rm", "discord_role.admin", "--lock-timeout", "60s"]);
  await stall.reading;
  await using b = project.spawn([
    "state",
    "rm",
    "discord_channel.general",
    "--lock-timeout",
    "60s",
  ]);
  await b.waitForStderr(/Waiting for the lock on workspace "default"/);
  await stall.release();
  const [ra, rb] = await Promise.all([a.result(), b.result()]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  const state = JSON.parse((await project.run(["state", "pull"])).stdout);
  assert.equal(state.serial, 5, "two writes, each on top of the other");
  const list = (await project.run(["state", "list"])).stdout;
  assert.equal(
    list,
    'module.app["web"].discord_channel.general[0]\nmodule.app["web"].data.discord_guild.main\n',
  );
});

Deno.test("gaib-state force-unlock resolves a stuck lock; unlock refuses a live holder's lock", async (t) => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  // A live holder in another process, through the library.
  await using holder = await spawnLockHolder({
    backend: { type: "local", path: `${project.path}/.gaib` },
    workspace: "default",
  });
  const lockId = holder.lockId;

  await t.step("unlock of another live process's lock is refused", async () => {
    const result = await project.run(["unlock", lockId]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /belongs to another process that is still running/);
    assert.ok(result.stderr.includes(`gaib-state force-unlock ${lockId}`));
  });
  await t.step("force-unlock off a terminal needs --force (exit 2)", async () => {
    const result = await project.run(["force-unlock", lockId]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /stdin is not a terminal: pass --force/);
    assert.match(result.stderr, /Usage: gaib-state force-unlock \[--force\] <LOCK_ID>/);
    assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, true);
  });
  await t.step("force-unlock with a wrong ID changes nothing", async () => {
    const result = await project.run(["force-unlock", "--force", crypto.randomUUID()]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /does not match the lock/);
  });
  await t.step("force-unlock --force releases it", async () => {
    const result = await project.run(["force-unlock", "--force", lockId, "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const json = parseJson(result);
    assert.equal(json.released, true);
    assert.equal((json.lockInfo as { ID: string }).ID, lockId);
    assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, false);
  });
  await t.step("the next command can take the lock", async () => {
    const result = await project.run(["state", "rm", "discord_channel.general"]);
    assert.equal(result.code, 0, result.stderr);
  });
});

/** `script` (util-linux) gives the CLI a terminal; without it the prompt cannot be tested. */
function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    console.warn('skip the terminal prompt test: no "script" command (apt-get install bsdutils)');
    return false;
  }
}

Deno.test({
  name: "gaib-state force-unlock asks for confirmation on a terminal",
  ignore: !hasScript(),
}, async () => {
  await using project = await cliProject();
  const lockId = (await project.run(["lock"])).stdout.trim();
  for (const [answer, code, locked] of [["n", 1, true], ["y", 0, false]] as const) {
    // Typed on a terminal: the answer goes in once the question is there.
    const result = await pasteCommand(`gaib-state force-unlock ${lockId}`, {
      cwd: project.path,
      answer,
    });
    assert.ok(result.stdout.includes(`Really release lock ${lockId} held by`), result.stdout);
    assert.match(result.stdout, /\[y\/N\]/);
    assert.equal(result.code, code, result.stdout);
    assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, locked);
  }
});

Deno.test("gaib-state lock status --all shows every workspace's lock", async () => {
  await using project = await cliProject();
  await project.run(["workspace", "new", "prod"]);
  await project.run(["workspace", "new", "staging"]);
  const prodLock = (await project.run(["lock", "-w", "prod", "--info", "deploy"])).stdout.trim();
  const text = await project.run(["lock", "status", "--all"]);
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^WORKSPACE\s+LOCK ID\s+WHO\s+OPERATION\s+SINCE$/);
  assert.match(lines[1], /^default\s+-\s+-\s+-\s+-$/);
  assert.match(lines[2], new RegExp(`^prod\\s+${prodLock}\\s+\\S+\\s+lock\\s+\\d{4}-`));
  assert.match(lines[3], /^staging\s+-/);
  const json = parseJson(await project.run(["lock-info", "--all", "--json"]));
  const rows = json.workspaces as Array<{ workspace: string; locked: boolean }>;
  assert.deepEqual(rows.map((r) => [r.workspace, r.locked]), [
    ["default", false],
    ["prod", true],
    ["staging", false],
  ]);
});

Deno.test("gaib-state releases the lock and exits 130/143 on SIGINT/SIGTERM while holding it", async (t) => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    await t.step(signal, async () => {
      await using project = await cliProject();
      assert.equal((await project.run(["state", "push", STATE])).code, 0);
      const before = (await project.run(["state", "pull"])).stdout;
      // The command takes the lock, then blocks reading the state: it holds the lock then.
      await using stall = await stallNextRead(statePath(project));
      await using holder = project.spawn(["state", "rm", "discord_role.admin"]);
      await stall.reading;
      assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, true);
      holder.child.kill(signal);
      const result = await holder.result();
      assert.equal(result.code, code, result.stderr);
      assert.match(result.stderr, new RegExp(`Interrupted by ${signal}: released lock`));
      assert.equal(parseJson(await project.run(["lock-info", "--json"])).locked, false);
      assert.equal((await project.run(["state", "pull"])).stdout, before, "nothing was written");
    });
  }
});

Deno.test("gaib-state stops waiting for a lock on SIGINT and leaves the holder's lock alone", async () => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  const lockId = (await project.run(["lock"])).stdout.trim();
  await using waiter = project.spawn(["state", "rm", "discord_role.admin", "--lock-timeout", "5m"]);
  await waiter.waitForStderr(/Waiting for the lock on workspace "default"/);
  waiter.child.kill("SIGINT");
  const result = await waiter.result();
  assert.equal(result.code, 130, result.stderr);
  assert.match(
    result.stderr,
    /Interrupted by SIGINT while waiting for the lock.*nothing was changed/,
  );
  const status = parseJson(await project.run(["lock-info", "--json"]));
  assert.equal((status.lockInfo as { ID: string }).ID, lockId);
});

Deno.test("gaib-state state commands work under a lock taken earlier with --lock-id, and leave it held", async () => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  const lockId = (await project.run(["lock", "--ttl", "1h"])).stdout.trim();
  const without = await project.run(["state", "rm", "discord_role.admin"]);
  assert.equal(without.code, 1, "the pipeline's own lock blocks a command that takes a lock");
  const wrong = await project.run([
    "state",
    "rm",
    "discord_role.admin",
    "--lock-id",
    crypto.randomUUID(),
  ]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /is not locked with lock ID .* \(--lock-id\): the lock is held by/);
  const rm = await project.run(["state", "rm", "discord_role.admin", "--lock-id", lockId]);
  assert.equal(rm.code, 0, rm.stderr);
  const current = JSON.parse((await project.run(["state", "pull"])).stdout);
  const push = await project.run(["state", "push", "-", "--lock-id", lockId], {
    stdin: JSON.stringify({ ...current, serial: current.serial + 1 }),
  });
  assert.equal(push.code, 0, push.stderr);
  const status = parseJson(await project.run(["lock-info", "--json"]));
  assert.equal((status.lockInfo as { ID: string }).ID, lockId, "the lock is still held");
  assert.equal((await project.run(["unlock", lockId])).code, 0);
  const after = await project.run(["state", "rm", "discord_channel.general", "--lock-id", lockId]);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /it is not locked/);
});

Deno.test("gaib-state takes over at once the lock of a dead holder that ran with other permissions, both ways", async (t) => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  const root = `${project.path}/.gaib`;

  await t.step("held by a deno run -A script, taken by the CLI", async () => {
    const holder = await spawnLockHolder({
      backend: { type: "local", path: root },
      workspace: "default",
    });
    const lockId = holder.lockId;
    // Alive, it is seen running (its flock, not its lease, tells).
    const busy = await project.run(["lock"]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /Its holder \(process \d+\) is running\./);
    await holder.kill();
    // Dead, its lock is taken over without waiting (--lock-timeout is 0s).
    const taken = await project.run(["lock", "--json"]);
    assert.equal(taken.code, 0, taken.stdout + taken.stderr);
    assert.notEqual(parseJson(taken).lockId, lockId);
    assert.equal((await project.run(["unlock", String(parseJson(taken).lockId)])).code, 0);
  });

  await t.step("held by the CLI, taken by a deno run -A process", async () => {
    // The CLI holds the lock while it is stalled reading the state (a FIFO).
    await using stall = await stallNextRead(statePath(project));
    await using holder = project.spawn(["state", "rm", "discord_role.admin"]);
    await stall.reading;
    const status = parseJson(await project.run(["lock-info", "--json"]));
    const lockId = (status.lockInfo as { ID: string }).ID;
    await using backend = new LocalBackend({ path: root }); // this test runs with -A
    await assert.rejects(backend.lock("default"), /is running/);
    holder.child.kill("SIGKILL");
    await holder.result();
    const { lockId: next } = await backend.lock("default"); // timeoutMs 0: no waiting
    assert.notEqual(next, lockId);
    await backend.unlock("default", next);
  });
});

Deno.test("gaib-state names the lock holder from the uid when USER is unset, as in most containers", async () => {
  await using project = await cliProject(); // runs with a cleared environment: no USER
  const result = await project.run(["lock", "--json"]);
  assert.equal(result.code, 0, result.stderr);
  const id = new Deno.Command("id", { args: ["-un"], stdout: "piped" }).outputSync();
  const user = new TextDecoder().decode(id.stdout).trim();
  assert.equal((parseJson(result).lockInfo as { Who: string }).Who, `${user}@${Deno.hostname()}`);
});

Deno.test("gaib-state prints unlock and force-unlock commands that work when pasted, whatever workspace is selected", async (t) => {
  await using project = await cliProject();
  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  assert.equal((await project.run(["workspace", "new", "other"])).code, 0); // selects "other"
  const locked = async () =>
    parseJson(await project.run(["lock-info", "-w", "default", "--json"])).locked;

  await t.step("the unlock command gaib-state lock prints", async () => {
    const lock = await project.run(["lock", "-w", "default"]);
    assert.equal(lock.code, 0, lock.stderr);
    const lockId = lock.stdout.trim();
    const [line] = quotedCommands(lock.stderr);
    assert.equal(line, `gaib-state unlock ${lockId} -w default`);
    const pasted = await pasteCommand(line, { cwd: project.path });
    assert.equal(pasted.code, 0, pasted.stderr);
    assert.equal(await locked(), false);
  });

  await t.step("the force-unlock command of a busy-lock error, on a terminal", async () => {
    const lockId = (await project.run(["lock", "-w", "default"])).stdout.trim();
    const refused = await project.run(["state", "rm", "-w", "default", "discord_role.admin"]);
    assert.equal(refused.code, 1);
    const [line] = quotedCommands(refused.stderr);
    assert.equal(line, `gaib-state force-unlock ${lockId} -w default`);
    const pasted = await pasteCommand(line, { cwd: project.path, answer: "y" });
    assert.equal(pasted.code, 0, pasted.stdout);
    assert.equal(await locked(), false);
  });

  await t.step("the force-unlock command lock status prints for a lock without ID", async () => {
    await Deno.writeTextFile(
      `${project.path}/.gaib/workspaces/default/.terraform.tfstate.lock.info`,
      JSON.stringify({ Operation: "apply", Who: "someone@else" }),
    );
    const status = await project.run(["lock", "status", "-w", "default"]);
    const [line] = quotedCommands(status.stderr);
    assert.equal(line, `gaib-state force-unlock '' -w default`);
    const pasted = await pasteCommand(line, { cwd: project.path, answer: "y" });
    assert.equal(pasted.code, 0, pasted.stdout);
    assert.equal(await locked(), false);
  });
});

Deno.test("gaib-state repeats --config in the commands it prints, so they work when pasted", async () => {
  await using project = await cliProject();
  await Deno.mkdir(`${project.path}/conf`);
  await Deno.writeTextFile(
    `${project.path}/conf/my gaib.yaml`,
    'version: "1"\nbackend:\n  type: local\n  path: ../states\n',
  );
  const config = ["--config", "conf/my gaib.yaml"];
  assert.equal((await project.run(["state", "push", STATE, ...config])).code, 0);
  const lock = await project.run(["lock", "acquire", ...config]);
  assert.equal(lock.code, 0, lock.stderr);
  const lockId = lock.stdout.trim();
  const refused = await project.run(["state", "rm", "discord_role.admin", ...config, "--json"]);
  assert.equal(refused.code, 1);
  const message = String((parseJson(refused).error as { message: string }).message);
  const [line] = quotedCommands(message);
  assert.equal(line, `gaib-state force-unlock ${lockId} -w default --config 'conf/my gaib.yaml'`);
  const [unlock] = quotedCommands(lock.stderr);
  assert.equal(unlock, `gaib-state unlock ${lockId} -w default --config 'conf/my gaib.yaml'`);
  const pasted = await pasteCommand(unlock, { cwd: project.path });
  assert.equal(pasted.code, 0, pasted.stderr);
  const status = parseJson(await project.run(["lock-info", ...config, "--json"]));
  assert.equal(status.locked, false);
});

Deno.test("gaib-state names the workspace in the state commands its address errors suggest", async () => {
  await using project = await cliProject();
  assert.equal((await project.run(["workspace", "new", "other"])).code, 0);
  assert.equal((await project.run(["state", "push", "-w", "other", STATE])).code, 0);
  assert.equal((await project.run(["workspace", "select", "default"])).code, 0);
  const missing = await project.run(["state", "show", "-w", "other", "discord_role.nope"]);
  assert.equal(missing.code, 1);
  assert.deepEqual(quotedCommands(missing.stderr), ["gaib-state state list -w other"]);
  const exists = await project.run(
    ["state", "mv", "-w", "other", "discord_channel.general[0]", "discord_channel.general[1]"],
  );
  assert.equal(exists.code, 1);
  const [rm] = quotedCommands(exists.stderr);
  assert.equal(rm, "gaib-state state rm 'discord_channel.general[1]' -w other");
  const pasted = await pasteCommand(rm, { cwd: project.path });
  assert.equal(pasted.code, 0, pasted.stderr);
});
