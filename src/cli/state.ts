/**
 * `gaib-state state pull | push | list | show | rm | mv | replace-provider`. The edits
 * themselves are library functions (`../_state_move.ts`, `../_provider_replace.ts`); this
 * file reads, locks, backs up, writes and reports.
 *
 * @module
 */

import { printable, printableJson } from "../_printable.ts";
import { parseStateBytes, serializeState } from "../state.ts";
import { StateFormatError } from "../errors.ts";
import type { EncryptedBackend } from "../encryption.ts";
import type { GaibState, StateResourceInstance } from "../types.ts";
import {
  findInstance,
  listFilterMatches,
  listInstances,
  parseTarget,
  type Target,
} from "./_addresses.ts";
import { removeTargets } from "../_state_remove.ts";
import { type MovePair, moveStates } from "../_state_move.ts";
import { type ReadFlags, withStateSource } from "./_state_source.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { CliError, UsageError } from "./_errors.ts";
import { createEmptyState } from "../state.ts";
import { shellQuote } from "../_command_line.ts";
import { DEFAULT_WORKSPACE, validateWorkspaceName } from "../workspace.ts";
import type { ProviderChange } from "../_provider_replace.ts";
import type { Output } from "./_output.ts";
import {
  type LockedRun,
  openSession,
  type Session,
  withStateLock,
  writeBackup,
} from "./_session.ts";

function noState(session: Session): CliError {
  return new CliError(
    `Workspace "${session.workspace}" has no state yet, so there is nothing to change.`,
    "NoState",
    { workspace: session.workspace },
  );
}

/** What a read command says when there is no state. */
function absent(workspace: string | null, file: string | null): string {
  return file === null
    ? `Workspace "${workspace}" has no state yet`
    : `State file ${file} is empty`;
}

/** `state pull`: the raw state to stdout. */
export const pull = handler(async ({ out }: CommandRun, flags: PullFlags) => {
  await using session = await openSession(flags, out);
  const verifyDigest = flags.ignoreDigest !== true;
  const state = flags.version === undefined
    ? await session.backend.getState(session.workspace, { verifyDigest })
    : await session.backend.getStateVersion(session.workspace, flags.version);
  if (state === null) {
    if (out.json) out.line("null");
    else out.info(`Workspace "${session.workspace}" has no state yet.`);
    return;
  }
  // The state's own JSON, but with DEL, C1 controls and bidirectional overrides written as
  // \u escapes (JSON.stringify escapes the C0 controls itself): the same JSON value, safe to
  // view on a terminal.
  out.data(printableJson(serializeState(state)));
});

/**
 * Reads the file `state push` was given, with an error that says what is wrong with it
 * instead of the operating system's words.
 */
async function readStateFile(file: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(file);
  } catch (error) {
    const problem = error instanceof Deno.errors.NotFound
      ? `it does not exist (relative paths start at ${Deno.cwd()})`
      : error instanceof Deno.errors.IsADirectory
      ? "it is a directory; name the state file in it, such as terraform.tfstate"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied; check the file's owner and mode"
      : undefined;
    if (problem === undefined) throw error;
    throw new CliError(
      `Cannot read state file ${file}: ${problem}. Use - to read the state from stdin.`,
      "StateFileError",
      { file },
    );
  }
}
/**
 * `state pull`'s own flags: `--ignore-digest` reads a state that does not match its digest;
 * `--version ID` reads a stored version instead of the current state.
 */
type PullFlags = GlobalFlags & { ignoreDigest?: boolean; version?: string };

