/**
 * `gaib-state lock | unlock | force-unlock | lock status` (alias `lock-info`).
 *
 * @module
 */

import { StateLockError, UnsupportedOperationError } from "../errors.ts";
import {
  describeHolder,
  forceUnlockCommand,
  lockWaitMessage,
  printable,
  unlockCommand,
} from "../lock.ts";
import type { LockDetails, LockInfo, LockInspector, StateBackend } from "../types.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { formatDuration } from "./_duration.ts";
import { CliError, InterruptedError, UsageError } from "./_errors.ts";
import { openSession, reportedLock } from "./_session.ts";
import { abortOnSignals } from "./_signals.ts";

/** `lock [--ttl 2h] [--info TEXT]`: a detached lock; prints only its ID on stdout. */
export const acquire = handler(
  async (
    { out }: CommandRun,
    flags: GlobalFlags & { ttl?: number; info?: string },
  ) => {
    await using session = await openSession(flags, out);
    const ws = session.workspace;
    using interrupt = abortOnSignals();
    let result;
    try {
      result = await session.backend.lock(ws, {
        detached: true,
        ttlMs: flags.ttl,
        operation: "lock",
        info: flags.info ?? "",
        timeoutMs: flags.lockTimeout ?? 0,
        signal: interrupt.signal,
        onWait: (holder) =>
          out.info(lockWaitMessage(ws, holder, formatDuration(flags.lockTimeout ?? 0))),
      });
    } catch (error) {
      if (interrupt.received) {
        throw new InterruptedError(
          interrupt.received,
          `Interrupted by ${interrupt.received} while waiting for the lock on workspace "${ws}"; no ` +
            "lock was taken.",
        );
      }
      throw error;
    }
    const expires = flags.ttl === undefined
      ? null
      : new Date(Date.parse(result.lockInfo.Created) + flags.ttl).toISOString();
    if (out.json) {
      return out.jsonDocument({
        workspace: ws,
        lockId: result.lockId,
        lockInfo: result.lockInfo,
        ttlMs: flags.ttl ?? null,
        expires,
      });
    }
    out.line(result.lockId);
    out.info(
      `Locked workspace "${ws}" with lock ID ${result.lockId}` +
        (expires ? ` (expires after ${formatDuration(flags.ttl!)}, at ${expires}).` : ".") +
        ` Release it with "${unlockCommand(ws, result.lockId)}".`,
    );
  },
);

/** `unlock LOCK_ID`. */
export const unlock = handler(async ({ out }: CommandRun, flags: GlobalFlags, lockId: string) => {
  await using session = await openSession(flags, out, { workspace: "existing-or-locked" });
  await session.backend.unlock(session.workspace, lockId);
  if (out.json) {
    return out.jsonDocument({ workspace: session.workspace, lockId, released: true });
  }
  out.info(`Released lock ${lockId} on workspace "${session.workspace}".`);
});

/** `force-unlock LOCK_ID [--force]`: asks on a terminal, needs `--force` elsewhere. */
export const forceUnlock = handler(
  async ({ out }: CommandRun, flags: GlobalFlags & { force?: boolean }, lockId: string) => {
    await using session = await openSession(flags, out, { workspace: "existing-or-locked" });
    const ws = session.workspace;
    // undefined: the server cannot report its lock (GitLab); it checks the ID itself.
    const info = await reportedLock(session.backend, ws);
    if (info === null) {
      throw new StateLockError(
        `Workspace "${ws}" is not locked, so there is nothing to force-unlock. Check the ` +
          'workspace (-w) with "gaib-state lock status --all".',
      );
    }
    if (info !== undefined && info.ID !== lockId) {
      throw new StateLockError(
        `Lock ID "${lockId}" does not match the lock on workspace "${ws}", which is ` +
          `${describeHolder(info)}. Check the ID.`,
        info,
      );
    }
    const holder = info ? describeHolder(info) : "(the server cannot say who holds it)";
    if (!flags.force) {
      if (!out.io.stdinIsTerminal()) {
        throw new UsageError(
          `force-unlock needs confirmation, and stdin is not a terminal: pass --force to ` +
            `release lock ${lockId} (${holder}) without asking.`,
        );
      }
      out.io.stderr(`Really release lock ${lockId} ${holder}? [y/N] `);
      const answer = (await out.io.readLine())?.trim().toLowerCase();
      if (answer !== "y" && answer !== "yes") {
        throw new CliError("Cancelled: the lock was not released.", "Cancelled");
      }
    }
    await session.backend.forceUnlock(ws, lockId);
    if (out.json) {
      return out.jsonDocument({ workspace: ws, lockId, released: true, lockInfo: info ?? null });
    }
    out.info(
      `Released lock ${lockId} on workspace "${ws}"${info ? ` (it was ${holder})` : ""}.`,
    );
  },
);

/** One row of `lock status`. */
interface StatusRow {
  workspace: string;
  locked: boolean;
  lockInfo: LockInfo | null;
  lease: LockDetails["lease"];
  holderAlive: boolean | null;
  takeoverFrom: string | null;
}

