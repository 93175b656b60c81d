/**
 * A lock holder in a process of its own, for tests that need a live (or killed) holder: takes
 * a workspace's lock through the library, prints `LOCKED <lock ID>`, and holds it until its
 * stdin ends (then unlocks, prints `UNLOCKED` or `UNLOCK FAILED <reason>`, and exits 0) or it
 * is killed. Spawn it with `tests/_lock_holder.ts`.
 *
 * Usage: `deno run -A tests/testdata/lock_holder.ts '<HolderOptions JSON>'` (an S3 backend
 * takes its credentials from the AWS_* variables).
 *
 * @module
 */

import { type BackendConfig, LocalBackend, type StateBackend } from "../../mod.ts";
import { S3Backend } from "../../src/backends/s3.ts";
import { PgBackend } from "../../src/backends/pg.ts";

/** What the holder is told to lock. */
export interface HolderOptions {
  /** The backend (`local` or `s3`). */
  backend: BackendConfig;
  /** The workspace to lock. */
  workspace: string;
  /** The lease of a process-bound lock (the backend's default otherwise). */
  leaseMs?: number;
  /** Take a detached lock. */
  detached?: boolean;
  /** Who holds the lock. */
  who?: string;
  /** The lock's operation. */
  operation?: string;
}

function open(options: HolderOptions): StateBackend {
  const config = options.backend;
  if (config.type === "s3") return new S3Backend(config, { leaseMs: options.leaseMs });
  if (config.type === "pg") return new PgBackend(config);
  if (config.type !== "local") throw new Error(`no lock holder for ${config.type} here`);
  return new LocalBackend({ path: config.path, leaseMs: options.leaseMs });
}

if (import.meta.main) {
  const options = JSON.parse(Deno.args[0]) as HolderOptions;
  const backend = open(options);
  const { lockId } = await backend.lock(options.workspace, {
    who: options.who ?? `holder-${Deno.pid}`,
    operation: options.operation ?? "apply",
    detached: options.detached,
  });
  console.log(`LOCKED ${lockId}`);
  // Lease renewal timers do not keep a process alive; reading stdin does, until it ends.
  for await (const _ of Deno.stdin.readable) {
    // the content does not matter
  }
  try {
    await backend.unlock(options.workspace, lockId);
    console.log("UNLOCKED");
  } catch (error) {
    console.log(`UNLOCK FAILED ${(error as Error).message.replaceAll("\n", " ")}`);
  }
  await backend.close();
}
