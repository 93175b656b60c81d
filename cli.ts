/**
 * The `gaib-state` command line: workspaces, state inspection and surgery, locks and config,
 * against whatever backend `BackendFactory` finds (the `GAIB_*` environment, then
 * `gaib.yaml`, then `.gaib` in the working directory).
 *
 * This file is the command tree only; each command's handler lives in `src/cli/` and is
 * loaded when the command runs, so that `gaib-state state list` on the local backend loads
 * neither the AWS SDK nor the config schema.
 *
 * Run it with the permissions the compiled binary gets (see the README):
 * `deno run --no-prompt --allow-read --allow-write=. --allow-net
 * --allow-env=GAIB_*,AWS_*,... --allow-sys=hostname,osRelease,uid,statfs jsr:@gaib/state/cli`.
 *
 * @example Lock in one CI step, unlock in a later one
 * ```sh
 * LOCK_ID=$(gaib-state lock acquire --ttl 2h)
 * gaib-state state list
 * gaib-state unlock "$LOCK_ID"
 * ```
 *
 * @module
 */

import {
  type Application,
  buildApplication,
  buildCommand,
  buildRouteMap,
  type Command,
  help,
  type RouteMap,
  run as runStricli,
  type StricliProcess,
  version,
} from "@stricli/core";
import { parseLockTimeout, parseTtl } from "./src/cli/_duration.ts";
import { parseSize } from "./src/cli/_size.ts";
import type { CliContext } from "./src/cli/_context.ts";
import { EXIT_FAILURE, EXIT_USAGE, printReport, type Usage } from "./src/cli/_errors.ts";
import { type CliIo, colorAllowed, Output, processIo } from "./src/cli/_output.ts";
import { VERSION } from "./src/version.ts";

const NAME = "gaib-state";

// ---------------------------------------------------------------------------------------------
// Flags every command takes.

const GLOBAL_FLAGS = {
  config: {
    kind: "parsed",
    parse: String,
    brief: "Config file to use instead of looking for gaib.yaml",
    optional: true,
    placeholder: "FILE",
  },
  workspace: {
    kind: "parsed",
    parse: String,
    brief: "Workspace (default: GAIB_WORKSPACE, else the selected one)",
    optional: true,
    placeholder: "NAME",
  },
  lockTimeout: {
    kind: "parsed",
    parse: parseLockTimeout,
    brief: "How long to wait for a busy lock, such as 30s (default 0s)",
    optional: true,
    placeholder: "DURATION",
  },
  json: {
    kind: "boolean",
    brief: "One JSON document on stdout, errors included",
    optional: true,
    withNegated: false,
  },
  quiet: {
    kind: "boolean",
    brief: "Print only data and errors",
    optional: true,
    withNegated: false,
  },
  verbose: {
    kind: "boolean",
    brief: "Print details, and stack traces with errors",
    optional: true,
    withNegated: false,
  },
  color: {
    kind: "boolean",
    brief: "Colour on a terminal (also off with NO_COLOR)",
    default: true,
  },
} as const;
const GLOBAL_ALIASES = { w: "workspace", q: "quiet" } as const;
/** Global flags that take a value, as they may be written before the command. */
const GLOBAL_VALUE_FLAGS = new Set([
  "--config",
  "--workspace",
  "-w",
  "--lock-timeout",
  "--lockTimeout",
]);
const GLOBAL_SWITCHES = new Set([
  "--json",
  "--quiet",
  "-q",
  "--verbose",
  "--color",
  "--no-color",
  "--noColor",
]);

// ---------------------------------------------------------------------------------------------
// The command tree.

interface CommandSpec {
  /** What the command does, one line. */
  brief: string;
  /** More about it, for --help. */
  description?: string;
  /** Arguments and own flags, after the command name: `[--force] <FILE>`. */
  usage: string;
  /** `[command line, what it does]` pairs for --help. */
  examples: Array<[string, string]>;
  // deno-lint-ignore no-explicit-any
  flags?: Record<string, any>;
  aliases?: Record<string, string>;
  // deno-lint-ignore no-explicit-any
  positional?: any;
  // deno-lint-ignore no-explicit-any
  load: () => Promise<(this: CliContext, flags: any, ...args: any[]) => Promise<void>>;
}

/** Usage text by command path (`"state list"`), for usage errors. */
const USAGES = new Map<string, string>();

/** Wraps a paragraph at 80 columns for help text. */
function wrap(text: string, width = 80): string {
  return text.split("\n").map((paragraph) => {
    const lines: string[] = [];
    let line = "";
    for (const word of paragraph.split(" ")) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
    return lines.join("\n");
  }).join("\n");
}

function command(path: string, spec: CommandSpec): Command<CliContext> {
  USAGES.set(path, spec.usage);
  const examples = spec.examples.map(([line, what]) => `  ${line}\n      ${what}`).join("\n");
  const description = [
    wrap(spec.description ?? spec.brief),
    `EXAMPLES\n${examples}`,
    wrap(`Run "${NAME} --help" for all commands. Exit codes: 0 success, 1 failure, 2 usage error.`),
  ].join("\n\n");
  return buildCommand({
    loader: spec.load,
    parameters: {
      flags: { ...GLOBAL_FLAGS, ...spec.flags },
      aliases: { ...GLOBAL_ALIASES, ...spec.aliases },
      positional: spec.positional ?? { kind: "tuple", parameters: [] },
    },
    docs: { brief: spec.brief, fullDescription: description, customUsage: [spec.usage] },
  } as never) as Command<CliContext>;
}

