/**
 * The S3 process the crash harness kills: like `_crash_writer.ts`, it locks, reads, writes
 * the next version and unlocks in a loop, saying on stdout what it is about to do, but
 * against the S3 backend with a short lease so that recovery can be watched.
 *
 * Usage: `_s3_writer.ts '{"config": S3BackendConfig, "workspace": NAME, "leaseMs": MS,
 * "iterations": N}'` (no `iterations`: until killed).
 *
 * Lines: `ready`, `locked ID`, `write N`, `done N`, `unlocked`, `finished`.
 *
 * @module
 */

import type { S3BackendConfig } from "../../mod.ts";
import { S3Backend } from "../../src/backends/s3.ts";
import { nextVersion, template, versionOf } from "./_states.ts";
import { emit } from "./_util.ts";

const options = JSON.parse(Deno.args[0]) as {
  config: S3BackendConfig;
  workspace: string;
  leaseMs: number;
  iterations?: number;
};

const backend = new S3Backend(options.config, { leaseMs: options.leaseMs });
const workspace = options.workspace;
emit("ready");
for (let i = 0; options.iterations === undefined || i < options.iterations; i++) {
  const { lockId } = await backend.lock(workspace, { operation: "crash-test", timeoutMs: 0 });
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
