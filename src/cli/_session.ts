/**
 * A command's connection to its backend: the backend `BackendFactory` resolves (environment,
 * then `gaib.yaml`, then the local default), the selected workspace, the workspace lock taken
 * for the duration of a change and released on every path (errors, SIGINT, SIGTERM), and the
 * local backups kept before every change.
 *
 * Uses the library's public API only.
 *
 * @module
 */

import { join } from "../_path.ts";
import { BackendFactory, type ResolvedBackendConfig } from "../factory.ts";
import { serializeState } from "../state.ts";
import type { EncryptedBackend } from "../encryption.ts";
import type { GaibState, LockInfo, StateBackend } from "../types.ts";
import {
  DEFAULT_WORKSPACE,
  resolveSelectedWorkspace,
  type SelectedWorkspace,
  validateWorkspaceName,
} from "../workspace.ts";
import { StateFormatError, StateLockError, UnsupportedOperationError } from "../errors.ts";
import { describeHolder, lockWaitMessage, printable, releaseFailedError } from "../lock.ts";
import { gaibCommand, shellQuote } from "../_command_line.ts";
import type { GlobalFlags } from "./_context.ts";
import { formatDuration } from "./_duration.ts";
import { CliError, InterruptedError, signalExitCode, UsageError } from "./_errors.ts";
import type { Output } from "./_output.ts";

/** Where the selected workspace came from. */
export type WorkspaceSource = "flag" | SelectedWorkspace["source"];