const name = (brief: string, placeholder = "NAME") => ({ brief, parse: String, placeholder });
const LOCK_ID_FLAG = {
  kind: "parsed",
  parse: String,
  brief: "Work under this held lock (from gaib-state lock acquire) instead of taking one",
  optional: true,
  placeholder: "LOCK_ID",
};
const STATE_FILE_FLAG = {
  kind: "parsed",
  parse: String,
  brief: "Read this state file (a pulled state, a backup) instead of the backend",
  optional: true,
  placeholder: "FILE",
};
const flag = (brief: string) => ({ kind: "boolean", brief, optional: true, withNegated: false });
/** `-n N` of `state history`: a whole number of at least 1. */
function parseCount(text: string): number {
  const n = Number(text);
  if (!/^\d{1,9}$/.test(text) || n < 1) {
    throw new RangeError(`expected a whole number of at least 1, not "${text}"`);
  }
  return n;
}

function buildApp(): Application<CliContext> {
  const workspace = buildRouteMap({
    routes: {
      list: command("workspace list", {
        brief: "List the workspaces; * marks the selected one",
        usage: "",
        examples: [
          ["gaib-state workspace list", "List the workspaces."],
          ["gaib-state workspace list --json", 'Print {"workspaces": [...], "selected": "..."}.'],
        ],
        load: async () => (await import("./src/cli/workspace.ts")).list,
      }),
      show: command("workspace show", {
        brief: "Print the selected workspace",
        description: "Print the selected workspace: -w, else GAIB_WORKSPACE, else the one " +
          'stored by "workspace select" in <state root>/.current-workspace, else default.',
        usage: "",
        examples: [["gaib-state workspace show", "Print the selected workspace's name."]],
        load: async () => (await import("./src/cli/workspace.ts")).show,
      }),
      new: command("workspace new", {
        brief: "Create a workspace (with an empty state) and select it",
        usage: "<NAME>",
        examples: [["gaib-state workspace new staging", 'Create "staging" and select it.']],
        positional: { kind: "tuple", parameters: [name("Name of the new workspace")] },
        load: async () => (await import("./src/cli/workspace.ts")).create,
      }),
      select: command("workspace select", {
        brief: "Select the workspace later commands work on",
        usage: "[--or-create] <NAME>",
        examples: [
          ["gaib-state workspace select prod", 'Work on "prod" from now on.'],
          ["gaib-state workspace select pr-42 --or-create", "Select pr-42, creating it if needed."],
        ],
        flags: { orCreate: flag("Create the workspace if it does not exist") },
        positional: { kind: "tuple", parameters: [name("Workspace to select")] },
        load: async () => (await import("./src/cli/workspace.ts")).select,
      }),
      delete: command("workspace delete", {
        brief: "Delete a workspace and its state",
        description: "Delete a workspace and its state, under the workspace lock. Refuses the " +
          "default workspace, the selected workspace, a workspace locked by someone else, and " +
          "a workspace whose state still tracks managed resources (unless --force).",
        usage: "[--force] [--lock-id LOCK_ID] <NAME>",
        examples: [
          ["gaib-state workspace delete pr-42", "Delete an empty workspace."],
          ["gaib-state workspace delete pr-42 --force", "Delete it even though it has resources."],
          [
            'gaib-state workspace delete pr-42 --lock-id "$LOCK_ID"',
            'Delete it under the lock a CI step took with "gaib-state lock -w pr-42".',
          ],
        ],
        flags: {
          force: flag("Delete even if its state still has resources"),
          lockId: LOCK_ID_FLAG,
        },
        positional: { kind: "tuple", parameters: [name("Workspace to delete")] },
        load: async () => (await import("./src/cli/workspace.ts")).remove,
      }),
    },
    docs: { brief: "Create, select, list and delete workspaces" },
  });

  const address = (brief: string) => ({ brief, parse: String, placeholder: "ADDRESS" });
  const state = buildRouteMap({
    routes: {
      pull: command("state pull", {
        brief: "Print the workspace's raw state to stdout",
        description: "Print the workspace's raw state (Terraform format v4) to stdout, " +
          "sensitive values included: treat the output as a secret.",
        usage: "[--ignore-digest] [--version VERSION]",
        examples: [
          ["gaib-state state pull > terraform.tfstate", "Save the state to a file."],
          [
            "gaib-state state pull --version 20261130T073501123Z-9f3c2a1b > old.tfstate",
            'Save an earlier version (IDs from "gaib-state state history").',
          ],
          [
            "gaib-state state pull --ignore-digest | gaib-state state push --force -",
            "Keep a state another tool uploaded to S3 without its DynamoDB digest.",
          ],
        ],
        flags: {
          ignoreDigest: flag("Read the state even when it does not match its DynamoDB digest"),
          version: {
            kind: "parsed",
            parse: String,
            brief: 'Print this stored version instead (IDs from "state history")',
            optional: true,
            placeholder: "VERSION",
          },
        },
        load: async () => (await import("./src/cli/state.ts")).pull,
      }),
      push: command("state push", {
        brief: "Replace the workspace's state with a state file",
        description: "Replace the workspace's state with FILE (- reads stdin), under the " +
          "workspace lock. The file must have the stored state's lineage and a newer serial " +
          "(or the same serial and content); --force skips both checks. A workspace whose " +
          "state is empty (no resources, no outputs) takes any state. The previous state is " +
          "kept in <state root>/backups/<workspace>/. The workspace must exist (like every " +
          "command but the workspace ones); --create creates it, for a CI job that sets up " +
          "new workspaces.",
        usage: "[--force] [--create] [--lock-id LOCK_ID] <FILE|->",
        examples: [
          ["gaib-state state push terraform.tfstate", "Upload a state file."],
          ["gaib-state state push - < terraform.tfstate", "Push from stdin."],
          ["gaib-state state push --force old.tfstate", "Overwrite with an older serial."],
          [
            'gaib-state state push --lock-id "$LOCK_ID" new.tfstate',
            'Push under the lock a CI step took with "gaib-state lock acquire".',
          ],
          [
            "gaib-state state push --create -w pr-42 terraform.tfstate",
            'Push to workspace "pr-42", creating it if it does not exist.',
          ],
        ],
        flags: {
          force: flag("Skip the lineage and serial checks"),
          create: flag("Create the workspace if it does not exist"),
          lockId: LOCK_ID_FLAG,
        },
        positional: {
          kind: "tuple",
          parameters: [{ brief: "State file, or - for stdin", parse: String, placeholder: "FILE" }],
        },
        load: async () => (await import("./src/cli/state.ts")).push,
      }),
      list: command("state list", {
        brief: "List resource instance addresses",
        description: "List the resource instances in the state, one address per line. With " +
          "addresses, list only the instances they name: a module (module.app also names " +
          'module.app["web"]), a resource or an instance.',
        usage: "[--id ID] [--state FILE] [ADDRESS...]",
        examples: [
          ["gaib-state state list", "List every instance."],
          ["gaib-state state list 'module.app[\"web\"]'", "List the instances in one module."],
          ["gaib-state state list --id 1234567890", "Find the instance with this id."],
          [
            "gaib-state state list --state .gaib/backups/default/terraform.tfstate.20261130T081500Z.backup",
            "List what a backup holds, without opening the backend.",
          ],
        ],
        flags: {
          state: STATE_FILE_FLAG,
          id: {
            kind: "parsed",
            parse: String,
            brief: "Only instances whose id attribute is ID",
            optional: true,
            placeholder: "ID",
          },
        },
        positional: { kind: "array", parameter: address("Addresses to filter by") },
        load: async () => (await import("./src/cli/state.ts")).list,
      }),
      show: command("state show", {
        brief: "Show one resource instance's attributes (or an output)",
        description: "Show the attributes of one resource instance, or a root output with " +
          "output.NAME. Values marked sensitive (sensitive_attributes, sensitive outputs) are " +
          "shown as (sensitive value), also with --json.",
        usage: "[--state FILE] <ADDRESS>",
        examples: [
          ["gaib-state state show discord_role.admin", "Show a single-instance resource."],
          ["gaib-state state show --state pulled.tfstate discord_role.admin", "Read a file."],
          [
            "gaib-state state show 'module.app[\"web\"].discord_channel.general[0]'",
            "Show one instance in a module.",
          ],
          ["gaib-state state show output.guild_id", "Show a root output."],
        ],
        flags: { state: STATE_FILE_FLAG },
        positional: { kind: "tuple", parameters: [address("Instance or output.NAME")] },
        load: async () => (await import("./src/cli/state.ts")).show,
      }),
      rm: command("state rm", {
        brief: "Forget resource instances (the real objects stay)",
        description: "Remove instances from the state, so that Gaib forgets them without " +
          "destroying them. A resource address removes all its instances, a module address " +
          "everything in it. Runs under the workspace lock; the previous state is kept in " +
          "<state root>/backups/<workspace>/.",
        usage: "[--dry-run] [--lock-id LOCK_ID] <ADDRESS>...",
        examples: [
          ["gaib-state state rm discord_role.old", "Forget a resource (all its instances)."],
          ["gaib-state state rm 'discord_channel.c[\"x\"]' --dry-run", "Show what would go."],
        ],
        flags: { dryRun: flag("Show what would be removed; change nothing"), lockId: LOCK_ID_FLAG },
        positional: { kind: "array", parameter: address("Addresses to remove"), minimum: 1 },
        load: async () => (await import("./src/cli/state.ts")).rm,
      }),
      mv: command("state mv", {
        brief: "Move resources, instances or modules to other addresses",
        description: "Rename a resource (all its instances), move one instance (also between " +
          'count and for_each: x[0] to x["a"]; a resource without count to x[0] and back), or ' +
          "move a module, as terraform state mv does. Several SOURCE DEST pairs are applied " +
          "in order under one lock and written as one new serial; if one is refused, nothing " +
          "changes. The destination must not exist and a resource keeps its type. With " +
          "--to-workspace WS the objects move into another workspace's state (Terraform's " +
          "-state-out): both workspaces are locked (in name order), both are backed up, the " +
          "destination is written first; if writing the source then fails, the destination " +
          "is put back, and if that fails too the error gives the state push command that " +
          "restores it from its backup. Backups go to <state root>/backups/<workspace>/.",
        usage: "[--dry-run] [--lock-id LOCK_ID] [--to-workspace WS] <SOURCE> <DEST> " +
          "[<SOURCE> <DEST>...]",
        examples: [
          ["gaib-state state mv discord_role.mod discord_role.moderator", "Rename a resource."],
          [
            "gaib-state state mv 'discord_channel.c[0]' 'discord_channel.c[\"general\"]' " +
            "'discord_channel.c[1]' 'discord_channel.c[\"random\"]'",
            "Turn count instances into for_each keys, in one serial.",
          ],
          ["gaib-state state mv module.old module.new --dry-run", "Preview a module move."],
          [
            "gaib-state state mv --to-workspace staging discord_role.test discord_role.test",
            'Move a resource into workspace "staging".',
          ],
        ],
        flags: {
          dryRun: flag("Show what would move; change nothing"),
          lockId: LOCK_ID_FLAG,
          toWorkspace: {
            kind: "parsed",
            parse: String,
            brief: "Move into this workspace's state (both are locked and backed up)",
            optional: true,
            placeholder: "WS",
          },
        },
        positional: {
          kind: "array",
          parameter: { brief: "SOURCE DEST pairs", parse: String, placeholder: "ADDRESS" },
          minimum: 2,
        },
        load: async () => (await import("./src/cli/state.ts")).mv,
      }),
      "replace-provider": command("state replace-provider", {
        brief: "Replace a provider in every resource and instance that uses it",
        description: "Rewrite the provider of every resource (and, for OpenTofu 1.9+ " +
          "per-instance providers, every instance) whose provider is FROM into TO, keeping " +
          "module and alias, as terraform state replace-provider does. FROM and TO are " +
          "provider sources such as gaib/discord or registry.terraform.io/gaib/discord; " +
          "without a hostname FROM matches both registry.terraform.io and " +
          "registry.opentofu.org, and TO keeps each address's host. Lists the changes and " +
          "asks for confirmation on a terminal; elsewhere pass --auto-approve (or --yes). Runs " +
          "under the workspace lock, with a backup.",
        usage: "[--dry-run] [--auto-approve] [--lock-id LOCK_ID] <FROM> <TO>",
        examples: [
          [
            "gaib-state state replace-provider old-org/discord gaib/discord",
            "Move every resource to the new provider, after confirming.",
          ],
          [
            "gaib-state state replace-provider --auto-approve -- -/discord gaib/discord",
            "Upgrade pre-0.13 legacy provider addresses in CI.",
          ],
        ],
        flags: {
          dryRun: flag("Show what would change; change nothing"),
          autoApprove: flag("Do not ask for confirmation"),
          yes: flag("Same as --auto-approve"),
          lockId: LOCK_ID_FLAG,
        },
        positional: {
          kind: "tuple",
          parameters: [
            { brief: "Provider to replace", parse: String, placeholder: "FROM" },
            { brief: "Provider to use", parse: String, placeholder: "TO" },
          ],
        },
        load: async () => (await import("./src/cli/state.ts")).replaceProviderCommand,
      }),
      history: command("state history", {
        brief: "List the stored versions of the workspace's state",
        description: "List the stored versions of the workspace's state, newest first: " +
          "version ID, serial, when it was saved, size, and which is current. The local " +
          "backend keeps the last versions beside the state (history: N in gaib.yaml, default " +
          "10); S3 lists the bucket's versions (turn bucket versioning on to keep them).",
        usage: "[-n N]",
        examples: [
          ["gaib-state state history", "The newest 20 versions."],
          ["gaib-state state history -n 5 --json", "The newest 5, as JSON."],
        ],
        flags: {
          limit: {
            kind: "parsed",
            parse: parseCount,
            brief: "List at most N versions (default 20)",
            optional: true,
            placeholder: "N",
          },
        },
        aliases: { n: "limit" },
        load: async () => (await import("./src/cli/history.ts")).history,
      }),
      rollback: command("state rollback", {
        brief: "Put an earlier version of the state back, as a new write",
        description: 'Write the content of a stored version (from "state history") as the ' +
          "next serial of the current state, with its lineage, under the workspace lock: a " +
          "new write, never a rewind, so everyone else's serial checks keep working. A version " +
          "of another lineage is refused unless --force (it then keeps its own lineage). The " +
          "state it replaces is kept in <state root>/backups/<workspace>/. Prints the new serial.",
        usage: "[--force] [--lock-id LOCK_ID] <VERSION>",
        examples: [
          [
            "gaib-state state rollback 20261130T073501123Z-9f3c2a1b",
            "Put that version back (the new serial is printed).",
          ],
          [
            'gaib-state state rollback --lock-id "$LOCK_ID" 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH',
            'Roll back under a lock taken with "gaib-state lock acquire".',
          ],
        ],
        flags: {
          force: flag("Also put back a version of another lineage"),
          lockId: LOCK_ID_FLAG,
        },
        positional: {
          kind: "tuple",
          parameters: [{ brief: "The version ID", parse: String, placeholder: "VERSION" }],
        },
        load: async () => (await import("./src/cli/history.ts")).rollback,
      }),
      rewrite: command("state rewrite", {
        brief: "Write the state again with the current encryption (key rotation)",
        description: "Read the state (any configured method or fallback decrypts it) and " +
          "write it again, with serial + 1, encrypted with the primary method: after adding a " +
          "new key with the old one as fallback, or encryption to a plain state. Runs under " +
          "each workspace's lock; the previous state is kept in <state root>/backups/<workspace>/.",
        usage: "[--all] [--lock-id LOCK_ID]",
        examples: [
          ["gaib-state state rewrite", "Re-encrypt the selected workspace's state."],
          ["gaib-state state rewrite --all", "Re-encrypt every workspace, one lock at a time."],
        ],
        flags: { all: flag("Rewrite every workspace"), lockId: LOCK_ID_FLAG },
        load: async () => (await import("./src/cli/rewrite.ts")).rewrite,
      }),
    },
    docs: { brief: "Read, replace and edit the state" },
  });

  const lockStatusSpec = (path: string): CommandSpec => ({
    brief: "Show who holds a workspace's lock, and since when",
    description: "Show who holds a workspace's lock and since when and, for a lock with a " +
      "lease (taken by gaib-state), when the lease or TTL ends, from when the lock may be " +
      "taken over, and whether its holder is alive: known on the local backend for a holder " +
      "on this machine, never claimed from a lease alone.",
    usage: "[--all]",
    examples: [
      ["gaib-state lock status", "Show the selected workspace's lock."],
      ["gaib-state lock status --all", "Show the locks of all workspaces."],
      [`gaib-state ${path} --json -w prod`, 'Print {"workspace": "prod", "locked": ..., ...}.'],
    ],
    flags: { all: flag("Every workspace") },
    load: async () => (await import("./src/cli/lock.ts")).status,
  });
  const lock = buildRouteMap({
    routes: {
      acquire: command("lock acquire", {
        brief: "Take a detached lock and print its ID",
        description: "Take the workspace lock for a pipeline that locks in one step and " +
          "unlocks in a later one: the lock outlives this process and is released by " +
          '"gaib-state unlock LOCK_ID", or expires after --ttl. Only the lock ID goes to ' +
          "stdout.",
        usage: "[--ttl DURATION] [--info TEXT]",
        examples: [
          ["LOCK_ID=$(gaib-state lock acquire --ttl 2h)", "Lock for at most two hours."],
          [
            'gaib-state lock acquire --lock-timeout 5m --info "deploy $CI_JOB_ID"',
            "Wait up to 5m.",
          ],
        ],
        flags: {
          ttl: {
            kind: "parsed",
            parse: parseTtl,
            brief: "Let the lock expire after this long, such as 2h (default: never)",
            optional: true,
            placeholder: "DURATION",
          },
          info: {
            kind: "parsed",
            parse: String,
            brief: "Text stored with the lock",
            optional: true,
            placeholder: "TEXT",
          },
        },
        load: async () => (await import("./src/cli/lock.ts")).acquire,
      }),
      status: command("lock status", lockStatusSpec("lock status")),
    },
    defaultCommand: "acquire",
    docs: {
      brief: "Take a detached lock (lock acquire) or show locks (lock status)",
      fullDescription: wrap(
        "gaib-state lock acquire [--ttl DURATION] takes a detached lock and prints its ID; " +
          "gaib-state lock status [--all] shows the locks. Run " +
          '"gaib-state lock acquire --help" for the flags. ("gaib-state lock" alone runs ' +
          '"lock acquire", for scripts written before the subcommand existed.)',
      ),
    },
  });

  const config = buildRouteMap({
    routes: {
      show: command("config show", {
        brief: "Show the effective backend and where each value came from",
        description: "Show the backend that applies here (environment, then gaib.yaml, then " +
          "the local default), each setting with its origin, the state root and the selected " +
          "workspace. Credentials are never shown, only whether they are set.",
        usage: "",
        examples: [
          ["gaib-state config show", "Show the effective backend."],
          ["GAIB_BACKEND=local gaib-state config show --json", "See what the environment does."],
        ],
        load: async () => (await import("./src/cli/config.ts")).show,
      }),
      validate: command("config validate", {
        brief: "Check a gaib.yaml",
        description: "Check a config file (FILE, else --config, else the gaib.yaml found from " +
          "here up) and report the first problem with its line and column.",
        usage: "[FILE]",
        examples: [
          ["gaib-state config validate", "Check the gaib.yaml that applies here."],
          ["gaib-state config validate ci/gaib.yaml", "Check another file."],
        ],
        positional: {
          kind: "tuple",
          parameters: [{
            brief: "Config file",
            parse: String,
            placeholder: "FILE",
            optional: true,
          }],
        },
        load: async () => (await import("./src/cli/config.ts")).validate,
      }),
    },
    docs: { brief: "Show and check the configuration" },
  });

  const lockIdArg = {
    kind: "tuple",
    parameters: [{ brief: "The lock's ID", parse: String, placeholder: "LOCK_ID" }],
  };
  const root = buildRouteMap({
    routes: {
      workspace,
      state,
      lock,
      unlock: command("unlock", {
        brief: "Release a lock by its ID",
        description: "Release the workspace lock with this ID, such as the one " +
          '"gaib-state lock acquire" printed. A lock held by another running process is not ' +
          "released: " +
          "use force-unlock for that.",
        usage: "<LOCK_ID>",
        examples: [['gaib-state unlock "$LOCK_ID"', "Release the pipeline's lock."]],
        positional: lockIdArg,
        load: async () => (await import("./src/cli/lock.ts")).unlock,
      }),
      "force-unlock": command("force-unlock", {
        brief: "Release a stuck lock, whoever holds it",
        description: "Release the workspace lock with this ID whoever holds it, for a lock " +
          "whose holder is gone. Asks for confirmation on a terminal; elsewhere pass --force.",
        usage: "[--force] <LOCK_ID>",
        examples: [
          ["gaib-state force-unlock 7f3c2a9e-...", "Release after confirming."],
          ["gaib-state force-unlock --force 7f3c2a9e-... -w prod", "Release without asking."],
        ],
        flags: { force: flag("Do not ask for confirmation") },
        positional: lockIdArg,
        load: async () => (await import("./src/cli/lock.ts")).forceUnlock,
      }),
      "lock-info": command("lock-info", lockStatusSpec("lock-info")),
      serve: command("serve", {
        brief: "Serve the backend to Terraform and OpenTofu (their http backend)",
        description: "Serve the configured backend with Terraform's http backend protocol: " +
          "the state of workspace NAME at /NAME, its lock at /NAME/lock. Every write goes " +
          "through gaib-state's lock, lineage and serial rules. Basic authentication comes " +
          "from GAIB_SERVE_USERNAME and GAIB_SERVE_PASSWORD; without them only a loopback " +
          "address is served. SIGINT/SIGTERM finish the requests in flight and stop; locks " +
          "that clients took stay held.",
        usage: "[--listen HOST:PORT] [--cert FILE --key FILE] [--max-body-size SIZE] " +
          "[--lock-ttl DURATION]",
        examples: [
          ["gaib-state serve", "Serve on http://127.0.0.1:8080/."],
          [
            "GAIB_SERVE_USERNAME=tf GAIB_SERVE_PASSWORD=... gaib-state serve --listen " +
            "0.0.0.0:8443 --cert cert.pem --key key.pem",
            "Serve over TLS with basic authentication on every interface.",
          ],
        ],
        flags: {
          listen: {
            kind: "parsed",
            parse: String,
            brief: "Address and port to listen on (default 127.0.0.1:8080)",
            default: "127.0.0.1:8080",
            placeholder: "HOST:PORT",
          },
          cert: {
            kind: "parsed",
            parse: String,
            brief: "TLS certificate chain (PEM file), with --key",
            optional: true,
            placeholder: "FILE",
          },
          key: {
            kind: "parsed",
            parse: String,
            brief: "TLS private key (PEM file), with --cert",
            optional: true,
            placeholder: "FILE",
          },
          maxBodySize: {
            kind: "parsed",
            parse: parseSize,
            brief: "Largest state accepted, such as 512MiB (default 256MiB)",
            optional: true,
            placeholder: "SIZE",
          },
          lockTtl: {
            kind: "parsed",
            parse: parseTtl,
            brief: "Let locks taken through the server expire after this long (default: never)",
            optional: true,
            placeholder: "DURATION",
          },
        },
        load: async () => (await import("./src/cli/serve.ts")).serve,
      }),
      migrate: command("migrate", {
        brief: "Copy workspaces' states to another backend",
        description: "Copy each workspace's state, as it is (same lineage and serial), from " +
          "the backend that applies here (or --from FILE) to the backend of --to FILE, a " +
          "gaib.yaml-style file, under the workspace lock of both. The copy is read back " +
          "before it counts. A target that already holds the state is left unchanged; one " +
          "with another lineage or a newer serial is refused unless --force (which keeps the " +
          "replaced state in <target state root>/backups/<workspace>/ first). A workspace " +
          "locked by someone else waits up to --lock-timeout, then is refused. Running it " +
          "again after an interruption finishes the job and copies nothing twice. History " +
          "and backups do not move. The GAIB_* variables do not apply to --from and --to " +
          "files. Exit 1 when a workspace was refused.",
        usage: "--to <FILE> [--from FILE] [-w NAME]... [--dry-run] [--force]",
        examples: [
          ["gaib-state migrate --to s3.gaib.yaml --dry-run", "See what would be copied."],
          ["gaib-state migrate --to s3.gaib.yaml", "Copy every workspace to S3."],
          [
            "gaib-state migrate --to s3.gaib.yaml -w prod -w staging --lock-timeout 5m",
            "Copy two workspaces, waiting up to 5m for each busy lock.",
          ],
        ],
        flags: {
          to: {
            kind: "parsed",
            parse: String,
            brief: "Config file of the target backend",
            placeholder: "FILE",
          },
          from: {
            kind: "parsed",
            parse: String,
            brief: "Config file of the source backend (default: the one that applies here)",
            optional: true,
            placeholder: "FILE",
          },
          workspace: {
            kind: "parsed",
            parse: String,
            brief: "A workspace to migrate, repeatable (default: every workspace)",
            optional: true,
            variadic: true,
            placeholder: "NAME",
          },
          dryRun: flag("Show what would be copied; lock and change nothing"),
          force: flag("Copy over a target with another lineage or a newer serial"),
        },
        load: async () => (await import("./src/cli/migrate.ts")).migrate,
      }),

      output: command("output", {
        brief: "Show root outputs; a sensitive value only when asked for by name",
        description: "Show the root module's outputs, like terraform output. Without NAME, " +
          "sensitive outputs are marked and their values hidden, in the table and with --json " +
          "(stricter than terraform output -json, which prints every value). A sensitive " +
          "value is printed only when its output is named: output NAME, output NAME --json " +
          "(the value as JSON) or output NAME --raw (a bare string, number or bool, for " +
          "scripts). --state FILE reads a state file instead of the backend.",
        usage: "[--raw] [--state FILE] [NAME]",
        examples: [
          ["gaib-state output", "List the outputs; sensitive ones show <sensitive>."],
          ["gaib-state output guild_id --raw", "Print one value bare, for a script."],
          ["gaib-state output --json", 'Print {"name": {"sensitive", "type", "value"}}.'],
        ],
        flags: {
          raw: flag("Print the bare value of one string, number or bool output"),
          state: STATE_FILE_FLAG,
        },
        positional: {
          kind: "tuple",
          parameters: [{ ...name("Output to show"), optional: true }],
        },
        load: async () => (await import("./src/cli/output.ts")).output,
      }),
      taint: command("taint", {
        brief: "Mark a resource instance for replacement on the next apply",
        description: 'Set status "tainted" on a managed resource instance\'s current object ' +
          "(deposed objects are left alone), like terraform taint. Refuses a data source and " +
          "an address that is not in the state. Runs under the workspace lock, with a backup.",
        usage: "[--dry-run] [--lock-id LOCK_ID] <ADDRESS>",
        examples: [
          ["gaib-state taint discord_role.admin", "Replace the role on the next apply."],
          ["gaib-state taint 'discord_channel.c[\"general\"]' --dry-run", "Check first."],
        ],
        flags: { dryRun: flag("Check; change nothing"), lockId: LOCK_ID_FLAG },
        positional: { kind: "tuple", parameters: [address("Resource instance")] },
        load: async () => (await import("./src/cli/taint.ts")).taint,
      }),
      untaint: command("untaint", {
        brief: "Clear the tainted mark of a resource instance",
        description: "Clear the tainted status of a managed resource instance, like " +
          "terraform untaint. Refuses an instance that is not tainted, a data source and an " +
          "address that is not in the state. Runs under the workspace lock, with a backup.",
        usage: "[--dry-run] [--lock-id LOCK_ID] <ADDRESS>",
        examples: [["gaib-state untaint discord_role.admin", "Keep the role after all."]],
        flags: { dryRun: flag("Check; change nothing"), lockId: LOCK_ID_FLAG },
        positional: { kind: "tuple", parameters: [address("Resource instance")] },
        load: async () => (await import("./src/cli/taint.ts")).untaint,
      }),
      config,
      doctor: command("doctor", {
        brief: "Check that the backend's store is safe to trust",
        description: "Run named checks against the configured backend and print a table: " +
          "check, result (ok, warn, fail, skipped) and, for every other result than ok, what " +
          "it means and the fix. S3: credentials, the bucket, permissions (probed on temporary " +
          "objects under .gaib-doctor/, removed again), versioning, encryption, public access, " +
          "conditional writes for the lock mode, the DynamoDB table, clock skew. Local: fsync, " +
          "rename and flock on temporary files, the mount, file modes, leftovers. Exit 1 when a " +
          "check fails. Credentials are never shown.",
        usage: "",
        examples: [
          ["gaib-state doctor", "Check the backend that applies here."],
          ["gaib-state doctor --json -w prod", "For CI, probing the keys of workspace prod."],
        ],
        load: async () => (await import("./src/cli/doctor.ts")).doctor,
      }),
      bootstrap: command("bootstrap", {
        brief: "Create what the backend needs (bucket, lock table, state root), then run doctor",
        description: "Create what the configured backend needs, idempotently: for S3 the " +
          "bucket (in its region), versioning, default encryption, a public access block, a " +
          "policy denying requests without TLS (not on http:// endpoints) and the DynamoDB lock " +
          "table (LockID, String, on-demand); for local the state root (0700). Settings of " +
          "existing resources change only with --fix, and only those doctor flags; objects are " +
          "never touched. After each change writes are probed, and a change that broke them is " +
          "undone and reported. Then doctor runs and prints its table.",
        usage: "[--dry-run] [--fix]",
        examples: [
          ["gaib-state bootstrap --dry-run", "Say what would be created."],
          ["gaib-state bootstrap", "Create what is missing."],
          ["gaib-state bootstrap --fix", "Also correct the settings doctor flags."],
        ],
        flags: {
          dryRun: flag("Say what would be done, change nothing"),
          fix: flag("Also change settings of existing resources that doctor flags"),
        },
        load: async () => (await import("./src/cli/doctor.ts")).bootstrap,
      }),
      version: command("version", {
        brief: "Print the version",
        usage: "",
        examples: [["gaib-state version --json", 'Print {"version": "..."}.']],
        load: () => Promise.resolve(versionCommand),
      }),
      help: command("help", {
        brief: "Show help for a command",
        usage: "[COMMAND...]",
        examples: [["gaib-state help state mv", 'Same as "gaib-state state mv --help".']],
        positional: {
          kind: "array",
          parameter: { ...name("Command", "COMMAND"), optional: true },
        },
        load: () => Promise.resolve(async function () {}),
      }),
    },
    docs: {
      brief: "Terraform-compatible state for Gaib: workspaces, state, locks and config",
      fullDescription: wrap(
        "gaib-state stores Terraform-compatible state for the Gaib toolchain. " +
          "It uses the backend the GAIB_* environment variables describe, else gaib.yaml (found " +
          "from here up, or --config), else .gaib in the current directory.\n\n" +
          "Global flags, accepted by every command: --config FILE, -w/--workspace NAME " +
          "(GAIB_WORKSPACE), --lock-timeout DURATION, --json, -q/--quiet, --verbose, --no-color " +
          "(NO_COLOR).\n\nExit codes: 0 success, 1 failure, 2 usage error, 130/143 interrupted.",
      ),
    },
  });
  const formatting = {
    useAliasInUsageLine: false,
    onlyRequiredInUsageLine: true,
    caseStyle: "convert-camel-to-kebab",
  } as const;
  return buildApplication(root, {
    name: NAME,
    // `--` ends the flags, so an argument such as a lock ID may start with a dash.
    scanner: { caseStyle: "allow-kebab-for-camel", allowArgumentEscapeSequence: true },
  }, {
    help: help({
      brief: "Print help for the command and exit",
      formatting,
      defaultForRouteMap: true,
    }),
    version: version({ brief: "Print the version and exit", info: { currentVersion: VERSION } }),
  });
}

