/**
 * `gaib-state migrate --to FILE [--from FILE] [-w NAME]... [--dry-run] [--force]`: copies
 * workspaces' states from one backend to another with `migrateStates`, printing progress on
 * stderr and a summary table on stdout; exit 1 when a workspace was refused.
 *
 * The source is the backend that applies here (as for every command: `--config`, the `GAIB_*`
 * variables, `gaib.yaml`), or `--from FILE`. A file named with `--from` or `--to` is read as
 * `--config` reads one (used whoever owns it: you named it; its state root checked), and is
 * taken as written: the `GAIB_*` variables describe the current backend, not the one a file
 * names, so they do not apply to it.
 *
 * @module
 */

import { join } from "../_path.ts";
import { printable } from "../_printable.ts";
import { gaibCommand, shellQuote } from "../_command_line.ts";
import { BackendFactory, ENVIRONMENT_VARIABLES, type ResolvedBackendConfig } from "../factory.ts";
import { lockWaitMessage } from "../lock.ts";
import {
  migrateStates,
  type MigrationEntry,
  MigrationError,
  type MigrationProgress,
} from "../migrate.ts";
import { descriptorOf } from "../backends/_registry.ts";
import type { BackendConfig } from "../config.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { formatDuration } from "./_duration.ts";
import { CliError, InterruptedError } from "./_errors.ts";
import { envGet, type Output } from "./_output.ts";
import { resolveConfig, writeBackup } from "./_session.ts";
import { abortOnSignals } from "./_signals.ts";

/** The flags of `migrate`. */
export interface MigrateFlags extends Omit<GlobalFlags, "workspace"> {
  /** `--to FILE`: the target's config file. */
  readonly to: string;
  /** `--from FILE`: the source's config file (default: the backend that applies here). */
  readonly from?: string;
  /** `-w NAME`, repeated: the workspaces to migrate (default: all). */
  readonly workspace?: readonly string[];
  /** `--dry-run`: report what would happen; lock and write nothing. */
  readonly dryRun?: boolean;
  /** `--force`: copy over another lineage or a newer serial on the target. */
  readonly force?: boolean;
}

/** One side of the migration, resolved. */
interface Side {
  /** How the user named it: `--to FILE`, `--from FILE`, or the current backend. */
  readonly named: string;
  readonly resolved: ResolvedBackendConfig;
  /**
   * Where its states are (see the descriptors' `location`), for people and comparison; `null`
   * for a backend that does not say (the library's lock probe still catches the same store).
   */
  readonly location: string | null;
}

/** Reads a config file named with --from/--to: as --config does, without the GAIB_* variables. */
async function resolveFile(file: string, flag: string): Promise<ResolvedBackendConfig> {
  return await BackendFactory.resolve({
    configFile: join(Deno.cwd(), file),
    env: { get: (name) => name.startsWith("GAIB_") ? undefined : envGet(name) },
  }).catch((error) => {
    if (error instanceof Error) error.message = `${flag} ${file}: ${error.message}`;
    throw error;
  });
}

/** Where a config's states are, with its directories resolved to real paths. */
async function locationOf(resolved: ResolvedBackendConfig): Promise<string | null> {
  const descriptor = descriptorOf(resolved.config.type)!;
  const config: Record<string, unknown> = { ...resolved.config };
  for (const field of Object.keys(descriptor.paths ?? {})) {
    const value = config[field];
    if (typeof value !== "string") continue;
    config[field] = await Deno.realPath(value).catch(() => value);
  }
  const location = descriptor.location as ((c: BackendConfig) => string) | undefined;
  return location ? printable(location(config as unknown as BackendConfig)) : null;
}

function describe(side: Side): string {
  return side.location ?? `the ${side.resolved.config.type} backend of ${side.named}`;
}

async function side(named: string, resolved: ResolvedBackendConfig): Promise<Side> {
  return { named, resolved, location: await locationOf(resolved) };
}

const VERBS: Record<MigrationEntry["action"], string> = {
  copied: "copied",
  unchanged: "unchanged",
  refused: "refused",
  empty: "empty (no state in the source)",
};

