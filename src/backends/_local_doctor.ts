/**
 * The local backend's doctor checks and bootstrap. The local backend's safety rests on the
 * file system of its state root: fsync that reaches the disk, rename that replaces a file in
 * one step, and flock that the kernel releases when its holder dies (see `local.ts`). Each is
 * probed on temporary files (`.gaib-doctor-*`, removed afterwards); network and FUSE mounts,
 * where flock and rename may not hold across machines, are named from `/proc/self/mountinfo`.
 *
 * @module
 */

import type { LocalBackendConfig } from "../config.ts";
import {
  type BackendDoctor,
  type CheckOutcome,
  type DoctorCheckDefinition,
  type DoctorContext,
  messageOf,
  result,
} from "../_doctor_types.ts";
import { shellQuote } from "../_command_line.ts";
import { fsyncDir, TEMP_PREFIX } from "./_fs.ts";

/** Name prefix of the doctor's probe files. */
export const PROBE_PREFIX = ".gaib-doctor-";
/** A temp file younger than this may belong to a writer at work (as in `_fs.ts`). */
const LEFTOVER_MIN_AGE_MS = 10_000;
/** At most this many entries of the root are looked at (a state root holds few). */
const WALK_LIMIT = 20_000;
/** Paths named in one message. */
const NAMED = 5;

type Ctx = DoctorContext<LocalBackendConfig>;

function rootOf(ctx: Ctx): string {
  return (ctx.config.path ?? ".gaib").replace(/\/+$/, "") || "/";
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function mode(info: Deno.FileInfo): string {
  return ((info.mode ?? 0) & 0o777).toString(8).padStart(4, "0");
}

/** Why a file operation failed, and what to do, for the state root. */
function fileProblem(root: string, error: unknown): CheckOutcome {
  const code = (error as { code?: string }).code;
  if (error instanceof Deno.errors.NotCapable) {
    return result(
      "fail",
      `gaib-state may not write in ${root} (${messageOf(error)})`,
      `run gaib-state with --allow-write covering ${shellQuote(root)} (the installed command ` +
        "may write only under the directory it runs in), or choose a state root there",
    );
  }
  const readOnly = code === "EROFS" || /read-only/i.test(messageOf(error));
  return result(
    "fail",
    `cannot write in ${root}: ${messageOf(error)}` +
      (readOnly ? " (the file system is read-only)" : ""),
    readOnly
      ? "choose a state root on a writable file system (backend.path or GAIB_STATE_PATH), or " +
        "remount it read-write"
      : `make ${shellQuote(root)} writable by this user (its owner may run ` +
        `"chmod 700 ${shellQuote(root)}"), or choose another state root`,
  );
}

/** `local.root`: the state root exists, is a directory, and only its owner may enter it. */
const rootCheck: DoctorCheckDefinition<LocalBackendConfig> = {
  name: "local.root",
  async run(ctx) {
    const root = rootOf(ctx);
    const info = await statOrNull(root);
    if (info === null) {
      return result(
        "warn",
        `${root} does not exist yet; it is created (mode 0700) on the first write`,
        'create it now with "gaib-state bootstrap"',
      );
    }
    if (!info.isDirectory) {
      return result(
        "fail",
        `${root} is not a directory`,
        "set backend.path (or GAIB_STATE_PATH) to a directory, or move the file away",
      );
    }
    if (((info.mode ?? 0) & 0o077) !== 0) {
      return result(
        "warn",
        `${root} has mode ${mode(info)}: other users may list or enter it (states hold secrets)`,
        `run "chmod 700 ${shellQuote(root)}" or "gaib-state bootstrap --fix"`,
      );
    }
    return result("ok", `${root} exists, mode ${mode(info)}`);
  },
};

/**
 * `local.filesystem`: write and fsync a file, fsync the directory, rename one file over
 * another and read the result, and check that a second open file description cannot take an
 * exclusive flock while the first holds it, and can once it is released.
 */
const filesystemCheck: DoctorCheckDefinition<LocalBackendConfig> = {
  name: "local.filesystem",
  requires: ["local.root"],
  async run(ctx) {
    const root = rootOf(ctx);
    if (await statOrNull(root) === null) {
      return result("skipped", `${root} does not exist yet`, 'run "gaib-state bootstrap"');
    }
    const base = `${root}/${PROBE_PREFIX}${crypto.randomUUID()}`;
    const [a, b] = [`${base}-a`, `${base}-b`];
    const failures: string[] = [];
    try {
      for (const [path, text] of [[a, "a"], [b, "b"]]) {
        const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
        try {
          await file.write(new TextEncoder().encode(text));
          await file.sync();
        } finally {
          file.close();
        }
      }
      await fsyncDir(root);
      await Deno.rename(a, b);
      const after = await Deno.readTextFile(b);
      const gone = await statOrNull(a) === null;
      if (after !== "a" || !gone) {
        failures.push("rename did not replace the target in one step");
      }
      const holder = await Deno.open(b, { read: true, write: true });
      const other = await Deno.open(b, { read: true });
      try {
        await holder.lock(true);
        if (await other.tryLock(true)) {
          failures.push("a second exclusive flock was granted while the first was held");
        }
        await holder.unlock();
        if (!(await other.tryLock(true))) {
          failures.push("an exclusive flock was refused after its holder released it");
        }
      } finally {
        holder.close();
        other.close();
      }
    } catch (error) {
      return fileProblem(root, error);
    } finally {
      await Deno.remove(a).catch(() => {});
      await Deno.remove(b).catch(() => {});
    }
    if (failures.length) {
      return result(
        "fail",
        `the file system of ${root} breaks what locking and atomic writes need: ` +
          failures.join("; "),
        "put the state root on a local file system (ext4, xfs, btrfs, apfs), or use the s3 " +
          "backend",
      );
    }
    return result("ok", "fsync, directory fsync, atomic rename and flock work");
  },
};

/** A mount of `/proc/self/mountinfo`. */
interface Mount {
  point: string;
  type: string;
  options: string[];
  source: string;
}

/** Undoes mountinfo's octal escapes (`\040` is a space). */
function unescape(field: string): string {
  return field.replace(
    /\\([0-7]{3})/g,
    (_, octal: string) => String.fromCharCode(parseInt(octal, 8)),
  );
}

function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (fields.length < 10 || dash < 6) continue;
    mounts.push({
      point: unescape(fields[4]),
      options: fields[5].split(","),
      type: fields[dash + 1],
      source: unescape(fields[dash + 2] ?? ""),
    });
  }
  return mounts;
}