function versionCommand(this: CliContext, flags: { json?: boolean }): Promise<void> {
  const text = flags.json
    ? JSON.stringify({ version: VERSION, deno: Deno.version.deno, v8: Deno.version.v8 }, null, 2)
    : `${NAME} ${VERSION}`;
  this.io.stdout(text + "\n");
  this.result.exitCode = 0;
  return Promise.resolve();
}

let app: Application<CliContext> | undefined;

// ---------------------------------------------------------------------------------------------
// Running it.

function isRouteMap(target: unknown): target is RouteMap<CliContext> {
  return typeof target === "object" && target !== null && "getRoutingTargetForInput" in target;
}

/** The deepest command or route map the non-flag words of `words` lead to, with its path. */
function findTarget(words: readonly string[]): { path: string[]; target: unknown } {
  let target: unknown = (app ??= buildApp()).root;
  const path: string[] = [];
  for (const word of words) {
    if (word.startsWith("-")) continue;
    if (!isRouteMap(target)) break;
    const next = target.getRoutingTargetForInput(word);
    if (!next) break;
    path.push(word);
    target = next;
  }
  return { path, target };
}

function usageFor(words: readonly string[]): Usage {
  const { path, target } = findTarget(words);
  const command = [NAME, ...path].join(" ");
  const known = USAGES.get(path.join(" "));
  if (known !== undefined) return { line: `${command} ${known}`.trimEnd(), command };
  if (path.join(" ") === "lock") {
    return {
      line: `${command} acquire [--ttl DURATION] [--info TEXT] | ${command} status [--all]`,
      command,
    };
  }
  if (isRouteMap(target)) {
    const names = target.getAllEntries().filter((e) => !e.hidden).map((e) => e.name.original);
    return { line: `${command} ${names.join("|")} ...`, command };
  }
  return { line: command, command };
}