/** The lock with its lease where the backend can tell it, else its info alone. */
async function inspect(
  backend: StateBackend,
  workspace: string,
): Promise<LockDetails | null | undefined> {
  if ("inspectLock" in backend && typeof backend.inspectLock === "function") {
    try {
      return await (backend as StateBackend & LockInspector).inspectLock(workspace);
    } catch (error) {
      if (error instanceof UnsupportedOperationError) return undefined;
      throw error;
    }
  }
  // undefined: the backend cannot report locks (a GitLab-style HTTP server)
  const info = await reportedLock(backend, workspace);
  return info && { info, lease: null, holderAlive: null, takeoverFrom: null, reason: "" };
}

function leaseLines(
  lease: LockDetails["lease"],
  alive: boolean | null,
  takeover: string | null,
): string {
  if (lease === null) {
    return "  Lease:     none (not taken by gaib-state): never taken over automatically\n";
  }
  const until = lease.expires === null ? "never" : printable(lease.expires);
  const expiry = lease.detached
    ? `detached lock, ${lease.expires === null ? "no TTL: never expires" : `TTL until ${until}`}`
    : `until ${until}${expiresIn(lease.expires)}, renewed by ${printable(lease.holder)}`;
  const holder = alive === true
    ? "alive on this machine"
    : alive === false
    ? "gone (it ran on this machine and has exited)"
    : lease.detached
    ? "none (a detached lock has no process)"
    : "not known from this machine (only its lease tells)";
  return `  Lease:     ${expiry}\n` +
    `  Holder:    ${holder}\n` +
    `  Takeover:  ${takeover === null ? "never automatically" : `from ${takeover}`}\n`;
}

function expiresIn(expires: string | null): string {
  const ms = expires === null ? NaN : Date.parse(expires) - Date.now();
  if (!Number.isFinite(ms)) return "";
  return ms < 0
    ? ` (ended ${formatDuration(Math.floor(-ms / 1000) * 1000)} ago)`
    : ` (in ${formatDuration(Math.floor(ms / 1000) * 1000)})`;
}

function age(created: string): string {
  const ms = Date.now() - Date.parse(created);
  if (!Number.isFinite(ms) || ms < 0) return "";
  return ` (${formatDuration(Math.floor(ms / 1000) * 1000 || 0)} ago)`;
}

/** For a server that cannot report locks: saying "not locked" could be wrong. */
function cannotReport(workspace: string): CliError {
  return new CliError(
    `Cannot tell whether workspace "${workspace}" is locked: the server does not report locks ` +
      "(Terraform's HTTP protocol has no request for it; GitLab shows a state's lock in its " +
      "web interface). A command that needs the lock still fails while another holds it.",
    "CannotReportLock",
    { workspace },
  );
}

/** `lock status [--all]` and `lock-info`: who holds what, since when. */
export const status = handler(
  async ({ out }: CommandRun, flags: GlobalFlags & { all?: boolean }) => {
    await using session = await openSession(flags, out, {
      workspace: flags.all ? "any" : "existing-or-locked",
    });
    const names = flags.all ? await session.backend.listWorkspaces() : [session.workspace];
    const rows: StatusRow[] = [];
    for (const workspace of names) {
      const details = await inspect(session.backend, workspace);
      if (details === undefined) throw cannotReport(workspace);
      const lockInfo = details?.info ?? null;
      rows.push({
        workspace,
        locked: lockInfo !== null,
        lockInfo,
        lease: details?.lease ?? null,
        holderAlive: details?.holderAlive ?? null,
        takeoverFrom: details?.takeoverFrom ?? null,
      });
    }
    if (out.json) {
      return out.jsonDocument(flags.all ? { workspaces: rows } : rows[0]);
    }
    if (!flags.all) {
      const { workspace, lockInfo, lease, holderAlive, takeoverFrom } = rows[0];
      if (!lockInfo) return out.line(`Workspace "${workspace}" is not locked.`);
      // A lock file may have been written by hand: never send its control characters on.
      const field = (key: keyof LockInfo) => printable(lockInfo[key]);
      out.data(
        `Workspace "${workspace}" is locked.\n` +
          `  Lock ID:   ${field("ID")}\n` +
          `  Who:       ${field("Who")}\n` +
          `  Operation: ${field("Operation")}\n` +
          `  Since:     ${field("Created")}${age(lockInfo.Created)}\n` +
          (lockInfo.Info ? `  Info:      ${field("Info")}\n` : "") +
          `  Version:   ${field("Version")}\n` +
          leaseLines(lease, holderAlive, takeoverFrom),
      );
      out.info(
        `If its holder is gone, release it with "${forceUnlockCommand(workspace, lockInfo.ID)}".`,
      );
      return;
    }
    const table = [["WORKSPACE", "LOCK ID", "WHO", "OPERATION", "SINCE"]];
    for (const { workspace, lockInfo } of rows) {
      table.push(
        lockInfo
          ? [workspace, lockInfo.ID, lockInfo.Who, lockInfo.Operation, lockInfo.Created]
            .map(printable)
          : [workspace, "-", "-", "-", "-"],
      );
    }
    const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
    out.data(
      table.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd() + "\n")
        .join(""),
    );
  },
);
