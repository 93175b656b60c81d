/**
 * A lock holder for the takeover tests: takes a workspace's lock with a short lease, prints
 * `LOCKED <id>`, and keeps renewing the lease until it is killed.
 *
 * Usage: `deno run -A tests/_s3_holder.ts '<S3BackendConfig JSON>' <workspace> <leaseMs>`
 * (the AWS_* variables of the parent give it the credentials).
 *
 * @module
 */

import { S3Backend } from "../src/backends/s3.ts";
import type { S3BackendConfig } from "../src/config.ts";

const [configJson, workspace, leaseMs] = Deno.args;
const backend = new S3Backend(JSON.parse(configJson) as S3BackendConfig, {
  leaseMs: Number(leaseMs),
});
const { lockId } = await backend.lock(workspace, { who: "holder@subprocess", operation: "apply" });
console.log(`LOCKED ${lockId}`);
// The renewal timer does not keep a process alive: this one does, until SIGKILL.
setInterval(() => {}, 60_000);
