/**
 * The local backend's lock record and the rules that decide whether its holder is gone.
 *
 * A lock is the file `.terraform.tfstate.lock.info` in the workspace directory: Terraform's
 * seven `LockInfo` fields plus a `Holder` object that Terraform ignores. A process-bound
 * lock's holder keeps the file open with an exclusive flock for as long as it holds the lock
 * and renews a lease in it:
 * - on the same machine (same host name and boot ID) the holder is gone exactly when nobody
 *   holds the flock: the kernel drops it when the process dies, however it dies, and a live
 *   holder is never mistaken for a dead one however long it runs;
 * - from another machine (a shared file system) the holder is gone when its lease has not
 *   been renewed for a whole lease period past its expiry, which tolerates clock skew of up
 *   to one lease.
 * A detached lock has no process: it expires only at its TTL, if it has one.
 *
 * @module
 */

import { judgeLease, leaseExpiry, type LeaseTerms, type LeaseVerdict } from "../_lease.ts";
import { decodeLockJson, encodeLockJson } from "../lock.ts";
import type { LockInfo } from "../types.ts";

/** File name of the lock record in a workspace directory. */
export const LOCK_FILE = ".terraform.tfstate.lock.info";

/** What the record keeps beside Terraform's fields, to judge whether the holder is gone. */
export interface LockHolder extends LeaseTerms {
  /** Host name of the holder's machine. */
  host: string;
  /** Boot ID of the holder's machine (empty where unknown). */
  boot: string;
  /** Holder process ID (informational; liveness comes from the flock). */
  pid: number;
}

/** The whole record as stored. */
export interface LockRecord extends LockInfo {
  Holder?: LockHolder;
}

let machine: { host: string; boot: string } | undefined;

/** Host name and boot ID of this machine; unreadable parts are empty. */
export function thisMachine(): { host: string; boot: string } {
  if (machine) return machine;
  let host = "";
  let boot = "";
  try {
    host = Deno.hostname();
  } catch {
    // no --allow-sys=hostname
  }
  try {
    boot = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    // not Linux, or no read permission
  }
  machine = { host, boot };
  return machine;
}

/** Builds the record of a new lock. */
export function newLockRecord(
  info: LockInfo,
  options: { detached: boolean; ttlMs?: number; leaseMs: number },
): LockRecord {
  const { host, boot } = thisMachine();
  const expires = leaseExpiry(options);
  return {
    ...info,
    Holder: {
      host,
      boot,
      pid: Deno.pid,
      detached: options.detached,
      expires,
      leaseMs: options.leaseMs,
    },
  };
}

/** Serializes a record: Terraform's fields in Terraform's order, then `Holder`. */
export function encodeLockRecord(record: LockRecord): Uint8Array {
  const { Holder, ...info } = record;
  return new TextEncoder().encode(encodeLockJson(info, Holder ? { Holder } : {}) + "\n");
}

/** Terraform's seven fields of a record, without the holder. */
export function lockInfoOf(record: LockRecord): LockInfo {
  const { Holder: _holder, ...info } = record;
  return info;
}

/** Parses a stored record; a damaged one becomes a record with an empty ID. */
export function decodeLockRecord(bytes: Uint8Array): LockRecord {
  const { info, doc } = decodeLockJson(new TextDecoder().decode(bytes), "lock file");
  return isHolder(doc.Holder) ? { ...info, Holder: doc.Holder } : info;
}

function isHolder(value: unknown): value is LockHolder {
  if (typeof value !== "object" || value === null) return false;
  const h = value as Record<string, unknown>;
  return typeof h.host === "string" && typeof h.boot === "string" &&
    typeof h.pid === "number" && typeof h.detached === "boolean" &&
    (h.expires === null || typeof h.expires === "string") && typeof h.leaseMs === "number";
}

/**
 * Judges whether a record's holder is gone: on this machine by its flock, elsewhere (and for
 * detached locks and records without a holder) by the lease rules of `../_lease.ts`.
 *
 * @param record the record
 * @param path the record file, to probe its flock
 */
export async function judgeLock(record: LockRecord, path: string): Promise<LeaseVerdict> {
  const holder = record.Holder;
  const self = thisMachine();
  if (
    holder && !holder.detached && holder.host !== "" && holder.host === self.host &&
    holder.boot === self.boot
  ) {
    if (await nobodyHoldsFlock(path)) {
      return { expired: true, reason: `Its holder (process ${holder.pid}) is gone.` };
    }
    return { expired: false, reason: `Its holder (process ${holder.pid}) is running.` };
  }
  return judgeLease(
    holder ?? null,
    holder ? `${holder.host || "another host"} pid ${holder.pid}` : "",
  );
}

async function nobodyHoldsFlock(path: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
  try {
    return await file.tryLock(true);
  } finally {
    file.close();
  }
}
