/**
 * The hostile input corpus and secret canaries through the CLI, spawned with the compile
 * task's exact permissions (tests/_cli.ts):
 *
 * - every stored state file, config file, workspace name and lock ID of
 *   tests/corpus/manifest.ts gives exit 1 or 2 with its specific message (and the matching
 *   `--json` error document), and leaves every state, backup and lock byte-for-byte as it was;
 * - every command, with and without `--json` and `--verbose`, succeeding and failing, runs
 *   with canaries in `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, the Discord token
 *   variables and a sensitive output and attribute: no canary ever shows on stdout or stderr,
 *   except the raw state that `state pull` prints on purpose.
 *
 * Arguments and environment values cannot hold NUL, so the NUL name and ID cases run through
 * the library only (tests/reliability_corpus_test.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createEmptyState, type GaibState, LocalBackend } from "../mod.ts";
import { type CliResult, runCli } from "./_cli.ts";
import {
  BAD_LOCK_IDS,
  BAD_WORKSPACE_NAMES,
  CONFIG_CASES,
  type Expected,
  STATE_CASES,
} from "./corpus/manifest.ts";
import { sizes, snapshotTree, tempDir } from "./reliability/_util.ts";

const OPTIONS = { sanitizeOps: false, sanitizeResources: false };
const FULL = sizes().name === "full";
const LINEAGE = "0badc0de-0000-4000-8000-000000000002";

function show(result: CliResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${
    result.stderr.slice(0, 2000)
  }`;
}

/**
 * The run failed with exit 1 or 2 and said `expected` (plain and `--json`). `types` are the
 * error types `--json` may report (the CLI reports a bad argument as a UsageError, exit 2).
 */
function assertRefused(
  plain: CliResult,
  json: CliResult,
  expected: Expected,
  what: string,
  types: string[] = [expected.error],
) {
  assert.ok(plain.code === 1 || plain.code === 2, `${what}: ${show(plain)}`);
  assert.ok(
    plain.stderr.toLowerCase().includes(expected.message.toLowerCase()),
    `${what}: stderr lacks ${JSON.stringify(expected.message)}: ${show(plain)}`,
  );
  assert.equal(json.code, plain.code, `${what} --json: ${show(json)}`);
  let doc: { error?: { type?: string; message?: string } };
  try {
    doc = JSON.parse(json.stdout);
  } catch {
    assert.fail(`${what} --json: stdout is not one JSON document: ${show(json)}`);
  }
  assert.ok(types.includes(doc.error?.type ?? ""), `${what} --json: ${show(json)}`);
  assert.ok(
    doc.error?.message?.toLowerCase().includes(expected.message.toLowerCase()),
    `${what} --json: message lacks ${JSON.stringify(expected.message)}`,
  );
}

/** A project directory with `.gaib` holding two workspaces' states, backups and a lock. */
async function prepareProject(dir: string): Promise<{ lockId: string }> {
  const backend = new LocalBackend({ path: `${dir}/.gaib` });
  try {
    for (const workspace of ["default", "victim"]) {
      await backend.setState(workspace, { ...createEmptyState(), lineage: LINEAGE, serial: 1 });
      await backend.setState(workspace, { ...createEmptyState(), lineage: LINEAGE, serial: 2 });
    }
    const { lockId } = await backend.lock("victim", { detached: true, operation: "corpus" });
    return { lockId };
  } finally {
    await backend.close();
  }
}

async function cli(dir: string, args: string[], env: Record<string, string> = {}) {
  return await runCli(args, { cwd: dir, env });
}

Deno.test({
  name: "the CLI refuses every hostile stored state file with exit 1 and its specific message, " +
    "and changes no file",
  ...OPTIONS,
  async fn(t) {
    for (const testCase of STATE_CASES) {
      if (testCase.huge && !FULL) continue;
      await t.step(`${testCase.name}: ${testCase.about}`, async () => {
        await using dir = await tempDir();
        await prepareProject(dir.path);
        const path = `${dir.path}/.gaib/workspaces/victim/terraform.tfstate`;
        await testCase.make(path);
        const pushFile = `${dir.path}/push.tfstate`;
        await testCase.make(pushFile);
        const before = await snapshotTree(dir.path);
        const [list, listJson] = await Promise.all([
          cli(dir.path, ["state", "list", "-w", "victim"]),
          cli(dir.path, ["state", "list", "-w", "victim", "--json"]),
        ]);
        if (typeof testCase.read === "object") {
          assertRefused(list, listJson, testCase.read, "state list");
          if (FULL) {
            // Pushing the same bytes over a good state is refused for the same reason.
            const [push, pushJson] = await Promise.all([
              cli(dir.path, ["state", "push", "push.tfstate"]),
              cli(dir.path, ["state", "push", "push.tfstate", "--json"]),
            ]);
            assertRefused(push, pushJson, testCase.read, "state push");
          }
        } else {
          assert.equal(list.code, 0, show(list));
          assert.equal(listJson.code, 0, show(listJson));
        }
        assert.deepEqual(await snapshotTree(dir.path), before, "a file changed");
      });
    }
  },
});

