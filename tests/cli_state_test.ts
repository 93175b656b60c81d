import assert from "node:assert/strict";
import { type CliProject, cliProject, parseJson } from "./_cli.ts";
import { PACKAGE_FIXTURES } from "./corpus/fixtures.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const ALL = [
  "discord_role.admin",
  "discord_channel.general[0]",
  "discord_channel.general[1]",
  'module.app["web"].discord_channel.general[0]',
  'module.app["web"].data.discord_guild.main',
];

async function pushed(): Promise<CliProject> {
  const project = await cliProject();
  const result = await project.run(["state", "push", STATE]);
  assert.equal(result.code, 0, result.stderr);
  return project;
}

async function list(project: CliProject, ...args: string[]): Promise<string[]> {
  const result = await project.run(["state", "list", ...args]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split("\n").filter((l) => l);
}

async function serial(project: CliProject): Promise<number> {
  return JSON.parse((await project.run(["state", "pull"])).stdout).serial;
}

async function backups(project: CliProject, workspace = "default"): Promise<string[]> {
  const dir = `${project.path}/.gaib/backups/${workspace}`;
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(`${dir}/${entry.name}`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names.sort();
}

Deno.test("gaib-state state pull prints the raw state, nothing for a workspace without one", async () => {
  await using project = await cliProject();
  const empty = await project.run(["state", "pull"]);
  assert.equal(empty.code, 0);
  assert.equal(empty.stdout, "");
  assert.match(empty.stderr, /has no state yet/);
  assert.equal((await project.run(["state", "pull", "--json"])).stdout, "null\n");

  assert.equal((await project.run(["state", "push", STATE])).code, 0);
  const pulled = await project.run(["state", "pull"]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(pulled.stderr, "");
  assert.deepEqual(JSON.parse(pulled.stdout), JSON.parse(await Deno.readTextFile(STATE)));
  assert.ok(pulled.stdout.includes("super-secret-token"), "pull is raw: the user asked for it");
});

Deno.test("gaib-state state push refuses an older serial and accepts it with --force", async () => {
  await using project = await pushed();
  const original = JSON.parse(await Deno.readTextFile(STATE));
  await Deno.writeTextFile(
    `${project.path}/newer.tfstate`,
    JSON.stringify({ ...original, serial: 10 }),
  );
  await Deno.writeTextFile(
    `${project.path}/older.tfstate`,
    JSON.stringify({ ...original, serial: 2 }),
  );

  const newer = await project.run(["state", "push", "newer.tfstate", "--json"]);
  assert.equal(newer.code, 0, newer.stderr);
  const report = parseJson(newer);
  assert.equal(report.serial, 10);
  assert.equal(report.previousSerial, 3);
  assert.equal(report.forced, false);
  assert.equal(await serial(project), 10);

  const older = await project.run(["state", "push", "older.tfstate"]);
  assert.equal(older.code, 1);
  assert.equal(older.stdout, "");
  assert.match(older.stderr, /^Error: .*serial 2 is older than the stored state's 10.*--force/);
  assert.equal(await serial(project), 10, "the refused push changed nothing");
  const json = await project.run(["state", "push", "older.tfstate", "--json"]);
  assert.equal(json.code, 1);
  const error = parseJson(json).error as Record<string, unknown>;
  assert.equal(error.type, "StateSerialError");
  assert.equal(error.storedSerial, 10);
  assert.equal(error.newSerial, 2);

  const forced = await project.run(["state", "push", "--force", "older.tfstate"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await serial(project), 2);
  assert.match(forced.stderr, /Previous state backed up to .*\.backup/);
  const lock = parseJson(await project.run(["lock-info", "--json"]));
  assert.equal(lock.locked, false, "push released the lock");
});

Deno.test("gaib-state state push refuses another lineage, reads stdin and refuses bad files", async (t) => {
  await using project = await pushed();
  const original = JSON.parse(await Deno.readTextFile(STATE));
  await t.step("another lineage", async () => {
    const other = JSON.stringify({ ...original, serial: 50, lineage: crypto.randomUUID() });
    const result = await project.run(["state", "push", "-"], { stdin: other });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /lineage .* differs/);
    const forced = await project.run(["state", "push", "-", "--force"], { stdin: other });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await serial(project), 50);
  });
  await t.step("stdin", async () => {
    const current = JSON.parse((await project.run(["state", "pull"])).stdout);
    const result = await project.run(["state", "push", "-"], {
      stdin: JSON.stringify({ ...current, serial: 51 }),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await serial(project), 51);
  });
  const bad: Array<[string, string, RegExp]> = [
    ["not JSON", "{ nope", /not valid JSON/],
    ["version 3", '{"version": 3, "serial": 1, "lineage": "x"}', /version 3/],
    ["empty", "", /is empty: there is no state to push/],
  ];
  for (const [name, text, message] of bad) {
    await t.step(`a file that is ${name}`, async () => {
      await Deno.writeTextFile(`${project.path}/bad.tfstate`, text);
      const result = await project.run(["state", "push", "bad.tfstate"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace without --verbose");
    });
  }
  await t.step("a missing file", async () => {
    const result = await project.run(["state", "push", "missing.tfstate"]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      "Error: Cannot read state file missing.tfstate: it does not exist (relative paths start " +
        `at ${await Deno.realPath(project.path)}). Use - to read the state from stdin.\n`,
    );
    const json = parseJson(await project.run(["state", "push", "missing.tfstate", "--json"]));
    assert.deepEqual(
      [(json.error as Record<string, unknown>).type, (json.error as Record<string, unknown>).file],
      ["StateFileError", "missing.tfstate"],
    );
  });
  await t.step("a directory", async () => {
    await Deno.mkdir(`${project.path}/states`);
    const result = await project.run(["state", "push", "states"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^Error: Cannot read state file states: it is a directory; name /);
    assert.doesNotMatch(result.stderr, /os error/);
  });
  await t.step("a file that is not UTF-8", async () => {
    await Deno.writeFile(`${project.path}/binary.tfstate`, new Uint8Array([0x7b, 0xff, 0xfe]));
    const result = await project.run(["state", "push", "binary.tfstate"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^Error: .*binary\.tfstate: it is not UTF-8 text/);
  });
});

Deno.test("gaib-state state push replaces a new workspace's empty state whatever its lineage", async () => {
  await using project = await cliProject();
  assert.equal((await project.run(["workspace", "new", "imported"])).code, 0);
  const result = await project.run(["state", "push", STATE]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await serial(project), 3);
});

Deno.test("gaib-state state list prints instance addresses, filtered by address or --id", async (t) => {
  await using project = await pushed();
  const cases: Array<[string, string[], string[]]> = [
    ["everything", [], ALL],
    ["a resource", ["discord_channel.general"], ALL.slice(1, 3)],
    ["an instance", ["discord_channel.general[1]"], [ALL[2]]],
    ["a module instance", ['module.app["web"]'], ALL.slice(3)],
    ["a module without its key", ["module.app"], ALL.slice(3)],
    ["a data source", ['module.app["web"].data.discord_guild.main'], [ALL[4]]],
    ["two filters", ["discord_role.admin", "module.app"], [ALL[0], ...ALL.slice(3)]],
    ["nothing matching", ["discord_role.nope"], []],
    ["--id", ["--id", "201"], [ALL[2]]],
  ];
  for (const [name, args, expected] of cases) {
    await t.step(name, async () => {
      assert.deepEqual(await list(project, ...args), expected);
    });
  }
  await t.step("--json", async () => {
    const json = parseJson(await project.run(["state", "list", "--json", "module.app"]));
    assert.deepEqual(json, {
      workspace: "default",
      instances: [
        {
          address: ALL[3],
          module: 'module.app["web"]',
          mode: "managed",
          type: "discord_channel",
          name: "general",
          index_key: 0,
        },
        {
          address: ALL[4],
          module: 'module.app["web"]',
          mode: "data",
          type: "discord_guild",
          name: "main",
          index_key: null,
        },
      ],
    });
  });
});

Deno.test("gaib-state state show masks sensitive attributes and outputs, also with --json", async (t) => {
  await using project = await pushed();
  await t.step("a top-level attribute", async () => {
    const result = await project.run(["state", "show", "discord_role.admin"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      [
        "# discord_role.admin:",
        'resource "discord_role" "admin" {',
        '    id             = "111"',
        '    name           = "Admin"',
        "    color          = 16711680",
        "    webhook_secret = (sensitive value)",
        "}",
        "",
      ].join("\n"),
    );
  });
  await t.step("nested paths with index steps", async () => {
    const address = ALL[3];
    for (const args of [["state", "show", address], ["state", "show", address, "--json"]]) {
      const result = await project.run(args);
      assert.equal(result.code, 0, result.stderr);
      assert.ok(!result.stdout.includes("overwrite-secret"), result.stdout);
      assert.ok(!result.stdout.includes("channel-pass"), result.stdout);
      assert.ok(result.stdout.includes("web-general"), "other values are shown");
    }
    const text = await project.run(["state", "show", address]);
    assert.match(text.stdout, /password = \(sensitive value\)/);
    const json = parseJson(await project.run(["state", "show", address, "--json"]));
    const attributes = json.attributes as Record<string, Record<string, unknown>>;
    assert.deepEqual(attributes.settings, { password: { sensitive: true }, slowmode: 5 });
    assert.deepEqual(attributes.permission_overwrites, [
      { id: "9", allow: 1024, token: { sensitive: true } },
    ]);
    assert.deepEqual(json.sensitive_values, {
      permission_overwrites: [{ token: true }],
      settings: { password: true },
    });
  });
  await t.step("a sensitive output", async () => {
    for (
      const args of [["state", "show", "output.bot_token"], [
        "--json",
        "state",
        "show",
        "output.bot_token",
      ]]
    ) {
      const result = await project.run(args);
      assert.equal(result.code, 0, result.stderr);
      assert.ok(!result.stdout.includes("super-secret-token"), result.stdout);
    }
    const json = parseJson(await project.run(["state", "show", "output.bot_token", "--json"]));
    assert.deepEqual(json, {
      address: "output.bot_token",
      sensitive: true,
      type: "string",
      value: { sensitive: true },
      sensitive_values: true,
    });
    const text = await project.run(["state", "show", "output.bot_token"]);
    assert.match(text.stdout, /\n {4}value += \(sensitive value\)\n/);
    const plain = await project.run(["state", "show", "output.guild_id"]);
    assert.match(plain.stdout, /value = "123456789012345678"/);
  });
  await t.step("--json tells a masked value from a value that reads like the mask", async () => {
    const state = JSON.parse(await Deno.readTextFile(STATE));
    state.serial = 4;
    Object.assign(state.resources[0].instances[0].attributes, { name: "(sensitive value)" });
    const push = await project.run(["state", "push", "-"], { stdin: JSON.stringify(state) });
    assert.equal(push.code, 0, push.stderr);
    const json = parseJson(await project.run(["state", "show", "discord_role.admin", "--json"]));
    const attributes = json.attributes as Record<string, unknown>;
    assert.equal(attributes.name, "(sensitive value)", "data is data");
    assert.deepEqual(attributes.webhook_secret, { sensitive: true }, "the mask is not a string");
    assert.deepEqual(json.sensitive_values, { webhook_secret: true });
  });
  await t.step("a resource with several instances needs one named", async () => {
    const result = await project.run(["state", "show", "discord_channel.general"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /has 2 instance\(s\): discord_channel\.general\[0\], .*Name one/);
  });
  await t.step("a missing address", async () => {
    const result = await project.run(["state", "show", "discord_role.nope", "--json"]);
    assert.equal(result.code, 1);
    assert.equal((parseJson(result).error as Record<string, unknown>).type, "NoMatch");
  });
});

Deno.test("gaib-state state show never prints sensitive values of real-world states", async () => {
  await using project = await cliProject();
  const file = `${PACKAGE_FIXTURES}/realworld/rw-opentofu-1.10-platform-stack-checks.tfstate`;
  const push = await project.run(["state", "push", file]);
  assert.equal(push.code, 0, push.stderr);
  const state = JSON.parse(await Deno.readTextFile(file));
  let shown = 0;
  for (const resource of state.resources) {
    for (const instance of resource.instances) {
      if (!instance.sensitive_attributes?.length || instance.deposed) continue;
      const key = instance.index_key === undefined
        ? ""
        : typeof instance.index_key === "number"
        ? `[${instance.index_key}]`
        : `[${JSON.stringify(instance.index_key)}]`;
      const address = `${resource.module ? resource.module + "." : ""}${
        resource.mode === "data" ? "data." : ""
      }${resource.type}.${resource.name}${key}`;
      for (const json of [[], ["--json"]]) {
        const result = await project.run(["state", "show", address, ...json]);
        assert.equal(result.code, 0, `${address}: ${result.stderr}`);
        assert.ok(!result.stdout.includes("REDACTED"), `${address} leaked:\n${result.stdout}`);
        shown++;
      }
    }
  }
  assert.ok(shown >= 10, `showed ${shown} instances`);
});

Deno.test("gaib-state state rm removes instances under the lock, with a backup, and --dry-run changes nothing", async () => {
  await using project = await pushed();
  const before = (await project.run(["state", "pull"])).stdout;

  const dry = await project.run(["state", "rm", "discord_channel.general", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(
    dry.stderr,
    /Would remove discord_channel\.general\[0\]\nWould remove discord_channel\.general\[1\]/,
  );
  assert.equal((await project.run(["state", "pull"])).stdout, before, "dry run wrote nothing");
  assert.deepEqual(await backups(project), []);

  const rm = await project.run(["state", "rm", "discord_channel.general", "discord_role.admin"]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stderr, /Removed discord_channel\.general\[0\]/);
  assert.match(rm.stderr, /Successfully removed 3 instance\(s\) \(serial 4\)/);
  assert.deepEqual(await list(project), ALL.slice(3));
  assert.equal(await serial(project), 4);

  const [backup] = await backups(project);
  assert.match(
    backup,
    /\/\.gaib\/backups\/default\/terraform\.tfstate\.\d{8}T\d{6}\.\d{3}Z\.backup$/,
  );
  assert.ok(rm.stderr.includes(backup), "the output names the backup");
  assert.equal(await Deno.readTextFile(backup), before, "the backup is the previous state");
  assert.equal((await Deno.stat(backup)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(`${project.path}/.gaib/backups`)).mode! & 0o777, 0o700);

  // Round trip: pushing the backup back (with a newer serial) restores everything.
  const restored = { ...JSON.parse(await Deno.readTextFile(backup)), serial: 5 };
  assert.equal(
    (await project.run(["state", "push", "-"], { stdin: JSON.stringify(restored) })).code,
    0,
  );
  assert.deepEqual(await list(project), ALL);

  const missing = await project.run(["state", "rm", "discord_role.admin", "discord_role.nope"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No resource instance in the state matches "discord_role\.nope"/);
  assert.deepEqual(await list(project), ALL, "a failed rm removes nothing");

  const json = parseJson(await project.run(["state", "rm", "module.app", "--json"]));
  assert.equal(json.serial, 6);
  assert.deepEqual(json.removed, ALL.slice(3));
  assert.equal(json.dryRun, false);
  assert.match(String(json.backup), /\.backup$/);
  assert.equal((parseJson(await project.run(["lock-info", "--json"]))).locked, false);
});

Deno.test("gaib-state state mv renames resources, moves instances and modules, and refuses an existing destination", async (t) => {
  await using project = await pushed();
  const steps: Array<[string, string[], string[]]> = [
    [
      "a whole resource",
      ["discord_role.admin", "discord_role.administrator"],
      ["discord_role.administrator", ...ALL.slice(1)],
    ],
    [
      "one instance to another resource with a for_each key",
      ["discord_channel.general[1]", 'discord_channel.lobby["main"]'],
      [],
    ],
    [
      "one instance into a module",
      ["discord_channel.general[0]", "module.chat.discord_channel.general[0]"],
      [],
    ],
    [
      "a module instance",
      ['module.app["web"]', "module.site"],
      [],
    ],
  ];
  for (const [name, args] of steps) {
    await t.step(name, async () => {
      const before = await serial(project);
      const result = await project.run(["state", "mv", ...args]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /Successfully moved \d+ instance\(s\)/);
      assert.equal(await serial(project), before + 1);
    });
  }
  assert.deepEqual(await list(project), [
    "discord_role.administrator",
    "module.chat.discord_channel.general[0]",
    'discord_channel.lobby["main"]',
    "module.site.discord_channel.general[0]",
    "module.site.data.discord_guild.main",
  ]);
  assert.equal((await backups(project)).length, 4, "one backup per mv");

  await t.step("an existing destination is refused", async () => {
    const result = await project.run([
      "state",
      "mv",
      "module.chat.discord_channel.general[0]",
      "module.site.discord_channel.general[0]",
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /destination "module\.site\.discord_channel\.general\[0\]" already exists/,
    );
  });
  await t.step("another resource type is refused", async () => {
    const result = await project.run([
      "state",
      "mv",
      "discord_role.administrator",
      "discord_channel.x",
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /type \(and mode\) must stay the same/);
  });
  await t.step("--dry-run moves nothing", async () => {
    const before = (await project.run(["state", "pull"])).stdout;
    const result = await project.run([
      "state",
      "mv",
      "module.site",
      "module.web",
      "--dry-run",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const json = parseJson(result);
    assert.equal(json.dryRun, true);
    assert.equal(json.backup, null);
    assert.deepEqual(json.moved, [
      {
        from: "module.site.discord_channel.general[0]",
        to: "module.web.discord_channel.general[0]",
      },
      { from: "module.site.data.discord_guild.main", to: "module.web.data.discord_guild.main" },
    ]);
    assert.equal((await project.run(["state", "pull"])).stdout, before);
  });
  await t.step("moving back restores the original addresses", async () => {
    for (
      const args of [
        ["discord_role.administrator", "discord_role.admin"],
        ['discord_channel.lobby["main"]', "discord_channel.general[1]"],
        ["module.chat.discord_channel.general[0]", "discord_channel.general[0]"],
        ["module.site", 'module.app["web"]'],
      ]
    ) {
      const result = await project.run(["state", "mv", ...args]);
      assert.equal(result.code, 0, result.stderr);
    }
    const original = JSON.parse(await Deno.readTextFile(STATE));
    const now = JSON.parse((await project.run(["state", "pull"])).stdout);
    const key = (r: { module?: string; mode: string; type: string; name: string }) =>
      `${r.module ?? ""}|${r.mode}|${r.type}|${r.name}`;
    const sortResources = (
      s: {
        resources: Array<
          {
            module?: string;
            mode: string;
            type: string;
            name: string;
            instances: Array<{ index_key?: unknown }>;
          }
        >;
      },
    ) =>
      s.resources.map((r) => ({
        ...r,
        instances: [...r.instances].sort((a, b) =>
          String(a.index_key).localeCompare(String(b.index_key))
        ),
      })).sort((a, b) => key(a).localeCompare(key(b)));
    assert.deepEqual(sortResources(now), sortResources(original));
  });
});

Deno.test("gaib-state state rm and mv count instances, not resources that have none", async () => {
  await using project = await cliProject();
  const state = JSON.parse(await Deno.readTextFile(STATE));
  // A resource block without instances, as Terraform leaves one after a failed create.
  state.resources.push({
    module: 'module.app["web"]',
    mode: "managed",
    type: "discord_role",
    name: "pending",
    provider: 'provider["registry.terraform.io/gaib/discord"]',
    instances: [],
  });
  const push = await project.run(["state", "push", "-"], { stdin: JSON.stringify(state) });
  assert.equal(push.code, 0, push.stderr);

  const mv = await project.run(["state", "mv", 'module.app["web"]', "module.site"]);
  assert.equal(mv.code, 0, mv.stderr);
  assert.match(
    mv.stderr,
    /Moved module\.app\["web"\]\.discord_role\.pending to module\.site\.discord_role\.pending \(a resource without instances\)/,
  );
  assert.match(
    mv.stderr,
    /Successfully moved 2 instance\(s\) and 1 resource\(s\) without instances \(serial 4\)/,
  );

  const rm = await project.run(["state", "rm", "module.site", "--json"]);
  assert.equal(rm.code, 0, rm.stderr);
  const json = parseJson(rm);
  assert.deepEqual(json.removed, [
    "module.site.discord_channel.general[0]",
    "module.site.data.discord_guild.main",
  ]);
  assert.deepEqual(json.emptyResources, ["module.site.discord_role.pending"]);
});
