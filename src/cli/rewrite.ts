/**
 * `gaib-state state rewrite [--all]`: write each state again with the current encryption, under
 * its workspace's lock (key rotation, encrypting a plain state, or decrypting with a primary
 * `unencrypted` method).
 *
 * @module
 */

import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { CliError } from "./_errors.ts";
import { openSession, withStateLock, writeBackup } from "./_session.ts";

/** What was rewritten in one workspace. */
interface Rewritten {
  workspace: string;
  serial: number;
  backup: string;
}

/** `state rewrite`: read and write again, serial + 1, under the lock. */
export const rewrite = handler(
  async ({ out }: CommandRun, flags: GlobalFlags & { all?: boolean; lockId?: string }) => {
    if (flags.all && flags.lockId !== undefined) {
      throw new CliError(
        "--lock-id names the lock of one workspace; leave it out with --all (each workspace " +
          "is locked in turn).",
        "UsageError",
      );
    }
    await using session = await openSession(flags, out);
    const workspaces = flags.all ? await session.backend.listWorkspaces() : [session.workspace];
    const done: Rewritten[] = [];
    for (const workspace of workspaces) {
      const result = await withStateLock(session, flags, out, "state rewrite", async (lock) => {
        const state = await session.backend.getState(workspace);
        if (state === null) return null;
        const backup = await writeBackup(session, workspace, state);
        const next = { ...state, serial: state.serial + 1 };
        try {
          await lock.writeState(next);
        } catch (error) {
          await Deno.remove(backup).catch(() => {});
          throw error;
        }
        return { workspace, serial: next.serial, backup };
      }, { workspace, heldLockId: flags.lockId });
      if (result) {
        done.push(result);
        if (!out.json) {
          out.info(`Rewrote workspace "${workspace}" (serial ${result.serial}).`);
        }
      }
    }
    if (out.json) return out.jsonDocument({ rewritten: done });
    if (done.length === 0) out.info("No workspace has a state: nothing to rewrite.");
  },
);