Deno.test({
  name: "the CLI refuses every malformed or hostile config file with exit 1 or 2 and its " +
    "specific message, and changes no file",
  ...OPTIONS,
  async fn(t) {
    for (const testCase of CONFIG_CASES) {
      await t.step(`${testCase.name}: ${testCase.about}`, async () => {
        await using dir = await tempDir();
        await prepareProject(dir.path);
        const content = typeof testCase.content === "function"
          ? testCase.content()
          : testCase.content;
        await Deno.writeFile(
          `${dir.path}/gaib.yaml`,
          typeof content === "string" ? new TextEncoder().encode(content) : content,
        );
        const before = await snapshotTree(dir.path);
        const all = [["config", "validate"], ["state", "list"], ["workspace", "list"]];
        // The quick run takes one entry point per case, in turn; the full run all of them.
        const commands = FULL ? all : [all[CONFIG_CASES.indexOf(testCase) % all.length]];
        for (const args of commands) {
          const [plain, json] = await Promise.all([
            cli(dir.path, args),
            cli(dir.path, [...args, "--json"]),
          ]);
          assertRefused(plain, json, testCase.expected, args.join(" "));
          assert.ok(plain.stderr.includes("gaib.yaml"), `${args.join(" ")}: names the file`);
        }
        assert.deepEqual(await snapshotTree(dir.path), before, "a file changed");
      });
    }
  },
});

/** The arguments with `--json`, which must come before a `--` (after it all are arguments). */
function withJson(args: string[]): string[] {
  const end = args.indexOf("--");
  return end < 0 ? [...args, "--json"] : [...args.slice(0, end), "--json", ...args.slice(end)];
}

Deno.test({
  name: "the CLI refuses every hostile workspace name, as argument, -w flag and GAIB_WORKSPACE, " +
    "with exit 1 or 2 and changes no file",
  ...OPTIONS,
  async fn(t) {
    await using dir = await tempDir();
    await prepareProject(dir.path);
    const before = await snapshotTree(dir.path);
    const expected: Expected = { error: "BackendConfigError", message: "workspace name" };
    for (const { name, value } of BAD_WORKSPACE_NAMES) {
      if (value.includes("\0")) continue; // argv and environment cannot carry NUL
      await t.step(`${name}: ${JSON.stringify(value.slice(0, 40))}`, async () => {
        // A name with a leading dash reaches the CLI only after `--` or as `--workspace=`.
        const dash = value.startsWith("-");
        const arg = dash ? ["--", value] : [value];
        const flag = dash ? [`--workspace=${value}`] : ["-w", value];
        const all: [string, string[], Record<string, string>][] = [
          ["workspace select", ["workspace", "select", ...arg], {}],
          ["state list -w", ["state", "list", ...flag], {}],
          ["workspace new", ["workspace", "new", ...arg], {}],
          ["workspace delete", ["workspace", "delete", "--force", ...arg], {}],
          ["lock acquire -w", ["lock", "acquire", ...flag], {}],
        ];
        if (value !== "") {
          all.push(["GAIB_WORKSPACE", ["state", "list"], { GAIB_WORKSPACE: value }]);
        }
        // The quick run takes one entry point per name, in turn; the full run all of them.
        const index = BAD_WORKSPACE_NAMES.findIndex((c) => c.name === name);
        const runs = FULL ? all : [all[index % all.length]];
        for (const [what, args, env] of runs) {
          const [plain, json] = await Promise.all([
            cli(dir.path, args, env),
            // --json goes before a `--`, after which everything is an argument.
            cli(dir.path, withJson(args), env),
          ]);
          // An empty argument may be refused by the argument parser (usage, exit 2).
          if (value === "" && plain.code === 2) continue;
          assertRefused(plain, json, expected, what, ["BackendConfigError", "UsageError"]);
        }
        assert.deepEqual(await snapshotTree(dir.path), before, "a file changed");
      });
    }
  },
});