/** `state push FILE|-`: replace the state, with lineage and serial checks unless `--force`. */
export const push = handler(
  async (
    { out }: CommandRun,
    flags: GlobalFlags & { force?: boolean; lockId?: string; create?: boolean },
    file: string,
  ) => {
    const source = file === "-" ? "the state on stdin" : `state file ${file}`;
    const bytes = file === "-" ? await out.io.readStdin() : await readStateFile(file);
    let state: GaibState | null;
    let encrypted: StateFormatError | undefined;
    try {
      state = parseStateBytes(bytes, source);
    } catch (error) {
      // An encrypted file (OpenTofu's envelope) is decrypted with the configured keys below.
      if (!(error instanceof StateFormatError) || !/is encrypted/.test(error.message)) throw error;
      encrypted = error;
      state = null;
    }
    if (state === null && encrypted === undefined) {
      throw new CliError(`${source} is empty: there is no state to push.`, "EmptyState");
    }
    await using session = await openSession(flags, out, {
      workspace: flags.create ? "any" : "existing",
      createFlag: "--create",
    });
    if (encrypted) state = await decryptPushed(session, bytes, source, encrypted);
    const ws = session.workspace;
    const done = await withStateLock(session, flags, out, "state push", async (lock) => {
      // A forced push replaces the state whatever it is, so it also replaces one that no
      // longer matches its digest (uploaded by another tool), and writes the digest anew.
      const previous = await session.backend.getState(ws, { verifyDigest: flags.force !== true });
      // Like Terraform, an empty state may be replaced whatever its lineage and serial.
      const force = flags.force === true || (previous !== null && isEmptyState(previous));
      if (previous === null) {
        await lock.writeState(state!, { force });
        return { previous, backup: null };
      }
      return { previous, backup: await writeWithBackup(session, lock, previous, state!, force) };
    }, { heldLockId: flags.lockId });
    const report = {
      workspace: ws,
      serial: state!.serial,
      lineage: state!.lineage,
      previousSerial: done.previous?.serial ?? null,
      forced: flags.force === true,
      backup: done.backup,
    };
    if (out.json) return out.jsonDocument(report);
    out.info(
      `Pushed ${source} (serial ${state!.serial}) to workspace "${ws}"` +
        (done.previous ? `, replacing serial ${done.previous.serial}.` : "."),
    );
    if (done.backup) out.info(`Previous state backed up to ${done.backup}`);
  },
);

/**
 * Decrypts an encrypted state file given to `state push` with the configured encryption (the
 * file's own envelope, as OpenTofu wrote it); without a configuration, the parse error stands.
 */
async function decryptPushed(
  session: Session,
  bytes: Uint8Array,
  source: string,
  refusal: StateFormatError,
): Promise<GaibState> {
  const backend = session.backend as Partial<EncryptedBackend>;
  if (typeof backend.decrypt !== "function") throw refusal;
  const { ENVELOPE_DOCUMENTS } = await import("../_stored_document.ts");
  const doc = ENVELOPE_DOCUMENTS.parse(bytes, source);
  const state = await backend.decrypt(doc, session.workspace);
  if (state === null) throw refusal;
  return state;
}

/** Whether a state has no resource instances and no outputs. */
function isEmptyState(state: GaibState): boolean {
  return (state.resources ?? []).every((r) => r.instances.length === 0) &&
    Object.keys(state.outputs ?? {}).length === 0;
}

/** `state list [ADDRESS...] [--id ID]`: instance addresses, one per line. */
export const list = handler(
  async ({ out }: CommandRun, flags: ReadFlags & { id?: string }, ...addresses: string[]) => {
    const filters = addresses.map(parseTarget);
    await withStateSource(flags, out, ({ state, workspace, file }) => {
      let instances = state ? listInstances(state) : [];
      if (filters.length) {
        instances = instances.filter((i) => filters.some((f) => listFilterMatches(i, f)));
      }
      if (flags.id !== undefined) instances = instances.filter((i) => hasId(i.objects, flags.id!));
      if (out.json) {
        return out.jsonDocument({
          workspace,
          ...(file === null ? {} : { stateFile: file }),
          instances: instances.map((i) => ({
            address: i.address,
            module: i.resource.module ?? null,
            mode: i.resource.mode,
            type: i.resource.type,
            name: i.resource.name,
            index_key: i.parsed.key ?? null,
          })),
        });
      }
      if (state === null) out.info(`${absent(workspace, file)}.`);
      out.data(instances.map((i) => printable(i.address) + "\n").join(""));
    });
  },
);

