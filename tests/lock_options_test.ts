import assert from "node:assert/strict";
import { BackendError, LocalBackend } from "../mod.ts";
import { tempDir } from "./_temp.ts";

Deno.test("lock() refuses a TTL or a wait that cannot mean what it says, and locks nothing", async (t) => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const cases: Array<[string, Parameters<LocalBackend["lock"]>[1], RegExp]> = [
    ["a TTL of 0 (already expired)", { detached: true, ttlMs: 0 }, /ttlMs must be .* from 1/],
    ["a negative TTL", { detached: true, ttlMs: -5 }, /ttlMs must be/],
    ["a NaN TTL", { detached: true, ttlMs: NaN }, /ttlMs must be/],
    ["a TTL past any date", { detached: true, ttlMs: 1e20 }, /ttlMs must be .*100 years/],
    ["a TTL without detached", { ttlMs: 1000 }, /detached locks only/],
    ["a negative wait", { timeoutMs: -1 }, /timeoutMs must be 0 or more/],
    ["a NaN wait", { timeoutMs: NaN }, /timeoutMs must be 0 or more/],
    ["an empty chosen ID", { id: "" }, /chosen lock ID must be 1 to 128/],
    ["a chosen ID with a slash", { id: "../x" }, /chosen lock ID must be/],
    ["a chosen ID of 129 characters", { id: "a".repeat(129) }, /chosen lock ID must be/],
  ];
  for (const [name, options, message] of cases) {
    await t.step(name, async () => {
      await assert.rejects(backend.lock("default", options), (error: Error) => {
        assert.ok(error instanceof BackendError, String(error));
        assert.match(error.message, message);
        return true;
      });
      assert.equal(await backend.getLockInfo("default"), null);
    });
  }
  const { lockId } = await backend.lock("default", { detached: true, ttlMs: 1 });
  await backend.unlock("default", lockId);
});

Deno.test("lock() records a chosen lock ID (a server locking for a Terraform client)", async () => {
  await using dir = await tempDir();
  await using backend = new LocalBackend({ path: dir.path });
  const id = "6f1d2c3b-4a59-4e7f-9a0b-1c2d3e4f5a6b";
  const { lockId, lockInfo } = await backend.lock("default", { id, detached: true });
  assert.equal(lockId, id);
  assert.equal(lockInfo.ID, id);
  assert.equal((await backend.getLockInfo("default"))?.ID, id);
  await backend.unlock("default", id);
});
