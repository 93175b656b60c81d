/**
 * The local backend's state history: the last versions of a workspace's state, kept in
 * `<workspace dir>/history/<version ID>` beside the state (the `.backup` stays as well).
 *
 * - Every write that lands adds the new state as an entry: a hard link to the state file once
 *   it is in place and its directory synced (the bytes as stored, already synced, never
 *   serialised again), or, where the file system has no hard links, a synced copy renamed into
 *   place. An entry therefore appears whole or not at all, and only for a version that landed:
 *   a crash between the state's rename and its link leaves the entry out, and the next write
 *   adds it before replacing that state (so does a state another tool wrote). Temp files
 *   (`.tmp-*`) are never listed.
 * - Entries beyond the current one and `keep` earlier ones are pruned on write.
 * - A version ID is `<UTC time to the millisecond>-<8 hex digits>`, e.g.
 *   `20261130T073501123Z-9f3c2a1b`, minted here and strictly increasing per workspace; the
 *   ID `current` names the state file itself (a state written before history was kept, by
 *   another tool, or with `history: 0`). An ID is matched against that pattern before it is
 *   joined to any path, so no ID can name a file outside the history directory.
 * - Links are refused, as everywhere in the state root (`../_regular_file.ts`).
 *
 * Runs under the workspace's guard for changes (the caller holds it); reads take no lock: an
 * entry is never changed once it exists, only removed.
 *
 * @module
 */

import { openUnlinked, refuseLink } from "../_regular_file.ts";
import { STATE_DOCUMENTS, type StoredDocumentCodec } from "../_stored_document.ts";
import { versionNotFound } from "../_history_rules.ts";
import { BackendError } from "../errors.ts";
import type { GaibState, StateVersion } from "../types.ts";
import { shellQuote } from "../_command_line.ts";
import { createTempFile, discardTempFile, fsyncDir, removeOrphanTemps } from "./_fs.ts";

/** Name of the history directory inside a workspace directory. */
export const HISTORY_DIR = "history";
/** The version ID of the state file itself, when no history entry is it. */
export const CURRENT_VERSION = "current";
/** What history entries are called; nothing else in the directory is ever read. */
const VERSION_ID = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(\d{3})Z-[0-9a-f]{8}$/;
const HEADER_BYTES = 64 * 1024;

/** Whether `id` is a history entry's name (and so safe to join to the directory). */
export function isVersionId(id: string): boolean {
  return VERSION_ID.test(id);
}

function stampOf(id: string): number {
  const m = VERSION_ID.exec(id)!;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]);
}