function hasId(objects: StateResourceInstance[], id: string): boolean {
  return objects.some((o) => {
    const value = o.attributes?.id ?? o.attributes_flat?.id;
    return value !== undefined && value !== null && String(value) === id;
  });
}

/** `state show ADDRESS`: one instance (or `output.NAME`), sensitive values masked. */
export const show = handler(async ({ out }: CommandRun, flags: ReadFlags, address: string) => {
  const outputName = address.startsWith("output.") ? address.slice("output.".length) : null;
  const target = outputName === null ? parseTarget(address) : null;
  await withStateSource(flags, out, async ({ state, workspace, file }) => {
    if (state === null) {
      throw new CliError(`${absent(workspace, file)}: there is nothing to show.`, "NoState", {
        workspace,
      });
    }
    const { quote, renderBlock } = await import("./_render.ts");
    const { forJson, maskAttributes, maskFlatAttributes, SENSITIVE, sensitiveValues } =
      await import(
        "./_sensitive.ts"
      );
    if (outputName !== null) {
      const output = state.outputs?.[outputName];
      if (!output) {
        throw new CliError(
          `The state has no output "${outputName}". Outputs: ${
            Object.keys(state.outputs ?? {}).map(printable).join(", ") || "none"
          }.`,
          "NoMatch",
          { address },
        );
      }
      const value = output.sensitive ? SENSITIVE : output.value;
      if (out.json) {
        return out.jsonDocument({
          address,
          sensitive: output.sensitive === true,
          type: output.type,
          value: forJson(value),
          sensitive_values: sensitiveValues(value),
        });
      }
      out.data(
        `# ${printable(address)}:\n` +
          renderBlock(`output ${quote(outputName)}`, {
            ...(output.sensitive ? { sensitive: true } : {}),
            value,
          }),
      );
      return;
    }
    const instance = findInstance(state, (target as Target).text, workspace ?? "default");
    const current = instance.objects.find((o) => o.deposed === undefined) ?? instance.objects[0];
    const deposed = instance.objects.filter((o) => o.deposed !== undefined);
    let attributes: Record<string, unknown>;
    let failedClosed = false;
    if (current.attributes !== undefined || current.attributes_flat === undefined) {
      const masked = maskAttributes(current.attributes ?? {}, current.sensitive_attributes);
      attributes = masked.attributes;
      failedClosed = masked.failedClosed;
    } else {
      attributes = maskFlatAttributes(current.attributes_flat, current.sensitive_attributes);
    }
    if (failedClosed) {
      out.warn(
        "Some sensitive_attributes paths of this instance were not understood; their whole " +
          "attributes are masked.",
      );
    }
    const { resource, parsed } = instance;
    if (out.json) {
      return out.jsonDocument({
        address: instance.address,
        module: resource.module ?? null,
        mode: resource.mode,
        type: resource.type,
        name: resource.name,
        index_key: parsed.key ?? null,
        provider: current.provider ?? resource.provider ?? null,
        status: current.status ?? null,
        deposed: current.deposed ?? null,
        schema_version: current.schema_version ?? null,
        attributes: forJson(attributes),
        sensitive_values: sensitiveValues(attributes),
        sensitive_attributes: current.sensitive_attributes ?? [],
        dependencies: current.dependencies ?? [],
        deposed_objects: deposed.map((o) => o.deposed),
      });
    }
    const notes = [
      current.status === "tainted" ? " (tainted)" : "",
      current.deposed !== undefined
        ? ` (deposed object ${printable(String(current.deposed))})`
        : "",
    ].join("");
    const kind = resource.mode === "data" ? "data" : "resource";
    let text = `# ${printable(instance.address)}:${notes}\n` +
      renderBlock(`${kind} ${quote(resource.type)} ${quote(resource.name)}`, attributes);
    if (deposed.length && current.deposed === undefined) {
      text += `# ${deposed.length} deposed object(s) not shown: ${
        deposed.map((o) => printable(String(o.deposed))).join(", ")
      }\n`;
    }
    out.data(text);
  });
});