/** An open backend and the workspace a command works on. */
export interface Session extends AsyncDisposable {
  /** The backend. */
  readonly backend: StateBackend;
  /** The resolved config (type, origins, state root). */
  readonly resolved: ResolvedBackendConfig;
  /** The workspace to work on. */
  readonly workspace: string;
  /** Where {@linkcode Session.workspace} came from. */
  readonly workspaceSource: WorkspaceSource;
  /** Closes the backend (releasing anything it still holds). */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Resolves the backend config the way `BackendFactory.auto` does, honouring `--config`.
 *
 * @param flags the global flags
 * @returns the resolved config
 */
export function resolveConfig(flags: GlobalFlags): Promise<ResolvedBackendConfig> {
  const file = flags.config;
  const configFile = file === undefined ? file : join(Deno.cwd(), file);
  return BackendFactory.resolve({ configFile });
}

/**
 * Works out the selected workspace: `-w` > `GAIB_WORKSPACE` > `<stateRoot>/.current-workspace`
 * > `default`.
 *
 * @param flags the global flags
 * @param stateRoot the state root
 * @returns the name and where it came from
 */
export async function selectedWorkspace(
  flags: GlobalFlags,
  stateRoot: string,
): Promise<{ name: string; source: WorkspaceSource }> {
  if (flags.workspace !== undefined) {
    try {
      return { name: validateWorkspaceName(flags.workspace), source: "flag" };
    } catch (error) {
      throw new UsageError(`Invalid --workspace: ${(error as Error).message}`, { cause: error });
    }
  }
  return await resolveSelectedWorkspace(stateRoot);
}

/**
 * Which selected workspace a command accepts. Like Terraform, a command refuses a workspace
 * that does not exist instead of creating it, so that a mistyped `-w prdo` or
 * `GAIB_WORKSPACE=prdo` fails instead of writing a new workspace; `default` always exists.
 *
 * - `"existing"`: it must exist (the state commands, `lock`).
 * - `"existing-or-locked"`: it must exist or be locked (`unlock`, `force-unlock`,
 *   `lock status`): a lock left on a workspace that has no state must stay reachable.
 * - `"any"`: any valid name (the `workspace` commands, which list, create and select
 *   workspaces; `state push --create`).
 */
export type WorkspaceRule = "existing" | "existing-or-locked" | "any";

/** Options for {@linkcode openSession}. */
export interface SessionOptions {
  /**
   * Which selected workspace the command accepts.
   * @default {"existing"}
   */
  workspace?: WorkspaceRule;
  /**
   * The flag that would create a missing workspace for this command, such as `--create`,
   * named in the error.
   * @default {undefined}
   */
  createFlag?: string;
}

/**
 * Opens the backend that applies and works out the workspace.
 *
 * @param flags the global flags
 * @param out for `--verbose` details
 * @param options which workspaces the command accepts
 * @returns the session; close it with `await using`
 * @throws {CliError} (`NoWorkspace`) when the selected workspace does not exist and the
 *   command needs it to
 */
export async function openSession(
  flags: GlobalFlags,
  out: Output,
  options: SessionOptions = {},
): Promise<Session> {
  const resolved = await resolveConfig(flags);
  out.debug(
    `backend: ${resolved.config.type} (from ${resolved.source}${
      resolved.file ? `, config file ${resolved.file}` : ""
    }), state root ${resolved.stateRoot}`,
  );
  const { name, source } = await selectedWorkspace(flags, resolved.stateRoot);
  out.debug(`workspace: ${name} (from ${source})`);
  const backend = await BackendFactory.fromResolved(resolved);
  const rule = options.workspace ?? "existing";
  if (rule !== "any" && name !== DEFAULT_WORKSPACE) {
    try {
      const names = await listedWorkspaces(backend);
      const exists = names ? names.includes(name) : await hasState(backend, name);
      if (!exists && (rule === "existing" || !(await mayBeLocked(backend, name)))) {
        throw noWorkspace(flags, resolved, { name, source }, names, rule, options.createFlag);
      }
    } catch (error) {
      await backend.close().catch(() => {});
      throw error;
    }
  }
  let closed = false;
  return {
    backend,
    resolved,
    workspace: name,
    workspaceSource: source,
    async [Symbol.asyncDispose]() {
      if (closed) return;
      closed = true;
      await backend.close();
    },
  };
}

/** The backend's workspaces, or `null` when it cannot list them (a GitLab-style server). */
async function listedWorkspaces(backend: StateBackend): Promise<string[] | null> {
  try {
    return await backend.listWorkspaces();
  } catch (error) {
    if (error instanceof UnsupportedOperationError) return null;
    throw error;
  }
}

/** Whether a workspace has a state; a damaged one counts (the command will say so). */
async function hasState(backend: StateBackend, name: string): Promise<boolean> {
  try {
    return (await backend.getState(name)) !== null;
  } catch (error) {
    if (error instanceof StateFormatError) return true;
    throw error;
  }
}

/**
 * A workspace's lock: `null` when it is not locked, `undefined` when the backend cannot report
 * locks (a GitLab-style server).
 *
 * @param backend the backend
 * @param workspace the workspace
 * @returns the lock info, `null` or `undefined`
 */
export async function reportedLock(
  backend: StateBackend,
  workspace: string,
): Promise<LockInfo | null | undefined> {
  try {
    return await backend.getLockInfo(workspace);
  } catch (error) {
    if (error instanceof UnsupportedOperationError) return undefined;
    throw error;
  }
}

/** Whether a workspace may be locked: locked, or the backend cannot tell. */
async function mayBeLocked(backend: StateBackend, name: string): Promise<boolean> {
  return (await reportedLock(backend, name)) !== null;
}

/**
 * Whether a workspace exists: `default` always does; another is listed by the backend or,
 * when the backend cannot list its workspaces (Terraform's HTTP protocol has no listing, so a
 * GitLab-style server cannot), has a state.
 *
 * @param backend the backend
 * @param name a valid workspace name
 * @returns whether it exists
 */
export async function workspaceExists(backend: StateBackend, name: string): Promise<boolean> {
  if (name === DEFAULT_WORKSPACE) return true;
  const names = await listedWorkspaces(backend);
  return names ? names.includes(name) : await hasState(backend, name);
}

/** How the selected workspace was chosen, as a person would set it. */
function describeSource(source: WorkspaceSource, stateRoot: string, name: string): string {
  switch (source) {
    case "flag":
      return `selected with -w/--workspace ${name}`;
    case "GAIB_WORKSPACE":
      return `selected by GAIB_WORKSPACE=${name}`;
    case ".current-workspace":
      return `selected by "gaib-state workspace select", stored in ${stateRoot}/.current-workspace`;
    default:
      return "the default";
  }
}

/** The error for a selected workspace that does not exist: where the name came from, the fix. */
function noWorkspace(
  flags: GlobalFlags,
  resolved: ResolvedBackendConfig,
  selected: { name: string; source: WorkspaceSource },
  names: readonly string[] | null,
  rule: WorkspaceRule,
  createFlag: string | undefined,
): CliError {
  const { name, source } = selected;
  const config = flags.config === undefined ? "" : ` --config ${shellQuote(flags.config)}`;
  const existing = names === null
    ? "It has no state, and the server cannot list its workspaces."
    : names.length <= 10
    ? `The workspaces are: ${names.join(", ")}.`
    : `There are ${names.length} workspaces; "gaib-state workspace list${config}" lists them.`;
  const create = `gaib-state workspace new ${shellQuote(name)}${config}`;
  const other = source === "flag"
    ? "pass another -w"
    : source === "GAIB_WORKSPACE"
    ? "set GAIB_WORKSPACE to another (or unset it)"
    : `select another ("gaib-state workspace select default${config}")`;
  const where = describeSource(source, resolved.stateRoot, name);
  const details = {
    workspace: name,
    source,
    workspaces: names !== null && names.length <= 10 ? names : undefined,
  };
  if (rule === "existing-or-locked") {
    return new CliError(
      `Workspace "${name}" does not exist and is not locked (${where}). ${existing} To find ` +
        `a lock, run "gaib-state lock status --all${config}"; then ${other}.`,
      "NoWorkspace",
      details,
    );
  }
  return new CliError(
    `Workspace "${name}" does not exist (${where}). ${existing} Create it with "${create}"` +
      (createFlag ? `, or run this command again with ${createFlag}` : "") +
      `, or ${other}.`,
    "NoWorkspace",
    details,
  );
}

/** What a function run under {@linkcode withStateLock} gets. */
export interface LockedRun {
  /** The lock ID. */
  readonly lockId: string;
  /**
   * Writes the state with the lock's ID. A write in flight when SIGINT/SIGTERM arrives is
   * allowed to finish before the lock is released.
   */
  writeState(state: GaibState, options?: { force?: boolean }): Promise<void>;
}

/** Options for {@linkcode withStateLock}. */
export interface StateLockOptions {
  /** The workspace to lock (default: the session's). */
  workspace?: string;
  /** Free-form info stored with the lock. */
  info?: string;
  /**
   * Work under this lock, already held (such as one `gaib-state lock acquire` took in an earlier CI
   * step), instead of taking one; it is checked and left held.
   */
  heldLockId?: string;
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * Runs `fn` holding the workspace lock, waiting up to `--lock-timeout` for it, and releases
 * the lock on every path. On SIGINT/SIGTERM: a wait for the lock stops; a held lock is
 * released (after a write in flight finishes) and the process exits with 130/143.
 *
 * @param session the session
 * @param flags the global flags (`--lock-timeout`)
 * @param out the output
 * @param operation what the lock is for, such as `"state rm"`
 * @param fn the work
 * @param options another workspace, lock info
 * @returns what `fn` returns
 */
export async function withStateLock<T>(
  session: Session,
  flags: GlobalFlags,
  out: Output,
  operation: string,
  fn: (run: LockedRun) => Promise<T>,
  options: StateLockOptions = {},
): Promise<T> {
  const { backend } = session;
  const workspace = options.workspace ?? session.workspace;
  if (options.heldLockId !== undefined) {
    const id = options.heldLockId;
    const info = await reportedLock(backend, workspace);
    // A server that cannot report its lock still checks the ID on every write.
    if (info !== undefined && info?.ID !== id) {
      throw new StateLockError(
        `Workspace "${workspace}" is not locked with lock ID ${printable(id)} (--lock-id): ${
          info ? `the lock is ${describeHolder(info)}` : "it is not locked"
        }. Take a lock with "${gaibCommand(workspace, "lock acquire")}", or leave out --lock-id.`,
        info,
      );
    }
    out.debug(`working under the held lock ${id} on workspace "${workspace}"`);
    return await fn({
      lockId: id,
      writeState: (state, writeOptions = {}) =>
        backend.setState(workspace, state, { lockId: id, force: writeOptions.force }),
    });
  }
  const controller = new AbortController();
  let received: "SIGINT" | "SIGTERM" | undefined;
  let lockId: string | undefined;
  let inFlight: Promise<unknown> | undefined;
  let release: Promise<void> | undefined;
  const unlockOnce = (): Promise<void> => {
    if (lockId === undefined) return Promise.resolve();
    const id = lockId;
    return release ??= backend.unlock(workspace, id).catch((error) => {
      throw releaseFailedError(workspace, id, error);
    });
  };
  const listeners = SIGNALS.map((signal) => {
    const listener = () => {
      if (received) return;
      received = signal;
      controller.abort(new InterruptedError(signal, `Interrupted by ${signal}.`));
      if (lockId === undefined) return; // still waiting: the aborted wait ends the command
      void (async () => {
        await inFlight?.catch(() => {});
        let code = signalExitCode(signal);
        try {
          await unlockOnce();
          out.warn(
            `Interrupted by ${signal}: released lock ${lockId} on workspace "${workspace}".`,
          );
        } catch (error) {
          out.io.stderr(`Error: ${out.safe((error as Error).message)}\n`);
          code = 1;
        }
        await session[Symbol.asyncDispose]().catch(() => {});
        Deno.exit(code);
      })();
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  try {
    try {
      const result = await backend.lock(workspace, {
        operation,
        info: options.info,
        timeoutMs: flags.lockTimeout ?? 0,
        signal: controller.signal,
        onWait: (holder) =>
          out.info(lockWaitMessage(workspace, holder, formatDuration(flags.lockTimeout ?? 0))),
      });
      lockId = result.lockId;
    } catch (error) {
      if (received) {
        throw new InterruptedError(
          received,
          `Interrupted by ${received} while waiting for the lock on workspace "${workspace}"; ` +
            "nothing was changed.",
        );
      }
      throw error;
    }
    out.debug(`locked workspace "${workspace}" (lock ID ${lockId})`);
    if (received) {
      await unlockOnce();
      throw new InterruptedError(received, `Interrupted by ${received}; nothing was changed.`);
    }
    const id = lockId;
    return await fn({
      lockId: id,
      writeState(state, writeOptions = {}) {
        if (received) throw controller.signal.reason;
        const write = backend.setState(workspace, state, { lockId: id, force: writeOptions.force });
        inFlight = write;
        return write;
      },
    });
  } finally {
    // A signal that arrived while the lock was held is handled by its listener, which waits
    // for the same memoized release and then exits.
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
    await unlockOnce();
  }
}

/**
 * Keeps a copy of a state before a change:
 * `<stateRoot>/backups/<workspace>/terraform.tfstate.<UTC timestamp>.backup` (file 0600,
 * directories 0700), for every backend type.
 *
 * @param session the session (for the state root)
 * @param workspace the workspace the state belongs to
 * @param state the state to keep
 * @returns the backup's path
 */
export async function writeBackup(
  session: Pick<Session, "resolved" | "backend">,
  workspace: string,
  state: GaibState,
): Promise<string> {
  const root = session.resolved.stateRoot.replace(/\/+$/, "");
  const dir = `${root}/backups/${workspace}`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, "");
  // Encrypted like the state: a plain copy on disk would defeat the encryption.
  const encrypted = session.backend as Partial<EncryptedBackend>;
  const text = typeof encrypted.storedText === "function"
    ? await encrypted.storedText(state)
    : serializeState(state);
  const bytes = new TextEncoder().encode(text);
  for (let n = 0;; n++) {
    const path = `${dir}/terraform.tfstate.${stamp}${n ? `-${n}` : ""}.backup`;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw error;
    }
    try {
      // Durable before the state changes: a crash right after the write must not lose both.
      for (let offset = 0; offset < bytes.length;) {
        offset += await file.write(bytes.subarray(offset));
      }
      await file.syncData();
    } catch (error) {
      file.close();
      await Deno.remove(path).catch(() => {});
      throw error;
    }
    file.close();
    return path;
  }
}
