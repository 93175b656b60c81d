/**
 * The hostile and malformed input corpus (tests/corpus/manifest.ts) through the library:
 * stored state files, config files, workspace names and lock IDs. Each case must give its
 * specific error, and every file of the state root (states, backups, locks) must be
 * byte-for-byte as it was.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type BackendConfigError,
  BackendFactory,
  createEmptyState,
  type GaibState,
  LocalBackend,
  readSelectedWorkspace,
  StateLockError,
  writeSelectedWorkspace,
} from "../mod.ts";
import {
  BAD_LOCK_IDS,
  BAD_WORKSPACE_NAMES,
  CONFIG_CASES,
  type Expected,
  STATE_CASES,
} from "./corpus/manifest.ts";
import { snapshotTree, tempDir } from "./reliability/_util.ts";

const OPTIONS = { sanitizeOps: false, sanitizeResources: false };

async function outcome<T>(fn: () => Promise<T> | T): Promise<{ value?: T; error?: Error }> {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error: error as Error };
  }
}

function assertExpected(result: { error?: Error }, expected: Expected, what: string): void {
  assert.ok(result.error, `${what}: succeeded, expected ${expected.error}`);
  assert.equal(
    result.error.name,
    expected.error,
    `${what}: ${result.error.name}: ${result.error.message}`,
  );
  assert.ok(
    result.error.message.toLowerCase().includes(expected.message.toLowerCase()),
    `${what}: message ${JSON.stringify(result.error.message)} lacks ${
      JSON.stringify(expected.message)
    }`,
  );
}

/** A state root with a bystander workspace and a victim workspace, locked (detached). */
async function prepareRoot(root: string): Promise<{ backend: LocalBackend; lockId: string }> {
  const backend = new LocalBackend({ path: root });
  const lineage = "0badc0de-0000-4000-8000-000000000001";
  await backend.setState("bystander", { ...createEmptyState(), lineage, serial: 1 });
  await backend.setState("bystander", { ...createEmptyState(), lineage, serial: 2 });
  await backend.setState("victim", { ...createEmptyState(), lineage, serial: 1 });
  await backend.setState("victim", { ...createEmptyState(), lineage, serial: 2 });
  const { lockId } = await backend.lock("victim", { detached: true, operation: "corpus" });
  return { backend, lockId };
}

Deno.test({
  name: `LocalBackend gives each of ${STATE_CASES.length} hostile stored state files its ` +
    "specific outcome and changes no file",
  ...OPTIONS,
  async fn(t) {
    for (const testCase of STATE_CASES) {
      await t.step(`${testCase.name}: ${testCase.about}`, async () => {
        await using dir = await tempDir();
        const { backend, lockId } = await prepareRoot(dir.path);
        try {
          await testCase.make(backend.statePath("victim"));
          const before = await snapshotTree(dir.path);
          const read = await outcome(() => backend.getState("victim"));
          if (testCase.read === "none") {
            assert.equal(read.error, undefined, read.error?.message);
            assert.equal(read.value, null);
          } else if (testCase.read === "state") {
            assert.equal(read.error, undefined, read.error?.message);
            assert.equal(read.value?.version, 4);
          } else {
            assertExpected(read, testCase.read, "getState");
            assert.ok(
              read.error!.message.includes(backend.statePath("victim")),
              "the message names the file",
            );
          }
          assert.equal(
            (Object.prototype as Record<string, unknown>).polluted,
            undefined,
            "no prototype was polluted",
          );
          let wrote = false;
          if (testCase.write !== undefined) {
            const next: GaibState = read.value
              ? { ...read.value, serial: read.value.serial + 1 }
              : { ...createEmptyState(), serial: 1_000_000 };
            const write = await outcome(() => backend.setState("victim", next, { lockId }));
            if (testCase.write === "ok") {
              assert.equal(write.error, undefined, write.error?.message);
              assert.equal((await backend.getState("victim"))?.serial, next.serial);
              wrote = true;
            } else {
              assertExpected(write, testCase.write, "setState");
            }
          }
          if (!wrote) {
            assert.deepEqual(await snapshotTree(dir.path), before, "the state root changed");
          }
          assert.equal((await backend.getState("bystander"))?.serial, 2);
        } finally {
          await backend.close();
        }
      });
    }
  },
});

