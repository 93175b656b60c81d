/**
 * A PostgreSQL lock holder that writes in a loop until it is killed: lock, read, write the
 * next version, unlock, printing each step, for the crash suite
 * (`tests/reliability_pg_test.ts`).
 *
 * Usage: `_pg_writer.ts '{"config": PgBackendConfig, "workspace": NAME, "iterations"?: N}'`
 *
 * @module
 */

import type { PgBackendConfig } from "../../mod.ts";
import { PgBackend } from "../../src/backends/pg.ts";
import { nextVersion, template, versionOf } from "./_states.ts";
import { emit } from "./_util.ts";

const options = JSON.parse(Deno.args[0]) as {
  config: PgBackendConfig;
  workspace: string;
  iterations?: number;
};

const backend = new PgBackend(options.config);
const workspace = options.workspace;
await backend.isConfigured();
emit("ready");
for (let i = 0; options.iterations === undefined || i < options.iterations; i++) {
  const { lockId } = await backend.lock(workspace, { operation: "crash-test", timeoutMs: 10_000 });
  emit(`locked ${lockId}`);
  const stored = await backend.getState(workspace);
  const next = stored ? nextVersion(stored) : versionOf(await template("small"), 1);
  emit(`write ${next.serial}`);
  await backend.setState(workspace, next, { lockId });
  emit(`done ${next.serial}`);
  await backend.unlock(workspace, lockId);
  emit("unlocked");
}
await backend.close();
emit("finished");
