/**
 * Faults of the local backend's file system: a full disk and a read-only state directory.
 * Each operation must fail with a `BackendError` that names the workspace, the cause and the
 * fix, and leave every file of the state root byte-for-byte as it was; once the fault is
 * gone the same backend works again without repair.
 *
 * The faults are real: a small tmpfs filled to the last byte, and the same tmpfs remounted
 * read-only (root ignores permission bits, so `chmod` would prove nothing). Without the
 * right to mount (not root) these tests are skipped.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BackendError, createEmptyState, type GaibState, LocalBackend } from "../mod.ts";
import { canMount, mountTmpfs, snapshotTree } from "./reliability/_util.ts";

const MOUNTABLE = canMount();
const OPTIONS = { ignore: !MOUNTABLE, sanitizeOps: false, sanitizeResources: false };

function state(serial: number, lineage: string, padding = 0): GaibState {
  return {
    ...createEmptyState(),
    serial,
    lineage,
    outputs: { pad: { value: "p".repeat(padding), type: "string" } },
  };
}

/** Fills the file system at `dir` until not one more byte fits. */
async function fill(dir: string): Promise<void> {
  const file = await Deno.open(`${dir}/filler`, { write: true, create: true });
  try {
    const chunk = new Uint8Array(4096);
    for (;;) {
      try {
        await file.write(chunk);
      } catch {
        break;
      }
    }
    for (;;) {
      try {
        if ((await file.write(new Uint8Array(1))) === 0) break;
      } catch {
        break;
      }
    }
  } finally {
    file.close();
  }
}

/** Runs `fn`, which must fail with a BackendError matching every pattern. */
async function assertClearError(
  fn: () => Promise<unknown>,
  patterns: RegExp[],
): Promise<BackendError> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, "the operation succeeded on a broken file system");
  assert.ok(
    caught instanceof BackendError,
    `expected a BackendError, got ${(caught as Error)?.name}: ${(caught as Error)?.message}`,
  );
  for (const pattern of patterns) assert.match(caught.message, pattern);
  assert.ok(caught.cause !== undefined, "the OS error is kept as cause");
  return caught;
}

Deno.test({
  name: "LocalBackend on a full disk refuses writes and locks with a clear error and keeps " +
    "the old state, backup and lock intact",
  ...OPTIONS,
  async fn() {
    await using mount = await mountTmpfs(512);
    const root = `${mount.path}/state`;
    const backend = new LocalBackend({ path: root });
    try {
      const lineage = crypto.randomUUID();
      await backend.setState("default", state(1, lineage, 1000));
      await backend.setState("default", state(2, lineage, 1000));
      await backend.setState("held", state(1, lineage));
      const held = await backend.lock("held", { detached: true });
      await fill(mount.path);
      const before = await snapshotTree(root);

      const noSpace = [/No space left on device/, /"default"|\/default\//, /free|space/i];
      // The new state does not fit.
      await assertClearError(
        () => backend.setState("default", state(3, lineage, 200_000)),
        noSpace,
      );
      // Neither does a lock record.
      await assertClearError(() => backend.lock("default"), [
        /No space left on device/,
        /"default"|\/default\//,
      ]);
      // Nor a new workspace.
      await assertClearError(() => backend.setState("fresh", state(1, lineage, 200_000)), [
        /No space left on device/,
        /"fresh"|\/fresh/,
      ]);
      // Every file is as it was, and the failed first write of "fresh" left no workspace.
      const after = await snapshotTree(root);
      assert.deepEqual(after, before, "no file in the state root changed");
      assert.deepEqual(await backend.listWorkspaces(), ["default", "held"]);
      assert.equal((await backend.getState("default"))?.serial, 2);
      assert.equal((await backend.getLockInfo("held"))?.ID, held.lockId);

      // Space again: the same backend works with no repair.
      await Deno.remove(`${mount.path}/filler`);
      await backend.setState("default", state(3, lineage, 200_000));
      assert.equal((await backend.getState("default"))?.serial, 3);
      const { lockId } = await backend.lock("default");
      await backend.unlock("default", lockId);
      await backend.forceUnlock("held", held.lockId);
    } finally {
      await backend.close();
    }
  },
});

Deno.test({
  name: "LocalBackend on a read-only file system refuses every change with a clear error, " +
    "still reads, and changes no file",
  ...OPTIONS,
  async fn() {
    await using mount = await mountTmpfs(1024);
    const root = `${mount.path}/state`;
    const writer = new LocalBackend({ path: root });
    const lineage = crypto.randomUUID();
    await writer.setState("default", state(1, lineage));
    await writer.setState("default", state(2, lineage));
    await writer.setState("staging", state(1, lineage));
    const held = await writer.lock("staging", { detached: true });
    await writer.close();
    const before = await snapshotTree(root);
    mount.readOnly();

    const backend = new LocalBackend({ path: root });
    try {
      const readOnly = [/Read-only file system/, /writ/i];
      await assertClearError(() => backend.setState("default", state(3, lineage)), [
        ...readOnly,
        /"default"|\/default\//,
      ]);
      await assertClearError(() => backend.lock("default"), [
        ...readOnly,
        /"default"|\/default\//,
      ]);
      await assertClearError(() => backend.unlock("staging", held.lockId), [
        ...readOnly,
        /"staging"|\/staging\//,
      ]);
      await assertClearError(() => backend.forceUnlock("staging", held.lockId), [
        ...readOnly,
        /"staging"|\/staging\//,
      ]);
      await assertClearError(() => backend.deleteState("staging"), [
        ...readOnly,
        /"staging"|\/staging\//,
      ]);
      await assertClearError(() => backend.setState("new-one", state(1, lineage)), [
        ...readOnly,
        /"new-one"|\/new-one/,
      ]);
      // Reading needs no write access.
      assert.equal((await backend.getState("default"))?.serial, 2);
      assert.equal((await backend.getLockInfo("staging"))?.ID, held.lockId);
      assert.deepEqual(await backend.listWorkspaces(), ["default", "staging"]);
      assert.deepEqual(await snapshotTree(root), before, "nothing in the state root changed");
    } finally {
      await backend.close();
    }
  },
});