/** A new ID, stamped `at` (now by default) but always after the newest entry's. */
function newId(after: string | undefined, at = Date.now()): string {
  const stamp = Math.max(at, after === undefined ? 0 : stampOf(after) + 1);
  const time = new Date(stamp).toISOString().replace(/[-:.]/g, "");
  const random = crypto.getRandomValues(new Uint8Array(4));
  return `${time}-${Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** One workspace's history. */
export class LocalHistory {
  readonly #dir: string;
  readonly #statePath: string;
  readonly #keep: number;
  readonly #codec: StoredDocumentCodec;

  /**
   * @param workspaceDir the workspace's directory
   * @param statePath its state file
   * @param keep how many versions before the current one to keep (0: none)
   */
  constructor(
    workspaceDir: string,
    statePath: string,
    keep: number,
    codec: StoredDocumentCodec = STATE_DOCUMENTS,
  ) {
    this.#codec = codec;
    this.#dir = `${workspaceDir}/${HISTORY_DIR}`;
    this.#statePath = statePath;
    this.#keep = keep;
  }

  /**
   * Adds the state file, just renamed into place, as the newest entry, then prunes. Under the
   * workspace's guard. With `keep` 0 it only prunes what an earlier setting left.
   */
  async record(): Promise<void> {
    let names = await this.#names();
    if (names === null && this.#keep === 0) return;
    names ??= [];
    if (this.#keep > 0) {
      await this.#ensureDir();
      await this.#makeRoom(names);
      await this.#add(`${this.#dir}/${newId(names.at(-1))}`);
    } else await this.#makeRoom(names);
    await removeOrphanTemps(this.#dir);
    await fsyncDir(this.#dir);
  }

  /**
   * Before the state is replaced (under the guard): makes sure the state about to become the
   * previous version is an entry. A writer killed between renaming its state into place and
   * linking it left it out, and a state Terraform or an older gaib-state wrote never was one;
   * either way it was the current state, so it belongs in the history, stamped with the time
   * it was written (its mtime).
   */
  async keepCurrent(): Promise<void> {
    if (this.#keep === 0) return;
    const state = await this.#lstat(this.#statePath, "state file");
    if (state === null || !state.isFile || state.size === 0) return;
    const names = (await this.#names()) ?? [];
    const newest = names.at(-1);
    if (newest !== undefined) {
      const info = await this.#lstat(`${this.#dir}/${newest}`, "history entry");
      if (info !== null) {
        const entries = new Map([[newest, info]]);
        if (info.ino !== null && info.ino === state.ino && info.dev === state.dev) return;
        if (await this.#sameAsState(entries, state) !== null) return;
      }
    }
    await this.#ensureDir();
    await this.#makeRoom(names);
    await this.#add(`${this.#dir}/${newId(newest, state.mtime?.getTime())}`);
  }

  /**
   * Removes the oldest entries so that one more fits within `keep` + 1 (the current state and
   * `keep` before it); before adding, so that a writer killed at any point never leaves more.
   * With `keep` 0, removes every entry.
   */
  async #makeRoom(names: readonly string[]): Promise<void> {
    const room = this.#keep === 0 ? 0 : this.#keep;
    for (const name of names.slice(0, Math.max(0, names.length - room))) {
      await Deno.remove(`${this.#dir}/${name}`).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
  }

  async #ensureDir(): Promise<void> {
    try {
      await Deno.mkdir(this.#dir, { mode: 0o700 });
      await fsyncDir(this.#dir.slice(0, this.#dir.lastIndexOf("/")));
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    await this.#checkDir();
  }

  /** A hard link to the state file; a synced copy renamed into place where links fail. */
  async #add(path: string): Promise<void> {
    try {
      await Deno.link(this.#statePath, path);
      return;
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotFound) {
        throw error;
      }
    }
    const bytes = await Deno.readFile(this.#statePath);
    const temp = await createTempFile(this.#dir, "history", bytes);
    try {
      await Deno.rename(temp.path, path);
    } finally {
      await discardTempFile(temp);
    }
  }

  /** Refuses a history path that is a link or not a directory. */
  async #checkDir(): Promise<boolean> {
    await refuseLink(this.#dir, "history directory");
    try {
      const info = await Deno.lstat(this.#dir);
      if (info.isDirectory) return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
    throw new BackendError(
      `${this.#dir} is not a directory, so gaib-state cannot keep the state history there. ` +
        `Look at it, then move it away (mv ${shellQuote(this.#dir)} ` +
        `${shellQuote(this.#dir + ".old")}).`,
    );
  }

  /** Entry names, oldest first, or `null` when there is no history directory. */
  async #names(): Promise<string[] | null> {
    if (!(await this.#checkDir())) return null;
    const names: string[] = [];
    for await (const entry of Deno.readDir(this.#dir)) {
      if (isVersionId(entry.name)) names.push(entry.name);
    }
    return names.sort();
  }

  /**
   * The versions, newest first: the state file first (as its entry, or as `current`), then
   * the other entries. Entries that are not states are left out.
   *
   * @param limit at most this many
   */
  async list(limit: number): Promise<StateVersion[]> {
    const names = ((await this.#names()) ?? []).reverse();
    const state = await this.#lstat(this.#statePath, "state file");
    let currentId: string | null = null;
    const infos = new Map<string, Deno.FileInfo>();
    for (const name of names) {
      const info = await this.#lstat(`${this.#dir}/${name}`, "history entry");
      if (info === null || !info.isFile) continue;
      infos.set(name, info);
      if (
        state && currentId === null && info.ino !== null && info.ino === state.ino &&
        info.dev === state.dev
      ) currentId = name;
    }
    if (state && currentId === null) currentId = await this.#sameAsState(infos, state);
    const out: StateVersion[] = [];
    if (state && state.size > 0) {
      const id = currentId ?? CURRENT_VERSION;
      const version = await this.#describe(this.#statePath, id, state, true);
      if (version) {
        if (currentId === null && infos.size === 0 && this.#keep === 0) {
          version.noHistory = "this local backend keeps no history (history: 0 in its config, " +
            "or GAIB_STATE_HISTORY=0); set history to the number of versions to keep";
        }
        out.push(version);
      }
    }
    for (const [name, info] of infos) {
      if (out.length >= limit) break;
      if (name === currentId) continue;
      const version = await this.#describe(`${this.#dir}/${name}`, name, info, false);
      if (version) out.push(version);
    }
    return out.slice(0, limit);
  }

  /** Where hard links are missing: the newest entry with the state's bytes, if any. */
  async #sameAsState(
    infos: Map<string, Deno.FileInfo>,
    state: Deno.FileInfo,
  ): Promise<string | null> {
    for (const [name, info] of infos) {
      if (info.size !== state.size) continue;
      const [a, b] = await Promise.all([
        Deno.readFile(`${this.#dir}/${name}`),
        Deno.readFile(this.#statePath),
      ]);
      return a.every((byte, i) => byte === b[i]) ? name : null;
    }
    return null;
  }

  /** `lstat`, refusing a link (`refuseLink` says so in the usual words). */
  async #lstat(path: string, what: string): Promise<Deno.FileInfo | null> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    if (info.isSymlink) await refuseLink(path, what);
    return info;
  }

  async #describe(
    path: string,
    versionId: string,
    info: Deno.FileInfo,
    current: boolean,
  ): Promise<StateVersion | null> {
    const identity = await this.#identity(path);
    if (identity === null) return null;
    const savedAt = versionId === CURRENT_VERSION
      ? (info.mtime ?? new Date(0)).toISOString()
      : new Date(stampOf(versionId)).toISOString();
    return { versionId, ...identity, savedAt, size: info.size, current };
  }

  /** Lineage and serial from the first bytes, else a full parse; `null` for no state. */
  async #identity(path: string): Promise<{ serial: number; lineage: string } | null> {
    const file = await openUnlinked(path, "history entry");
    if (file === null) return null;
    try {
      const head = new Uint8Array(HEADER_BYTES);
      const n = (await file.read(head)) ?? 0;
      if (n === 0) return null;
      const header = this.#codec.identity(head.subarray(0, n));
      if (header) return { serial: header.serial, lineage: header.lineage };
    } finally {
      file.close();
    }
    try {
      const state = this.#codec.parse(await Deno.readFile(path), path);
      return state && { serial: state.serial, lineage: state.lineage };
    } catch {
      return null; // not a state: not listed
    }
  }

  /**
   * Reads one version.
   *
   * @throws {StateVersionNotFoundError} for an ID that is not an entry's (checked before any
   *   path is built from it) or names no state
   */
  async read(workspace: string, versionId: string): Promise<GaibState> {
    let path: string;
    if (versionId === CURRENT_VERSION) path = this.#statePath;
    else if (isVersionId(versionId)) {
      await this.#checkDir();
      path = `${this.#dir}/${versionId}`;
    } else {
      throw versionNotFound(
        workspace,
        versionId,
        'the local backend\'s version IDs look like "20261130T073501123Z-9f3c2a1b" (or are ' +
          '"current")',
      );
    }
    const file = await openUnlinked(path, "history entry");
    if (file === null) throw versionNotFound(workspace, versionId);
    let bytes: Uint8Array;
    try {
      const info = await file.stat();
      if (!info.isFile) throw versionNotFound(workspace, versionId);
      bytes = new Uint8Array(info.size);
      let size = 0;
      while (size < bytes.length) {
        const n = await file.read(bytes.subarray(size));
        if (n === null) break;
        size += n;
      }
      bytes = bytes.subarray(0, size);
    } finally {
      file.close();
    }
    const state = this.#codec.parse(bytes, `state version ${path}`);
    if (state === null) throw versionNotFound(workspace, versionId, "it holds no state");
    return state;
  }
}
