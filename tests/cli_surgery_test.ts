/**
 * The state surgery commands of issue 11 (`output`, `taint`/`untaint`,
 * `state replace-provider`, `state mv` pairs and `--to-workspace`, `--state FILE`, lease
 * details in `lock status`), run as a user runs them, on the local backend and on S3 (the
 * test servers): what they change, what they refuse with nothing changed, `--dry-run`
 * leaving every byte as it was, and sensitive outputs never printed unless named.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliProject, cliProject, cliRunArgs, parseJson } from "./_cli.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { stallNextRead } from "./_stall.ts";
import type { S3BackendConfig } from "../src/config.ts";
import {
  type DynamoServerInfo,
  type S3ServerInfo,
  serverTest,
  tempBucket,
  tempLockTable,
  TEST_CREDENTIALS,
} from "./_server_env.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const SECRET = "super-secret-token";
const OPTIONS = { sanitizeOps: false, sanitizeResources: false } as const;

async function ok(project: CliProject, args: string[], stdin?: string) {
  const result = await project.run(args, stdin === undefined ? {} : { stdin });
  assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
  return result;
}

async function pull(project: CliProject, workspace = "default"): Promise<string> {
  return (await ok(project, ["state", "pull", "-w", workspace])).stdout;
}

async function list(project: CliProject, workspace = "default"): Promise<string[]> {
  return (await ok(project, ["state", "list", "-w", workspace])).stdout.split("\n").filter((l) =>
    l
  );
}

/** Runs a command that must be refused, and checks that no workspace changed. */
async function refused(
  project: CliProject,
  args: string[],
  code: number,
  pattern: RegExp,
  workspaces = ["default"],
) {
  const before = await Promise.all(workspaces.map((w) => pull(project, w)));
  const result = await project.run(args);
  assert.equal(result.code, code, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
  assert.match(result.stderr, pattern);
  assert.deepEqual(await Promise.all(workspaces.map((w) => pull(project, w))), before);
  return result;
}

/** Runs a `--dry-run` command and checks that it changed nothing. */
async function dryRun(project: CliProject, args: string[], workspaces = ["default"]) {
  const before = await Promise.all(workspaces.map((w) => pull(project, w)));
  const result = await ok(project, [...args, "--dry-run", "--json"]);
  assert.equal(parseJson(result).dryRun, true);
  assert.deepEqual(await Promise.all(workspaces.map((w) => pull(project, w))), before);
  return parseJson(result);
}

/** The whole suite, on whatever backend the project's environment selects. */
async function surgerySuite(
  t: Deno.TestContext,
  project: CliProject,
  s3?: { backend: S3BackendConfig; env: Record<string, string> },
) {
  await ok(project, ["state", "push", STATE]);
  const serial = async (ws = "default") => JSON.parse(await pull(project, ws)).serial as number;

  await t.step("output: sensitive values hidden unless asked for by name", async () => {
    for (
      const args of [["output"], ["output", "--json"], ["output", "--verbose"], [
        "output",
        "--json",
        "--verbose",
      ]]
    ) {
      const result = await ok(project, args);
      assert.ok(!(result.stdout + result.stderr).includes(SECRET), args.join(" "));
    }
    assert.equal(
      (await ok(project, ["output"])).stdout,
      'bot_token = <sensitive>\nguild_id = "123456789012345678"\n',
    );
    assert.deepEqual(parseJson(await ok(project, ["output", "--json"])), {
      bot_token: { sensitive: true, type: "string" },
      guild_id: { sensitive: false, type: "string", value: "123456789012345678" },
    });
    assert.equal((await ok(project, ["output", "bot_token", "--raw"])).stdout, SECRET);
    assert.equal(
      parseJson(await ok(project, ["output", "bot_token", "--json"])) as unknown,
      SECRET,
    );
    assert.equal((await ok(project, ["output", "guild_id"])).stdout, '"123456789012345678"\n');
    const missing = await project.run(["output", "nope", "--json"]);
    assert.equal(missing.code, 1);
    assert.equal((parseJson(missing).error as { type: string }).type, "NoMatch");
    assert.ok(!missing.stdout.includes(SECRET));
  });

  await t.step(
    "taint and untaint an instance, with a backup; refusals change nothing",
    async () => {
      const before = await serial();
      const plan = await dryRun(project, ["taint", "discord_role.admin"]);
      assert.equal(plan.changed, true);
      const result = await ok(project, ["taint", "discord_role.admin", "--json"]);
      const json = parseJson(result);
      assert.equal(json.serial, before + 1);
      assert.ok(String(json.backup).includes("/backups/default/"));
      const stored = JSON.parse(await pull(project));
      assert.equal(stored.resources[0].instances[0].status, "tainted");
      assert.match((await ok(project, ["state", "show", "discord_role.admin"])).stdout, /tainted/);
      await refused(
        project,
        ["taint", 'module.app["web"].data.discord_guild.main'],
        2,
        /data source/,
      );
      await refused(project, ["taint", "discord_role.nope"], 1, /no resource instance/);
      await refused(project, ["taint", "discord_channel.general[7]"], 1, /no resource instance/);
      await ok(project, ["untaint", "discord_role.admin"]);
      assert.equal(JSON.parse(await pull(project)).resources[0].instances[0].status, undefined);
      await refused(project, ["untaint", "discord_role.admin"], 1, /is not tainted/);
    },
  );

  await t.step("replace-provider: confirmation, --dry-run, --yes", async () => {
    await refused(
      project,
      ["state", "replace-provider", "gaib/discord", "acme/discord"],
      2,
      /needs confirmation, and stdin is not a terminal/,
    );
    const plan = await dryRun(project, [
      "state",
      "replace-provider",
      "gaib/discord",
      "acme/discord",
    ]);
    assert.equal((plan.changes as unknown[]).length, 4);
    await refused(
      project,
      ["state", "replace-provider", "gaib/discord", "gaib/discord", "--yes"],
      1,
      /same provider/,
    );
    const before = await serial();
    const done = parseJson(
      await ok(project, [
        "state",
        "replace-provider",
        "-auto-approve",
        "gaib/discord",
        "acme/discord",
        "--json",
      ]),
    );
    assert.equal(done.serial, before + 1);
    const stored = JSON.parse(await pull(project));
    for (const resource of stored.resources) {
      assert.equal(resource.provider, 'provider["registry.terraform.io/acme/discord"]');
    }
    await ok(project, ["state", "replace-provider", "--yes", "acme/discord", "gaib/discord"]);
  });

  await t.step("state mv: count to for_each in pairs, one lock, one serial", async () => {
    const before = await serial();
    await dryRun(project, [
      "state",
      "mv",
      "discord_channel.general[0]",
      'discord_channel.general["a"]',
    ]);
    const result = await ok(project, [
      "state",
      "mv",
      "discord_channel.general[0]",
      'discord_channel.general["a"]',
      "discord_channel.general[1]",
      'discord_channel.general["b"]',
      "--json",
    ]);
    const json = parseJson(result);
    assert.equal(json.serial, before + 1);
    assert.deepEqual(json.mixedKeys, []);
    assert.deepEqual((await list(project)).slice(1, 3), [
      'discord_channel.general["a"]',
      'discord_channel.general["b"]',
    ]);
    // A refused second pair leaves the first one undone too.
    await refused(
      project,
      [
        "state",
        "mv",
        'discord_channel.general["a"]',
        "discord_channel.general[0]",
        "discord_role.x",
        "discord_role.y",
      ],
      1,
      /No resource instance in the state matches "discord_role.x"/,
    );
    await refused(
      project,
      ["state", "mv", "discord_channel.general", "discord_channel.other[0]"],
      2,
      /whole resource/,
    );
    await refused(project, ["state", "mv", "a.b", "c.d", "e.f"], 2, /SOURCE DEST pairs/);
    // Back to count, one by one: a mixed resource is reported, not refused.
    const half = parseJson(
      await ok(project, [
        "state",
        "mv",
        'discord_channel.general["a"]',
        "discord_channel.general[0]",
        "--json",
      ]),
    );
    assert.deepEqual(half.mixedKeys, ["discord_channel.general"]);
    await ok(project, [
      "state",
      "mv",
      'discord_channel.general["b"]',
      "discord_channel.general[1]",
    ]);
  });

  await t.step("state mv --to-workspace writes both workspaces, each with a backup", async () => {
    await ok(project, ["workspace", "new", "target"]);
    await ok(project, ["workspace", "select", "default"]);
    const args = [
      "state",
      "mv",
      "--to-workspace",
      "target",
      "discord_role.admin",
      "discord_role.admin",
    ];
    await dryRun(project, args, ["default", "target"]);
    const [from, to] = [await serial(), await serial("target")];
    const json = parseJson(await ok(project, [...args, "--json"]));
    assert.equal(json.serial, from + 1);
    assert.equal(json.toSerial, to + 1);
    assert.ok(String(json.backup).includes("/backups/default/"));
    assert.ok(String(json.toBackup).includes("/backups/target/"));
    assert.deepEqual(await list(project, "target"), ["discord_role.admin"]);
    assert.ok(!(await list(project)).includes("discord_role.admin"));
    // The destination exists now: refused, neither workspace changes.
    await ok(project, [
      "-w",
      "target",
      "state",
      "mv",
      "--to-workspace",
      "default",
      "discord_role.admin",
      "discord_role.admin",
    ]);
    await refused(
      project,
      [
        "-w",
        "target",
        "state",
        "mv",
        "--to-workspace",
        "default",
        "discord_role.admin",
        "discord_role.admin",
      ],
      1,
      /No resource instance/,
      ["default", "target"],
    );
    await ok(project, [...args]);
    await refused(
      project,
      [
        "-w",
        "default",
        "state",
        "mv",
        "--to-workspace",
        "target",
        "discord_channel.general[0]",
        "discord_role.admin",
      ],
      2,
      /type \(and mode\) must stay the same/,
      ["default", "target"],
    );
    await refused(
      project,
      [...args.slice(0, 3), "nowhere", ...args.slice(4)],
      1,
      /"nowhere" \(--to-workspace\) does not exist/,
    );
  });

  await t.step(
    "--state FILE reads a backup without a backend; links and missing files are refused",
    async () => {
      const json = parseJson(await ok(project, ["taint", "discord_channel.general[0]", "--json"]));
      const backup = String(json.backup);
      // Any backend config is ignored with --state: a broken one proves no backend is opened.
      const env = { GAIB_BACKEND: "local", GAIB_STATE_PATH: "/nonexistent/state/root" };
      const listed = await project.run(["state", "list", "--state", backup], { env });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^discord_channel\.general\[0\]$/m);
      const shown = await project.run([
        "state",
        "show",
        "--state",
        backup,
        'module.app["web"].discord_channel.general[0]',
      ], {
        env,
      });
      assert.equal(shown.code, 0, shown.stderr);
      assert.ok(!shown.stdout.includes("channel-pass"));
      const out = await project.run(["output", "--state", backup], { env });
      assert.equal(out.stdout, 'bot_token = <sensitive>\nguild_id = "123456789012345678"\n');
      await Deno.symlink(backup, `${project.path}/link.tfstate`);
      const link = await project.run(["state", "list", "--state", "link.tfstate"]);
      assert.equal(link.code, 1);
      assert.match(link.stderr, /symbolic link/);
      const missing = await project.run(["output", "--state", "missing.tfstate"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /missing\.tfstate \(--state\): it does not exist/);
      await Deno.writeTextFile(`${project.path}/bad.tfstate`, '{"version": 4, "serial": "x"}');
      const bad = await project.run(["state", "list", "--state", "bad.tfstate", "--json"]);
      assert.equal(bad.code, 1);
      assert.equal((parseJson(bad).error as { type: string }).type, "StateFormatError");
      const dir = await project.run(["state", "list", "--state", "."]);
      assert.match(dir.stderr, /is a directory/);
    },
  );

  await t.step(
    "lock status shows a detached lock's TTL and when it may be taken over",
    async () => {
      const lockId = (await ok(project, ["lock", "acquire", "--ttl", "2h"])).stdout.trim();
      const json = parseJson(await ok(project, ["lock", "status", "--json"]));
      const lease = json.lease as { detached: boolean; expires: string };
      assert.equal(lease.detached, true);
      assert.equal(json.holderAlive, null);
      assert.equal(json.takeoverFrom, lease.expires);
      const text = await ok(project, ["lock", "status"]);
      assert.match(text.stdout, /Lease: {5}detached lock, TTL until /);
      await ok(project, ["unlock", lockId]);
    },
  );

  await t.step("surgery under a held lock with --lock-id; without it, refused", async () => {
    const lockId = (await ok(project, ["lock", "acquire"])).stdout.trim();
    await refused(
      project,
      ["taint", "discord_channel.general[1]"],
      1,
      /Cannot lock workspace "default": held by/,
    );
    await refused(
      project,
      ["state", "replace-provider", "--yes", "gaib/discord", "acme/discord"],
      1,
      /Cannot lock workspace "default": held by/,
    );
    await ok(project, ["taint", "discord_channel.general[1]", "--lock-id", lockId]);
    await ok(project, ["untaint", "discord_channel.general[1]", "--lock-id", lockId]);
    await ok(project, ["unlock", lockId]);
  });

  if (s3) {
    await t.step(
      "lock status of a process-bound S3 lock: its lease, liveness not claimed",
      async () => {
        const holder = await spawnLockHolder({ backend: s3.backend, workspace: "default" }, s3.env);
        try {
          const json = parseJson(await ok(project, ["lock", "status", "--json"]));
          const lease = json.lease as { detached: boolean; expires: string; leaseMs: number };
          assert.equal(lease.detached, false);
          assert.equal(json.holderAlive, null);
          assert.equal(
            json.takeoverFrom,
            new Date(Date.parse(lease.expires) + lease.leaseMs).toISOString(),
          );
          const text = (await ok(project, ["lock", "status"])).stdout;
          assert.match(text, /Holder: {4}not known from this machine/);
        } finally {
          await holder.release();
        }
      },
    );
  }
}

Deno.test("surgery commands on the local backend", OPTIONS, async (t) => {
  await using project = await cliProject();
  await surgerySuite(t, project);
  await t.step("dry runs leave the state file's bytes as they were", async () => {
    const file = `${project.path}/.gaib/workspaces/default/terraform.tfstate`;
    const before = await Deno.readFile(file);
    for (
      const args of [
        ["taint", "discord_channel.general[1]"],
        ["state", "mv", "discord_channel.general[1]", 'discord_channel.general["z"]'],
        ["state", "replace-provider", "gaib/discord", "acme/discord"],
      ]
    ) await ok(project, [...args, "--dry-run"]);
    assert.deepEqual(await Deno.readFile(file), before);
  });
  await t.step("lock status: a live holder on this machine is known alive", async () => {
    const holder = await spawnLockHolder({
      backend: { type: "local", path: `${project.path}/.gaib` },
      workspace: "default",
    });
    const json = parseJson(await ok(project, ["lock", "status", "--json"]));
    assert.equal(json.holderAlive, true);
    assert.equal(json.takeoverFrom, null);
    assert.match(
      (await ok(project, ["lock", "status"])).stdout,
      /Holder: {4}alive on this machine/,
    );
    await holder.kill();
    const gone = parseJson(await ok(project, ["lock", "status", "--json"]));
    assert.equal(gone.holderAlive, false);
    await ok(project, ["force-unlock", "--force", holder.lockId]);
  });
});

serverTest(
  "surgery commands on the S3 backend (DynamoDB locks)",
  { s3: true, dynamodb: true, ...OPTIONS },
  async (t, servers) => {
    const { s3, dynamodb } = servers as { s3: S3ServerInfo; dynamodb: DynamoServerInfo };
    await using bucket = await tempBucket(s3, { prefix: "gaib-surgery" });
    await using table = await tempLockTable(dynamodb);
    await using project = await cliProject({
      GAIB_BACKEND: "s3",
      GAIB_S3_BUCKET: bucket.name,
      GAIB_S3_KEY: "servers/terraform.tfstate",
      GAIB_S3_REGION: TEST_CREDENTIALS.region,
      GAIB_S3_ENDPOINT: s3.endpoint,
      GAIB_S3_FORCE_PATH_STYLE: "true",
      GAIB_S3_MAX_RETRIES: "1",
      GAIB_DYNAMODB_TABLE: table.name,
      GAIB_DYNAMODB_ENDPOINT: dynamodb.endpoint,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    });
    const backend: S3BackendConfig = {
      type: "s3",
      bucket: bucket.name,
      key: "servers/terraform.tfstate",
      region: TEST_CREDENTIALS.region,
      endpoints: { s3: s3.endpoint, dynamodb: dynamodb.endpoint },
      force_path_style: true,
      max_retries: 1,
      dynamodb_table: table.name,
    };
    await surgerySuite(t, project, {
      backend,
      env: {
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        AWS_REGION: TEST_CREDENTIALS.region,
      },
    });
  },
);

Deno.test(
  "state mv --to-workspace: when the source's write fails, the destination is put back",
  OPTIONS,
  async () => {
    await using project = await cliProject();
    await ok(project, ["state", "push", STATE]);
    await ok(project, ["workspace", "new", "target"]);
    await ok(project, ["workspace", "select", "default"]);
    const root = `${project.path}/.gaib/workspaces`;
    const source = JSON.parse(await pull(project));
    const target = JSON.parse(await pull(project, "target"));
    // The command reads the source, then the destination: stalling the destination's read
    // gives the moment to change the source behind its back (a writer that ignores locks),
    // so that its write of the source is refused after the destination was written.
    await using stall = await stallNextRead(`${root}/target/terraform.tfstate`);
    const mv = project.spawn([
      "state",
      "mv",
      "--to-workspace",
      "target",
      "discord_role.admin",
      "discord_role.admin",
      "--json",
    ]);
    await stall.reading;
    const rogue = { ...source, serial: source.serial + 1, outputs: {} };
    await Deno.writeTextFile(`${root}/default/terraform.tfstate`, JSON.stringify(rogue));
    await stall.release();
    const result = await mv.result();
    assert.equal(result.code, 1, result.stderr);
    const error = parseJson(result).error as { type: string; message: string };
    assert.equal(error.type, "MoveFailed", error.message);
    assert.match(error.message, /Nothing was moved/);
    const after = JSON.parse(await pull(project, "target"));
    assert.equal(after.serial, target.serial + 2, "written, then written back");
    assert.deepEqual(after.resources, target.resources);
    assert.equal(after.lineage, target.lineage);
    assert.deepEqual(JSON.parse(await pull(project)), rogue, "the source is the other writer's");
  },
);

/** Runs the CLI on a pseudo-terminal (util-linux `script`), typing `input` into it. */
async function onTerminal(project: CliProject, args: string[], input: string) {
  const quote = (w: string) => `'${w.replaceAll("'", `'\\''`)}'`;
  const line = [Deno.execPath(), ...cliRunArgs(), ...args].map(quote).join(" ");
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const child = new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    cwd: project.path,
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const output = await child.output();
  return { code: output.code, text: new TextDecoder().decode(output.stdout) };
}

Deno.test("state replace-provider asks on a terminal: only yes goes on", OPTIONS, async () => {
  await using project = await cliProject();
  await ok(project, ["state", "push", STATE]);
  const before = await pull(project);
  const args = ["state", "replace-provider", "gaib/discord", "acme/discord"];
  const no = await onTerminal(project, args, "no\n");
  assert.equal(no.code, 1, no.text);
  assert.match(
    no.text,
    /discord_role\.admin: provider\["registry\.terraform\.io\/gaib\/discord"\] -> provider\["registry\.terraform\.io\/acme\/discord"\]/,
  );
  assert.match(no.text, /Cancelled: the state was not changed/);
  assert.equal(await pull(project), before);
  const yes = await onTerminal(project, args, "yes\n");
  assert.equal(yes.code, 0, yes.text);
  assert.match(yes.text, /Replaced 4 provider address\(es\)/);
  assert.match(await pull(project), /registry\.terraform\.io\/acme\/discord/);
});