interface EditFlags extends GlobalFlags {
  readonly dryRun?: boolean;
  readonly lockId?: string;
}

/**
 * Keeps a backup of `previous` and writes `next` under the lock; the backup is removed again
 * when the write is refused, so a failed command leaves no trace.
 */
async function writeWithBackup(
  session: Session,
  lock: LockedRun,
  previous: GaibState,
  next: GaibState,
  force = false,
): Promise<string> {
  const backup = await writeBackup(session, session.workspace, previous);
  try {
    await lock.writeState(next, { force });
  } catch (error) {
    await Deno.remove(backup).catch(() => {});
    throw error;
  }
  return backup;
}

/** What an edit did, for its report. */
interface EditDone<T> {
  report: T;
  serial: number | null;
  backup: string | null;
}

/** Runs an edit of the state under the lock (or, with `--dry-run`, without writing). */
async function editState<T>(
  session: Session,
  out: Output,
  flags: EditFlags,
  operation: string,
  edit: (state: GaibState) => { state: GaibState; report: T },
  confirm?: (report: T) => Promise<boolean>,
): Promise<EditDone<T>> {
  const ws = session.workspace;
  if (flags.dryRun) {
    const state = await session.backend.getState(ws);
    if (state === null) throw noState(session);
    return { report: edit(state).report, backup: null, serial: null };
  }
  return await withStateLock(session, flags, out, operation, async (lock) => {
    const state = await session.backend.getState(ws);
    if (state === null) throw noState(session);
    const { state: next, report } = edit(state);
    // Asked under the lock, so that what is shown is what is written.
    if (confirm && !(await confirm(report))) return { report, backup: null, serial: null };
    const serial = state.serial + 1;
    const backup = await writeWithBackup(session, lock, state, { ...next, serial });
    return { report, backup, serial };
  }, { heldLockId: flags.lockId });
}

/** What an edit changed, for its report. */
interface EditChanges {
  /** One line per instance: `discord_role.admin` or `a.b to a.c`. */
  instances: string[];
  /** One line per resource without instances, which is not counted as an instance. */
  emptyResources: string[];
  /** The fields of the `--json` document. */
  json: Record<string, unknown>;
}

/** Reports an edit: one line per change and a summary, or the `--json` document. */
function reportEdit(
  out: Output,
  session: Session,
  done: EditDone<unknown>,
  verb: { present: string; past: string },
  changes: EditChanges,
): void {
  const dryRun = done.serial === null;
  if (out.json) {
    return out.jsonDocument({
      workspace: session.workspace,
      dryRun,
      ...changes.json,
      serial: done.serial,
      backup: done.backup,
    });
  }
  const capital = (word: string) => word[0].toUpperCase() + word.slice(1);
  const did = dryRun ? `Would ${verb.present}` : capital(verb.past);
  // Addresses come from the state: escaped, so that a name cannot drive the terminal.
  for (const change of changes.instances) out.info(`${did} ${printable(change)}`);
  for (const change of changes.emptyResources) {
    out.info(`${did} ${printable(change)} (a resource without instances)`);
  }
  const empty = changes.emptyResources.length;
  const count = `${changes.instances.length} instance(s)` +
    (empty ? ` and ${empty} resource(s) without instances` : "");
  if (dryRun) {
    out.info(`Would ${verb.present} ${count}; nothing was changed (--dry-run).`);
  } else {
    out.info(`Successfully ${verb.past} ${count} (serial ${done.serial}).`);
    out.info(`Previous state backed up to ${done.backup}`);
  }
}

/** `state rm ADDRESS...`: forget instances, under the lock, keeping a backup. */
export const rm = handler(
  async ({ out }: CommandRun, flags: EditFlags, ...addresses: string[]) => {
    const targets = addresses.map(parseTarget);
    await using session = await openSession(flags, out);
    const done = await editState(session, out, flags, "state rm", (state) => {
      const { state: next, ...report } = removeTargets(state, targets, session.workspace);
      return { state: next, report };
    });
    const { removed, emptyResources } = done.report;
    reportEdit(out, session, done, { present: "remove", past: "removed" }, {
      instances: removed,
      emptyResources,
      json: { removed, emptyResources },
    });
  },
);

