/**
 * gaib-state against a Terraform HTTP server that cannot list workspaces or report a lock
 * (GitLab's managed state: `tests/_gitlab_like_server.ts`): every workspace is reachable by
 * name, a workspace's existence is judged by its state, and `workspace list` and `lock status`
 * say what they cannot do instead of guessing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { HttpBackend } from "../src/backends/http.ts";
import { UnsupportedOperationError } from "../src/errors.ts";
import { createEmptyState } from "../src/state.ts";
import { cliProject, parseJson } from "./_cli.ts";
import { startGitlabLikeServer } from "./_gitlab_like_server.ts";

const STATE = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;

Deno.test("HttpBackend says a GitLab-style server cannot list workspaces or report a lock, and works on any workspace", async () => {
  await using server = startGitlabLikeServer();
  await using backend = new HttpBackend(server.config());
  await assert.rejects(backend.listWorkspaces(), (error: unknown) => {
    assert.ok(error instanceof UnsupportedOperationError, String(error));
    assert.equal(error.operation, "listWorkspaces");
    assert.match(error.message, /does not list workspaces \(GET answered 404\)/);
    return true;
  });
  await assert.rejects(backend.getLockInfo("other"), (error: unknown) => {
    assert.ok(error instanceof UnsupportedOperationError, String(error));
    assert.equal(error.operation, "getLockInfo");
    assert.match(error.message, /does not report locks \(GET answered 405\)/);
    return true;
  });
  const { lockId } = await backend.lock("other");
  await backend.setState("other", { ...createEmptyState(), serial: 1 }, { lockId });
  await backend.unlock("other", lockId);
  assert.equal((await backend.getState("other"))?.serial, 1);
});

Deno.test("HttpBackend reports a refused listing as a refusal, not as unsupported", async () => {
  await using server = startGitlabLikeServer({ username: "ci", password: "s3cret-canary" });
  await using backend = new HttpBackend({ ...server.config(), password: "wrong" });
  await assert.rejects(backend.listWorkspaces(), (error: unknown) => {
    assert.ok(!(error instanceof UnsupportedOperationError), String(error));
    assert.match((error as Error).message, /requires authentication/);
    return true;
  });
});

Deno.test("the CLI works on any workspace of a server that cannot list them, judging existence by the state", async (t) => {
  await using server = startGitlabLikeServer();
  const config = server.config();
  await using project = await cliProject({
    GAIB_BACKEND: "http",
    TF_HTTP_ADDRESS: config.address,
    TF_HTTP_LOCK_ADDRESS: config.lock_address!,
    TF_HTTP_UNLOCK_ADDRESS: config.unlock_address!,
    TF_HTTP_LOCK_METHOD: "POST",
    TF_HTTP_UNLOCK_METHOD: "DELETE",
    TF_HTTP_RETRY_MAX: "0",
  });
  const run = async (args: string[], code = 0) => {
    const result = await project.run(args);
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    return result;
  };

  await t.step("a missing workspace is refused, saying the server cannot list", async () => {
    const result = await run(["state", "list", "-w", "prdo", "--json"], 1);
    const error = parseJson(result).error as Record<string, unknown>;
    assert.equal(error.type, "NoWorkspace");
    assert.match(String(error.message), /It has no state, and the server cannot list/);
    assert.deepEqual(server.names(), [], "nothing was created");
  });

  await t.step("workspace new, state push and state list on another workspace", async () => {
    await run(["workspace", "new", "other"]);
    await run(["state", "push", STATE, "-w", "other"]);
    const listed = await run(["state", "list", "-w", "other"]);
    assert.match(listed.stdout, /discord_role\.admin/);
    assert.deepEqual(server.names(), ["other"]);
  });

  await t.step("workspace select and delete judge existence by the state", async () => {
    await run(["workspace", "new", "scratch"]);
    await run(["workspace", "select", "default"]);
    const missing = await run(["workspace", "select", "nowhere"], 1);
    assert.match(missing.stderr, /Workspace "nowhere" does not exist/);
    await run(["workspace", "delete", "scratch"]);
    assert.deepEqual(server.names(), ["other"]);
  });

  await t.step("workspace list says it cannot list with this server", async () => {
    const result = await run(["workspace", "list"], 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /does not list workspaces/);
    assert.match(result.stderr, /reachable by name, as -w NAME; the selected one is "default"/);
    const json = parseJson(await run(["workspace", "list", "--json"], 1));
    assert.equal((json.error as Record<string, unknown>).type, "CannotListWorkspaces");
  });

  await t.step(
    "lock status says it cannot report; force-unlock works without the holder",
    async () => {
      const status = await run(["lock", "status", "-w", "other"], 1);
      assert.equal(status.stdout, "");
      assert.match(status.stderr, /Cannot tell whether workspace "other" is locked/);
      const lockId = (await run(["lock", "-w", "other"])).stdout.trim();
      assert.match(lockId, /^[0-9a-f-]{36}$/);
      // A change needs the lock: refused while it is held, naming its ID (from the 409 body).
      const busy = await run(["state", "rm", "discord_role.admin", "-w", "other"], 1);
      assert.match(busy.stderr, new RegExp(lockId));
      // Working under the held lock: the server checks the ID on the write.
      await run(["state", "rm", "discord_role.admin", "-w", "other", "--lock-id", lockId]);
      const released = await run(["force-unlock", "--force", lockId, "-w", "other", "--json"]);
      assert.equal(parseJson(released).lockInfo, null);
      await run(["state", "rm", "discord_channel.general", "-w", "other"]);
    },
  );
});
