/**
 * `gaib-state taint ADDRESS` and `untaint ADDRESS`: mark a resource instance for replacement
 * on the next apply, or clear the mark (the edit is `../_taint.ts`).
 *
 * @module
 */

import { setTainted } from "../_taint.ts";
import { parseTarget } from "../_targets.ts";
import { printable } from "../_printable.ts";
import type { GaibState } from "../types.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { CliError } from "./_errors.ts";
import { openSession, withStateLock, writeBackup } from "./_session.ts";

interface TaintFlags extends GlobalFlags {
  readonly dryRun?: boolean;
  readonly lockId?: string;
}

function taintCommand(tainted: boolean) {
  return handler(async ({ out }: CommandRun, flags: TaintFlags, address: string) => {
    const target = parseTarget(address);
    await using session = await openSession(flags, out);
    const ws = session.workspace;
    const read = async () => {
      const state = await session.backend.getState(ws);
      if (state === null) {
        throw new CliError(
          `Workspace "${ws}" has no state yet, so there is nothing to change.`,
          "NoState",
          {
            workspace: ws,
          },
        );
      }
      return state;
    };
    const apply = (state: GaibState) => setTainted(state, target, tainted, ws);
    let done: { address: string; changed: boolean; serial: number | null; backup: string | null };
    if (flags.dryRun) {
      const { address: a, changed } = apply(await read());
      done = { address: a, changed, serial: null, backup: null };
    } else {
      done = await withStateLock(
        session,
        flags,
        out,
        tainted ? "taint" : "untaint",
        async (lock) => {
          const state = await read();
          const { state: next, address: a, changed } = apply(state);
          if (!changed) return { address: a, changed, serial: null, backup: null };
          const backup = await writeBackup(session, ws, state);
          try {
            await lock.writeState({ ...next, serial: state.serial + 1 });
          } catch (error) {
            await Deno.remove(backup).catch(() => {});
            throw error;
          }
          return { address: a, changed, serial: state.serial + 1, backup };
        },
        { heldLockId: flags.lockId },
      );
    }
    if (out.json) {
      return out.jsonDocument({
        workspace: ws,
        dryRun: flags.dryRun === true,
        address: done.address,
        tainted,
        changed: done.changed,
        serial: done.serial,
        backup: done.backup,
      });
    }
    const what = printable(done.address);
    const word = tainted ? "tainted" : "untainted";
    if (!done.changed) out.info(`Resource instance ${what} was already tainted; nothing changed.`);
    else if (flags.dryRun) {
      out.info(`Would mark ${what} as ${word}; nothing was changed (--dry-run).`);
    } else {
      out.info(`Resource instance ${what} has been marked as ${word} (serial ${done.serial}).`);
      out.info(`Previous state backed up to ${done.backup}`);
    }
  });
}

/** `taint ADDRESS`. */
export const taint = taintCommand(true);
/** `untaint ADDRESS`. */
export const untaint = taintCommand(false);