/** `state mv`'s own flags. */
interface MoveFlags extends EditFlags {
  /** `--to-workspace WS`: move into another workspace's state. */
  readonly toWorkspace?: string;
}

/** Pairs `SOURCE DEST SOURCE DEST...` up, refusing an odd count. */
function movePairs(args: string[]): MovePair[] {
  if (args.length < 2 || args.length % 2 !== 0) {
    throw new UsageError(
      `state mv takes SOURCE DEST pairs, and got ${args.length} address(es). Write each ` +
        "source followed by its destination: gaib-state state mv A B [C D ...].",
    );
  }
  const pairs: MovePair[] = [];
  for (let i = 0; i < args.length; i += 2) {
    pairs.push({ source: parseTarget(args[i]), dest: parseTarget(args[i + 1]) });
  }
  return pairs;
}

/**
 * `state mv SOURCE DEST [SOURCE DEST...]`: move resources, instances or modules, every pair
 * under one lock and written as one new serial; with `--to-workspace`, into another
 * workspace (see {@linkcode moveToWorkspace}).
 */
export const mv = handler(
  async ({ out }: CommandRun, flags: MoveFlags, ...args: string[]) => {
    const pairs = movePairs(args);
    await using session = await openSession(flags, out);
    if (flags.toWorkspace !== undefined) {
      return await moveToWorkspace(session, out, flags, pairs);
    }
    const done = await editState(session, out, flags, "state mv", (state) => {
      const { from, ...report } = moveStates(state, null, pairs, { workspace: session.workspace });
      return { state: from, report };
    });
    reportMove(out, session, done, {});
  },
);

type MoveReport = Omit<ReturnType<typeof moveStates>, "from" | "to">;

function reportMove(
  out: Output,
  session: Session,
  done: EditDone<MoveReport>,
  extra: Record<string, unknown>,
): void {
  const { moved, emptyResources, mixedKeys, droppedDependencies } = done.report;
  const line = ([from, to]: [string, string]) => `${from} to ${to}`;
  const pair = ([from, to]: [string, string]) => ({ from, to });
  reportEdit(out, session, done, { present: "move", past: "moved" }, {
    instances: moved.map(line),
    emptyResources: emptyResources.map(line),
    json: {
      ...extra,
      moved: moved.map(pair),
      emptyResources: emptyResources.map(pair),
      mixedKeys,
      droppedDependencies,
    },
  });
  if (out.json) return;
  for (const address of mixedKeys) {
    out.warn(
      `${printable(address)} now has both count indexes and for_each keys: move the rest of ` +
        "its instances too, or the next plan will want to destroy the ones the configuration " +
        "no longer has.",
    );
  }
  if (droppedDependencies.length) {
    out.info(
      `Dropped the recorded dependencies of ${droppedDependencies.length} instance(s) that ` +
        "referred to what moved, as Terraform does; the next apply records them again.",
    );
  }
}

/**
 * `state mv --to-workspace WS`: moves into another workspace's state.
 *
 * Both workspaces are locked, always in the same order (by name), so that two moves in
 * opposite directions cannot each hold one lock and wait for the other. Both states are
 * backed up, then the destination is written first and the source second: if the second
 * write fails, the moved resources are tracked in both workspaces for a moment (never in
 * neither, which would make the next apply create them again), and the destination is put
 * back (its previous content, with a newer serial). Only if that fails too does the error
 * say so, with the commands that restore it from its backup.
 */