/** Moves global flags written before the command (`gaib-state -w prod state list`) after it. */
function normalize(given: readonly string[]): string[] {
  // Terraform spells it with one dash.
  const args = given.map((a) => a === "-auto-approve" ? "--auto-approve" : a);
  if (args[0] === "help") {
    return args.length > 1 ? [...args.slice(1), "--help"] : ["--help"];
  }
  const leading: string[] = [];
  let i = 0;
  while (i < args.length) {
    const arg = args[i];
    const flagName = arg.split("=")[0];
    if (GLOBAL_VALUE_FLAGS.has(flagName)) {
      const take = arg.includes("=") ? 1 : 2;
      leading.push(...args.slice(i, i + take));
      i += take;
    } else if (GLOBAL_SWITCHES.has(flagName)) {
      leading.push(arg);
      i++;
    } else break;
  }
  if (leading.length === 0 || i >= args.length) return [...args];
  return [...args.slice(i), ...leading];
}

/** Whether `args` name anything besides global flags. */
function hasCommand(args: readonly string[]): boolean {
  let i = 0;
  while (i < args.length) {
    const name = args[i].split("=")[0];
    if (GLOBAL_VALUE_FLAGS.has(name)) i += args[i].includes("=") ? 1 : 2;
    else if (GLOBAL_SWITCHES.has(name)) i++;
    else return true;
  }
  return false;
}