/** The summary table: one row per workspace. */
function table(results: readonly MigrationEntry[], dryRun: boolean): string {
  const rows = [["WORKSPACE", dryRun ? "WOULD BE" : "ACTION", "SERIAL", "LINEAGE", "TARGET HAD"]];
  for (const entry of results) {
    rows.push([
      printable(entry.workspace),
      entry.action,
      entry.serial === null ? "-" : String(entry.serial),
      entry.lineage === null ? "-" : printable(entry.lineage),
      entry.target ? `serial ${entry.target.serial}, ${printable(entry.target.lineage)}` : "-",
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd() + "\n")
    .join("");
}

function counts(results: readonly MigrationEntry[]): Record<MigrationEntry["action"], number> {
  const tally = { copied: 0, unchanged: 0, refused: 0, empty: 0 };
  for (const entry of results) tally[entry.action]++;
  return tally;
}

/** Prints what was done: the table on stdout, refusals and the tally on stderr. */
function report(
  out: Output,
  results: readonly MigrationEntry[],
  flags: MigrateFlags,
  retry: string,
): void {
  const dryRun = flags.dryRun === true;
  if (results.length > 0) out.data(table(results, dryRun));
  for (const entry of results) {
    if (entry.reason === undefined) continue;
    let line = `${entry.workspace}: ${entry.reason}.`;
    if (entry.holder && entry.lockedOn && !dryRun) {
      const config = entry.lockedOn === "target" ? flags.to : flags.from ?? flags.config;
      const command = config === undefined
        ? "force-unlock"
        : `force-unlock --config ${shellQuote(config)}`;
      const unlock = gaibCommand(entry.workspace, command, entry.holder.ID);
      line += ` If that holder is gone, run "${unlock}".`;
    }
    if (entry.action === "refused") out.warn(line);
    else out.info(line);
  }
  const tally = counts(results);
  const parts = (Object.keys(tally) as Array<keyof typeof tally>)
    .filter((action) => tally[action] > 0)
    .map((action) => `${tally[action]} ${VERBS[action]}`);
  out.info(
    `${dryRun ? "Dry run, nothing was written: " : ""}${results.length} workspace(s)` +
      (parts.length ? `: ${parts.join(", ")}.` : "."),
  );
  if (tally.refused > 0 && !dryRun) {
    out.info(
      `Refused workspaces were left as they are on both sides. After fixing the cause, run ` +
        `"${retry}" again (it copies nothing twice)${
          flags.force ? "" : `, or add --force to copy over the target's state`
        }.`,
    );
  }
}

/** The command line that runs this migration again. */
function retryCommand(flags: MigrateFlags): string {
  const words = ["gaib-state", "migrate", "--to", shellQuote(flags.to)];
  if (flags.from !== undefined) words.push("--from", shellQuote(flags.from));
  for (const name of flags.workspace ?? []) words.push("-w", shellQuote(name));
  if (flags.lockTimeout) words.push("--lock-timeout", formatDuration(flags.lockTimeout));
  return words.join(" ");
}

/** `migrate`. */
export const migrate = handler(async ({ out }: CommandRun, globalFlags: GlobalFlags) => {
  // Here -w/--workspace is repeatable (cli.ts makes it variadic): a list, not one name.
  const flags = globalFlags as unknown as MigrateFlags;
  const source = flags.from === undefined
    ? await side("the current backend", await resolveConfig({ ...flags, workspace: undefined }))
    : await side(`--from ${flags.from}`, await resolveFile(flags.from, "--from"));
  const target = await side(`--to ${flags.to}`, await resolveFile(flags.to, "--to"));
  if (source.location !== null && source.location === target.location) {
    throw new CliError(
      `The source (${source.named}) and the target (${target.named}) are the same store: ` +
        `${source.location}. Nothing was copied. Name another target with --to (or another ` +
        "source with --from).",
      "SameBackend",
      { location: source.location },
    );
  }
  const ignored = Object.keys(ENVIRONMENT_VARIABLES).filter((name) =>
    name.startsWith("GAIB_") && envGet(name) !== undefined
  );
  if (ignored.length > 0) {
    out.debug(
      `${ignored.join(", ")} ${ignored.length > 1 ? "apply" : "applies"} only to the current ` +
        "backend, not to a file named with --from or --to.",
    );
  }
  out.info(
    `${flags.dryRun ? "Dry run: " : ""}Migrating from ${describe(source)} to ${describe(target)}.`,
  );
  // Each side with its own encryption block: a migration decrypts with the source's keys and
  // encrypts with the target's.
  const from = await BackendFactory.fromResolved(source.resolved);
  try {
    const to = await BackendFactory.fromResolved(target.resolved);
    try {
      return await run(out, flags, from, to, target);
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
});

async function run(
  out: Output,
  flags: MigrateFlags,
  from: Awaited<ReturnType<typeof BackendFactory.create>>,
  to: Awaited<ReturnType<typeof BackendFactory.create>>,
  target: Side,
): Promise<number> {
  using interrupt = abortOnSignals();
  const timeout = formatDuration(flags.lockTimeout ?? 0);
  const onProgress = (step: MigrationProgress) => {
    const at = `[${step.index}/${step.total}]`;
    if (step.phase === "waiting" && step.holder) {
      out.info(`${at} ${lockWaitMessage(step.workspace, step.holder, timeout)} (${step.side})`);
    } else if (step.phase === "locked") {
      out.debug(`${at} ${printable(step.workspace)}: locked on both sides, copying`);
    } else if (step.phase === "done" && step.entry) {
      const { entry } = step;
      const serial = entry.serial === null ? "" : ` (serial ${entry.serial})`;
      const action = entry.dryRun ? `would be ${entry.action}` : entry.action;
      out.info(`${at} ${printable(step.workspace)}: ${action}${serial}`);
    }
  };
  const retry = retryCommand(flags);
  let results: MigrationEntry[];
  try {
    results = await migrateStates(from, to, {
      workspaces: flags.workspace?.length ? [...flags.workspace] : undefined,
      dryRun: flags.dryRun,
      force: flags.force,
      lockTimeoutMs: flags.lockTimeout ?? 0,
      signal: interrupt.signal,
      onProgress,
      // --force replaces the target's state: keep it first, as state push does.
      async onReplace(workspace, replaced) {
        const path = await writeBackup(
          { resolved: target.resolved, backend: to },
          workspace,
          replaced,
        );
        out.info(`${printable(workspace)}: the target's state was backed up to ${path}.`);
      },
    });
  } catch (error) {
    if (!(error instanceof MigrationError)) throw error;
    if (!out.json) report(out, error.results, flags, retry);
    if (interrupt.received) {
      throw new InterruptedError(
        interrupt.received,
        `Interrupted by ${interrupt.received}: ${error.results.length} workspace(s) were finished and ` +
          `every lock taken was released. Run "${retry}" to finish the job.`,
      );
    }
    throw new CliError(error.message, "MigrationError", { results: error.results });
  }
  const tally = counts(results);
  if (out.json) {
    out.jsonDocument({ dryRun: flags.dryRun === true, results, summary: tally });
  } else {
    report(out, results, flags, retry);
  }
  return tally.refused > 0 ? 1 : 0;
}