async function moveToWorkspace(
  session: Session,
  out: Output,
  flags: MoveFlags,
  pairs: MovePair[],
): Promise<void> {
  const from = session.workspace;
  let to: string;
  try {
    to = validateWorkspaceName(flags.toWorkspace!);
  } catch (error) {
    throw new UsageError(`Invalid --to-workspace: ${(error as Error).message}`, { cause: error });
  }
  if (to === from) {
    throw new UsageError(
      `--to-workspace names the workspace the state is moved from ("${from}"); leave it out ` +
        "to move within one workspace.",
    );
  }
  if (to !== DEFAULT_WORKSPACE && !(await session.backend.listWorkspaces()).includes(to)) {
    throw new CliError(
      `Workspace "${to}" (--to-workspace) does not exist. Create it with ` +
        `"gaib-state workspace new ${shellQuote(to)}", then run this command again.`,
      "NoWorkspace",
      { workspace: to },
    );
  }
  const compute = (source: GaibState | null, dest: GaibState | null) => {
    if (source === null) throw noState(session);
    const target = dest ?? createEmptyState();
    const result = moveStates(source, target, pairs, { workspace: from, toWorkspace: to });
    return { source, dest, result };
  };
  const extra = { toWorkspace: to };
  if (flags.dryRun) {
    const { result } = compute(
      await session.backend.getState(from),
      await session.backend.getState(to),
    );
    const { from: _f, to: _t, ...report } = result;
    return reportMove(out, session, { report, serial: null, backup: null }, {
      ...extra,
      toSerial: null,
      toBackup: null,
    });
  }
  // One fixed order for every process: by the names' UTF-16 order.
  const [first, second] = [from, to].sort();
  const lockOf = (ws: string) => ({
    workspace: ws,
    heldLockId: ws === from ? flags.lockId : undefined,
  });
  const done = await withStateLock(
    session,
    flags,
    out,
    "state mv",
    (firstLock) =>
      withStateLock(session, flags, out, "state mv", async (secondLock) => {
        const fromLock = first === from ? firstLock : secondLock;
        const toLock = first === to ? firstLock : secondLock;
        const { source, dest, result } = compute(
          await session.backend.getState(from),
          await session.backend.getState(to),
        );
        const nextSource = { ...result.from, serial: source.serial + 1 };
        const nextDest = { ...result.to!, serial: (dest?.serial ?? 0) + 1 };
        const backup = await writeBackup(session, from, source);
        const toBackup = dest === null ? null : await writeBackup(session, to, dest);
        try {
          await toLock.writeState(nextDest);
        } catch (error) {
          await Deno.remove(backup).catch(() => {});
          if (toBackup) await Deno.remove(toBackup).catch(() => {});
          throw error;
        }
        try {
          await fromLock.writeState(nextSource);
        } catch (error) {
          throw await undoDestination(error, toLock, {
            from,
            to,
            dest,
            nextDest,
            backup,
            toBackup,
          });
        }
        const { from: _f, to: _t, ...report } = result;
        return {
          report,
          serial: nextSource.serial,
          backup,
          toSerial: nextDest.serial,
          toBackup,
        };
      }, lockOf(second)),
    lockOf(first),
  );
  reportMove(out, session, done, {
    ...extra,
    toSerial: done.toSerial,
    toBackup: done.toBackup,
  });
  if (out.json) return;
  out.info(`Moved from workspace "${from}" into workspace "${to}" (serial ${done.toSerial}).`);
  if (done.toBackup) {
    out.info(`Previous state of "${to}" backed up to ${done.toBackup}`);
  }
}

/**
 * After the source's write failed: puts the destination back to what it was (with a newer
 * serial, as every write needs), so that neither workspace changed. Returns the error to
 * throw, which says exactly where things stand.
 */