Deno.test({
  name: `BackendFactory refuses each of ${CONFIG_CASES.length} malformed or hostile config ` +
    "files with a BackendConfigError that names the file, and changes no state file",
  ...OPTIONS,
  async fn(t) {
    for (const testCase of CONFIG_CASES) {
      await t.step(`${testCase.name}: ${testCase.about}`, async () => {
        await using dir = await tempDir();
        const { backend } = await prepareRoot(`${dir.path}/.gaib`);
        await backend.close();
        const file = `${dir.path}/gaib.yaml`;
        const content = typeof testCase.content === "function"
          ? testCase.content()
          : testCase.content;
        await Deno.writeFile(
          file,
          typeof content === "string" ? new TextEncoder().encode(content) : content,
        );
        const before = await snapshotTree(dir.path);
        const env = { get: () => undefined };
        const resolved = await outcome(() => BackendFactory.resolve({ cwd: dir.path, env }));
        assertExpected(resolved, testCase.expected, "BackendFactory.resolve");
        assert.ok(resolved.error!.message.includes(file), "the message names the file");
        assert.equal((resolved.error as BackendConfigError).file, file);
        const explicit = await outcome(() =>
          BackendFactory.auto({ cwd: "/", env, configFile: file })
        );
        assertExpected(explicit, testCase.expected, "BackendFactory.auto with configFile");
        assert.deepEqual(await snapshotTree(dir.path), before, "a file changed");
      });
    }
  },
});

Deno.test({
  name: `every LocalBackend operation refuses ${BAD_WORKSPACE_NAMES.length} hostile ` +
    "workspace names with BackendConfigError and touches no file",
  ...OPTIONS,
  async fn(t) {
    await using dir = await tempDir();
    const { backend, lockId } = await prepareRoot(`${dir.path}/.gaib`);
    const root = `${dir.path}/.gaib`;
    const before = await snapshotTree(dir.path);
    const next = { ...createEmptyState(), serial: 5 };
    try {
      for (const { name, value } of BAD_WORKSPACE_NAMES) {
        await t.step(`${name}: ${JSON.stringify(value.slice(0, 40))}`, async () => {
          const operations: [string, () => unknown][] = [
            ["getState", () => backend.getState(value)],
            ["setState", () => backend.setState(value, next)],
            ["deleteState", () => backend.deleteState(value)],
            ["lock", () => backend.lock(value)],
            ["unlock", () => backend.unlock(value, lockId)],
            ["forceUnlock", () => backend.forceUnlock(value, lockId)],
            ["getLockInfo", () => backend.getLockInfo(value)],
            ["statePath", () => backend.statePath(value)],
            ["writeSelectedWorkspace", () => writeSelectedWorkspace(root, value)],
          ];
          if (value !== "") {
            operations.push([
              "readSelectedWorkspace",
              () => readSelectedWorkspace(root, { env: { get: () => value } }),
            ]);
          }
          for (const [operation, fn] of operations) {
            const result = await outcome(fn);
            assertExpected(
              result,
              { error: "BackendConfigError", message: "workspace name" },
              operation,
            );
            const message = result.error!.message;
            assert.ok(!/[\0\n]/.test(message), `${operation}: raw control characters`);
            assert.ok(message.length < 400, `${operation}: the message repeats the whole name`);
          }
          assert.deepEqual(await snapshotTree(dir.path), before, "a file changed");
        });
      }
    } finally {
      await backend.close();
    }
  },
});

Deno.test({
  name: `LocalBackend refuses ${BAD_LOCK_IDS.length} hostile lock IDs on unlock, forceUnlock ` +
    "and setState with StateLockError and touches no file",
  ...OPTIONS,
  async fn(t) {
    await using dir = await tempDir();
    const { backend, lockId } = await prepareRoot(dir.path);
    const before = await snapshotTree(dir.path);
    const next = { ...createEmptyState(), lineage: "0badc0de-0000-4000-8000-000000000001" };
    try {
      for (const { name, value } of BAD_LOCK_IDS) {
        await t.step(`${name}: ${JSON.stringify(value.slice(0, 40))}`, async () => {
          const locked: [string, () => unknown, string][] = [
            ["unlock", () => backend.unlock("victim", value), "does not match"],
            ["forceUnlock", () => backend.forceUnlock("victim", value), "does not match"],
            [
              "setState",
              () => backend.setState("victim", { ...next, serial: 9 }, { lockId: value }),
              "is not the current lock",
            ],
            ["unlock unlocked", () => backend.unlock("bystander", value), "not locked"],
            ["forceUnlock unlocked", () => backend.forceUnlock("bystander", value), "not locked"],
            [
              "setState unlocked",
              () => backend.setState("bystander", { ...next, serial: 9 }, { lockId: value }),
              "no longer held",
            ],
          ];
          for (const [operation, fn, message] of locked) {
            const result = await outcome(fn);
            assertExpected(result, { error: "StateLockError", message }, operation);
            assert.ok(result.error instanceof StateLockError);
          }
          assert.equal((await backend.getLockInfo("victim"))?.ID, lockId, "the lock is kept");
          assert.deepEqual(await snapshotTree(dir.path), before, "a file changed");
        });
      }
    } finally {
      await backend.close();
    }
  },
});
