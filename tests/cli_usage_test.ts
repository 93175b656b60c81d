import assert from "node:assert/strict";
import { cliProject, compilePermissionFlags, parseJson } from "./_cli.ts";
import { VERSION } from "../src/version.ts";

Deno.test("gaib-state rejects bad arguments with exit 2, the error and the command's usage line", async (t) => {
  await using project = await cliProject();
  const cases: Array<[string, string[], RegExp, string]> = [
    ["an unknown command", ["deploy"], /No command registered for `deploy`/, "gaib-state "],
    [
      "an unknown subcommand",
      ["state", "lst"],
      /No command registered for `lst`, did you mean `list`\?/,
      "gaib-state state pull|push|list|show|rm|mv|replace-provider|history|rollback|rewrite ...",
    ],
    [
      "an unknown flag",
      ["state", "list", "--bogus"],
      /No flag registered for --bogus/,
      "gaib-state state list [--id ID] [--state FILE] [ADDRESS...]",
    ],
    [
      "a misspelt flag",
      ["workspace", "list", "--jsn"],
      /did you mean --json\?/,
      "gaib-state workspace list",
    ],
    [
      "a missing argument",
      ["workspace", "select"],
      /Expected argument for NAME/,
      "gaib-state workspace select [--or-create] <NAME>",
    ],
    [
      "a missing second argument",
      ["state", "mv", "discord_role.a"],
      /Expected at least 2 argument\(s\) for ADDRESS but only found 1/,
      "gaib-state state mv [--dry-run] [--lock-id LOCK_ID] [--to-workspace WS] <SOURCE> <DEST> " +
      "[<SOURCE> <DEST>...]",
    ],
    [
      "no address for rm",
      ["state", "rm"],
      /ADDRESS/,
      "gaib-state state rm [--dry-run] [--lock-id LOCK_ID] <ADDRESS>...",
    ],
    [
      "too many arguments",
      ["unlock", "a", "b"],
      /Too many arguments/,
      "gaib-state unlock <LOCK_ID>",
    ],
    [
      "a bad duration",
      ["lock", "--ttl", "2x"],
      /Invalid --ttl "2x": not a duration/,
      "gaib-state lock acquire [--ttl DURATION] [--info TEXT]",
    ],
    [
      "a bad global flag before the command",
      ["--lock-timeout", "forever", "state", "rm", "discord_role.a"],
      /Invalid --lock-timeout "forever": not a duration/,
      "gaib-state state rm [--dry-run] [--lock-id LOCK_ID] <ADDRESS>...",
    ],
    [
      "a zero TTL (a lock that has expired already)",
      ["lock", "acquire", "--ttl", "0s"],
      /Invalid --ttl "0s": a lock TTL must be at least 1s\. .*leave --ttl out/,
      "gaib-state lock acquire [--ttl DURATION] [--info TEXT]",
    ],
    [
      "a TTL under a second",
      ["lock", "acquire", "--ttl", "999ms"],
      /Invalid --ttl "999ms": a lock TTL must be at least 1s/,
      "gaib-state lock acquire [--ttl DURATION] [--info TEXT]",
    ],
    [
      "a TTL beyond any date",
      ["lock", "--ttl", "99999999999d"],
      /Invalid --ttl "99999999999d": a lock TTL must be at most 365d \(a year\)/,
      "gaib-state lock acquire [--ttl DURATION] [--info TEXT]",
    ],
    [
      "a TTL with more digits than a number holds",
      ["lock", "--ttl", `${"9".repeat(400)}s`],
      /a lock TTL must be at most 365d/,
      "gaib-state lock acquire [--ttl DURATION] [--info TEXT]",
    ],
    [
      "a lock timeout over a year",
      ["state", "list", "--lock-timeout", "366d"],
      /Invalid --lock-timeout "366d": a lock timeout must be at most 365d/,
      "gaib-state state list [--id ID] [--state FILE] [ADDRESS...]",
    ],
    [
      "a malformed address",
      ["state", "show", "not an address!"],
      /invalid address "not an address!"/,
      "gaib-state state show [--state FILE] <ADDRESS>",
    ],
    [
      "an invalid workspace name",
      ["workspace", "new", "../etc"],
      /workspace name "\.\.\/etc"/,
      "gaib-state workspace new <NAME>",
    ],
    [
      "an invalid -w",
      ["-w", "a b", "workspace", "show"],
      /Invalid --workspace/,
      "gaib-state workspace show",
    ],
    [
      "an argument to lock status",
      ["lock", "status", "extra"],
      /Too many arguments/,
      "gaib-state lock status [--all]",
    ],
  ];
  for (const [name, args, message, usage] of cases) {
    await t.step(name, async () => {
      const result = await project.run(args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stdout, "");
      const [first, second, third] = result.stderr.split("\n");
      assert.match(first, /^Error: /);
      assert.match(first, message);
      assert.ok(second.startsWith(`Usage: ${usage}`), `${second} should start with ${usage}`);
      assert.match(third, /^Run "gaib-state.* --help" for details and examples\.$/);
      assert.doesNotMatch(result.stderr, /\bat .*\.(ts|js):\d+/, "no stack trace");
    });
  }
  await t.step("no refused command wrote anything", async () => {
    const entries = [];
    for await (const entry of Deno.readDir(project.path)) entries.push(entry.name);
    assert.deepEqual(entries, []);
  });
  await t.step("--json puts the usage error on stdout as JSON", async () => {
    const result = await project.run(["--json", "state", "lst"]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr, "");
    assert.deepEqual(parseJson(result), {
      error: {
        type: "UsageError",
        message: "No command registered for `lst`, did you mean `list`?",
        usage:
          "gaib-state state pull|push|list|show|rm|mv|replace-provider|history|rollback|rewrite ...",
      },
    });
  });
});