async function undoDestination(
  cause: unknown,
  toLock: LockedRun,
  s: {
    from: string;
    to: string;
    dest: GaibState | null;
    nextDest: GaibState;
    backup: string;
    toBackup: string | null;
  },
): Promise<Error> {
  const reason = cause instanceof Error ? cause.message : String(cause);
  // A destination that had no state gets an empty one of the new lineage.
  const previous = s.dest ?? { ...s.nextDest, resources: [], outputs: {} };
  const restored = { ...previous, lineage: s.nextDest.lineage, serial: s.nextDest.serial + 1 };
  try {
    await toLock.writeState(restored);
  } catch (undoError) {
    const undo = undoError instanceof Error ? undoError.message : String(undoError);
    const restore = s.toBackup
      ? `"gaib-state state push --force -w ${shellQuote(s.to)} ${shellQuote(s.toBackup)}"`
      : `"gaib-state state rm -w ${shellQuote(s.to)} ADDRESS" for each moved address`;
    return new CliError(
      `The move is half done. Workspace "${s.to}" was written (serial ${s.nextDest.serial}) ` +
        `with the moved resources, but writing workspace "${s.from}" failed (${reason}), so ` +
        `"${s.from}" is unchanged and still has them too: each is tracked in both workspaces, ` +
        `none is lost. Putting "${s.to}" back failed as well (${undo}). Before any plan or ` +
        `apply, undo the move with ${restore} (the backup of "${s.from}" is ${s.backup}), or ` +
        `finish it by running the same "state mv" on "${s.from}" again later.`,
      "PartialMove",
      { workspace: s.from, toWorkspace: s.to, backup: s.backup, toBackup: s.toBackup },
    );
  }
  return new CliError(
    `Nothing was moved: writing workspace "${s.from}" failed (${reason}). Workspace "${s.to}", ` +
      `written first, was put back to its previous content (serial ${restored.serial}).`,
    "MoveFailed",
    { workspace: s.from, toWorkspace: s.to },
  );
}

/** `state replace-provider FROM TO`'s flags. */
interface ReplaceProviderFlags extends EditFlags {
  readonly autoApprove?: boolean;
  readonly yes?: boolean;
}

/**
 * `state replace-provider FROM TO`: lists the provider addresses that change and, unless
 * `--auto-approve`/`--yes`, asks on the terminal (refusing when there is none) before writing.
 */
export const replaceProviderCommand = handler(
  async ({ out }: CommandRun, flags: ReplaceProviderFlags, fromText: string, toText: string) => {
    const approved = flags.autoApprove === true || flags.yes === true;
    const { replaceProvider } = await import("../_provider_replace.ts");
    replaceProvider(createEmptyState(), fromText, toText); // checks FROM and TO first
    if (!approved && !flags.dryRun && !out.io.stdinIsTerminal()) {
      throw new UsageError(
        "state replace-provider needs confirmation, and stdin is not a terminal: pass " +
          "--auto-approve (or --yes) to replace without asking, or --dry-run to see the changes.",
      );
    }
    await using session = await openSession(flags, out);
    const list = (changes: ProviderChange[]) => {
      out.io.stderr(`Replacing provider ${out.safe(fromText)} with ${out.safe(toText)}:\n`);
      for (const c of changes) {
        out.io.stderr(
          `  ${out.safe(c.address)}${c.level === "instance" ? " (instance)" : ""}: ` +
            `${out.safe(c.from)} -> ${out.safe(c.to)}\n`,
        );
      }
    };
    const done = await editState(session, out, flags, "state replace-provider", (state) => {
      const { state: next, changes, from, to } = replaceProvider(state, fromText, toText);
      return { state: next, report: { changes, from, to } };
    }, async (report) => {
      if (report.changes.length === 0) return false;
      if (approved) return true;
      list(report.changes);
      out.io.stderr("Do you want to make these changes? Only 'yes' is accepted: ");
      const answer = (await out.io.readLine())?.trim();
      if (answer !== "yes") {
        throw new CliError("Cancelled: the state was not changed.", "Cancelled");
      }
      return true;
    });
    const { changes, from, to } = done.report;
    if (out.json) {
      return out.jsonDocument({
        workspace: session.workspace,
        dryRun: flags.dryRun === true,
        from,
        to,
        changes,
        serial: done.serial,
        backup: done.backup,
      });
    }
    if (changes.length === 0) {
      out.info(`No provider address in workspace "${session.workspace}" matches ${fromText}.`);
      return;
    }
    if (flags.dryRun || approved) list(changes);
    if (done.serial === null) {
      out.info(`Would replace ${changes.length} provider address(es); nothing was changed.`);
    } else {
      out.info(`Replaced ${changes.length} provider address(es) (serial ${done.serial}).`);
      out.info(`Previous state backed up to ${done.backup}`);
    }
  },
);
