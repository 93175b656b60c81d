/**
 * `gaib-state workspace list | show | new | select | delete`.
 *
 * @module
 */

import { createEmptyState } from "../state.ts";
import { BackendError, UnsupportedOperationError, WorkspaceNotEmptyError } from "../errors.ts";
import {
  DEFAULT_WORKSPACE,
  managedInstanceCount,
  validateWorkspaceName,
  writeSelectedWorkspace,
} from "../workspace.ts";
import { shellQuote } from "../_command_line.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { CliError, UsageError } from "./_errors.ts";
import { envGet, type Output } from "./_output.ts";
import { openSession, type Session, withStateLock, workspaceExists } from "./_session.ts";

// These commands list, create and select workspaces: a selected one that does not exist is
// no obstacle to them (and the way out of it).
const ANY_WORKSPACE = { workspace: "any" } as const;

function checkName(name: string): string {
  try {
    return validateWorkspaceName(name);
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
}

function warnIfEnvWins(out: Output, name: string): void {
  const fromEnv = envGet("GAIB_WORKSPACE");
  if (fromEnv && fromEnv !== name) {
    out.warn(
      `GAIB_WORKSPACE=${fromEnv} is set and takes precedence over the selected workspace ` +
        `"${name}"; unset it to work on "${name}".`,
    );
  }
}

/** `workspace list`. */
export const list = handler(async ({ out }: CommandRun, flags: GlobalFlags) => {
  await using session = await openSession(flags, out, ANY_WORKSPACE);
  let names: string[];
  try {
    names = await session.backend.listWorkspaces();
  } catch (error) {
    if (!(error instanceof UnsupportedOperationError)) throw error;
    throw new CliError(
      `${error.message} Each workspace is still reachable by name, as -w NAME; the selected ` +
        `one is "${session.workspace}".`,
      "CannotListWorkspaces",
      { selected: session.workspace },
    );
  }
  if (out.json) {
    return out.jsonDocument({ workspaces: names, selected: session.workspace });
  }
  out.data(
    names.map((n) =>
      n === session.workspace ? `${out.paintStdout("*", "32;1")} ${n}\n` : `  ${n}\n`
    ).join(""),
  );
});

/** `workspace show`. */
export const show = handler(async ({ out }: CommandRun, flags: GlobalFlags) => {
  await using session = await openSession(flags, out, ANY_WORKSPACE);
  if (out.json) {
    return out.jsonDocument({ workspace: session.workspace, source: session.workspaceSource });
  }
  out.line(session.workspace);
});

/** Creates a workspace by writing an empty state under its lock. */
async function createWorkspace(
  session: Session,
  flags: GlobalFlags,
  out: Output,
  name: string,
): Promise<void> {
  await withStateLock(session, flags, out, "workspace new", async (lock) => {
    if ((await session.backend.getState(name)) !== null) throw exists(name);
    await lock.writeState(createEmptyState());
  }, { workspace: name });
}

function exists(name: string): CliError {
  return new CliError(
    `Workspace "${name}" already exists. Select it with "gaib-state workspace select ${
      shellQuote(name)
    }".`,
    "WorkspaceExists",
    { workspace: name },
  );
}

/** `workspace new NAME`: create (empty state, under the lock) and select. */
export const create = handler(async ({ out }: CommandRun, flags: GlobalFlags, name: string) => {
  checkName(name);
  await using session = await openSession(flags, out, ANY_WORKSPACE);
  if ((await workspaceExists(session.backend, name))) throw exists(name);
  await createWorkspace(session, flags, out, name);
  await writeSelectedWorkspace(session.resolved.stateRoot, name);
  if (out.json) return out.jsonDocument({ workspace: name, created: true, selected: true });
  out.info(`Created and selected workspace "${name}".`);
  warnIfEnvWins(out, name);
});

/** `workspace select NAME [--or-create]`. */
export const select = handler(
  async ({ out }: CommandRun, flags: GlobalFlags & { orCreate?: boolean }, name: string) => {
    checkName(name);
    await using session = await openSession(flags, out, ANY_WORKSPACE);
    let created = false;
    if (!(await workspaceExists(session.backend, name))) {
      if (!flags.orCreate) {
        throw new CliError(
          `Workspace "${name}" does not exist. Create it with "gaib-state workspace new ` +
            `${shellQuote(name)}", or select it with --or-create.`,
          "NoWorkspace",
          { workspace: name },
        );
      }
      await createWorkspace(session, flags, out, name);
      created = true;
    }
    await writeSelectedWorkspace(session.resolved.stateRoot, name);
    if (out.json) return out.jsonDocument({ workspace: name, created, selected: true });
    out.info(`${created ? "Created and selected" : "Selected"} workspace "${name}".`);
    warnIfEnvWins(out, name);
  },
);

/** `workspace delete NAME [--force] [--lock-id LOCK_ID]`. */
export const remove = handler(
  async (
    { out }: CommandRun,
    flags: GlobalFlags & { force?: boolean; lockId?: string },
    name: string,
  ) => {
    checkName(name);
    if (name === DEFAULT_WORKSPACE) {
      throw new CliError(
        'The "default" workspace cannot be deleted. Remove its resources instead.',
        "CannotDeleteDefault",
        { workspace: name },
      );
    }
    await using session = await openSession(flags, out, ANY_WORKSPACE);
    if (session.workspace === name) {
      throw new CliError(
        `Workspace "${name}" is the selected workspace (${session.workspaceSource}); select ` +
          `another first, such as "gaib-state workspace select default".`,
        "WorkspaceSelected",
        { workspace: name },
      );
    }
    const { backend } = session;
    if (!(await workspaceExists(backend, name))) {
      throw new CliError(
        `Workspace "${name}" does not exist. Run "gaib-state workspace list" to see the ` +
          "workspaces.",
        "NoWorkspace",
        { workspace: name },
      );
    }
    // Under the workspace lock (or the one --lock-id names): the count read here is the one
    // the backend deletes, and the backend checks the lock and the resources again in the
    // same step as the delete.
    const instances = await withStateLock(session, flags, out, "workspace delete", async (lock) => {
      const count = await countForReport(session, name, flags.force === true);
      try {
        await backend.deleteState(name, { lockId: lock.lockId, force: flags.force });
      } catch (error) {
        if (!(error instanceof WorkspaceNotEmptyError)) throw error;
        throw new CliError(
          `Workspace "${name}" still tracks ${error.instances} managed resource instance(s) in ` +
            "its state; deleting it would lose track of them. Destroy or move them first, or " +
            `pass --force ("gaib-state workspace delete --force ${shellQuote(name)}").`,
          "WorkspaceNotEmpty",
          { workspace: name, instances: error.instances },
        );
      }
      return count;
    }, { workspace: name, heldLockId: flags.lockId });
    if (out.json) return out.jsonDocument({ workspace: name, deleted: true, instances });
    out.info(
      `Deleted workspace "${name}"${
        instances ? ` (forgetting ${instances} managed resource instance(s))` : ""
      }.`,
    );
  },
);

/**
 * How many managed resource instances a workspace to delete tracks, for the report. With
 * --force a state that cannot be read (damaged, or not matching its S3 digest) is deleted all
 * the same, so the count is then unknown (`null`) instead of an error.
 */
async function countForReport(
  session: Session,
  name: string,
  force: boolean,
): Promise<number | null> {
  try {
    return managedInstanceCount(await session.backend.getState(name, { verifyDigest: !force }));
  } catch (error) {
    if (force && error instanceof BackendError) return null;
    throw error;
  }
}