/** The nearest existing directory of a path, with links resolved. */
async function existingReal(path: string): Promise<string> {
  let current = path;
  for (;;) {
    try {
      return await Deno.realPath(current);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      const parent = current.replace(/\/[^/]*\/*$/, "") || "/";
      if (parent === current) return "/";
      current = parent;
    }
  }
}

const NETWORK_TYPES = new Set([
  "nfs",
  "nfs4",
  "cifs",
  "smb3",
  "smbfs",
  "ceph",
  "glusterfs",
  "9p",
  "afs",
  "lustre",
  "gpfs",
  "davfs",
  "virtiofs",
]);

/**
 * File system types by `statfs` magic number (linux/magic.h), for when `/proc/self/mountinfo`
 * may not be read (Deno lets only `--allow-all` read `/proc`).
 */
const MAGIC: Record<number, string> = {
  0x6969: "nfs",
  0x517b: "smbfs",
  0xff534d42: "cifs",
  0xfe534d42: "smb3",
  0x65735546: "fuse",
  0x00c36400: "ceph",
  0x01021997: "9p",
  0x5346414f: "afs",
  0x6b414653: "afs",
  0x0bd00bd0: "lustre",
  0x01021994: "tmpfs",
  0x858458f6: "ramfs",
  0xef53: "ext4",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x794c7630: "overlay",
  0x2fc12fc1: "zfs",
};

/** The mount (or, failing that, just the type) of the file system a path is on. */
async function mountOf(path: string): Promise<Mount | { type: string; point?: undefined }> {
  try {
    const text = await Deno.readTextFile("/proc/self/mountinfo");
    const mount = parseMountinfo(text)
      .filter((m) => path === m.point || path.startsWith(m.point === "/" ? "/" : `${m.point}/`))
      .sort((x, y) => y.point.length - x.point.length)[0];
    if (mount) return mount;
  } catch {
    // not Linux, or /proc not readable without --allow-all: ask statfs
  }
  const { statfs } = await import("node:fs/promises");
  const magic = (await statfs(path)).type >>> 0;
  return { type: MAGIC[magic] ?? `type 0x${magic.toString(16)}` };
}

/** `local.mount`: what the state root is mounted on. */
const mountCheck: DoctorCheckDefinition<LocalBackendConfig> = {
  name: "local.mount",
  async run(ctx) {
    const root = rootOf(ctx);
    const real = await existingReal(root);
    let mount;
    try {
      mount = await mountOf(real);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) {
        return result(
          "skipped",
          `cannot tell which file system ${real} is on (${messageOf(error)})`,
          "grant --allow-sys=statfs (part of the gaib-state binary's permissions)",
        );
      }
      throw error;
    }
    const on = `${root} is on ${mount.type}` +
      (mount.point === undefined ? "" : ` (mounted at ${mount.point})`);
    if (mount.point !== undefined && mount.options.includes("ro")) {
      return result(
        "fail",
        `${on}, read-only: no state can be written or locked there`,
        "choose a state root on a writable file system (backend.path or GAIB_STATE_PATH)",
      );
    }
    const type = mount.type;
    const fuse = type === "fuse" || type.startsWith("fuse.") || type === "fuseblk";
    if (NETWORK_TYPES.has(type) || fuse) {
      const kind = NETWORK_TYPES.has(type) ? "a network file system" : "a FUSE file system";
      return result(
        "warn",
        `${on}, ${kind}: flock may not be shared between machines and rename or fsync may not ` +
          "be atomic or durable, so two writers on different machines could both take the lock",
        "put the state root on a local file system, or use the s3 backend for a shared state",
      );
    }
    if (type === "tmpfs" || type === "ramfs") {
      return result(
        "warn",
        `${on}, which lives in memory: every state there is lost when the machine restarts`,
        "put the state root on a disk (backend.path or GAIB_STATE_PATH)",
      );
    }
    return result("ok", on);
  },
};

/** An entry of the state root, as `lstat` saw it. */
interface Entry {
  path: string;
  name: string;
  info: Deno.FileInfo;
}

/** The entries under the root (links are not followed), at most `WALK_LIMIT`. */
async function walk(root: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const pending = [root];
  while (pending.length && entries.length < WALK_LIMIT) {
    const dir = pending.pop()!;
    for await (const item of Deno.readDir(dir)) {
      const path = `${dir}/${item.name}`;
      const info = await Deno.lstat(path).catch(() => null);
      if (info === null) continue;
      entries.push({ path, name: item.name, info });
      if (info.isDirectory) pending.push(path);
      if (entries.length >= WALK_LIMIT) break;
    }
  }
  return entries;
}

function open(entry: Entry): boolean {
  return !entry.info.isSymlink && ((entry.info.mode ?? 0) & 0o077) !== 0;
}

function named(paths: string[]): string {
  const more = paths.length > NAMED ? ` and ${paths.length - NAMED} more` : "";
  return paths.slice(0, NAMED).join(", ") + more;
}

/** `local.modes`: every file 0600 and every directory 0700 (nothing for other users). */
const modesCheck: DoctorCheckDefinition<LocalBackendConfig> = {
  name: "local.modes",
  requires: ["local.root"],
  async run(ctx) {
    const root = rootOf(ctx);
    if (await statOrNull(root) === null) return result("skipped", `${root} does not exist yet`);
    const entries = await walk(root);
    const wide = entries.filter(open).map((e) => `${e.path} (${mode(e.info)})`);
    if (wide.length) {
      return result(
        "warn",
        `${wide.length} of ${entries.length} entries under ${root} are open to other users: ` +
          named(wide),
        `run "chmod -R go-rwx ${shellQuote(root)}" or "gaib-state bootstrap --fix"`,
      );
    }
    return result("ok", `${entries.length} entries, none open to other users`);
  },
};

/** `local.leftovers`: temp files of writers that died (and of a doctor that was killed). */
const leftoversCheck: DoctorCheckDefinition<LocalBackendConfig> = {
  name: "local.leftovers",
  requires: ["local.root"],
  async run(ctx) {
    const root = rootOf(ctx);
    if (await statOrNull(root) === null) return result("skipped", `${root} does not exist yet`);
    const now = Date.now();
    const left: string[] = [];
    for (const entry of await walk(root)) {
      if (!entry.info.isFile) continue;
      if (!entry.name.startsWith(TEMP_PREFIX) && !entry.name.startsWith(PROBE_PREFIX)) continue;
      if (now - (entry.info.mtime?.getTime() ?? now) < LEFTOVER_MIN_AGE_MS) continue;
      // A writer at work holds an exclusive flock on its temp file.
      const file = await Deno.open(entry.path, { read: true }).catch(() => null);
      if (file === null) continue;
      try {
        if (await file.tryLock(true)) left.push(entry.path);
      } finally {
        file.close();
      }
    }
    if (left.length) {
      return result(
        "warn",
        `${left.length} temporary files left by processes that died while writing: ` +
          named(left),
        "the next write to each workspace removes its own; or remove them now: " +
          `"rm -- ${left.slice(0, NAMED).map(shellQuote).join(" ")}"`,
      );
    }
    return result("ok", "no temporary files left behind");
  },
};

/** Creates the state root (0700), and with `fix` closes the modes doctor flagged. */
async function bootstrapLocal(
  ctx: Parameters<NonNullable<BackendDoctor<LocalBackendConfig>["bootstrap"]>>[0],
): Promise<void> {
  const root = rootOf(ctx);
  const resource = `state root ${root}`;
  const info = await statOrNull(root);
  if (info === null) {
    if (ctx.dryRun) {
      ctx.step({ resource, action: "would-create", status: "ok", message: "mode 0700" });
      return;
    }
    try {
      await Deno.mkdir(root, { recursive: true, mode: 0o700 });
      await Deno.chmod(root, 0o700); // the umask may have taken bits away, never added
      ctx.step({ resource, action: "created", status: "ok", message: "mode 0700" });
    } catch (error) {
      const problem = fileProblem(root, error);
      ctx.step({
        resource,
        action: "failed",
        status: "fail",
        message: problem.summary,
        fix: problem.fix,
      });
    }
    return;
  }
  if (!info.isDirectory) {
    ctx.step({
      resource,
      action: "failed",
      status: "fail",
      message: `${root} exists and is not a directory`,
      fix: "set backend.path (or GAIB_STATE_PATH) to a directory, or move the file away",
    });
    return;
  }
  const openEntries = (await walk(root)).filter(open);
  const rootOpen = ((info.mode ?? 0) & 0o077) !== 0;
  if (!rootOpen && openEntries.length === 0) {
    ctx.step({
      resource,
      action: "unchanged",
      status: "ok",
      message: `exists, mode ${mode(info)}`,
    });
    return;
  }
  if (!ctx.fix) {
    ctx.step({
      resource,
      action: "needs-fix",
      status: "warn",
      message: `exists (mode ${mode(info)}) with ${
        openEntries.length + (rootOpen ? 1 : 0)
      } entries open to other users; left as they are`,
      fix: 'run "gaib-state bootstrap --fix" to close them (files 0600, directories 0700)',
    });
    return;
  }
  const fixRoot = rootOpen && ctx.flagged("local.root");
  const entries = ctx.flagged("local.modes") ? openEntries : [];
  const change = [...(fixRoot ? [root] : []), ...entries.map((e) => e.path)];
  if (change.length === 0) {
    ctx.step({ resource, action: "unchanged", status: "ok", message: "doctor flagged nothing" });
    return;
  }
  if (ctx.dryRun) {
    ctx.step({
      resource,
      action: "would-change",
      status: "ok",
      message: `would remove other users' access to ${named(change)}`,
    });
    return;
  }
  if (fixRoot) await Deno.chmod(root, (info.mode ?? 0) & 0o700);
  for (const entry of entries) await Deno.chmod(entry.path, (entry.info.mode ?? 0) & 0o700);
  ctx.step({
    resource,
    action: "changed",
    status: "ok",
    message: `removed other users' access to ${named(change)}`,
  });
}

/** The local backend's doctor. */
export const localDoctor: BackendDoctor<LocalBackendConfig> = {
  checks: [rootCheck, filesystemCheck, mountCheck, modesCheck, leftoversCheck],
  bootstrap: bootstrapLocal,
};