Deno.test("gaib-state --help works on every command and shows examples", async (t) => {
  await using project = await cliProject();
  const commands = [
    "workspace list",
    "workspace show",
    "workspace new",
    "workspace select",
    "workspace delete",
    "state pull",
    "state push",
    "state list",
    "state show",
    "state rm",
    "state mv",
    "state replace-provider",
    "output",
    "taint",
    "untaint",
    "lock acquire",
    "lock status",
    "unlock",
    "force-unlock",
    "lock-info",
    "config show",
    "config validate",
    "version",
  ];
  for (const command of commands) {
    await t.step(command, async () => {
      const result = await project.run([...command.split(" "), "--help"]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^USAGE\n/);
      assert.match(result.stdout, /\nEXAMPLES\n {2}\S*gaib-state /);
      assert.match(result.stdout, /--json/, "global flags are listed");
      assert.equal(result.stderr, "");
    });
  }
  await t.step("the top level lists every command", async () => {
    for (const args of [["--help"], ["help"], []]) {
      const result = await project.run(args);
      assert.equal(result.code, 0);
      for (
        const name of [
          "workspace",
          "state",
          "lock",
          "unlock",
          "force-unlock",
          "lock-info",
          "output",
          "taint",
          "untaint",
          "config",
          "version",
        ]
      ) {
        assert.match(result.stdout, new RegExp(`\\n {2}${name} +\\S`), `${name} in ${args}`);
      }
    }
  });
  await t.step("help COMMAND equals COMMAND --help", async () => {
    const a = await project.run(["help", "state", "mv"]);
    const b = await project.run(["state", "mv", "--help"]);
    assert.equal(a.code, 0);
    assert.equal(a.stdout, b.stdout);
  });
});

Deno.test("gaib-state version prints the version, also as JSON", async () => {
  await using project = await cliProject();
  const text = await project.run(["version"]);
  assert.equal(text.code, 0);
  assert.equal(text.stdout, `gaib-state ${VERSION}\n`);
  const json = parseJson(await project.run(["version", "--json"]));
  assert.equal(json.version, VERSION);
  assert.equal(json.deno, Deno.version.deno);
  assert.equal((await project.run(["--version"])).stdout.trim(), VERSION);
});