Deno.test({
  name: "the CLI refuses every hostile lock ID on unlock and force-unlock with exit 1 or 2, " +
    "keeps the lock and changes no file",
  ...OPTIONS,
  async fn(t) {
    await using dir = await tempDir();
    await prepareProject(dir.path);
    const before = await snapshotTree(dir.path);
    for (const { name, value } of BAD_LOCK_IDS) {
      if (value.includes("\0")) continue;
      await t.step(`${name}: ${JSON.stringify(value.slice(0, 40))}`, async () => {
        const index = BAD_LOCK_IDS.findIndex((c) => c.name === name);
        const quick = index % 2 === 0 ? ["unlock"] : ["force-unlock"];
        for (const command of FULL ? ["unlock", "force-unlock"] : quick) {
          for (const workspace of FULL ? ["victim", "default"] : ["victim"]) {
            const args = [
              command,
              ...(command === "force-unlock" ? ["--force"] : []),
              value,
              "-w",
              workspace,
            ];
            const [plain, json] = await Promise.all([
              cli(dir.path, args),
              cli(dir.path, [...args, "--json"]),
            ]);
            assert.ok(plain.code === 1 || plain.code === 2, `${args.join(" ")}: ${show(plain)}`);
            assert.equal(json.code, plain.code);
            const doc = JSON.parse(json.stdout);
            assert.ok(
              ["StateLockError", "UsageError"].includes(doc.error?.type),
              `${command}: ${json.stdout}`,
            );
          }
        }
        assert.deepEqual(await snapshotTree(dir.path), before, "a file changed");
      });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Secrets

const CANARY = {
  awsSecret: "CANARYawsSecret9f3b2c71d0",
  awsSession: "CANARYawsSession4e8a6d15f2",
  discord: "CANARYdiscordToken7c2e9b4a81",
  discordCustom: "CANARYdiscordCustom3d6f1a9e",
  output: "CANARYsensitiveOutput5b8d2f7c",
  attribute: "CANARYsensitiveAttr1e4c8a3b6",
};
const CANARIES = Object.values(CANARY);

function canaryState(serial: number): GaibState {
  return {
    ...createEmptyState(),
    lineage: LINEAGE,
    serial,
    outputs: {
      bot_token: { value: CANARY.output, type: "string", sensitive: true },
      guild: { value: "123456789012345678", type: "string" },
    },
    resources: [{
      mode: "managed",
      type: "discord_bot",
      name: "main",
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{
        schema_version: 0,
        attributes: { id: "bot-1", name: "gaib", token: CANARY.attribute },
        sensitive_attributes: [[{ type: "get_attr", value: "token" }]],
      }],
    }, {
      mode: "managed",
      type: "discord_role",
      name: "admin",
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{ schema_version: 0, attributes: { id: "role-1", name: "admin" } }],
    }],
  };
}

function assertNoCanary(result: CliResult, what: string, allowStdout = false): void {
  for (const canary of CANARIES) {
    assert.ok(!result.stderr.includes(canary), `${what}: stderr shows ${canary}`);
    if (!allowStdout) assert.ok(!result.stdout.includes(canary), `${what}: stdout shows ${canary}`);
  }
}

Deno.test({
  name: "no CLI command, succeeding or failing, with or without --json and --verbose, prints a " +
    "secret canary, except the raw state of state pull",
  ...OPTIONS,
  async fn(t) {
    await using dir = await tempDir();
    const env = {
      AWS_ACCESS_KEY_ID: "AKIACANARYKEYID00000",
      AWS_SECRET_ACCESS_KEY: CANARY.awsSecret,
      AWS_SESSION_TOKEN: CANARY.awsSession,
      AWS_REGION: "us-east-1",
      DISCORD_TOKEN: CANARY.discord,
      GAIB_DISCORD_TOKEN: CANARY.discordCustom,
    };
    await Deno.writeTextFile(
      `${dir.path}/gaib.yaml`,
      'version: "1"\nbackend:\n  type: local\n  path: .gaib\ndiscord:\n' +
        '  guild_id: "123456789012345678"\n  token_env: GAIB_DISCORD_TOKEN\n' +
        "outputs:\n  bot_token:\n    sensitive: true\n",
    );
    const backend = new LocalBackend({ path: `${dir.path}/.gaib` });
    await backend.setState("default", canaryState(1));
    await backend.setState("default", canaryState(2));
    // An earlier version for `state pull --version` and `state rollback`.
    const version = (await backend.listVersions("default"))[1].versionId;
    await backend.close();
    await Deno.writeTextFile(
      `${dir.path}/push.tfstate`,
      JSON.stringify({ ...canaryState(3), serial: 3 }, null, 2),
    );

    let lockId = "";
    // `fails`: the command is expected to fail (usage error, stale push, broken backend);
    // every other one must succeed, or the test would prove nothing.
    const commands: {
      args: string[];
      raw?: boolean;
      fails?: boolean;
      env?: Record<string, string>;
    }[] = [
      { args: ["version"] },
      { args: ["--help"] },
      { args: ["help", "state"] },
      { args: ["workspace", "list"] },
      { args: ["workspace", "show"] },
      { args: ["workspace", "new", "canary-ws"] },
      { args: ["workspace", "select", "default"] },
      { args: ["workspace", "delete", "--force", "canary-ws"] },
      { args: ["state", "pull"], raw: true },
      { args: ["state", "list"] },
      { args: ["state", "show", "discord_bot.main"] },
      { args: ["state", "show", "output.bot_token"] },
      { args: ["state", "show", "discord_role.admin"] },
      { args: ["state", "push", "push.tfstate"] },
      { args: ["state", "mv", "discord_role.admin", "discord_role.owner"] },
      { args: ["state", "rm", "--dry-run", "discord_bot.main"] },
      { args: ["state", "rm", "discord_role.owner"] },
      { args: ["output"] },
      { args: ["output", "guild"] },
      { args: ["output", "bot_token", "--raw"], raw: true },
      { args: ["output", "--state", "push.tfstate"] },
      { args: ["state", "list", "--state", "push.tfstate"] },
      { args: ["state", "show", "--state", "push.tfstate", "discord_bot.main"] },
      { args: ["taint", "discord_bot.main"] },
      { args: ["untaint", "discord_bot.main"] },
      { args: ["state", "replace-provider", "--yes", "gaib/discord", "acme/discord"] },
      {
        args: [
          "state",
          "mv",
          "discord_bot.main",
          "discord_bot.b",
          "discord_bot.b",
          "discord_bot.main",
        ],
      },
      { args: ["workspace", "new", "canary-to"] },
      { args: ["workspace", "select", "default"] },
      {
        args: [
          "state",
          "mv",
          "--to-workspace",
          "canary-to",
          "discord_bot.main",
          "discord_bot.main",
        ],
      },
      { args: ["state", "history"] },
      { args: ["state", "pull", "--version", "VERSION"], raw: true },
      { args: ["state", "rollback", "VERSION"] },
      { args: ["lock", "acquire", "--ttl", "1h"] },
      { args: ["lock", "status"] },
      { args: ["lock-info"] },
      { args: ["unlock", "LOCK"] },
      { args: ["lock", "acquire"] },
      { args: ["force-unlock", "--force", "LOCK"] },
      { args: ["config", "show"] },
      { args: ["config", "validate"] },
      // Failures: usage errors, a missing address, a stale push, a broken backend.
      { args: ["no-such-command"], fails: true },
      { args: ["state", "show", "discord_bot.nope"], fails: true },
      { args: ["state", "push", "push.tfstate"], fails: true },
      { args: ["state", "list", "--lock-timeout", "soon"], fails: true },
      { args: ["state", "pull", "--version", "../../nope"], fails: true },
      { args: ["state", "history", "-n", "0"], fails: true },
      {
        args: ["state", "list"],
        fails: true,
        env: {
          GAIB_BACKEND: "s3",
          GAIB_S3_BUCKET: "canary-bucket",
          GAIB_S3_KEY: "terraform.tfstate",
          GAIB_S3_ENDPOINT: "http://127.0.0.1:9",
          GAIB_S3_FORCE_PATH_STYLE: "true",
          GAIB_S3_MAX_RETRIES: "0",
        },
      },
      {
        args: ["lock", "acquire"],
        fails: true,
        env: {
          GAIB_BACKEND: "s3",
          GAIB_S3_BUCKET: "canary-bucket",
          GAIB_S3_KEY: "terraform.tfstate",
          GAIB_S3_ENDPOINT: `http://${CANARY.awsSecret}:${CANARY.awsSession}@127.0.0.1:9`,
          GAIB_DYNAMODB_TABLE: "canary-locks",
          GAIB_S3_MAX_RETRIES: "0",
        },
      },
    ];
    for (const command of commands) {
      for (const extra of FULL ? [[], ["--json"], ["--verbose"]] : [[], ["--json"]]) {
        const args = [
          ...command.args.map((a) => a === "LOCK" ? lockId : a === "VERSION" ? version : a),
          ...extra,
        ];
        await t.step(args.join(" "), async () => {
          const result = await cli(dir.path, args, { ...env, ...command.env });
          assertNoCanary(result, args.join(" "), command.raw);
          if (command.fails) {
            assert.ok(result.code === 1 || result.code === 2, show(result));
          } else if (extra.length === 0) {
            // Only the first run must succeed: repeating a change (new, rm, mv, lock, unlock)
            // with --json or --verbose may fail, and its output is checked all the same.
            assert.equal(result.code, 0, `${args.join(" ")}: ${show(result)}`);
          }
          if (command.raw && extra.length === 0) {
            assert.ok(result.stdout.includes(CANARY.output), "a raw state or a named output");
          }
          const id = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(
            result.stdout + result.stderr,
          );
          if (command.args[0] === "lock" && command.args[1] === "acquire" && id) lockId = id[0];
        });
      }
    }
  },
});
