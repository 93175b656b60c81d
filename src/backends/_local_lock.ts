/**
 * The local backend's lock record and the rules that decide whether its holder is gone.
 *
 * A lock is the file `.terraform.tfstate.lock.info` in the workspace directory: Terraform's
 * seven `LockInfo` fields plus a `Holder` object that Terraform ignores. A process-bound
 * lock's holder keeps the file open with an exclusive flock for as long as it holds the lock
 * and renews a lease in it:
 * - on the same machine the holder is gone exactly when nobody holds the flock: the kernel
 *   drops it when the process dies, however it dies, and a live holder is never mistaken for
 *   a dead one however long it runs (see `sameMachine` for how the machine is recognised);
 * - from another machine (a shared file system) the holder is gone when its lease has not
 *   been renewed for a whole lease period past its expiry, which tolerates clock skew of up
 *   to one lease.
 * A detached lock has no process: it expires only at its TTL, if it has one.
 *
 * @module
 */

import {
  judgeLease,
  leaseExpiry,
  type LeaseTerms,
  type LeaseVerdict,
  takeoverTime,
} from "../_lease.ts";
import { decodeLockJson, encodeLockJson } from "../lock.ts";
import type { LockDetails, LockInfo } from "../types.ts";

/** File name of the lock record in a workspace directory. */
export const LOCK_FILE = ".terraform.tfstate.lock.info";

/** What the record keeps beside Terraform's fields, to judge whether the holder is gone. */
export interface LockHolder extends LeaseTerms {
  /** Host name of the holder's machine. */
  host: string;
  /** Boot ID of the holder's machine (empty where it could not be read). */
  boot: string;
  /**
   * Machine ID (`/etc/machine-id`) of the holder's machine: empty where it could not be read,
   * absent in records written before it was kept.
   */
  machine?: string;
  /** Holder process ID (informational; liveness comes from the flock). */
  pid: number;
}

/** The whole record as stored. */
export interface LockRecord extends LockInfo {
  Holder?: LockHolder;
}

/** What identifies a machine, as far as this process may read it. */
export interface MachineIdentity {
  /** Host name; empty without `--allow-sys=hostname`. */
  host: string;
  /**
   * Linux boot ID (`/proc/sys/kernel/random/boot_id`): Deno lets only `--allow-all` read
   * `/proc`, so it is empty under the CLI's permissions.
   */
  boot: string;
  /**
   * Machine ID (`/etc/machine-id`, else `/var/lib/dbus/machine-id`): readable with
   * `--allow-read`, so the CLI and a `deno run -A` script on one machine agree on it.
   */
  machine: string;
}

let cached: MachineIdentity | undefined;

function readId(path: string): string {
  try {
    const text = Deno.readTextFileSync(path).trim().toLowerCase();
    return /^[0-9a-f-]{32,36}$/.test(text) ? text : "";
  } catch {
    return ""; // not Linux, or no permission to read it
  }
}

/** Host name, boot ID and machine ID of this machine; unreadable parts are empty. */
export function thisMachine(): MachineIdentity {
  if (cached) return cached;
  let host = "";
  try {
    host = Deno.hostname();
  } catch {
    // no --allow-sys=hostname
  }
  const boot = readId("/proc/sys/kernel/random/boot_id");
  const machine = readId("/etc/machine-id") || readId("/var/lib/dbus/machine-id");
  cached = { host, boot, machine };
  return cached;
}

/**
 * Whether a lock holder ran on this machine, so that its flock can be probed (a flock is only
 * trusted between processes of one kernel). Processes with different permissions must agree:
 * the boot ID needs `--allow-all`, the machine ID only `--allow-read`.
 *
 * - Another host name: another machine.
 * - Both machine IDs known: they must be equal, and so must the boot IDs when both are known
 *   (equal machine IDs with other boot IDs is a reboot, or a clone of one installation: the
 *   lease decides then).
 * - Otherwise the boot IDs must be equal (both unknown: the host name alone decides, as on
 *   systems with neither ID).
 */
export function sameMachine(holder: LockHolder, self: MachineIdentity): boolean {
  if (holder.host === "" || holder.host !== self.host) return false;
  const bothBoots = holder.boot !== "" && self.boot !== "";
  if (holder.machine && self.machine) {
    return holder.machine === self.machine && (!bothBoots || holder.boot === self.boot);
  }
  return holder.boot === self.boot;
}

/** Builds the record of a new lock. */
export function newLockRecord(
  info: LockInfo,
  options: { detached: boolean; ttlMs?: number; leaseMs: number },
): LockRecord {
  const { host, boot, machine } = thisMachine();
  const expires = leaseExpiry(options);
  return {
    ...info,
    Holder: {
      host,
      boot,
      machine,
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
    (h.machine === undefined || typeof h.machine === "string") &&
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
  if (!holder) return judgeLease(null, "");
  const self = thisMachine();
  if (!holder.detached && sameMachine(holder, self)) {
    if (await nobodyHoldsFlock(path)) {
      return { expired: true, reason: `Its holder (process ${holder.pid}) is gone.` };
    }
    return { expired: false, reason: `Its holder (process ${holder.pid}) is running.` };
  }
  const process = `process ${holder.pid} on ${holder.host || "an unknown host"}`;
  const otherMachine = holder.host !== "" && self.host !== "" &&
    (holder.host !== self.host ||
      (!!holder.machine && !!self.machine && holder.machine !== self.machine));
  const where = holder.detached
    ? process
    : otherMachine
    ? `${process}, another machine`
    : `${process}, which this process cannot tell from another machine or an earlier boot`;
  return judgeLease(holder, where);
}

/**
 * Describes a record for `lock status`: its lease, and whether its holder is alive when that
 * can be known here (a process-bound lock of this machine: its flock).
 *
 * @param record the record
 * @param path the record file, to probe its flock
 */
export async function describeLock(record: LockRecord, path: string): Promise<LockDetails> {
  const holder = record.Holder;
  const verdict = await judgeLock(record, path);
  const local = holder !== undefined && !holder.detached && sameMachine(holder, thisMachine());
  return {
    info: lockInfoOf(record),
    lease: holder
      ? {
        expires: holder.expires,
        leaseMs: holder.leaseMs,
        detached: holder.detached,
        holder: `${holder.host || "unknown host"} pid ${holder.pid}`,
      }
      : null,
    holderAlive: local ? !verdict.expired : null,
    // On this machine the flock decides at once; elsewhere the lease.
    takeoverFrom: verdict.expired
      ? new Date().toISOString()
      : local
      ? null
      : takeoverTime(holder ?? null),
    reason: verdict.reason,
  };
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
