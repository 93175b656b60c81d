/**
 * `gaib-state state history | rollback`: the stored versions of a workspace's state, and
 * putting one back as a new write.
 *
 * @module
 */

import { printable } from "../_printable.ts";
import { gaibCommand } from "../_command_line.ts";
import { rollbackTarget } from "../rollback.ts";
import type { StateVersion } from "../types.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { openSession, withStateLock, writeBackup } from "./_session.ts";

/** How many versions `state history` lists without `-n`. */
const DEFAULT_LIMIT = 20;

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Columns padded to their widest cell; every cell was escaped before. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd())
    .join("\n") + "\n";
}

/** `state history [-n N]`: the stored versions, newest first. */
export const history = handler(
  async ({ out }: CommandRun, flags: GlobalFlags & { limit?: number }) => {
    await using session = await openSession(flags, out);
    const ws = session.workspace;
    const limit = flags.limit ?? DEFAULT_LIMIT;
    const versions = await session.backend.listVersions(ws, { limit });
    if (out.json) {
      return out.jsonDocument({ workspace: ws, versions });
    }
    if (versions.length === 0) {
      out.info(`Workspace "${ws}" has no state yet, so it has no versions.`);
      return;
    }
    const rows = [["VERSION", "SERIAL", "SAVED", "SIZE", "CURRENT"]].concat(
      versions.map((v: StateVersion) => [
        printable(v.versionId),
        String(v.serial),
        printable(v.savedAt),
        sizeText(v.size),
        v.current ? "*" : "",
      ]),
    );
    out.data(table(rows));
    const note = versions.find((v) => v.noHistory !== undefined)?.noHistory;
    if (note !== undefined) out.info(`Only the current version is kept: ${note}.`);
    else if (versions.length === limit) {
      out.info(
        `Showing the newest ${limit}; see more with "${
          gaibCommand(ws, `state history -n ${limit * 5}`)
        }".`,
      );
    }
    out.info(
      `Read one with "${gaibCommand(ws, "state pull --version", "VERSION")}"; put one back ` +
        `with "${gaibCommand(ws, "state rollback", "VERSION")}".`,
    );
  },
);

/**
 * `state rollback VERSION`: that version's content written as the next serial, under the lock,
 * keeping a backup of the state it replaces.
 */
export const rollback = handler(
  async (
    { out }: CommandRun,
    flags: GlobalFlags & { force?: boolean; lockId?: string },
    versionId: string,
  ) => {
    await using session = await openSession(flags, out);
    const ws = session.workspace;
    const done = await withStateLock(session, flags, out, "state rollback", async (lock) => {
      const version = await session.backend.getStateVersion(ws, versionId);
      const current = await session.backend.getState(ws);
      const next = rollbackTarget(ws, versionId, current, version, flags.force);
      const force = flags.force === true && current !== null &&
        current.lineage !== version.lineage;
      if (current === null) {
        await lock.writeState(next, { force });
        return { current, next, version, backup: null };
      }
      const backup = await writeBackup(session, ws, current);
      try {
        await lock.writeState(next, { force });
      } catch (error) {
        await Deno.remove(backup).catch(() => {});
        throw error;
      }
      return { current, next, version, backup };
    }, { heldLockId: flags.lockId });
    const report = {
      workspace: ws,
      versionId,
      versionSerial: done.version.serial,
      previousSerial: done.current?.serial ?? null,
      serial: done.next.serial,
      lineage: done.next.lineage,
      forced: flags.force === true,
      backup: done.backup,
    };
    if (out.json) return out.jsonDocument(report);
    out.line(String(done.next.serial));
    out.info(
      `Rolled workspace "${ws}" back to version ${printable(versionId)} (serial ` +
        `${done.version.serial}), written as serial ${done.next.serial}` +
        (done.current ? `, replacing serial ${done.current.serial}.` : "."),
    );
    if (done.backup) out.info(`Previous state backed up to ${done.backup}`);
  },
);