function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * Runs the CLI with the given streams.
 *
 * @param args command-line arguments, without the program name
 * @param io the streams
 * @returns the exit code
 */
async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const words = normalize(args);
  const json = words.includes("--json");
  const verbose = words.includes("--verbose");
  const color = colorAllowed({ color: !words.includes("--no-color") });
  const out = new Output(io, { json, verbose, color });
  let captured = "";
  const depth = (terminal: () => boolean) => () => color && terminal() ? 8 : 1;
  const process: StricliProcess = {
    stdout: { write: (text) => io.stdout(text), getColorDepth: depth(io.stdoutIsTerminal) },
    stderr: { write: (text) => void (captured += text), getColorDepth: () => 1 },
    env: {},
    exitCode: undefined,
  };
  const result = { exitCode: 0 };
  await runStricli(app ??= buildApp(), words, {
    process,
    locale: "en",
    forCommand: ({ prefix }) => {
      const context: CliContext = { process, io, usage: usageFor(prefix.slice(1)), result };
      return context;
    },
  });
  const code = Number(process.exitCode ?? 0);
  if (code === 0) return result.exitCode;
  let message = stripAnsi(captured).trim();
  if (code === -5 && !hasCommand(args)) {
    message = `Missing a command after ${args.join(" ")}.`;
  }
  // Stricli says `Failed to parse "0s" for ttl: ...`; name the flag as it is typed.
  message = message.replace(/^Failed to parse (".*") for ([\w-]+): /, "Invalid --$2 $1: ");
  if (code === -4 || code === -5) {
    printReport(
      out,
      { exitCode: EXIT_USAGE, type: "UsageError", message, details: {} },
      usageFor(words),
    );
    return EXIT_USAGE;
  }
  const [first, ...rest] = message.split("\n");
  printReport(out, { exitCode: EXIT_FAILURE, type: "InternalError", message: first, details: {} });
  if (verbose && rest.length) io.stderr(out.safe(rest.join("\n")) + "\n");
  return EXIT_FAILURE;
}

/**
 * Runs the `gaib-state` CLI: parses `args`, runs the command, writes to stdout and stderr.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error, 130/143 interrupted by SIGINT/SIGTERM.
 * Needs the permissions listed in the module doc; a command that changes state takes the
 * workspace lock and releases it on every path.
 *
 * @param args command-line arguments, without the program name
 * @returns the exit code
 *
 * @example Run a command and check the exit code
 * ```ts ignore
 * import { main } from "@gaib/state/cli";
 *
 * const code = await main(["workspace", "list", "--json"]);
 * if (code !== 0) console.error("gaib-state failed");
 * ```
 */
export function main(args: string[]): Promise<number> {
  return runCli(args, processIo);
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