Deno.test("gaib-state prints stack traces only with --verbose", async () => {
  await using project = await cliProject();
  await Deno.writeTextFile(`${project.path}/bad.tfstate`, "{ nope");
  const plain = await project.run(["state", "push", "bad.tfstate"]);
  assert.equal(plain.code, 1);
  assert.equal(plain.stderr.trim().split("\n").length, 1, plain.stderr);
  const verbose = await project.run(["state", "push", "bad.tfstate", "--verbose"]);
  assert.equal(verbose.code, 1);
  assert.match(verbose.stderr, /^Error: /);
  assert.match(verbose.stderr, /StateFormatError: .*\n\s+at /);
  // JSON.parse's own message quotes the bytes around the error (maybe a token): not even
  // --verbose shows it, only our position-only error.
  assert.doesNotMatch(verbose.stderr, /Caused by: SyntaxError/);
  assert.match(verbose.stderr, /Caused by: JsonSyntaxError: line 1, column 3/);
  // Stack frames keep their file URLs (no user info to hide in file:///…/@scope/pkg).
  assert.match(verbose.stderr, /file:\/\/\/\S*@stricli\/core/);
});

Deno.test("gaib-state --quiet keeps data and errors, drops messages", async () => {
  await using project = await cliProject();
  const created = await project.run(["workspace", "new", "q", "-q"]);
  assert.equal(created.code, 0);
  assert.equal(created.stderr, "");
  const lock = await project.run(["lock", "acquire", "--quiet"]);
  assert.equal(lock.stderr, "");
  assert.match(lock.stdout, /^[0-9a-f-]{36}\n$/);
  const error = await project.run(["lock", "acquire", "-q"]);
  assert.equal(error.code, 1);
  assert.match(error.stderr, /^Error: Cannot lock/);
});

Deno.test("gaib-state colours errors only on a terminal and never with NO_COLOR or --no-color", async (t) => {
  await using project = await cliProject();
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const line = args.map((a) => `'${a}'`).join(" ");
    const { cliRunArgs } = await import("./_cli.ts");
    const command = [Deno.execPath(), ...cliRunArgs()].map((a) => `'${a}'`).join(" ");
    const output = await new Deno.Command("script", {
      args: ["-qec", `${command} ${line}`, "/dev/null"],
      cwd: project.path,
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "", ...env },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(output.stdout);
  };
  let hasScript = true;
  try {
    new Deno.Command("script", { args: ["--version"], stdout: "null" }).outputSync();
  } catch {
    hasScript = false;
  }
  await t.step({
    name: "a terminal gets colour",
    ignore: !hasScript,
    fn: async () => assert.ok((await run(["unlock", "x"])).includes("\x1b[31;1mError:")),
  });
  await t.step({
    name: "NO_COLOR turns it off",
    ignore: !hasScript,
    fn: async () => {
      const text = await run(["unlock", "x"], { NO_COLOR: "1" });
      assert.match(text, /Error: /);
      assert.ok(!text.includes("\x1b["), JSON.stringify(text));
    },
  });
  await t.step({
    name: "--no-color turns it off",
    ignore: !hasScript,
    fn: async () => {
      const text = await run(["unlock", "x", "--no-color"]);
      assert.match(text, /Error: /);
      assert.ok(!text.includes("\x1b["), JSON.stringify(text));
    },
  });
  await t.step("a pipe gets none", async () => {
    const result = await project.run(["unlock", "x"]);
    assert.ok(!result.stderr.includes("\x1b["));
  });
});

Deno.test("the CLI tests run with exactly the compile task's narrow permissions", () => {
  const flags = compilePermissionFlags();
  assert.ok(flags.includes("--no-prompt"));
  assert.ok(!flags.includes("--allow-all") && !flags.includes("-A"));
  const env = flags.find((f) => f.startsWith("--allow-env="));
  assert.ok(env, "--allow-env names its variables");
  const write = flags.find((f) => f.startsWith("--allow-write"));
  assert.equal(write, "--allow-write=.", "writes only under the working directory");
  assert.ok(flags.some((f) => f.startsWith("--allow-sys=")), "--allow-sys names its APIs");
  assert.ok(!flags.includes("--allow-run") && !flags.includes("--allow-ffi"));
});

Deno.test("gaib-state refuses to write outside the working directory and says why", async () => {
  await using project = await cliProject();
  const outside = await Deno.makeTempDir({ prefix: "gaib-cli-outside-" });
  try {
    const result = await project.run(["workspace", "new", "x"], {
      env: { GAIB_BACKEND: "local", GAIB_STATE_PATH: `${outside}/state` },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Requires write access/);
    assert.match(result.stderr, /writes only under the current directory/);
    assert.deepEqual([...Deno.readDirSync(outside)], [], "nothing was written there");
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});
